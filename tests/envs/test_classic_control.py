"""Native torch classic-control envs vs gymnasium, step for step, plus the FunctionalEnv contract.

Tolerances (see ``replay_against_gymnasium``):
* float64 envs, 300 steps, 3 seeds x 6 envs: observations (float32), internal state and reward within
  ``atol=1e-6`` (plus rtol 1e-6 on rewards, which gymnasium returns as float64 and we as float32),
  terminated/truncated and elapsed steps equal. Continuous actions reach gymnasium as float64 arrays of the same
  (float32) values, so that NumPy does not compute its torque terms in float32. CartPole and
  MountainCar agree bit for bit, Pendulum to ~1e-12, Acrobot (RK4) to ~1e-9. MountainCarContinuous: ``atol=1e-5``;
  gymnasium keeps that env's state in float32 (reproduced) and NumPy's promotion rules compute ``3 * x`` in
  float32 (not reproduced), so float32 ulps random-walk, typically to 3e-7..3e-6 after 300 steps.
* float32 envs, 50 steps, 2 seeds: ``atol=rtol=1e-4`` (float32 round-off grows along chaotic trajectories; the Pendulum
  is the loosest at ~3e-5), flags equal.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from torch_distill.envs.classic_control import (
    CLASSIC_CONTROL,
    CartPole,
    CartPoleState,
    make_classic_control,
    state_from_gymnasium,
)
from torch_distill.envs.core import FunctionalEnv, step_with_final_obs

IDS = list(CLASSIC_CONTROL)
GYM_MAX_STEPS = {
    "CartPole-v0": 200,
    "CartPole-v1": 500,
    "Acrobot-v1": 500,
    "MountainCar-v0": 200,
    "MountainCarContinuous-v0": 999,
    "Pendulum-v1": 200,
}

# Reset bounds of each state field (all drawn uniformly except MountainCar's zero velocity).
RESET_BOUNDS = {
    "CartPole-v1": [(-0.05, 0.05)] * 4,
    "Acrobot-v1": [(-0.1, 0.1)] * 4,
    "MountainCar-v0": [(-0.6, -0.4), (0.0, 0.0)],
    "MountainCarContinuous-v0": [(-0.6, -0.4), (0.0, 0.0)],
    "Pendulum-v1": [(-math.pi, math.pi), (-1.0, 1.0)],
}


def _gym(env_id: str) -> gym.Env:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(env_id)


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit:
    w: Any = env
    while not isinstance(w, gym.wrappers.TimeLimit):
        w = w.env
    return w


def _pump(env_id: str, obs: np.ndarray) -> Any:
    """Energy-pumping policies that reach the goal of the sparse envs well within 300 steps."""
    if env_id == "Acrobot-v1":
        return 2 if obs[5] > 0 else 0
    if env_id == "MountainCar-v0":
        return 2 if obs[1] > 0 else 0
    if env_id == "MountainCarContinuous-v0":
        return np.array([1.0 if obs[1] > 0 else -1.0], dtype=np.float32)
    return None


def replay_against_gymnasium(env_id: str, dtype: torch.dtype, seed: int, horizon: int, atol: float, rtol: float, n: int = 6) -> tuple[int, int]:
    """Replay one seeded action sequence in ``n`` gymnasium envs and in the native batch; compare every step.

    Env 0 and 1 start close to the time limit (their ``TimeLimit`` counter is advanced; the native ``time`` is
    imported from it) so truncation happens inside the horizon. When a gymnasium env ends, the comparison of
    that step covers reward/terminated/truncated (the native obs is then the auto-reset obs and is checked to be
    a fresh start); the gymnasium env is then reset and its state is imported into the native row, so every
    row is compared over the whole horizon. Half the envs of the sparse-reward envs follow an energy-pumping
    policy 80% of the time so that terminations happen. Returns ``(#terminated, #truncated)`` seen.
    """
    env = make_classic_control(env_id, dtype=dtype)
    spec = env.spec
    rng = np.random.default_rng(seed)
    envs = [_gym(env_id) for _ in range(n)]
    obs_g = [e.reset(seed=1000 * seed + i)[0] for i, e in enumerate(envs)]
    offsets = [spec.max_episode_steps - 6, spec.max_episode_steps - 150]
    for i, off in enumerate(offsets):
        if off > 0:
            _time_limit(envs[i])._elapsed_steps = off
    state = env.state_from_gymnasium(envs)
    assert state.time.tolist()[:2] == [max(o, 0) for o in offsets]
    if spec.discrete:
        random_actions = rng.integers(0, spec.n_actions, size=(horizon, n))
    else:  # 1.25x the bounds: exercises the clipping inside step
        lo, hi = np.array(spec.action_low) * 1.25, np.array(spec.action_high) * 1.25
        random_actions = rng.uniform(lo, hi, size=(horizon, n, spec.action_dim)).astype(np.float32)
    use_policy = rng.random((horizon, n)) < 0.8
    gen = torch.Generator().manual_seed(seed)
    n_term = n_trunc = 0
    for t in range(horizon):
        actions = [random_actions[t, i] for i in range(n)]
        for i in range(n // 2, n):
            a = _pump(env_id, obs_g[i])
            if a is not None and use_policy[t, i]:
                actions[i] = a
        act = torch.as_tensor(np.stack(actions))
        state, obs, reward, terminated, truncated = env.step(state, act, gen)
        assert obs.dtype == torch.float32 and reward.dtype == torch.float32
        for i, e in enumerate(envs):
            # Continuous actions go to gymnasium as float64 arrays holding the same float32 values, so that its
            # arithmetic is float64 throughout (with float32 arrays NumPy computes the torque terms in float32).
            a_g = actions[i] if spec.discrete else np.asarray(actions[i], dtype=np.float64)
            o, r, te, tr, _ = e.step(a_g)
            where = f"{env_id} {dtype} seed={seed} t={t} env={i}"
            assert bool(terminated[i]) == te, where
            assert bool(truncated[i]) == tr, where
            np.testing.assert_allclose(float(reward[i]), r, atol=atol, rtol=rtol, err_msg=where)
            if te or tr:
                n_term += te
                n_trunc += tr
                assert int(state.time[i]) == 0, where
                _assert_fresh(env_id, [float(x[i]) for x in state[:-1]], where)
                obs_g[i] = e.reset(seed=int(rng.integers(2**31)))[0]
                fresh = env.state_from_gymnasium([e])
                state = type(state)(*(torch.cat([x[:i], y, x[i + 1 :]]) for x, y in zip(state, fresh)))
            else:
                obs_g[i] = o
                np.testing.assert_allclose(obs[i].numpy(), o, atol=atol, rtol=0, err_msg=where)
                ours = np.array([float(x[i]) for x in state[:-1]])
                np.testing.assert_allclose(ours, np.asarray(e.unwrapped.state, np.float64), atol=atol, rtol=0, err_msg=where)
                assert int(state.time[i]) == _time_limit(e)._elapsed_steps, where
    return n_term, n_trunc


def _assert_fresh(env_id: str, values: list[float], where: str = "") -> None:
    bounds = RESET_BOUNDS[env_id.replace("CartPole-v0", "CartPole-v1")]
    for v, (lo, hi) in zip(values, bounds):
        assert lo - 1e-6 <= v <= hi + 1e-6, f"{where}: {values} outside the reset bounds {bounds}"


@pytest.mark.parametrize("env_id", IDS)
def test_matches_gymnasium_float64(env_id: str) -> None:
    # gymnasium computes MountainCarContinuous in float32 (see the module docstring): float32 ulps random-walk.
    atol = 1e-5 if env_id == "MountainCarContinuous-v0" else 1e-6
    ends = [replay_against_gymnasium(env_id, torch.float64, seed, horizon=300, atol=atol, rtol=1e-6) for seed in range(3)]
    n_term, n_trunc = (sum(x) for x in zip(*ends))
    assert n_trunc >= 3, f"{env_id}: time limit not exercised"
    if env_id != "Pendulum-v1":  # Pendulum never terminates
        assert n_term >= 3, f"{env_id}: termination not exercised"


@pytest.mark.parametrize("env_id", IDS)
def test_matches_gymnasium_float32(env_id: str) -> None:
    for seed in range(2):
        replay_against_gymnasium(env_id, torch.float32, seed, horizon=50, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCar-v0"])
def test_truncation_at_time_limit_like_gymnasium(env_id: str) -> None:
    """Random actions never reach MountainCar's goal in 200 steps; Pendulum never terminates."""
    n = 4
    env = make_classic_control(env_id, dtype=torch.float64)
    envs = [_gym(env_id) for _ in range(n)]
    for i, e in enumerate(envs):
        e.reset(seed=i)
        e.action_space.seed(i)
    state = state_from_gymnasium(envs)
    assert isinstance(state, env.State)
    gen = torch.Generator().manual_seed(0)
    for t in range(200):
        actions = [e.action_space.sample() for e in envs]
        state, obs, reward, terminated, truncated = env.step(state, torch.as_tensor(np.stack(actions)), gen)
        flags = [e.step(a)[2:4] for e, a in zip(envs, actions)]
        assert not terminated.any()
        assert [tr for _, tr in flags] == truncated.tolist() == [t == 199] * n
    assert state.time.tolist() == [0] * n


def test_terminated_and_truncated_on_the_same_step() -> None:
    """Termination on the last allowed step: both flags, as gymnasium's TimeLimit reports them."""
    e = _gym("CartPole-v1")
    e.reset(seed=0)
    e.unwrapped.state = np.array([2.399, 1.0, 0.0, 0.0])
    _time_limit(e)._elapsed_steps = 499
    env = CartPole(torch.float64)
    state = env.state_from_gymnasium([e])
    _, _, te, tr, _ = e.step(1)
    state, obs, reward, terminated, truncated = env.step(state, torch.tensor([1]), torch.Generator())
    assert te and tr
    assert terminated.tolist() == [True] and truncated.tolist() == [True] and reward.tolist() == [1.0]
    assert state.time.tolist() == [0]


# ------------------------------------------------------------------------------------------------ reset and auto-reset
@pytest.mark.parametrize("env_id", IDS)
def test_reset_distribution(env_id: str) -> None:
    env = make_classic_control(env_id)
    b = 100_000
    state, obs = env.reset(b, torch.Generator().manual_seed(0))
    assert state.time.dtype == torch.int64 and not state.time.any()
    torch.testing.assert_close(obs, env.observation(state))
    for x, (lo, hi) in zip(state[:-1], RESET_BOUNDS[env_id.replace("CartPole-v0", "CartPole-v1")]):
        assert x.shape == (b,)
        assert float(x.min()) >= lo and float(x.max()) <= hi
        if lo == hi:
            continue
        mean, std = (lo + hi) / 2, (hi - lo) / math.sqrt(12)
        assert abs(float(x.mean()) - mean) < 5 * std / math.sqrt(b)
        assert abs(float(x.std()) - std) < 0.01 * std
        hist = torch.histc(x.double(), bins=10, min=lo, max=hi)  # roughly flat
        assert float((hist / b - 0.1).abs().max()) < 0.01


@pytest.mark.parametrize("env_id", IDS)
def test_auto_reset_uses_one_fresh_draw_and_restarts_time(env_id: str) -> None:
    """Rows that end come back as the rows of ``env.reset(B, same generator state)``; the others continue."""
    env = make_classic_control(env_id)
    b = 64
    gen = torch.Generator().manual_seed(1)
    state, _ = env.reset(b, gen)
    # rows start at various times so that truncation ends some of them soon
    state = state._replace(time=torch.arange(b) % 8 + env.spec.max_episode_steps - 8)
    act_gen = torch.Generator().manual_seed(2)
    ended_any = torch.zeros(b, dtype=torch.bool)
    for _ in range(10):
        if env.spec.discrete:
            action = torch.randint(env.spec.n_actions, (b,), generator=act_gen)
        else:
            action = torch.rand(b, env.spec.action_dim, generator=act_gen) * 4 - 2
        twin = torch.Generator().manual_seed(0)
        twin.set_state(gen.get_state())
        fresh, fresh_obs = env.reset(b, twin)
        prev_time = state.time
        state, obs, reward, terminated, truncated = env.step(state, action, gen)
        done = terminated | truncated
        ended_any |= done
        assert torch.equal(truncated, prev_time + 1 >= env.spec.max_episode_steps)
        assert torch.equal(state.time, torch.where(done, 0, prev_time + 1))
        for x, f in zip(state, fresh):
            assert torch.equal(x[done], f[done])
        assert torch.equal(obs[done], fresh_obs[done])
        torch.testing.assert_close(obs, env.observation(state), rtol=0, atol=0)
    assert ended_any.all()


def test_auto_reset_after_termination_cartpole() -> None:
    env = CartPole()
    gen = torch.Generator().manual_seed(0)
    state, _ = env.reset(16, gen)
    steps = torch.zeros(16, dtype=torch.int64)
    for t in range(30):  # pushing right always falls within ~10 steps
        state, obs, reward, terminated, truncated = env.step(state, torch.ones(16, dtype=torch.int64), gen)
        assert torch.equal(reward, torch.ones(16))
        assert not truncated.any()
        steps += 1
        if terminated.any():
            assert (state.time[terminated] == 0).all()
            assert (obs[terminated].abs() <= 0.05).all()
            assert (state.time[~terminated] == steps[~terminated]).all()
        steps = torch.where(terminated, 0, steps)
    assert (steps < 30).all()


# ------------------------------------------------------------------------------------------------ transition, reset_done
def _copy_gen(gen: torch.Generator) -> torch.Generator:
    g = torch.Generator()
    g.set_state(gen.get_state())
    return g


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("env_id", IDS)
def test_step_equals_transition_then_reset_done(env_id: str, dtype: torch.dtype) -> None:
    """``step`` == ``step_with_final_obs`` (``transition`` + ``reset_done``) bit for bit with the same draws; the
    final observation is ``obs`` in rows that go on and the un-reset state's observation in rows that ended."""
    env = make_classic_control(env_id, dtype=dtype, max_episode_steps=6)  # truncation every few steps
    b = 32
    g1, g2, act_gen = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0), torch.Generator().manual_seed(5)
    s1, _ = env.reset(b, g1)
    s2, _ = env.reset(b, g2)
    s1 = s2 = s1._replace(time=torch.arange(b) % 6)  # rows at every step of the episode
    truncated_rows = 0
    for _ in range(15):
        if env.spec.discrete:
            a = torch.randint(env.spec.n_actions, (b,), generator=act_gen)
        else:
            a = torch.rand(b, env.spec.action_dim, generator=act_gen) * 6 - 3
        nxt, final, reward, terminated, truncated = env.transition(s2, a, _copy_gen(g2))
        s1, obs, r1, te1, tr1 = env.step(s1, a, g1)
        out = step_with_final_obs(env, s2, a, g2)
        assert all(torch.equal(x, y) for x, y in zip(s1, out.state))
        for x, y in [(obs, out.obs), (r1, out.reward), (te1, out.terminated), (tr1, out.truncated)]:
            assert x.dtype == y.dtype and torch.equal(x, y)
        assert torch.equal(g1.get_state(), g2.get_state())  # the same draws
        done = out.terminated | out.truncated
        assert torch.equal(out.final_obs[~done], out.obs[~done])
        # the final observation is the one of the un-reset next state (time counted up, not restarted)
        assert torch.equal(out.final_obs, final) and torch.equal(final, env.observation(nxt))
        assert torch.equal(nxt.time, s2.time + 1) and torch.equal(truncated, out.truncated)
        assert torch.equal(reward, out.reward) and torch.equal(terminated, out.terminated)
        assert final.dtype == torch.float32 and final.shape == (b, env.spec.obs_dim)
        truncated_rows += int((out.truncated & ~out.terminated).sum())
        s2 = out.state
    assert truncated_rows > 0


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "MountainCar-v0"])
def test_final_obs_at_truncation_like_gymnasium(env_id: str) -> None:
    """At the time limit gymnasium's ``step`` returns the last observation (``truncated=True``); so does
    ``transition``/``step_with_final_obs``, while ``step`` returns the reset observation."""
    n = 4
    env = make_classic_control(env_id, dtype=torch.float64)
    envs = [_gym(env_id) for _ in range(n)]
    for i, e in enumerate(envs):
        e.reset(seed=i)
        e.action_space.seed(i)
        _time_limit(e)._elapsed_steps = env.spec.max_episode_steps - 1
    state = state_from_gymnasium(envs)
    actions = [e.action_space.sample() for e in envs]
    ref = [e.step(a) for e, a in zip(envs, actions)]
    assert all(tr and not te for _, _, te, tr, _ in ref)
    out = step_with_final_obs(env, state, torch.as_tensor(np.stack(actions)), torch.Generator().manual_seed(0))
    assert out.truncated.all() and not out.terminated.any() and not out.state.time.any()
    gym_final = torch.as_tensor(np.stack([o for o, *_ in ref]))
    torch.testing.assert_close(out.final_obs, gym_final, rtol=0, atol=1e-6)
    if env_id == "CartPole-v1":  # bit for bit, as the whole CartPole replay
        assert torch.equal(out.final_obs, gym_final)
    assert not torch.allclose(out.obs, out.final_obs)


