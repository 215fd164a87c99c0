"""Population-vectorised RL agents (PPO, DQN/DDQN, TD3/DDPG), their registry and their shared pieces.

CI tests: keyed RNG, networks, GAE, HL-Gauss/two-hot targets, time-limit bootstrapping, hyperparameter sampling, the
registry contract over every agent, the one off-policy loop, vmapped-vs-sequential equivalence, determinism, bad
input, and short learning runs with real thresholds. Longer learning runs are marked ``slow``
(``pytest -m slow tests/test_rl_agents.py``).
"""

from __future__ import annotations

import functools
import inspect
import math
import time

import pytest
import torch
from agent_envs import FixedResets, NoFinalObs

from torch_distill.algorithms.rl import AGENTS, make_agent
from torch_distill.evaluation import evaluate_functional
from torch_distill.algorithms.rl.common import EnvStepper, linear_schedule
from torch_distill.algorithms.rl.dqn import DQNConfig, dqn_act, dqn_train, make_qnetwork
from torch_distill.algorithms.rl.hparams import (
    LogUniform,
    Uniform,
    sample_hparams,
    with_hparams,
)
from torch_distill.algorithms.rl.off_policy import off_policy_train
from torch_distill.algorithms.rl.ppo import ActorCritic, PPOConfig, ppo_act, ppo_train
from torch_distill.algorithms.rl.returns import (
    bootstrap_truncated,
    gae,
    histogram_mean,
    hl_gauss_support,
    hl_gauss_target,
    two_hot_target,
)
from torch_distill.algorithms.rl.td3 import (
    TD3Config,
    TD3Nets,
    ddpg_config,
    td3_act,
    td3_train,
)
from torch_distill.envs.classic_control import make_classic_control
from torch_distill.envs.core import step_with_final_obs
from torch_distill.envs.synthetic import SyntheticContextualBandit, SyntheticEnvParams
from torch_distill.keyed import (
    fold_in,
    make_keys,
    normal,
    permutation,
    randint,
    uniform,
)
from torch_distill.nets import FlatMLP


def _assert_tree_close(a, b):
    torch.testing.assert_close(a[0], b[0])
    for k in a[1]:
        torch.testing.assert_close(a[1][k], b[1][k], equal_nan=True, msg=lambda m: f"metric {k}: {m}")


# ---------------------------------------------------------------------------------------------------- keyed RNG
def test_keyed_rng_is_member_separable_and_well_formed():
    keys = make_keys(7, 5)
    assert keys.dtype == torch.int64 and keys.shape == (5,)
    torch.testing.assert_close(make_keys(7, 2), keys[:2])
    assert len(set(keys.tolist())) == 5
    u = uniform(keys, (4000,))
    torch.testing.assert_close(uniform(keys[2:3], (4000,)), u[2:3])
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.01 and abs(u.var().item() * 12 - 1) < 0.05
    z = normal(keys, (4000,))
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.05
    r = randint(keys, 3, (1000,))
    assert set(r.unique().tolist()) == {0, 1, 2}
    p = permutation(keys, 10)
    assert torch.equal(p.sort(-1).values, torch.arange(10).expand(5, 10))
    assert not torch.equal(fold_in(keys, 1), fold_in(keys, 2))
    assert not torch.equal(make_keys(7, 5), make_keys(8, 5))


# ---------------------------------------------------------------------------------------------------- networks
def test_flat_mlp_init_and_forward():
    net = FlatMLP([3, 16, 8, 2], "tanh", out_gain=0.01)
    keys = make_keys(0, 3)
    flat = net.init(keys)
    assert flat.shape == (3, net.num_params) == (3, 3 * 16 + 16 + 16 * 8 + 8 + 8 * 2 + 2)
    layers = net.layers(flat)
    for i, (w, b) in enumerate(layers):
        gain = 0.01 if i == len(layers) - 1 else math.sqrt(2)
        w0 = w[1]
        small = w0 @ w0.T if w0.shape[0] <= w0.shape[1] else w0.T @ w0
        torch.testing.assert_close(small, gain**2 * torch.eye(small.shape[0]), atol=1e-5, rtol=1e-4)
        assert torch.all(b == 0)
    x = torch.randn(3, 5, 3)
    out = net(flat, x)
    torch.testing.assert_close(torch.vmap(net.forward)(flat, x), out)
    h = x[2]
    for i, (w, b) in enumerate(layers):
        h = h @ w[2] + b[2]
        h = torch.tanh(h) if i < 2 else h
    torch.testing.assert_close(out[2], h)
    torch.testing.assert_close(net.init(keys[1:2]), flat[1:2])


