"""Direct tests of ``torch_distill.evaluation``: batched episode evaluation, the observation normaliser, noise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from torch_distill.envs.core import EnvSpec, StepOut
from torch_distill.envs.vec import make_vec_env
from torch_distill.evaluation import (
    EvalResult,
    ObsNormalizer,
    estimate_obs_normalizer,
    evaluate_policies,
    sample_noise,
)
from torch_distill.policies import PolicyConfig, PolicyNet

OBS_DIM = 3


class FakeVecEnv:
    """``N * E`` envs; env ``i`` (column ``j = i % E``) ends every ``ends[j]`` steps (``terminated``, or
    ``truncated`` where ``trunc[j]``) and auto-resets. The reward of step ``t`` (1-based, counted from the reset)
    is ``t``, and keeps flowing after an episode's end, so an unmasked sum would be visible."""

    supports_common_random_numbers = True

    def __init__(self, n: int, ends: list[int], trunc: list[bool] | None = None, max_episode_steps: int = 1000,
                 discrete: bool = True) -> None:
        self.E = len(ends)
        self.num_envs = n * self.E
        self.device = torch.device("cpu")
        self.ends = torch.tensor(ends).repeat(n)
        self.trunc = torch.tensor(trunc or [False] * self.E).repeat(n)
        if discrete:
            self.spec = EnvSpec("Fake-v0", (OBS_DIM,), True, n_actions=2, max_episode_steps=max_episode_steps)
        else:
            self.spec = EnvSpec("FakeC-v0", (OBS_DIM,), False, action_dim=2, action_low=(-math.inf, 0.0),
                                action_high=(math.inf, 2.0), max_episode_steps=max_episode_steps)
        self.resets: list[tuple[int, int | None]] = []
        self.actions: list[torch.Tensor] = []
        self.n_steps = 0

    def _obs(self) -> torch.Tensor:
        i = torch.arange(self.num_envs, dtype=torch.float32)
        return torch.stack([torch.full_like(i, 5.0), i % self.E + self.t.float(), (self.t % 2).float()], 1)

    def reset(self, seed: int, group_size: int | None = None) -> torch.Tensor:
        self.resets.append((seed, group_size))
        self.t = torch.zeros(self.num_envs, dtype=torch.int64)
        self.obs_log = [self._obs()]
        return self.obs_log[-1]

    def step(self, action: torch.Tensor) -> StepOut:
        self.actions.append(action.clone())
        self.n_steps += 1
        self.t = self.t + 1
        reward = self.t.float()
        end = self.t >= self.ends
        terminated, truncated = end & ~self.trunc, end & self.trunc
        self.t = torch.where(end, torch.zeros_like(self.t), self.t)
        self.obs_log.append(self._obs())
        return StepOut(self.obs_log[-1], reward, terminated, truncated)

    def close(self) -> None:
        pass


class SpyNet:
    """Records what the evaluator feeds the policy; always takes action 0 (or zeros)."""

    def __init__(self, discrete: bool = True) -> None:
        self.discrete = discrete
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def act(self, params, obs, noise):
        self.calls.append((obs.clone(), None if noise is None else noise.clone()))
        n, b = obs.shape[:2]
        return torch.zeros(n, b, dtype=torch.int64) if self.discrete else torch.zeros(n, b, 2)


# ------------------------------------------------------------------------------------- fake-env evaluation
@pytest.mark.parametrize("check_every, expected_steps", [(16, 32), (1, 17), (5, 20), (17, 17)])
def test_early_exit_at_first_check_after_all_done(check_every, expected_steps):
    n, ends = 2, [5, 17, 3]
    venv = FakeVecEnv(n, ends)
    res = evaluate_policies(SpyNet(), torch.zeros(n, 1), venv, len(ends), seed=0, check_every=check_every)
    assert isinstance(res, EvalResult)
    assert venv.n_steps == expected_steps  # first multiple of check_every >= 17, not max_episode_steps
    assert int(res.env_steps) == expected_steps * n * len(ends)
    assert res.lengths.dtype == torch.int64 and res.returns.dtype == torch.float32
    assert res.lengths.tolist() == [ends] * n
    # rewards 1..L of the first episode only (the env keeps paying after its end)
    assert res.returns.tolist() == [[L * (L + 1) / 2 for L in ends]] * n


