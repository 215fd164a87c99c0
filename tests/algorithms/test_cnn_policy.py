"""CNN policies on image observations (MinAtar's 10x10xC grids) and the MinAtar HaDES preset."""

import dataclasses
import json

import pytest
import torch

from torch_distill.algorithms.bc import BCConfig, bc_loss, bc_train
from torch_distill.algorithms.direct_es import DirectESConfig, DirectESProblem
from torch_distill.algorithms.hades import HadesConfig, recorded_policy, resolve_hades, run_hades
from torch_distill.envs.core import EnvSpec
from torch_distill.envs.vec import make_native
from torch_distill.evaluation import RealEnvEvaluator
from torch_distill.io import load_dataset
from torch_distill.policies import PolicyConfig, PolicyNet, image_shape_for
from torch_distill.presets import preset_path
from torch_distill.runs import config_from_file

BREAKOUT = EnvSpec("Breakout-MinAtar", (400,), True, n_actions=3)
GAUSSIAN_IMAGE = EnvSpec("Box-v0", (12,), False, action_dim=2, action_low=(-1.0,) * 2, action_high=(1.0,) * 2)


def _gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _reference(net: PolicyNet, flat: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """One member's output through torch.nn.Conv2d / Linear modules built from its flat parameters."""
    h, w, c = net.image_shape
    cfg = net.config
    p = net.unflatten(flat)
    conv = torch.nn.Conv2d(c, cfg.channels, cfg.kernel, padding="same")
    act = {"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh()}[cfg.activation]
    with torch.no_grad():
        conv.weight.copy_(p["conv.weight"])
        conv.bias.copy_(p["conv.bias"])
        mods = [conv, act, torch.nn.Flatten()]
        n_layers = len(net.mlp.sizes) - 1
        for i in range(n_layers):
            lin = torch.nn.Linear(net.mlp.sizes[i], net.mlp.sizes[i + 1])
            lin.weight.copy_(p[f"layers.{i}.weight"].T)
            lin.bias.copy_(p[f"layers.{i}.bias"])
            mods.append(lin)
            if i < n_layers - 1:
                mods.append(act)
        grid = obs.reshape(obs.shape[0], h, w, c).permute(0, 3, 1, 2)  # [B, C, H, W] from channels-fastest rows
        return torch.nn.Sequential(*mods)(grid)


@pytest.mark.parametrize("spec,cfg", [
    (BREAKOUT, PolicyConfig((32,), "relu", arch="cnn")),
    (BREAKOUT, PolicyConfig((8, 8), "tanh", arch="cnn", channels=4, kernel=5, init="torch")),
    (GAUSSIAN_IMAGE, PolicyConfig((), "relu", arch="cnn", channels=3, image_shape=(2, 3, 2))),
])
def test_cnn_equals_torch_modules_and_members_alone(spec, cfg):
    """The batched CNN equals per-member nn.Conv2d / nn.Linear from the same flat parameters; N members together
    equal each alone, unbatched and under vmap."""
    net = PolicyNet(spec, cfg)
    n, b = 3, 5
    flat = net.init(n, _gen(0))
    flat = flat + 0.1 * torch.randn(flat.shape, generator=_gen(1))  # nonzero biases too
    obs = (torch.rand((n, b, spec.obs_dim), generator=_gen(2)) < 0.3).float()
    out = net.batched_forward(flat, obs)
    assert out.shape == (n, b, spec.act_dim)
    for i in range(n):
        torch.testing.assert_close(out[i], _reference(net, flat[i], obs[i]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(net.forward(flat[i], obs[i]), out[i], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(net.forward(flat[i : i + 1], obs[i : i + 1])[0], out[i], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.vmap(net.forward)(flat, obs), out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net.forward(flat.reshape(1, n, -1), obs.reshape(1, n, b, -1))[0], out)
    grads = torch.vmap(torch.func.grad(lambda f, o, a: bc_loss(net, f, o, a)))(
        flat, obs, torch.zeros(n, b, dtype=torch.long) if spec.discrete else torch.zeros(n, b, spec.act_dim))
    assert grads.shape == flat.shape and torch.isfinite(grads).all()


def test_init_layout_and_schemes():
    net = PolicyNet(BREAKOUT, PolicyConfig((16,), arch="cnn", channels=8))
    assert net.names[:2] == ["conv.weight", "conv.bias"] and net.shapes[0] == (8, 4, 3, 3)
    assert net.num_params == 8 * 4 * 9 + 8 + 800 * 16 + 16 + 16 * 3 + 3
    p = net.unflatten(net.init(2, _gen(0)))
    w = p["conv.weight"].reshape(2, 8, 36)  # orthogonal rows (C_out < C_in k k), gain sqrt(2)
    torch.testing.assert_close(w @ w.transpose(1, 2), 2 * torch.eye(8).expand(2, 8, 8), rtol=1e-4, atol=1e-4)
    assert (p["conv.bias"] == 0).all() and not torch.equal(p["conv.weight"][0], p["conv.weight"][1])
    torch.testing.assert_close(net.init(2, _gen(0)), net.init(2, _gen(0)))
    mlp = PolicyNet(BREAKOUT, PolicyConfig((16,)))  # the MLP's layout and init are unchanged by the option
    assert mlp.names == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]


def test_image_shape_follows_flat_minatar_order():
    """FlatMinAtarObs flattens [10, 10, C] channels fastest; the CNN's reshape recovers the env's grid."""
    env = make_native("Breakout-MinAtar")
    assert image_shape_for(env.spec) == tuple(env.env.spec.obs_shape) == (10, 10, 4)
    _, grid = env.env.reset(3, _gen(5))
    _, flat = env.reset(3, _gen(5))
    torch.testing.assert_close(flat.reshape(3, 10, 10, 4), grid.float())
    with pytest.raises(ValueError, match="CartPole-v1"):
        PolicyNet(EnvSpec("CartPole-v1", (4,), True, n_actions=2), PolicyConfig(arch="cnn"))
    with pytest.raises(ValueError, match="obs_dim 400"):
        PolicyNet(BREAKOUT, PolicyConfig(arch="cnn", image_shape=(10, 10, 3)))
    with pytest.raises(ValueError, match="arch='conv'"):
        PolicyConfig(arch="conv")
    with pytest.raises(ValueError, match="kernel=4"):
        PolicyConfig(arch="cnn", kernel=4)


def test_policy_json_round_trip_and_old_records():
    cfg = PolicyConfig((128,), arch="cnn", image_shape=(10, 10, 4))
    rec = json.loads(json.dumps(cfg.to_json()))
    assert rec["arch"] == "cnn" and rec["image_shape"] == [10, 10, 4] and rec["channels"] == 16
    assert PolicyConfig.from_json(rec) == cfg
    old = {"hidden": [16], "activation": "relu", "log_std_init": 0.0}  # a dataset from before the option
    assert PolicyConfig.from_json(old) == PolicyConfig((16,), "relu")
    assert PolicyConfig.from_json(PolicyConfig((8,)).to_json()) == PolicyConfig((8,))


def test_bc_train_cnn_decreases_loss_and_batches():
    net = PolicyNet(BREAKOUT, PolicyConfig((32,), arch="cnn", channels=8))
    n, d = 4, 6
    states = torch.randn((n, d, 400), generator=_gen(3))
    actions = torch.arange(d).remainder(3).expand(n, d)
    p0 = net.init(n, _gen(4))
    cfg = BCConfig(steps=30, lr=0.01, max_grad_norm=0.0)
    p1 = bc_train(net, p0, states, actions, cfg)
    l0, l1 = bc_loss(net, p0, states, actions), bc_loss(net, p1, states, actions)
    assert (l1 < 0.5 * l0).all(), (l0, l1)
    alone = torch.cat([bc_train(net, p0[i : i + 1], states[i : i + 1], actions[i : i + 1], cfg) for i in range(n)])
    torch.testing.assert_close(bc_train(net, p0, states, actions, cfg, chunk_size=n), alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", [BREAKOUT, GAUSSIAN_IMAGE])
def test_cnn_bc_loss_gradcheck(spec):
    cfg = PolicyConfig((4,), "tanh", arch="cnn", channels=2, image_shape=None if spec.discrete else (2, 3, 2))
    net = PolicyNet(spec, cfg)
    flat = (net.init(2, _gen(0)) + 0.1 * torch.randn((2, net.num_params), generator=_gen(1))).double()
    flat.requires_grad_(True)
    states = torch.randn((2, 3, spec.obs_dim), generator=_gen(2), dtype=torch.float64)
    if spec.discrete:
        actions = torch.tensor([[0, 1, 2], [2, 1, 0]])
    else:
        actions = torch.randn((2, 3, 2), generator=_gen(3), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: bc_loss(net, f, states, actions), (flat,), eps=1e-6, atol=1e-5)


def test_direct_es_cnn_genome():
    cfg = DirectESConfig(env="Breakout-MinAtar", arch="cnn", hidden="16", popsize=4, episodes=2, max_steps=20,
                         obs_norm="none")
    ev = RealEnvEvaluator(cfg.env, "cpu", "auto", cfg.max_steps)
    prob = DirectESProblem(cfg, ev)
    assert prob.policy.arch == "cnn" and prob.policy.image_shape == (10, 10, 4)
    mean = prob.initial_mean()
    fit, info = prob.fitness(mean + 0.1 * torch.randn((4, prob.num_dims), generator=_gen(0)), 0)
    assert fit.shape == (4,) and torch.isfinite(fit).all() and int(info["env_steps"]) > 0


def test_tiny_hades_cnn_on_breakout(tmp_path):
    cfg = HadesConfig(env="Breakout-MinAtar", arch="cnn", conv_channels=4, hidden="16", variant="F", popsize=4,
                      generations=2, dataset_size=6, bc_steps=4, episodes=2, max_steps=30, obs_norm="none",
                      eval_every=1, eval_episodes=2, final_episodes=2, final_seeds=1, out=str(tmp_path), name="cnn")
    summary = run_hades(cfg)
    assert summary["generations"] == 2
    ds = load_dataset(summary["dataset"])
    assert ds.states.shape == (6, 400)
    assert ds.metadata["policy"]["arch"] == "cnn" and ds.metadata["policy"]["image_shape"] == [10, 10, 4]
    rec = recorded_policy(ds)
    assert rec == PolicyConfig((16,), "relu", arch="cnn", channels=4, image_shape=(10, 10, 4))
    assert recorded_policy(ds, hidden="8").arch == "cnn"
    assert "fixed inits (as evolved)" in summary["final_eval"]


def test_minatar_preset_resolves_to_the_reference_settings():
    cfg = config_from_file(HadesConfig, preset_path("minatar"))
    spec = make_native("Breakout-MinAtar").spec
    r = resolve_hades(cfg, spec)
    assert (cfg.env, cfg.popsize, cfg.generations, cfg.dataset_size) == ("Breakout-MinAtar", 2048, 2000, 16)
    assert r.strategy == "snes" and r.strategy_kwargs == {"popsize": 2048, "sigma_init": 0.5, "temperature": 20.0,
                                                          "lrate_mean": 1.0}
    assert r.labels == "fixed"
    assert r.policy == PolicyConfig((512, 512), "relu")
    assert r.bc == BCConfig(steps=64, lr=0.03, eps=1e-5, max_grad_norm=0.0)
    assert (cfg.obs_norm, cfg.episodes, cfg.max_steps, cfg.deterministic_eval) == ("none", 8, 1024, False)
    assert r.inits == 1
    r_r = resolve_hades(dataclasses.replace(cfg, variant="R"), spec)
    assert r_r.inits == 2 and r_r.policy == r.policy and r_r.bc == r.bc
    es = config_from_file(DirectESConfig, preset_path("minatar-direct-es"))
    assert (es.env, es.popsize, es.generations, es.hidden, es.activation, es.arch) == (
        "Breakout-MinAtar", 2048, 2000, "512,512", "relu", "mlp")
    assert (es.obs_norm, es.episodes, es.max_steps, es.deterministic_eval) == ("none", 8, 1024, False)
    with pytest.raises(ValueError, match="minatar"):
        preset_path("atari")