# ---------------------------------------------------------------------------------------------------- GAE, schedules
def test_gae_matches_hand_recursion():
    r = torch.tensor([[1.0], [0.5], [2.0]])
    v = torch.tensor([[0.2], [0.4], [0.1]])
    d = torch.tensor([[False], [True], [False]])
    last = torch.tensor([0.3])
    g, lam = 0.9, 0.8
    adv, ret = gae(r, v, d, last, torch.tensor(g), torch.tensor(lam))
    d2 = 2.0 + g * 0.3 - 0.1
    d1 = 0.5 + 0.0 - 0.4  # terminal: no bootstrap, no carry-over
    d0 = 1.0 + g * 0.4 - 0.2
    a2, a1 = d2, d1
    a0 = d0 + g * lam * a1
    torch.testing.assert_close(adv[:, 0], torch.tensor([a0, a1, a2]))
    torch.testing.assert_close(ret, adv + v)


def test_linear_schedule():
    s, e = torch.tensor([1.0, 0.5]), torch.tensor([0.1, 0.5])
    torch.testing.assert_close(linear_schedule(s, e, 100.0, 0), s)
    torch.testing.assert_close(linear_schedule(s, e, 100.0, 50), torch.tensor([0.55, 0.5]))
    torch.testing.assert_close(linear_schedule(s, e, 100.0, 1000), e)
    torch.testing.assert_close(linear_schedule(s, e, torch.tensor([0.0, 10.0]), 0), torch.tensor([0.1, 0.5]))


# ---------------------------------------------------------------------------------------------------- time limits
def test_bootstrap_truncated_hand_computed():
    r = torch.tensor([1.0, 2.0, 3.0, 4.0])
    v = torch.tensor([10.0, 20.0, 30.0, 40.0])
    term = torch.tensor([False, True, True, False])
    trunc = torch.tensor([False, False, True, True])
    # only the truncated-not-terminated step bootstraps; terminated ends the return
    torch.testing.assert_close(bootstrap_truncated(r, v, torch.tensor(0.5), term, trunc), torch.tensor([1.0, 2.0, 3.0, 24.0]))


def test_env_stepper_final_obs_and_fallback():
    env = make_classic_control("Pendulum-v1", max_episode_steps=3)
    stepper, fallback = EnvStepper(env), EnvStepper(NoFinalObs(env))
    assert stepper.final_obs and not fallback.final_obs
    state, _ = env.reset(4, torch.Generator().manual_seed(0))
    g1, g2, g3 = (torch.Generator().manual_seed(1) for _ in range(3))
    a = torch.zeros(4, 1)
    for t in range(3):
        out, ref, old = stepper(state, a, g1), step_with_final_obs(env, state, a, g2), fallback(state, a, g3)
        for x, y in zip(out, ref):
            torch.testing.assert_close(x, y)
        torch.testing.assert_close(old.obs, out.obs)  # env.step gives the same state and obs
        torch.testing.assert_close(old.final_obs, old.obs)  # no final observation without transition
        if t < 2:
            torch.testing.assert_close(out.final_obs, out.obs)
        state = out.state
    assert out.truncated.all() and not out.terminated.any()
    assert not torch.allclose(out.final_obs, out.obs)  # the final obs is the pre-reset one, not the reset one


class _RecordingLearner:
    """An off-policy learner that acts with zeros and records what the loop stores in the replay buffer."""

    metric_names = ("updates",)

    def __init__(self, m: int) -> None:
        self.params = torch.zeros(m, 1)
        self.buffers: list[tuple[torch.Tensor, ...]] = []
        self.count = torch.zeros(m)

    def explore(self, step, key, obs):
        return torch.zeros(*obs.shape[:2], 1)

    def update(self, key, index, buffer):
        self.count = self.count + 1
        self.buffers.append((buffer.obs.clone(), buffer.next_obs.clone(), buffer.terminated.clone(),
                             buffer.weight.clone(), buffer.size))

    def metrics(self):
        return (self.count,)

    def log(self):
        return {}