def test_truncation_ends_an_episode_and_max_steps_caps_the_loop():
    ends = [4, 9]
    venv = FakeVecEnv(1, ends, trunc=[True, False])
    res = evaluate_policies(SpyNet(), torch.zeros(1, 1), venv, 2, seed=0, check_every=1)
    assert res.lengths.tolist() == [[4, 9]] and venv.n_steps == 9
    # max_steps below the longest episode: the loop stops there, the unfinished env gets a partial episode
    venv = FakeVecEnv(1, [4, 50])
    res = evaluate_policies(SpyNet(), torch.zeros(1, 1), venv, 2, seed=0, max_steps=20, check_every=16)
    assert venv.n_steps == 20 and int(res.env_steps) == 40
    assert res.lengths.tolist() == [[4, 20]] and res.returns.tolist() == [[10.0, 210.0]]
    # default max_steps: the spec's time limit
    venv = FakeVecEnv(1, [4, 50], max_episode_steps=12)
    res = evaluate_policies(SpyNet(), torch.zeros(1, 1), venv, 2, seed=0, check_every=16)
    assert venv.n_steps == 12 and res.lengths.tolist() == [[4, 12]]


def test_common_random_numbers_layout_noise_and_normalizer():
    n, ends = 3, [2, 3, 4, 6]
    e = len(ends)
    venv = FakeVecEnv(n, ends)
    net = SpyNet()
    norm = ObsNormalizer(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 1.0, 0.25]))
    evaluate_policies(net, torch.zeros(n, 1), venv, e, seed=11, normalizer=norm, check_every=1)
    assert venv.resets == [(11, e)]  # env j of every group starts from the same state
    obs0, noise0 = net.calls[0]
    assert obs0.shape == (n, e, OBS_DIM)
    expected = (venv.obs_log[0] - norm.mean) / torch.sqrt(norm.var + norm.eps)
    torch.testing.assert_close(obs0, expected.reshape(n, e, OBS_DIM))
    # one noise draw [E, n_actions] per step, broadcast over the N policies (and different per step)
    assert noise0.shape == (e, 2)
    assert not torch.equal(net.calls[0][1], net.calls[1][1])
    # actions are flattened back to [N * E]
    assert venv.actions[0].shape == (n * e,)
    # the action noise is a function of the evaluation seed
    def first_noise(seed):
        spy = SpyNet()
        evaluate_policies(spy, torch.zeros(n, 1), FakeVecEnv(n, ends), e, seed=seed, check_every=1)
        return spy.calls[0][1]

    assert torch.equal(first_noise(11), noise0) and not torch.equal(first_noise(12), noise0)
    # deterministic evaluation passes no noise
    net2 = SpyNet()
    evaluate_policies(net2, torch.zeros(n, 1), FakeVecEnv(n, ends), e, seed=11, deterministic=True)
    assert all(noise is None for _, noise in net2.calls)


def test_continuous_actions_keep_their_dimension():
    venv = FakeVecEnv(2, [3, 5], discrete=False)
    net = SpyNet(discrete=False)
    res = evaluate_policies(net, torch.zeros(2, 1), venv, 2, seed=0, check_every=1)
    assert venv.actions[0].shape == (4, 2)
    assert net.calls[0][1].shape == (2, 2)  # Gaussian noise [E, action_dim]
    assert res.lengths.tolist() == [[3, 5], [3, 5]]


def test_wrong_number_of_envs_raises():
    with pytest.raises(ValueError, match="N \\* episodes"):
        evaluate_policies(SpyNet(), torch.zeros(2, 1), FakeVecEnv(3, [1, 2]), 2, seed=0)


# -------------------------------------------------------------------------------------- native CartPole
@pytest.fixture(scope="module")
def cartpole_net():
    venv = make_vec_env("CartPole-v1", 1, "cpu")
    return PolicyNet(venv.spec, PolicyConfig(hidden=(8,)))


def test_cartpole_returns_equal_lengths_and_crn_rows(cartpole_net):
    n, e = 3, 6
    venv = make_vec_env("CartPole-v1", n * e, "cpu")
    one = cartpole_net.init(1, torch.Generator().manual_seed(0))
    params = one.repeat(n, 1)
    res = evaluate_policies(cartpole_net, params, venv, e, seed=123, check_every=8)
    assert res.returns.shape == (n, e) and res.lengths.shape == (n, e)
    # reward 1 per step, masked after the first end: return == length
    assert torch.equal(res.returns, res.lengths.float())
    assert bool((res.lengths >= 1).all()) and bool((res.lengths <= 500).all())
    # identical policies see the same E initial states and the same sampling noise: identical rows
    assert torch.equal(res.returns[0], res.returns[1]) and torch.equal(res.returns[0], res.returns[2])
    assert len(set(res.lengths[0].tolist())) > 1  # ... but the E episodes differ
    steps = int(res.env_steps) // (n * e)
    assert steps % 8 == 0 or steps == 500
    assert steps >= int(res.lengths.max()) and steps - 8 < int(res.lengths.max())
    # a pure function of the seed
    again = evaluate_policies(cartpole_net, params, venv, e, seed=123, check_every=8)
    assert torch.equal(again.returns, res.returns)
    other = evaluate_policies(cartpole_net, params, venv, e, seed=124, check_every=8)
    assert not torch.equal(other.returns, res.returns)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MountainCar-v0", "Pendulum-v1"])
