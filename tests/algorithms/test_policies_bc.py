"""Policies as flat parameter vectors and vmapped behaviour cloning."""

import math

import pytest
import torch
from torch.func import grad

from torch_distill.algorithms.bc import BCConfig, bc_loss, bc_train
from torch_distill.envs.core import EnvSpec
from torch_distill.es.optim import adam_init, adam_update
from torch_distill.policies import PolicyConfig, PolicyNet, parse_hidden

DISCRETE = EnvSpec("toy-discrete", (4,), True, n_actions=3)
CONTINUOUS = EnvSpec("toy-continuous", (5,), False, action_dim=2, action_low=(-1.0, -1.0), action_high=(1.0, 1.0))


def _data(spec: EnvSpec, n: int, d: int, kind: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(n, d, spec.obs_dim, generator=g)
    if kind == "labels":
        actions = torch.randint(spec.n_actions, (n, d), generator=g)
    else:
        actions = torch.randn(n, d, spec.act_dim, generator=g) * 2
    return states, actions


@pytest.mark.parametrize("spec,hidden,act", [(DISCRETE, (32, 16), "relu"), (CONTINUOUS, (8,), "tanh"), (DISCRETE, (), "relu")])
def test_flatten_roundtrip_and_init(spec, hidden, act):
    net = PolicyNet(spec, PolicyConfig(hidden, act))
    flat = net.init(3, torch.Generator().manual_seed(1))
    assert flat.shape == (3, net.num_params)
    params = net.unflatten(flat)
    torch.testing.assert_close(net.flatten(params), flat)
    # orthogonal weights with the reference gains; zero biases; log_std 0
    weights = [k for k in params if k.endswith("weight")]
    for i, k in enumerate(weights):
        w = params[k][0]
        gain = 0.01 if i == len(weights) - 1 else math.sqrt(2)
        small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(small, gain**2 * torch.eye(small.shape[0]), atol=1e-5, rtol=1e-4)
    for k in params:
        if k.endswith("bias"):
            assert torch.all(params[k] == 0)
    if not spec.discrete:
        assert torch.all(params["log_std"] == 0)
    # different members differ, same generator seed is reproducible
    assert not torch.allclose(flat[0], flat[1])
    torch.testing.assert_close(flat, net.init(3, torch.Generator().manual_seed(1)))


def test_forward_matches_torch_module():
    """The flat layout is W [in, out] per layer: loaded transposed into nn.Linear it gives the same outputs, batched,
    per member and under vmap."""
    net = PolicyNet(DISCRETE, PolicyConfig((16, 16), "tanh"))
    flat = net.init(2, torch.Generator().manual_seed(0))
    obs = torch.randn(2, 5, 4)
    out = net.batched_forward(flat, obs)
    torch.testing.assert_close(torch.vmap(net.forward)(flat, obs), out)
    for i in range(2):
        p = net.unflatten(flat[i])
        sizes = [DISCRETE.obs_dim, 16, 16, DISCRETE.n_actions]
        module = torch.nn.Sequential(torch.nn.Linear(sizes[0], 16), torch.nn.Tanh(), torch.nn.Linear(16, 16),
                                     torch.nn.Tanh(), torch.nn.Linear(16, sizes[3]))
        with torch.no_grad():
            for j, layer in enumerate(module[::2]):
                layer.weight.copy_(p[f"layers.{j}.weight"].T)
                layer.bias.copy_(p[f"layers.{j}.bias"])
        torch.testing.assert_close(out[i], module(obs[i]))
        torch.testing.assert_close(net.forward(flat[i], obs[i]), out[i])


@pytest.mark.parametrize("spec,kind", [(DISCRETE, "labels"), (DISCRETE, "logits"), (CONTINUOUS, "targets")])
def test_vmapped_bc_equals_sequential(spec, kind):
    """P members trained under vmap equal P sequential trainings (the inner loop of HaDES)."""
    net = PolicyNet(spec, PolicyConfig((32, 32), "tanh"))
    p, d = 6, 5
    params0 = net.init(p, torch.Generator().manual_seed(3))
    states, actions = _data(spec, p, d, kind)
    cfg = BCConfig(steps=15, lr=0.01, max_grad_norm=0.5)
    batched = bc_train(net, params0, states, actions, cfg)
    for i in range(p):
        x = params0[i]
        opt = adam_init(x)
        for _ in range(cfg.steps):
            g = grad(lambda q: bc_loss(net, q, states[i], actions[i]))(x)
            g = g * torch.clamp(cfg.max_grad_norm / (g.norm() + 1e-6), max=1.0)
            delta, opt = adam_update(g, opt, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)
            x = x - delta
        torch.testing.assert_close(batched[i], x, atol=1e-5, rtol=1e-4)


def test_bc_fits_labels():
    net = PolicyNet(DISCRETE, PolicyConfig((64, 64), "relu"))
    states, actions = _data(DISCRETE, 4, 6, "labels", seed=5)
    params = bc_train(net, net.init(4, torch.Generator().manual_seed(0)), states, actions, BCConfig(steps=64, lr=0.03))
    pred = net.batched_forward(params, states).argmax(-1)
    assert torch.equal(pred, actions)


def test_bc_gaussian_learns_targets_and_std():
    net = PolicyNet(CONTINUOUS, PolicyConfig((64, 64), "tanh"))
    states, actions = _data(CONTINUOUS, 2, 4, "targets", seed=2)
    params = bc_train(net, net.init(2, torch.Generator().manual_seed(0)), states, actions,
                      BCConfig(steps=400, lr=5e-3, max_grad_norm=0.5))
    mean = net.batched_forward(params, states)
    assert (mean - actions).abs().max() < 0.1
    assert torch.all(net.log_std(params) < -1.0)  # NLL shrinks the std once the means fit


def test_act_noise_shared_and_greedy():
    net = PolicyNet(DISCRETE, PolicyConfig((8,), "relu"))
    flat = net.init(1, torch.Generator().manual_seed(0)).expand(3, -1)
    obs = torch.randn(3, 7, 4)
    obs[:] = obs[0]
    noise = -torch.log(-torch.log(torch.rand(7, 3, generator=torch.Generator().manual_seed(1))))
    a = net.act(flat, obs, noise)
    assert a.shape == (3, 7) and a.dtype == torch.int64
    assert torch.equal(a[0], a[1]) and torch.equal(a[1], a[2])  # common random numbers across members
    torch.testing.assert_close(net.act(flat, obs, None), net.batched_forward(flat, obs).argmax(-1))


def test_bad_inputs():
    with pytest.raises(ValueError, match="hidden"):
        parse_hidden("64,abc")
    with pytest.raises(ValueError, match="positive"):
        parse_hidden("64,-1")
    with pytest.raises(ValueError, match="activation"):
        PolicyConfig((8,), "swish")
    net = PolicyNet(DISCRETE, PolicyConfig((8,)))
    with pytest.raises(ValueError, match="expected"):
        net.unflatten(torch.zeros(3, net.num_params + 1))
    with pytest.raises(ValueError, match="states"):
        bc_train(net, net.init(2, torch.Generator()), torch.zeros(3, 4, 4), torch.zeros(3, 4, dtype=torch.long), BCConfig())
    with pytest.raises(ValueError, match="lr"):
        BCConfig(lr=0.0)


def test_chunked_bc_equals_one_batch():
    net = PolicyNet(DISCRETE, PolicyConfig((16,), "relu"))
    params0 = net.init(7, torch.Generator().manual_seed(0))
    states, actions = _data(DISCRETE, 7, 3, "labels")
    cfg = BCConfig(steps=5)
    torch.testing.assert_close(bc_train(net, params0, states, actions, cfg, chunk_size=3),
                               bc_train(net, params0, states, actions, cfg, chunk_size=7))