@pytest.mark.parametrize("final_obs", [True, False])
def test_off_policy_loop_stores_final_observations(final_obs):
    """Time limits: ``next_obs`` of a truncated row is the observation before the auto-reset (weight 1, bootstrap
    mask 0); an env without ``transition`` stores the reset observation with weight 0."""
    env = FixedResets("Pendulum-v1", 2, max_episode_steps=3)
    run_env = env if final_obs else NoFinalObs(env)
    cfg = TD3Config(total_timesteps=8, num_envs=2, buffer_size=8, batch_size=2, learning_starts=0, metrics_interval=4)
    learner = _RecordingLearner(1)
    metrics = off_policy_train(cfg, learner, run_env, None, torch.Generator(), make_keys(0, 1), (1,), torch.float32)
    torch.testing.assert_close(metrics["updates"], torch.tensor([[2.0], [4.0]]))
    torch.testing.assert_close(metrics["env_steps"], torch.tensor([4, 8]))
    obs, next_obs, term, weight, size = learner.buffers[-1]
    assert size == 8 and not term.any()
    # a reference rollout with the same (zero) actions
    state, o = env.reset(2, torch.Generator())
    for t in range(4):
        st = step_with_final_obs(env, state, torch.zeros(2, 1), torch.Generator())
        torch.testing.assert_close(obs[0, 2 * t:2 * t + 2], o)
        ended = st.truncated
        assert bool(ended.all()) == (t == 2)
        expected_next = st.final_obs if final_obs else st.obs
        torch.testing.assert_close(next_obs[0, 2 * t:2 * t + 2], expected_next)
        torch.testing.assert_close(weight[0, 2 * t:2 * t + 2], (torch.ones(2) if final_obs else (~ended).float()))
        state, o = st.state, st.obs


def test_truncation_bootstrap_changes_only_truncated_runs():
    """The learners take the bootstrap path only at time limits: without any truncation the run equals the
    fallback's; with truncations (Pendulum never terminates) it differs."""
    for agent, cfg, env_id, kw in (
        ("ppo", PPOConfig(total_timesteps=64, num_envs=2, num_steps=32, update_epochs=1, num_minibatches=2, hidden=(8,)),
         "CartPole-v1", {}),
        ("dqn", DQNConfig(total_timesteps=60, num_envs=2, buffer_size=60, batch_size=8, learning_starts=10,
                          hidden=(8,), metrics_interval=30), "CartPole-v1", {}),
    ):
        env = FixedResets(env_id, 2, **kw)
        a = AGENTS[agent].train(cfg, env, None, torch.Generator(), 2, make_keys(0, 2))
        b = AGENTS[agent].train(cfg, NoFinalObs(env), None, torch.Generator(), 2, make_keys(0, 2))
        assert not (a[1]["episode_length"] >= 500).any()
        torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    pend = FixedResets("Pendulum-v1", 2, max_episode_steps=8)
    cfg = PPOConfig(total_timesteps=64, num_envs=2, num_steps=16, update_epochs=1, num_minibatches=2, hidden=(8,))
    a = ppo_train(cfg, pend, None, torch.Generator(), 1, make_keys(0, 1))[0]
    b = ppo_train(cfg, NoFinalObs(pend), None, torch.Generator(), 1, make_keys(0, 1))[0]
    assert not torch.allclose(a, b)