def test_reset_done_checks_done_and_keeps_rows_that_go_on() -> None:
    env = make_classic_control("Acrobot-v1")
    gen = torch.Generator().manual_seed(0)
    state, obs = env.reset(6, gen)
    done = torch.tensor([True, False, True, False, False, True])
    twin = _copy_gen(gen)
    new, new_obs = env.reset_done(done, state, obs, gen)
    fresh, fresh_obs = env.reset(6, twin)  # the one draw reset_done makes
    for x, y, f in zip(new, state, fresh):
        assert torch.equal(x[~done], y[~done]) and torch.equal(x[done], f[done])
    assert torch.equal(new_obs[~done], obs[~done]) and torch.equal(new_obs[done], fresh_obs[done])
    with pytest.raises(ValueError, match=r"done has shape \(5,\), expected a \(6,\) bool tensor"):
        env.reset_done(done[:5], state, obs, gen)
    with pytest.raises(ValueError, match="bool tensor"):
        env.reset_done(done.long(), state, obs, gen)


# ------------------------------------------------------------------------------------------------ determinism, params
def _rollout(env: FunctionalEnv, seed: int, steps: int = 40, b: int = 8, params: Any = None) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state, obs = env.reset(b, gen, params)
    out = [obs]
    for _ in range(steps):
        if env.spec.discrete:
            action = torch.randint(env.spec.n_actions, (b,), generator=gen)
        else:
            action = torch.rand(b, env.spec.action_dim, generator=gen) * 2 - 1
        state, obs, reward, terminated, truncated = env.step(state, action, gen, params)
        out += [obs, reward, terminated, truncated]
    return out