def test_compacted_policy_batches_give_the_same_returns(env_id, monkeypatch):
    """On CPU the policy runs only for members with a running episode: same returns, lengths and steps as the
    whole-population forward, and the batches really shrink."""
    n, e = 16, 3
    venv = make_vec_env(env_id, n * e, "cpu")
    net = PolicyNet(venv.spec, PolicyConfig(hidden=(8,)))
    params = net.init(n, torch.Generator().manual_seed(3)) * 4.0  # diverse policies: episodes end at many times
    full = evaluate_policies(net, params, venv, e, seed=5, check_every=4, max_steps=200, compact=False)
    batches: list[int] = []
    act = net.act

    def spy(flat, obs, noise):
        batches.append(flat.shape[0])
        return act(flat, obs, noise)

    monkeypatch.setattr(net, "act", spy)
    comp = evaluate_policies(net, params, venv, e, seed=5, check_every=4, max_steps=200)
    assert torch.equal(comp.returns, full.returns) and torch.equal(comp.lengths, full.lengths)
    assert int(comp.env_steps) == int(full.env_steps)
    assert batches[0] == n and batches == sorted(batches, reverse=True)
    # a member leaves the batch at the first check (every 4 steps) after its last episode ended
    finished_early = int((full.lengths.max(1).values <= 200 - 4).sum())
    assert (min(batches) < n) == (finished_early > 0)
    if env_id == "CartPole-v1":
        assert finished_early > 0


def test_cartpole_every_group_gets_the_same_starts():
    n, e = 4, 5
    venv = make_vec_env("CartPole-v1", n * e, "cpu")
    obs = venv.reset(7, group_size=e).reshape(n, e, -1)
    for k in range(1, n):
        assert torch.equal(obs[k], obs[0])
    assert not torch.equal(obs[0, 0], obs[0, 1])
    # and a member's row of returns does not depend on which row it occupies
    net = PolicyNet(venv.spec, PolicyConfig(hidden=(8,)))
    params = net.init(n, torch.Generator().manual_seed(1))
    res = evaluate_policies(net, params, venv, e, seed=7, deterministic=True)
    res_rev = evaluate_policies(net, params.flip(0), venv, e, seed=7, deterministic=True)
    assert torch.equal(res_rev.returns.flip(0), res.returns)


# ------------------------------------------------------------------------------------------ ObsNormalizer
def test_obs_normalizer_identity():
    ident = ObsNormalizer()
    obs = torch.arange(12, dtype=torch.int64).reshape(4, 3)
    out = ident(obs)
    assert out.dtype == torch.float32 and torch.equal(out, obs.float())
    assert ident.to_json() is None
    assert ObsNormalizer.from_json(None).mean is None
    assert ident.to("cpu") is ident


def test_obs_normalizer_affine_and_json_round_trip():
    norm = ObsNormalizer(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([4.0, 0.01, 9.0]), eps=1e-6)
    obs = torch.tensor([[3.0, -2.0, 0.5], [1.0, 0.0, 6.5]])
    expected = (obs - norm.mean) / torch.sqrt(norm.var + 1e-6)
    torch.testing.assert_close(norm(obs), expected)
    d = json.loads(json.dumps(norm.to_json()))
    assert d["type"] == "affine" and d["eps"] == 1e-6
    back = ObsNormalizer.from_json(d)
    assert torch.equal(back.mean, norm.mean) and torch.equal(back.var, norm.var) and back.eps == norm.eps
    assert torch.equal(back(obs), norm(obs))
    # old files without eps get the default
    d.pop("eps")
    assert ObsNormalizer.from_json(d).eps == 1e-8


def test_obs_normalizer_flattens_multidim_observations():
    norm = ObsNormalizer(torch.zeros(6), torch.ones(6))
    out = norm(torch.ones(5, 2, 3))
    assert out.shape == (5, 6)
    assert norm(torch.ones(4, 5, 2, 3)).shape == (4, 5, 6)
    with pytest.raises(ValueError, match="do not end in 6 features"):
        norm(torch.ones(5, 4))