# ---------------------------------------------------------------------------------------------------- HL-Gauss
def test_hl_gauss_target_hand_computed_and_decoding():
    edges, centres = hl_gauss_support(0.0, 4.0, 4)
    torch.testing.assert_close(edges, torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]))
    torch.testing.assert_close(centres, torch.tensor([0.5, 1.5, 2.5, 3.5]))
    t, sigma = 1.5, 0.75  # sigma / bin width = 0.75
    cdf = [math.erf((e - t) / (math.sqrt(2) * sigma)) for e in (0.0, 1.0, 2.0, 3.0, 4.0)]
    expected = torch.tensor([(cdf[i + 1] - cdf[i]) / (cdf[4] - cdf[0]) for i in range(4)])
    p = hl_gauss_target(torch.tensor([t]), edges, sigma)
    torch.testing.assert_close(p[0], expected)
    # symmetric around the centre of bin 1: bins 0 and 2 get equal mass
    torch.testing.assert_close(p[0, 0], p[0, 2])
    torch.testing.assert_close(p.sum(-1), torch.ones(1))
    # decoding: a target in the middle of a wide support decodes to itself (edge bias is small there)
    edges51, centres51 = hl_gauss_support(-10.0, 10.0, 51)
    targets = torch.tensor([-3.3, 0.0, 2.7, 5.1])
    probs = hl_gauss_target(targets, edges51, 0.75 * 20 / 51)
    torch.testing.assert_close(histogram_mean(probs.log(), centres51), targets, atol=1e-4, rtol=0)
    # near the edge the decoded value is biased towards the inside; outside the support it is clamped
    out = histogram_mean(hl_gauss_target(torch.tensor([10.0, 50.0]), edges51, 0.75 * 20 / 51).log(), centres51)
    assert out[0] < 10.0 and out[0] > 9.5
    torch.testing.assert_close(out[1], out[0])


def test_two_hot_target():
    _, centres = hl_gauss_support(0.0, 4.0, 4)
    p = two_hot_target(torch.tensor([1.25, 0.0, 3.5, 9.0]), centres)
    torch.testing.assert_close(p, torch.tensor([[0.25, 0.75, 0, 0], [1.0, 0, 0, 0], [0, 0, 0, 1.0], [0, 0, 0, 1.0]]))
    torch.testing.assert_close((p * centres).sum(-1), torch.tensor([1.25, 0.5, 3.5, 3.5]))


# ---------------------------------------------------------------------------------------------------- hyperparameters
def test_sample_hparams_and_with_hparams():
    g = torch.Generator().manual_seed(0)
    space = {"lr": LogUniform(1e-4, 1e-2), "gamma": [0.9, 0.99], "clip_eps": Uniform(0.1, 0.3)}
    hp = sample_hparams(space, 64, g)
    assert all(v.shape == (64,) for v in hp.values())
    assert hp["lr"].min() >= 1e-4 and hp["lr"].max() <= 1e-2 and hp["lr"].std() > 0
    assert set(torch.unique(hp["gamma"]).tolist()) <= {0.8999999761581421, 0.9900000095367432}
    shared = sample_hparams(space, 8, g, shared=True)
    assert all(torch.all(v == v[0]) for v in shared.values())
    cfg = with_hparams(PPOConfig(), hp)
    assert cfg.lr is hp["lr"]
    with pytest.raises(ValueError, match="not fields"):
        with_hparams(PPOConfig(), {"learning_rate": hp["lr"]})


# ---------------------------------------------------------------------------------------------------- registry
_TRAIN_PARAMS = ["config", "env", "env_params", "generator", "num_members", "keys", "init_params", "callback", "logger"]


@pytest.mark.parametrize("name", list(AGENTS))
def test_registry_contract(name):
    """Every agent: the same train signature, a working inner-loop config on an SCB of its action space, a callback
    with the trained parameters, init_params honoured, and action functions bound to the config's networks."""
    agent = AGENTS[name]
    assert [p for p in inspect.signature(agent.train).parameters] == _TRAIN_PARAMS
    real = make_classic_control("Pendulum-v1" if agent.action_spaces == ("continuous",) else "CartPole-v1")
    algo = make_agent(name, real.spec, 200, (8,), "tanh")
    assert algo.name == name and algo.agent is agent and algo.num_envs >= 1
    scb = SyntheticContextualBandit(real.spec, latent_period=algo.num_envs)
    genomes = scb.init_genome(torch.Generator().manual_seed(0), 2).repeat_interleave(algo.num_envs, dim=0)
    seen = []
    params, metrics = algo.train(algo.config, scb, SyntheticEnvParams(genomes), torch.Generator().manual_seed(1), 2,
                                 make_keys(3, 2), callback=lambda steps, p: seen.append((steps, p.shape)))
    assert params.dim() == 2 and params.shape[0] == 2 and torch.isfinite(params).all()
    assert seen and seen[-1][1] == params.shape
    if "env_steps" in metrics:  # RL agents call back at every metrics record; the bandit learners once, at the end
        assert [st for st, _ in seen][-1] == int(metrics["env_steps"][-1])
    again, _ = algo.train(algo.config, scb, SyntheticEnvParams(genomes), torch.Generator().manual_seed(1), 2,
                          make_keys(3, 2), init_params=params)
    assert again.shape == params.shape and not torch.equal(again, params)
    obs = torch.randn(2, 5, real.spec.obs_dim, generator=torch.Generator().manual_seed(4))
    shape = (2, 5) if real.spec.discrete else (2, 5, real.spec.action_dim)
    assert algo.act(params, obs).shape == shape
    assert algo.policy(True, torch.Generator())(params, obs).shape == shape
    sampled = algo.policy(False, torch.Generator().manual_seed(5))(params, obs)
    assert sampled.shape == shape
    if agent.sample is None:  # a deterministic policy acts greedily either way
        torch.testing.assert_close(sampled, algo.act(params, obs))
    cfg, hp = algo.sample_config(2, torch.Generator().manual_seed(6), shared=True)
    assert set(hp) >= set(algo.space) and all(getattr(cfg, k) is hp[k] for k in algo.space)