@pytest.mark.parametrize("env_id", IDS)
def test_determinism(env_id: str) -> None:
    env = make_classic_control(env_id)
    a, b, c = _rollout(env, 0), _rollout(env, 0), _rollout(env, 1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("env_id", IDS)
def test_batched_params_broadcast(env_id: str) -> None:
    """``[B]`` params: row i behaves exactly like a batch run with the 0-dim params of row i."""
    env = make_classic_control(env_id, dtype=torch.float64)
    default = env.default_params()
    assert all(p.dim() == 0 and p.dtype == torch.float64 for p in default)
    field = {"MountainCar-v0": "force", "MountainCarContinuous-v0": "power"}.get(env_id, "gravity")
    values = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64) * getattr(default, field)
    batched = default._replace(**{field: values})
    b = 3
    gen = torch.Generator().manual_seed(0)
    s0, _ = env.reset(1, gen)
    s0 = type(s0)(*(x.expand(b).clone() for x in s0))  # the same start in every row
    if env.spec.discrete:
        actions = torch.randint(env.spec.n_actions, (20,), generator=gen).repeat(b, 1).T
    else:
        actions = (torch.rand(20, 1, generator=gen, dtype=torch.float64) * 2 - 1).repeat(1, b).unsqueeze(-1)
    if env_id.startswith("MountainCar"):
        actions = torch.full_like(actions, 2) if env.spec.discrete else torch.ones_like(actions)
    state, batched_obs = s0, []
    for a in actions:
        state, obs, *_ = env.step(state, a, torch.Generator(), batched)
        batched_obs.append(obs)
    for i in range(b):
        single = default._replace(**{field: values[i]})
        state = type(s0)(*(x[i : i + 1] for x in s0))
        for t, a in enumerate(actions):
            state, obs, *_ = env.step(state, a[i : i + 1], torch.Generator(), single)
            torch.testing.assert_close(obs[0], batched_obs[t][i], rtol=0, atol=1e-6)
    assert not torch.allclose(batched_obs[-1][0], batched_obs[-1][2])  # different physics, different paths


