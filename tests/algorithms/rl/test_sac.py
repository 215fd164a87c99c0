"""SAC (discrete and continuous) for a population: :mod:`torch_distill.algorithms.rl.sac`.

CI tests: the squashed-Gaussian log-probability against ``torch.distributions``, the discrete losses against a hand
computation, vmapped-vs-sequential equivalence (CartPole-v1, Pendulum-v1), determinism, bad input, finiteness at
extreme hyperparameters (``lr = 1e-2``, ``gamma = 1``) and a short Pendulum learning run with a real threshold.
Longer learning runs are marked ``slow`` (``pytest -m slow tests/test_sac.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import pytest
import torch
from agent_envs import FixedResets

from torch_distill.evaluation import evaluate_functional
from torch_distill.algorithms.rl.hparams import with_hparams
from torch_distill.algorithms.rl.sac import (
    SACConfig,
    SACNets,
    _actor_loss,
    _critic_loss,
    sac_act,
    sac_train,
)
from torch_distill.envs.classic_control import make_classic_control
from torch_distill.envs.core import EnvSpec
from torch_distill.envs.synthetic import SCBParams, SyntheticContextualBandit
from torch_distill.keyed import make_keys


def _greedy(cfg: SACConfig, params: torch.Tensor, env_id: str, episodes: int = 16) -> torch.Tensor:
    env = make_classic_control(env_id)
    act = functools.partial(sac_act, SACNets(env.spec, cfg.hidden, cfg.activation))
    return evaluate_functional(act, params, env, episodes, torch.Generator().manual_seed(1234)).returns


# ---------------------------------------------------------------------------------------------------- networks and losses
def test_squashed_gaussian_log_prob_matches_torch_distributions():
    spec = EnvSpec("Box2", (3,), False, action_dim=2, action_low=(-2.0, 0.0), action_high=(2.0, 1.0))
    nets = SACNets(spec, (8,))
    actor, critics = nets.init(make_keys(0, 3))
    perturb = torch.randn(actor.shape, generator=torch.Generator().manual_seed(0))
    obs = torch.randn(3, 5, 3, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(2))
    # float64 reference (TransformedDistribution inverts tanh, which float32 cannot do near the bounds)
    a64, obs64, noise64 = (actor + 0.2 * perturb).double(), obs.double(), noise.double()
    action, logp = nets.sample(a64, obs64, noise64)
    mean, log_std = nets.gaussian(a64, obs64)
    assert torch.all(log_std >= -5) and torch.all(log_std <= 2) and log_std.std() > 0.1
    d = torch.distributions
    ref = d.TransformedDistribution(d.Normal(mean, log_std.exp()),
                                    [d.TanhTransform(), d.AffineTransform(nets.centre.double(), nets.scale.double())])
    torch.testing.assert_close(action, nets.centre + nets.scale * torch.tanh(mean + log_std.exp() * noise64))
    torch.testing.assert_close(logp, ref.log_prob(action).sum(-1))
    assert torch.all(action >= nets.low) and torch.all(action <= nets.high)
    # float32 with saturated actions (|u| up to ~10): the stable tanh correction keeps log pi finite
    actor = actor + 0.5 * perturb
    action, logp = nets.sample(actor, obs, noise)
    assert torch.isfinite(logp).all() and (action == nets.high).any()
    # the greedy action is the squashed mean, inside the box; vmap over members equals the batched call
    mean, _ = nets.gaussian(actor, obs)
    torch.testing.assert_close(sac_act(nets, actor, obs), nets.centre + nets.scale * torch.tanh(mean))
    torch.testing.assert_close(torch.vmap(nets.sample)(actor, obs, noise)[1], logp)
    assert nets.q(critics, obs, action).shape == (2, 3, 5)


def test_discrete_losses_match_hand_computation():
    env = make_classic_control("CartPole-v1")
    nets = SACNets(env.spec, (8,))
    actor, critics = nets.init(make_keys(1, 1))
    actor, critics = actor[0] * 50, critics[0]  # a far-from-uniform policy
    obs = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    alpha = torch.tensor(0.3)
    loss, (_, entropy) = _actor_loss(nets, actor, critics, obs, torch.zeros(6, 1), alpha)
    p = torch.softmax(nets.actor(actor, obs), -1)
    q1, q2 = (nets.critic(c, obs) for c in torch.chunk(critics, 2))
    expected = sum(p[i, a] * (alpha * torch.log(p[i, a]) - min(q1[i, a], q2[i, a])) for i in range(6) for a in range(2)) / 6
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(entropy, -(p * p.log()).sum(-1).mean())
    action = torch.tensor([0, 1, 1, 0, 1, 0])
    target = torch.arange(6.0)
    weight = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])  # a truncated transition is not learned from
    closs, _ = _critic_loss(nets, critics, obs, action, target, weight)
    per = (q1[torch.arange(6), action] - target) ** 2 + (q2[torch.arange(6), action] - target) ** 2
    torch.testing.assert_close(closs, (per * weight).sum() / 5)
    assert sac_act(nets, actor[None], obs[None]).tolist() == [p.argmax(-1).tolist()]


# ---------------------------------------------------------------------------------------------------- vmap == sequential
@pytest.mark.parametrize("env_id,env_kw", [("CartPole-v1", {}), ("Pendulum-v1", {"max_episode_steps": 15})])
def test_sac_vmapped_equals_sequential(env_id, env_kw):
    cfg = SACConfig(total_timesteps=60, num_envs=2, buffer_size=64, batch_size=16, learning_starts=20, hidden=(16, 16),
                    gradient_steps=2, target_update_interval=2, metrics_interval=20)
    env = FixedResets(env_id, 2, **env_kw)
    hp = {"lr_actor": torch.tensor([1e-2, 1e-3]), "alpha": torch.tensor([0.5, 0.1]), "gamma": torch.tensor([0.9, 0.99])}
    keys = make_keys(9, 2)
    joint = sac_train(with_hparams(cfg, hp), env, None, torch.Generator(), 2, keys=keys)
    singles = [sac_train(with_hparams(cfg, {k: v[i:i + 1] for k, v in hp.items()}), env, None, torch.Generator(), 1,
                         keys=keys[i:i + 1]) for i in range(2)]
    torch.testing.assert_close(joint[0], torch.cat([s[0] for s in singles]))
    for k in joint[1]:
        if k != "env_steps":
            torch.testing.assert_close(joint[1][k], torch.cat([s[1][k] for s in singles], dim=-1), equal_nan=True,
                                       msg=lambda m: f"metric {k}: {m}")
    assert joint[1]["critic_loss"].shape == (3, 2) and torch.isfinite(joint[1]["critic_loss"][-1]).all()
    assert torch.isnan(joint[1]["critic_loss"][0]).all()  # no update in the first window (learning_starts=20)
    torch.testing.assert_close(joint[1]["env_steps"], torch.tensor([20, 40, 60]))
    assert not torch.allclose(joint[1]["alpha"][-1], torch.tensor([0.5, 0.1]))  # autotuned
    # common random numbers: equal keys and hyperparameters give equal members
    same = sac_train(cfg, env, None, torch.Generator(), 2, keys=torch.cat([keys[:1], keys[:1]]))[0]
    torch.testing.assert_close(same[0], same[1])


def test_sac_determinism_by_seed_and_fixed_alpha():
    env = make_classic_control("Pendulum-v1")
    cfg = SACConfig(total_timesteps=40, buffer_size=40, batch_size=8, learning_starts=20, hidden=(8,), metrics_interval=20)
    a, b, c = (sac_train(cfg, env, None, torch.Generator().manual_seed(s), 2)[0] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a[0], a[1])
    fixed = dataclasses.replace(cfg, autotune=False, alpha=torch.tensor([0.0, 0.3]))
    _, m = sac_train(fixed, env, None, torch.Generator().manual_seed(1), 2)
    torch.testing.assert_close(m["alpha"], torch.tensor([[0.0, 0.3], [0.0, 0.3]]))


# ---------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,match", [
    (dict(gamma=1.5), r"gamma=1.5: expected values in \[0.0, 1.0\]"),
    (dict(tau=torch.tensor([0.1, -0.1])), r"tau=\[0.1.*-0.1.*\]: expected"),
    (dict(lr_critic=float("nan")), "lr_critic=nan"),
    (dict(alpha=0.0), r"alpha=0.0: expected values in \(0.0"),
    (dict(target_entropy_scale=1.2), "target_entropy_scale"),
    (dict(batch_size=0), "batch_size=0: expected a positive int"),
    (dict(learning_starts=-1), "learning_starts=-1"),
    (dict(num_envs=4, buffer_size=2), "buffer_size=2"),
    (dict(hidden=(16, 0)), "hidden"),
    (dict(adam_eps=0.0), "adam_eps"),
])
def test_bad_config_is_reported(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SACConfig(**kwargs)


def test_bad_train_input_is_reported():
    env = make_classic_control("CartPole-v1")
    cfg = SACConfig(total_timesteps=10, hidden=(8,))
    with pytest.raises(ValueError, match=r"SACConfig.lr_actor: per-member tensor has shape \(2,\)"):
        sac_train(with_hparams(cfg, {"lr_actor": torch.ones(2) * 1e-3}), env, None, torch.Generator(), 3)
    with pytest.raises(ValueError, match="keys shape"):
        sac_train(cfg, env, None, torch.Generator(), 2, keys=make_keys(0, 3))
    with pytest.raises(ValueError, match="num_members=0"):
        sac_train(cfg, env, None, torch.Generator(), 0)
    with pytest.raises(ValueError, match="finite action bounds"):
        SACNets(EnvSpec("NoBounds", (3,), False, action_dim=1))
    with pytest.raises(ValueError, match="vector observations"):
        SACNets(EnvSpec("Pixels", (3, 8, 8), True, n_actions=4))
    with pytest.raises(ValueError, match="parameters have"):
        sac_act(SACNets(env.spec, (8,)), torch.zeros(1, 5), torch.zeros(1, 2, 4))


# ---------------------------------------------------------------------------------------------------- robustness
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_sac_extreme_hyperparameters_stay_finite(env_id):
    """The synthetic-env inner loop samples lr up to 1e-2 and gamma up to 1: parameters and metrics stay finite on
    a synthetic contextual bandit with large rewards (genome x 5) and on the real env (never-terminating Pendulum)."""
    real = make_classic_control(env_id)
    cfg = SACConfig(total_timesteps=500, num_envs=2, batch_size=100, buffer_size=10_000, learning_starts=100,
                    hidden=(32, 32), lr_actor=1e-2, lr_critic=1e-2, lr_alpha=1e-2, gamma=1.0, metrics_interval=500)
    scb = SyntheticContextualBandit(real.spec, latent_period=2)
    genomes = scb.init_genome(torch.Generator().manual_seed(0), 2) * 5
    for env, params in ((scb, SCBParams(genomes.repeat_interleave(2, dim=0))), (real, None)):
        p, m = sac_train(cfg, env, params, torch.Generator().manual_seed(0), 2, keys=make_keys(0, 2))
        assert torch.isfinite(p).all()
        for k in ("critic_loss", "actor_loss", "entropy", "alpha"):
            assert torch.isfinite(m[k]).all(), (env.spec.env_id, k, m[k])


# ---------------------------------------------------------------------------------------------------- learning
# Short-budget continuous settings: (64, 64) networks, batch 128, actor lr 1e-3 (CleanRL: 3e-4), 500 warm-up steps.
_PENDULUM_FAST = dict(hidden=(64, 64), batch_size=128, lr_actor=1e-3, learning_starts=500)


def test_sac_learns_pendulum():
    """2 SAC agents x 5k env steps (4.5k updates) on the native Pendulum-v1: mean greedy return >= -450
    (random play: about -1200).

    Measured (1 thread, 16 episodes per agent): keys 0: -132 / -137; keys 1: -586 / -129; keys 2: -344 / -129. At 4k
    steps one agent of two often still fails to swing up from some starts (keys 0: -158 / -846, keys 1: -269 / -146,
    keys 2: -205 / -408), too close to the threshold for a CI test.
    """
    env = make_classic_control("Pendulum-v1")
    cfg = SACConfig(total_timesteps=5_000, **_PENDULUM_FAST)
    t0 = time.time()
    params, metrics = sac_train(cfg, env, None, torch.Generator().manual_seed(0), 2, keys=make_keys(0, 2))
    ret = _greedy(cfg, params, "Pendulum-v1")
    print(f"SAC Pendulum-v1: 2 x {int(metrics['env_steps'][-1])} steps, {time.time() - t0:.1f}s, greedy {ret.mean(1).tolist()}")
    assert ret.mean() >= -450


@pytest.mark.slow
def test_sac_learns_pendulum_long():
    """2 SAC agents x 8k env steps with the DEFAULT config ((256, 256), batch 256, CleanRL learning rates):
    mean greedy return >= -200.

    Measured: greedy -133.2 / -129.1 (16 episodes each), 278 s wall with 1 thread on a shared 2-core machine.
    """
    env = make_classic_control("Pendulum-v1")
    cfg = SACConfig(total_timesteps=8_000)
    t0 = time.time()
    params, metrics = sac_train(cfg, env, None, torch.Generator().manual_seed(0), 2, keys=make_keys(0, 2))
    ret = _greedy(cfg, params, "Pendulum-v1")
    print(f"SAC Pendulum-v1: 2 x {int(metrics['env_steps'][-1])} steps, {time.time() - t0:.1f}s, greedy {ret.mean(1).tolist()}")
    assert ret.mean() >= -200


@pytest.mark.slow
def test_sac_discrete_learns_cartpole_long():
    """2 discrete SAC agents x 15k env steps on the native CartPole-v1, (64, 64) networks, batch 128, actor lr 1e-3,
    target entropy 0.89 log 2: mean greedy return >= 400.

    Measured: greedy 478.3 / 500.0 (16 episodes each), 72 s wall with 1 thread on a shared 2-core machine; other
    keys: 460.5 / 450.1 (keys 1), 454.1 / 430.7 (keys 2). (At 10k steps: 482 / 438 / 427 mean over keys 0 / 1 / 2.)
    """
    env = make_classic_control("CartPole-v1")
    cfg = SACConfig(total_timesteps=15_000, hidden=(64, 64), batch_size=128, lr_actor=1e-3)
    t0 = time.time()
    params, metrics = sac_train(cfg, env, None, torch.Generator().manual_seed(0), 2, keys=make_keys(0, 2))
    ret = _greedy(cfg, params, "CartPole-v1")
    print(f"SAC CartPole-v1: 2 x {int(metrics['env_steps'][-1])} steps, {time.time() - t0:.1f}s, greedy {ret.mean(1).tolist()}")
    assert ret.mean() >= 400