def test_make_agent_bad_input():
    cart, pend = make_classic_control("CartPole-v1").spec, make_classic_control("Pendulum-v1").spec
    with pytest.raises(ValueError, match="unknown inner algorithm 'a2c'"):
        make_agent("a2c", cart, 1000, (8,), "tanh")
    with pytest.raises(ValueError, match="dqn .* cannot act in a continuous action space"):
        make_agent("dqn", pend, 1000, (8,), "tanh")
    with pytest.raises(ValueError, match="td3 .* cannot act in a discrete action space"):
        make_agent("td3", cart, 1000, (8,), "tanh")
    ddqn = make_agent("dqn", cart, 1000, (8,), "tanh", kind="mdp")
    assert ddqn.config.hidden == (57,) and ddqn.structural and set(ddqn.space) == {"lr"}


# ---------------------------------------------------------------------------------------------------- vmap == sequential
def _ppo_runs(env_id: str, cfg: PPOConfig, lr: torch.Tensor, **env_kw):
    m = lr.shape[0]
    env = FixedResets(env_id, cfg.num_envs, **env_kw)
    keys = make_keys(3, m)
    joint = ppo_train(with_hparams(cfg, {"lr": lr}), env, None, torch.Generator().manual_seed(0), m, keys=keys)
    singles = [ppo_train(with_hparams(cfg, {"lr": lr[i:i + 1]}), env, None, torch.Generator().manual_seed(0), 1,
                         keys=keys[i:i + 1]) for i in range(m)]
    seq = (torch.cat([s[0] for s in singles]), {k: torch.cat([s[1][k] for s in singles], dim=-1) for k in joint[1] if k != "env_steps"})
    return joint, seq


@pytest.mark.parametrize("env_id,env_kw", [("CartPole-v1", {}), ("Pendulum-v1", {"max_episode_steps": 12})])
def test_ppo_vmapped_equals_sequential(env_id, env_kw):
    cfg = PPOConfig(total_timesteps=2 * 2 * 16, num_envs=2, num_steps=16, update_epochs=2, num_minibatches=2, hidden=(16, 16))
    joint, seq = _ppo_runs(env_id, cfg, torch.tensor([3e-3, 1e-3, 3e-4]), **env_kw)
    assert joint[0].shape == (3, ActorCritic(FixedResets(env_id, 2, **env_kw).spec, (16, 16)).num_params)
    assert joint[1]["episode_return"].shape == (2, 3)
    _assert_tree_close((joint[0], {k: joint[1][k] for k in seq[1]}), seq)
    # the per-member learning rates did make a difference
    assert not torch.allclose(joint[0][0], joint[0][1])


@pytest.mark.parametrize("variant", [dict(double=True), dict(double=False, dueling=True, tau=0.1, target_update_interval=1),
                                     dict(loss="hl_gauss", v_min=0.0, v_max=50.0, num_bins=21, dueling=True),
                                     dict(loss="huber")])