# ------------------------------------------------------------------------------------------------ registry and shapes
def test_registry_and_specs_match_gymnasium() -> None:
    assert set(CLASSIC_CONTROL) == set(GYM_MAX_STEPS)
    for env_id, ctor in CLASSIC_CONTROL.items():
        env = ctor(dtype=torch.float32)
        assert isinstance(env, FunctionalEnv)
        g = _gym(env_id)
        spec = env.spec
        assert spec.env_id == env_id
        assert spec.max_episode_steps == GYM_MAX_STEPS[env_id] == g.spec.max_episode_steps
        assert spec.obs_shape == g.observation_space.shape
        if isinstance(g.action_space, gym.spaces.Discrete):
            assert spec.discrete and spec.n_actions == g.action_space.n and spec.action_dim == 0
        else:
            assert not spec.discrete and spec.action_dim == g.action_space.shape[0]
            assert spec.action_low == tuple(g.action_space.low.tolist())
            assert spec.action_high == tuple(g.action_space.high.tolist())
    assert CLASSIC_CONTROL["CartPole-v1"](max_episode_steps=7).spec.max_episode_steps == 7


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("env_id", IDS)
def test_shapes_and_dtypes(env_id: str, dtype: torch.dtype) -> None:
    env = make_classic_control(env_id, dtype=dtype)
    b = 5
    gen = torch.Generator().manual_seed(0)
    state, obs = env.reset(b, gen)
    assert obs.shape == (b, *env.spec.obs_shape) and obs.dtype == torch.float32
    for name, x in zip(state._fields, state):
        assert x.shape == (b,), name
        assert x.dtype == (torch.int64 if name == "time" else dtype), name
    if env.spec.discrete:
        action = torch.zeros(b, dtype=torch.int64)
    else:
        action = torch.zeros(b, env.spec.action_dim, dtype=torch.float32)
    state2, obs, reward, terminated, truncated = env.step(state, action, gen)
    assert type(state2) is type(state)
    assert obs.shape == (b, *env.spec.obs_shape) and obs.dtype == torch.float32
    assert reward.shape == (b,) and reward.dtype == torch.float32
    assert terminated.shape == truncated.shape == (b,)
    assert terminated.dtype == truncated.dtype == torch.bool
    assert all(x.dtype == y.dtype for x, y in zip(state, state2))