# ----------------------------------------------------------------------------------- estimate_obs_normalizer
def test_estimate_obs_normalizer_exact_moments_and_min_var_floor():
    venv = FakeVecEnv(2, [3, 7, 4])
    steps = 10
    norm = estimate_obs_normalizer(venv, steps, seed=5, min_var=0.5)
    assert venv.resets == [(5, venv.num_envs)]
    # it averages the reset observation and the observations after steps 1..steps-1
    seen = torch.cat(venv.obs_log[:steps]).double().numpy()
    mean, var = seen.mean(0), seen.var(0)
    assert var[0] == 0.0 and var[1] > 0.5 and 0.0 < var[2] < 0.5
    np.testing.assert_allclose(norm.mean.numpy(), mean, rtol=1e-6)
    np.testing.assert_allclose(norm.var.numpy(), np.maximum(var, 0.5), rtol=1e-5)
    assert float(norm.var[0]) == 0.5 and float(norm.var[2]) == 0.5  # floored, not blown up
    # a smaller floor keeps the real (small) variance
    small = estimate_obs_normalizer(FakeVecEnv(2, [3, 7, 4]), steps, seed=5, min_var=1e-3)
    assert float(small.var[0]) == pytest.approx(1e-3) and float(small.var[2]) == pytest.approx(var[2], rel=1e-5)
    # discrete actions are uniform over the action space
    acts = torch.cat(venv.actions)
    assert set(acts.tolist()) == {0, 1}


def test_estimate_obs_normalizer_continuous_actions_within_bounds():
    venv = FakeVecEnv(1, [3, 5], discrete=False)
    estimate_obs_normalizer(venv, 50, seed=0)
    acts = torch.stack(venv.actions)  # [steps, N, 2]
    assert acts.shape[-1] == 2
    # unbounded dimension sampled in [-1, 1], bounded one in [low, high]
    assert float(acts[..., 0].min()) >= -1.0 and float(acts[..., 0].max()) <= 1.0
    assert float(acts[..., 0].min()) < -0.5 and float(acts[..., 0].max()) > 0.5
    assert float(acts[..., 1].min()) >= 0.0 and float(acts[..., 1].max()) <= 2.0
    assert float(acts[..., 1].max()) > 1.5


def test_estimate_obs_normalizer_cartpole():
    venv = make_vec_env("CartPole-v1", 16, "cpu")
    norm = estimate_obs_normalizer(venv, 100, seed=0)
    assert norm.mean.shape == (4,) and norm.var.shape == (4,)
    assert bool(torch.isfinite(norm.mean).all()) and bool((norm.var >= 1e-2).all())
    assert float(norm.var.max()) > 1e-2  # velocities vary more than the floor
    big = estimate_obs_normalizer(venv, 100, seed=0, min_var=100.0)
    assert torch.equal(big.var, torch.full((4,), 100.0))
    assert torch.equal(big.mean, norm.mean)


# ----------------------------------------------------------------------------------------------- sample_noise
def test_sample_noise_gumbel_and_normal():
    g = torch.Generator().manual_seed(0)
    disc = EnvSpec("d", (2,), True, n_actions=3)
    cont = EnvSpec("c", (2,), False, action_dim=2, action_low=(-1.0, -1.0), action_high=(1.0, 1.0))
    n = 200_000
    gum = sample_noise(disc, n, g, torch.device("cpu"))
    assert gum.shape == (n, 3) and bool(torch.isfinite(gum).all())
    assert float(gum.mean()) == pytest.approx(0.5772156649, abs=0.01)  # Euler-Mascheroni constant
    assert float(gum.std()) == pytest.approx(math.pi / math.sqrt(6), abs=0.01)
    nor = sample_noise(cont, n, g, torch.device("cpu"))
    assert nor.shape == (n, 2)
    assert float(nor.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(nor.std()) == pytest.approx(1.0, abs=0.01)
    # reproducible from the generator alone
    a = sample_noise(disc, 7, torch.Generator().manual_seed(3), torch.device("cpu"))
    b = sample_noise(disc, 7, torch.Generator().manual_seed(3), torch.device("cpu"))
    assert torch.equal(a, b)
    # argmax(logits + Gumbel) samples softmax(logits)
    logits = torch.tensor([0.0, 1.0, 2.0])
    freq = torch.bincount((logits + gum).argmax(1), minlength=3).float() / n
    torch.testing.assert_close(freq, torch.softmax(logits, 0), atol=0.01, rtol=0)