def test_dqn_vmapped_equals_sequential(variant):
    base = dict(total_timesteps=120, num_envs=2, buffer_size=64, batch_size=16, learning_starts=20,
                target_update_interval=5, hidden=(16, 16), exploration_fraction=0.5, metrics_interval=20)
    cfg = DQNConfig(**{**base, **variant})
    env = FixedResets("CartPole-v1", 2)
    lr = torch.tensor([1e-2, 3e-3])
    eps_end = torch.tensor([0.0, 0.2])
    keys = make_keys(5, 2)
    joint = dqn_train(with_hparams(cfg, {"lr": lr, "eps_end": eps_end}), env, None, torch.Generator(), 2, keys=keys)
    singles = [dqn_train(with_hparams(cfg, {"lr": lr[i:i + 1], "eps_end": eps_end[i:i + 1]}), env, None,
                         torch.Generator(), 1, keys=keys[i:i + 1]) for i in range(2)]
    seq = (torch.cat([s[0] for s in singles]), {k: torch.cat([s[1][k] for s in singles], dim=-1) for k in joint[1] if k != "env_steps"})
    _assert_tree_close((joint[0], {k: joint[1][k] for k in seq[1]}), seq)
    assert joint[1]["loss"].shape == (6, 2) and torch.isfinite(joint[1]["loss"][-1]).all()
    torch.testing.assert_close(joint[1]["env_steps"], torch.arange(20, 121, 20))


def test_dqn_per_member_double_flag():
    cfg = DQNConfig(total_timesteps=200, num_envs=2, buffer_size=64, batch_size=16, learning_starts=20, lr=1e-2,
                    target_update_interval=1000, hidden=(16,), metrics_interval=40)
    env = FixedResets("CartPole-v1", 2)
    keys = torch.cat([make_keys(1, 1), make_keys(1, 1)])  # common random numbers: same key for both members
    p, _ = dqn_train(with_hparams(cfg, {"double": torch.tensor([1.0, 0.0])}), env, None, torch.Generator(), 2, keys=keys)
    p_double, _ = dqn_train(with_hparams(cfg, {"double": True}), env, None, torch.Generator(), 1, keys=keys[:1])
    p_single, _ = dqn_train(with_hparams(cfg, {"double": False}), env, None, torch.Generator(), 1, keys=keys[:1])
    torch.testing.assert_close(p, torch.cat([p_double, p_single]))
    assert not torch.allclose(p_double, p_single)


@pytest.mark.parametrize("make_cfg", [TD3Config, ddpg_config])
def test_td3_vmapped_equals_sequential(make_cfg):
    cfg = make_cfg(total_timesteps=60, num_envs=2, buffer_size=64, batch_size=16, learning_starts=20, hidden=(16, 16),
                   metrics_interval=20)
    env = FixedResets("Pendulum-v1", 2, max_episode_steps=15)
    lr = torch.tensor([1e-2, 1e-3])
    keys = make_keys(9, 2)
    joint = td3_train(with_hparams(cfg, {"lr_actor": lr}), env, None, torch.Generator(), 2, keys=keys)
    singles = [td3_train(with_hparams(cfg, {"lr_actor": lr[i:i + 1]}), env, None, torch.Generator(), 1, keys=keys[i:i + 1])
               for i in range(2)]
    seq = (torch.cat([s[0] for s in singles]), {k: torch.cat([s[1][k] for s in singles], dim=-1) for k in joint[1] if k != "env_steps"})
    _assert_tree_close((joint[0], {k: joint[1][k] for k in seq[1]}), seq)
    assert torch.isfinite(joint[1]["critic_loss"][-1]).all()