def test_bad_inputs_raise_clear_errors() -> None:
    env = CartPole()
    gen = torch.Generator()
    state, _ = env.reset(3, gen)
    with pytest.raises(ValueError, match=r"expected \(3,\)"):
        env.step(state, torch.zeros(4, dtype=torch.int64), gen)
    with pytest.raises(TypeError, match="integer"):
        env.step(state, torch.zeros(3), gen)
    pend = make_classic_control("Pendulum-v1")
    pstate, _ = pend.reset(3, gen)
    with pytest.raises(ValueError, match=r"expected \(3, 1\)"):
        pend.step(pstate, torch.zeros(3), gen)
    with pytest.raises(ValueError, match="batch_size"):
        env.reset(0, gen)
    with pytest.raises(KeyError, match="CartPole-v7"):
        make_classic_control("CartPole-v7")
    with pytest.raises(TypeError, match="dtype"):
        CartPole(dtype=torch.int64)
    with pytest.raises(ValueError, match="expected 'CartPole-v1'"):
        env.state_from_gymnasium([_gym("Pendulum-v1")])


def test_continuous_actions_are_clipped() -> None:
    """Pendulum clips the torque before dynamics and cost; MountainCarContinuous clips the force only."""
    gen = torch.Generator().manual_seed(0)
    pend = make_classic_control("Pendulum-v1", dtype=torch.float64)
    s, _ = pend.reset(4, gen)
    big = pend.step(s, torch.full((4, 1), 5.0), gen)
    clipped = pend.step(s, torch.full((4, 1), 2.0), gen)
    assert all(torch.equal(x, y) for x, y in zip(big[0][:-1], clipped[0][:-1]))
    assert torch.equal(big[2], clipped[2])
    mcc = make_classic_control("MountainCarContinuous-v0", dtype=torch.float64)
    s, _ = mcc.reset(4, gen)
    big = mcc.step(s, torch.full((4, 1), -3.0), gen)
    clipped = mcc.step(s, torch.full((4, 1), -1.0), gen)
    assert all(torch.equal(x, y) for x, y in zip(big[0][:-1], clipped[0][:-1]))
    torch.testing.assert_close(big[2], clipped[2] - 0.8)  # reward penalises the raw action, as gymnasium


def test_state_from_gymnasium_reads_time_and_state() -> None:
    envs = [_gym("CartPole-v1") for _ in range(2)]
    for i, e in enumerate(envs):
        e.reset(seed=i)
    envs[1].step(0)
    state = state_from_gymnasium(envs, dtype=torch.float64)
    assert isinstance(state, CartPoleState)
    assert state.time.tolist() == [0, 1]
    np.testing.assert_array_equal(torch.stack(state[:-1], 1).numpy(), np.stack([e.unwrapped.state for e in envs]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("env_id", IDS)
def test_cuda_step_has_no_host_sync(env_id: str) -> None:
    env = make_classic_control(env_id)
    gen = torch.Generator(device="cuda").manual_seed(0)
    state, _ = env.reset(256, gen)
    action = torch.zeros(256, dtype=torch.int64, device="cuda") if env.spec.discrete else torch.zeros(256, 1, device="cuda")
    env.step(state, action, gen)  # warm-up (params are cached on the first call)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            state, *_ = env.step(state, action, gen)
    finally:
        torch.cuda.set_sync_debug_mode("default")