# ---------------------------------------------------------------------------------------------------- determinism
def test_determinism_by_seed():
    env = make_classic_control("CartPole-v1")
    pcfg = PPOConfig(total_timesteps=64, num_envs=2, num_steps=32, hidden=(8,))
    dcfg = DQNConfig(total_timesteps=60, num_envs=2, buffer_size=40, batch_size=8, learning_starts=10, hidden=(8,),
                     metrics_interval=30)
    for train, cfg in ((ppo_train, pcfg), (dqn_train, dcfg)):
        a = train(cfg, env, None, torch.Generator().manual_seed(1), 2)
        b = train(cfg, env, None, torch.Generator().manual_seed(1), 2)
        c = train(cfg, env, None, torch.Generator().manual_seed(2), 2)
        assert torch.equal(a[0], b[0])
        assert not torch.equal(a[0], c[0])
        assert not torch.equal(a[0][0], a[0][1])  # members are initialised independently
    pend = make_classic_control("Pendulum-v1")
    tcfg = TD3Config(total_timesteps=40, buffer_size=40, batch_size=8, learning_starts=20, hidden=(8,), metrics_interval=20)
    a, b, c = (td3_train(tcfg, pend, None, torch.Generator().manual_seed(s), 2)[0] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---------------------------------------------------------------------------------------------------- bad input
def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="num_minibatches"):
        PPOConfig(num_envs=3, num_steps=5, num_minibatches=4)
    with pytest.raises(ValueError, match="loss"):
        DQNConfig(loss="l1")
    with pytest.raises(ValueError, match="support"):
        DQNConfig(loss="hl_gauss", v_min=1.0, v_max=0.0)
    env = make_classic_control("CartPole-v1")
    with pytest.raises(ValueError, match=r"lr: per-member tensor has shape \(2,\)"):
        ppo_train(PPOConfig(total_timesteps=64, num_envs=2, num_steps=32, lr=torch.ones(2)), env, None, torch.Generator(), 3)
    with pytest.raises(ValueError, match="keys shape"):
        dqn_train(DQNConfig(total_timesteps=10), env, None, torch.Generator(), 2, keys=make_keys(0, 3))
    with pytest.raises(ValueError, match="discrete"):
        dqn_train(DQNConfig(total_timesteps=10), make_classic_control("Pendulum-v1"), None, torch.Generator(), 1)
    with pytest.raises(ValueError, match="continuous"):
        td3_train(TD3Config(total_timesteps=10), env, None, torch.Generator(), 1)


def test_evaluate_functional_common_random_numbers():
    env = make_classic_control("CartPole-v1")
    push_right = lambda params, obs: torch.ones(obs.shape[:2], dtype=torch.int64)
    res = evaluate_functional(push_right, torch.zeros(3, 1), env, 5, torch.Generator().manual_seed(0))
    r = res.returns
    assert torch.equal(res.lengths.float(), r)  # CartPole pays 1 per step of the first episode only
    assert r.shape == (3, 5)
    assert torch.equal(r[0], r[1]) and torch.equal(r[0], r[2])  # same initial states for every member
    assert torch.all((r >= 8) & (r <= 12))  # pushing right topples the pole in about 10 steps
    # a greedy evaluation of a PPO population runs through ppo_act
    net = ActorCritic(env.spec, (8,))
    out = evaluate_functional(functools.partial(ppo_act, net), net.init(make_keys(0, 2)), env, 4, torch.Generator(),
                              max_steps=50).returns
    assert out.shape == (2, 4) and torch.all(out <= 50)


# ---------------------------------------------------------------------------------------------------- learning
def _greedy(act, params, env_id="CartPole-v1", episodes=32):
    env = make_classic_control(env_id)
    return evaluate_functional(act, params, env, episodes, torch.Generator().manual_seed(1234)).returns


def test_ppo_learns_cartpole():
    """4 PPO agents x 100k env steps on the native CartPole-v1: mean greedy return >= 475 (~30 s, 1 thread)."""
    env = make_classic_control("CartPole-v1")
    cfg = PPOConfig(total_timesteps=100_000, lr=1e-3)
    t0 = time.time()
    params, metrics = ppo_train(cfg, env, None, torch.Generator().manual_seed(0), 4, keys=make_keys(0, 4))
    ret = _greedy(functools.partial(ppo_act, ActorCritic(env.spec, cfg.hidden, cfg.activation)), params)
    print(f"PPO CartPole-v1: 4 x {int(metrics['env_steps'][-1])} steps, {time.time() - t0:.1f}s, greedy {ret.mean(1).tolist()}")
    assert ret.mean() >= 475


# SB3-zoo-like DDQN settings for CartPole: 0.5 updates per env step in bursts, target synced every burst.
_DQN_CARTPOLE = dict(num_envs=4, batch_size=64, lr=2.3e-3, learning_starts=1000, train_frequency=64,
                     target_update_interval=64, exploration_fraction=0.16, eps_end=0.04)


@pytest.mark.slow
def test_dqn_learns_cartpole_long():
    """2 DDQN agents x 50k env steps, (256, 256) network: mean greedy return >= 400.

    Measured: greedy 500.0 / 500.0 (32 episodes each), 178 s wall with 1 thread on a shared 2-core machine.
    """
    env = make_classic_control("CartPole-v1")
    cfg = DQNConfig(total_timesteps=50_000, buffer_size=50_000, gradient_steps=128, hidden=(256, 256), **_DQN_CARTPOLE)
    t0 = time.time()
    params, metrics = dqn_train(cfg, env, None, torch.Generator().manual_seed(0), 2, keys=make_keys(0, 2))
    ret = _greedy(functools.partial(dqn_act, make_qnetwork(env.spec, cfg)), params)
    print(f"DDQN CartPole-v1: 2 x {int(metrics['env_steps'][-1])} steps, {time.time() - t0:.1f}s, greedy {ret.mean(1).tolist()}")
    assert ret.mean() >= 400


def test_dqn_learns_cartpole():
    """2 DDQN agents x 20k env steps, (64, 64) network: mean greedy return >= 120 (random play: ~22).

    Measured: greedy 187.1 / 140.5 (32 episodes each), 26 s wall with 1 thread on a shared machine.
    """
    env = make_classic_control("CartPole-v1")
    cfg = DQNConfig(total_timesteps=20_000, buffer_size=20_000, gradient_steps=64, hidden=(64, 64), **_DQN_CARTPOLE)
    t0 = time.time()
    params, metrics = dqn_train(cfg, env, None, torch.Generator().manual_seed(0), 2, keys=make_keys(0, 2))
    ret = _greedy(functools.partial(dqn_act, make_qnetwork(env.spec, cfg)), params)
    print(f"DDQN CartPole-v1: 2 x {int(metrics['env_steps'][-1])} steps, {time.time() - t0:.1f}s, greedy {ret.mean(1).tolist()}")
    assert ret.mean() >= 120


@pytest.mark.slow
def test_ppo_continuous_learns_pendulum():
    """2 PPO (Gaussian) agents x 200k env steps on the native Pendulum-v1: mean greedy return >= -200.

    Measured: greedy -155 / -150 (32 episodes each), 168 s wall with 1 thread on a shared 2-core machine.
    """
    env = make_classic_control("Pendulum-v1")
    cfg = PPOConfig(total_timesteps=200_000, num_envs=8, num_steps=256, update_epochs=10, num_minibatches=32, lr=1e-3,
                    gamma=0.9, ent_coef=0.0, clip_vloss=False, reward_scale=0.1)
    t0 = time.time()
    params, metrics = ppo_train(cfg, env, None, torch.Generator().manual_seed(0), 2, keys=make_keys(0, 2))
    ret = _greedy(functools.partial(ppo_act, ActorCritic(env.spec, cfg.hidden, cfg.activation)), params, "Pendulum-v1")
    print(f"PPO Pendulum-v1: 2 x {int(metrics['env_steps'][-1])} steps, {time.time() - t0:.1f}s, greedy {ret.mean(1).tolist()}")
    assert ret.mean() >= -200


@pytest.mark.slow
def test_td3_learns_pendulum():
    """2 TD3 agents x 15k env steps on the native Pendulum-v1: mean greedy return >= -200.

    Measured: greedy -144.7 / -139.7 (32 episodes each), 399 s wall with 1 thread on a shared 2-core machine.
    """
    env = make_classic_control("Pendulum-v1")
    cfg = TD3Config(total_timesteps=15_000, learning_starts=1_000)
    t0 = time.time()
    params, metrics = td3_train(cfg, env, None, torch.Generator().manual_seed(0), 2, keys=make_keys(0, 2))
    ret = _greedy(functools.partial(td3_act, TD3Nets(env.spec, cfg.hidden, cfg.activation, cfg.twin)), params, "Pendulum-v1")
    print(f"TD3 Pendulum-v1: 2 x {int(metrics['env_steps'][-1])} steps, {time.time() - t0:.1f}s, greedy {ret.mean(1).tolist()}")
    assert ret.mean() >= -200
