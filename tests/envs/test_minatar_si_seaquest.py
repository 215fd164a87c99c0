"""MinAtar Space Invaders and Seaquest against ``minatar`` 1.0.15: step-for-step replay of minatar's own random
draws (random actions, and scripted policies that reach the deep states: cleared waves, difficulty ramping,
surfacing with 6 divers), generator-driven episode statistics, the FunctionalEnv contract, interop, and a smoke run
of ``scripts/bench_minatar.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest
import torch

from minatar_oracle import Call, Reference, methods, replay, stack_rows
from torch_distill.envs.core import step_with_final_obs
from torch_distill.envs.minatar import make, state_from_minatar
from torch_distill.envs.minatar.seaquest import N_BULLETS, N_DIVERS, N_ENEMIES, Seaquest, SeaquestDraws
from torch_distill.envs.minatar.space_invaders import SpaceInvaders

minatar = pytest.importorskip("minatar")

GAMES = ["SpaceInvaders", "Seaquest"]
SEEDS = list(range(8))
ROOT = Path(__file__).resolve().parents[2]
N, L, U, R, D, F = range(6)


# ------------------------------------------------------------------------------------------------ draw codecs
class SpaceInvadersCodec:
    """Space Invaders draws nothing (only the sticky-action wrapper does)."""

    def reset(self, calls: Sequence[Call]) -> Any:
        assert not calls, calls
        return np.zeros(0, dtype=np.float32)

    step = reset


class SeaquestCodec:
    """reset: nothing; act: ``rand(), rand(), randint(low=1, high=9)`` when an enemy spawns, then ``rand(),
    randint(low=1, high=9)`` when a diver spawns."""

    def reset(self, calls: Sequence[Call]) -> Any:
        assert not calls, calls
        return np.zeros(0, dtype=np.float32)

    def step(self, calls: Sequence[Call]) -> Any:
        calls, m = list(calls), methods(calls)
        e_lr = e_sub = d_lr = False
        e_y = d_y = 1
        if m[:3] == ["rand", "rand", "randint"]:
            assert calls[2].kwargs == {"low": 1, "high": 9}, calls
            e_lr, e_sub, e_y = calls[0].result < 1 / 2, calls[1].result < 1 / 3, int(calls[2].result)
            calls, m = calls[3:], m[3:]
        if m == ["rand", "randint"]:
            assert calls[1].kwargs == {"low": 1, "high": 9}, calls
            d_lr, d_y = calls[0].result < 1 / 2, int(calls[1].result)
            m = []
        assert m == [], calls
        return SeaquestDraws(np.bool_(e_lr), np.bool_(e_sub), np.int64(e_y), np.bool_(d_lr), np.int64(d_y))


CODECS = {"SpaceInvaders": SpaceInvadersCodec(), "Seaquest": SeaquestCodec()}


# ------------------------------------------------------------------------------------------------ scripted policies
class _Scripted:
    """A policy that reads the references' game state (``on_step`` hands them over) and records what it saw."""

    def __init__(self, table: Sequence[int]) -> None:
        self.refs: list[Reference] | None = None
        self.index = {a: i for i, a in enumerate(table)}  # full action -> index in the env's action set
        self.seen: dict[str, int] = {}

    def hook(self, t: int, refs: list[Reference], state: Any) -> None:
        self.refs = refs
        for r in refs:
            self.record(r.env.env)

    def note(self, key: str, value: int) -> None:
        self.seen[key] = max(self.seen.get(key, value), value)

    def record(self, game: Any) -> None:
        raise NotImplementedError

    def choose(self, game: Any, rng: np.random.Generator) -> int:
        raise NotImplementedError

    def __call__(self, rng: np.random.Generator, batch: int, n_actions: int) -> np.ndarray:
        out = rng.integers(0, n_actions, batch)
        if self.refs is not None:
            for i, r in enumerate(self.refs):
                if rng.random() < 0.75:
                    out[i] = self.index[self.choose(r.env.env, rng)]
        return out


class _Gunner(_Scripted):
    """Space Invaders: fire at the aliens above when the gun is cool, else move under them, never into a bullet."""

    def record(self, game: Any) -> None:
        self.note("ramp", game.ramp_index)

    def choose(self, game: Any, rng: np.random.Generator) -> int:
        bullets = game.e_bullet_map
        if game.shot_timer == 0 and game.alien_map[:, game.pos].any() and not bullets[8, game.pos]:
            return F
        cols = np.flatnonzero(game.alien_map.any(0))
        target = cols[np.argmin(np.abs(cols - game.pos))] if len(cols) else game.pos
        prefs = [L, R, N] if target < game.pos else [R, L, N] if target > game.pos else [N, L, R]
        for a in prefs:
            p = game.pos + {L: -1, R: 1, N: 0}[a]
            if 0 <= p <= 9 and not bullets[7:9, p].any():
                return a
        return prefs[0]


class _Diver(_Scripted):
    """Seaquest: dive, chase divers, shoot enemies in the same row, surface when oxygen runs low or 6 are aboard."""

    def record(self, game: Any) -> None:
        self.note("ramp", game.ramp_index)
        self.note("negative_diver_count", int(game.diver_count < 0))
        self.note("enemies", len(game.e_subs) + len(game.e_fish))
        self.note("f_bullets", len(game.f_bullets))
        self.note("divers", len(game.divers))
        self.note("e_bullets", len(game.e_bullets))

    def choose(self, game: Any, rng: np.random.Generator) -> int:
        ahead = any(z[1] == game.sub_y and (z[0] > game.sub_x) == game.sub_or for z in game.e_fish + game.e_subs)
        if game.diver_count >= 1 and (game.oxygen < 60 or game.diver_count >= 6
                                      or (game.diver_count >= 3 and game.oxygen < 120)):
            a = U
        elif game.sub_y == 0:
            a = D
        elif ahead and game.shot_timer == 0:
            a = F
        elif game.divers:
            x, y = game.divers[0][:2]
            a = U if y < game.sub_y else D if y > game.sub_y else (L if x < game.sub_x else R)
        else:
            a = int(rng.choice([L, R, D, F]))
        return D if a == U and game.sub_y == 1 and game.diver_count == 0 else a


# ------------------------------------------------------------------------------------------------ exactness
@pytest.mark.parametrize("name", GAMES)
def test_replays_minatar_step_for_step(name: str) -> None:
    """8 seeds x 2000 steps, random actions, sticky actions 0.1, ramping on, resets after terminals."""
    stats = replay(make(f"MinAtar/{name}-v0"), CODECS[name], SEEDS, 2000, action_seed=1)
    assert stats.terminals >= 50 and stats.sticky > 0 and stats.reward > 0


def _continue_injected(name: str, inject: Any, policy: _Scripted, steps: int, seeds: Sequence[int]) -> None:
    """Step references whose game state ``inject(game)`` changed (again after every reset) and the batched env
    built from them by ``state_from_minatar``, comparing every observation, reward and terminal flag."""
    env = make(f"MinAtar/{name}-v0")
    codec = CODECS[name]
    params = env.default_params()._replace(max_steps=torch.tensor(10**9))
    refs = [Reference(env.game.module, s) for s in seeds]
    for r in refs:
        inject(r.env.env)
    policy.refs = refs
    state = state_from_minatar([r.env for r in refs])
    rng = np.random.default_rng(7)
    for t in range(steps):
        a = policy(rng, len(refs), 6)
        outs = [r.act(int(i)) for r, i in zip(refs, a)]
        draws = stack_rows([codec.step(o[3]) for o in outs])
        sticky = torch.tensor([o[2] for o in outs], dtype=torch.float64)
        state, obs, reward, term, _ = env.transition_with_draws(state, torch.as_tensor(a), sticky, draws, params)
        where = f"{name} (injected), step {t}"
        np.testing.assert_array_equal(obs.numpy(), np.stack([r.state() for r in refs]), err_msg=where)
        np.testing.assert_array_equal(reward.numpy(), [o[0] for o in outs], err_msg=where)
        np.testing.assert_array_equal(term.numpy(), [o[1] for o in outs], err_msg=where)
        policy.hook(t, refs, state)
        if term.any():
            for r, d in zip(refs, term.tolist()):
                if d:
                    r.reset()
                    inject(r.env.env)
            state = state_from_minatar([r.env for r in refs])


def test_space_invaders_clears_waves_and_ramps() -> None:
    """Two aliens left: the gunner clears the wave and a faster one comes, down to the fastest (the move interval
    injected at 6, 7 or 12; the state injected into minatar)."""
    count = [0]

    def inject(game: Any) -> None:
        game.alien_map[:] = 0
        game.alien_map[2, 4] = game.alien_map[3, 6] = 1
        game.enemy_move_interval = (6, 7, 12)[count[0] % 3]
        count[0] += 1

    pol = _Gunner(range(6))
    _continue_injected("SpaceInvaders", inject, pol, 300, SEEDS)
    assert pol.seen["ramp"] >= 1


def test_seaquest_crowded_late_game() -> None:
    """Late difficulty (an enemy every frame, fastest enemies): many fish and submarines, stacked in cells, many
    bullets; the list-order rules decide which enemy a bullet hits."""
    def inject(game: Any) -> None:
        game.e_spawn_speed, game.e_spawn_timer, game.move_speed, game.ramp_index = 1, 0, 2, 19

    pol = _Diver(range(6))
    _continue_injected("Seaquest", inject, pol, 300, SEEDS)
    assert pol.seen["enemies"] >= 12 and pol.seen["e_bullets"] >= 4, pol.seen
    assert pol.seen["enemies"] <= N_ENEMIES and pol.seen["f_bullets"] <= N_BULLETS


def test_seaquest_replay_reaches_ramping_and_six_diver_surfacing() -> None:
    env = make("MinAtar/Seaquest-v0")
    pol = _Diver(env.actions)
    stats = replay(env, CODECS["Seaquest"], SEEDS, 600, action_seed=3, policy=pol, on_step=pol.hook)
    seen = pol.seen
    assert seen["ramp"] >= 2 and seen["negative_diver_count"] == 1 and stats.reward > 0, seen
    assert seen["f_bullets"] <= N_BULLETS and seen["divers"] <= N_DIVERS and seen["enemies"] <= N_ENEMIES


@pytest.mark.parametrize("name", GAMES)
def test_replays_minatar_without_ramping(name: str) -> None:
    env = make(name)
    pol = _Gunner(env.actions) if name == "SpaceInvaders" else _Diver(env.actions)
    replay(env, CODECS[name], SEEDS[:4], 250, action_seed=4, ramping=False, policy=pol, on_step=pol.hook)
    assert pol.seen["ramp"] == 0


@pytest.mark.parametrize("name", GAMES)
def test_state_from_minatar_continues_the_reference(name: str) -> None:
    env = make(f"MinAtar/{name}-v0")
    codec = CODECS[name]
    refs = [Reference(env.game.module, s) for s in (31, 32, 33)]
    pol = (_Gunner if name == "SpaceInvaders" else _Diver)(env.actions)
    pol.refs = refs
    rng = np.random.default_rng(0)
    for _ in range(120):
        for r, a in zip(refs, pol(rng, len(refs), 6)):
            if r.act(int(a))[1]:
                r.reset()
    state = state_from_minatar([r.env for r in refs], t=[1, 2, 3])
    np.testing.assert_array_equal(env.observation(state).numpy(), np.stack([r.state() for r in refs]))
    for _ in range(60):
        a = pol(rng, len(refs), 6)
        outs = [r.act(int(i)) for r, i in zip(refs, a)]
        draws = stack_rows([codec.step(o[3]) for o in outs])
        sticky = torch.tensor([o[2] for o in outs], dtype=torch.float64)
        state, obs, reward, term, _ = env.transition_with_draws(state, torch.as_tensor(a), sticky, draws)
        np.testing.assert_array_equal(obs.numpy(), np.stack([r.state() for r in refs]))
        np.testing.assert_array_equal(reward.numpy(), [o[0] for o in outs])
        np.testing.assert_array_equal(term.numpy(), [o[1] for o in outs])
        if term.any():
            break


# ------------------------------------------------------------------------------------------------ distributions
def _reference_episodes(module: str, n: int, policy: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` first episodes of fresh seeded minatar envs (``last_action`` 0 at the start, as in our rows)."""
    rng = np.random.default_rng(seed)
    rets, lens = [], []
    for i in range(n):
        env = minatar.Environment(module)
        env.seed(seed * 10_000 + i)
        ret, length, done = 0.0, 0, False
        while not done and length < 1000:
            r, done = env.act(policy(rng))
            ret += r
            length += 1
        rets.append(ret)
        lens.append(length)
    return np.asarray(rets), np.asarray(lens)


def _native_episodes(env: Any, n: int, policy: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first episode of each of ``n`` rows (the 1000-step limit as in ``_reference_episodes``)."""
    g = torch.Generator().manual_seed(seed)
    state, _ = env.reset(n, g)
    ret = torch.zeros(n)
    length = torch.zeros(n, dtype=torch.int64)
    live = torch.ones(n, dtype=torch.bool)
    while bool(live.any()):
        state, _, r, term, trunc = env.step(state, policy(g, n), g)
        ret += r * live
        length += live.long()
        live &= ~(term | trunc)
    return ret.numpy(), length.numpy()


def _close(a: np.ndarray, b: np.ndarray, what: str) -> None:
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert abs(a.mean() - b.mean()) <= 4 * se + 1e-9, f"{what}: {a.mean():.3f} vs minatar {b.mean():.3f} (se {se:.3f})"


@pytest.mark.parametrize("name, const", [("SpaceInvaders", 3), ("Seaquest", 4)])  # minimal index: f, d
@pytest.mark.parametrize("kind", ["random", "constant"])
def test_episode_statistics_match_minatar(name: str, const: int, kind: str) -> None:
    env = make(name)
    full = np.asarray(env.actions)
    if kind == "random":
        ref_policy = lambda rng: int(rng.choice(full))  # noqa: E731
        our_policy = lambda g, n: torch.randint(0, len(full), (n,), generator=g)  # noqa: E731
    else:
        ref_policy = lambda rng: int(full[const])  # noqa: E731
        our_policy = lambda g, n: torch.full((n,), const, dtype=torch.int64)  # noqa: E731
    ref_ret, ref_len = _reference_episodes(env.game.module, 300, ref_policy, seed=5)
    ret, length = _native_episodes(env, 300, our_policy, seed=5)
    _close(ret, ref_ret, f"{name} {kind} return")
    _close(length.astype(float), ref_len.astype(float), f"{name} {kind} length")


# ------------------------------------------------------------------------------------------------ contract
@pytest.mark.parametrize("name", GAMES)
def test_step_is_transition_then_reset_done_and_deterministic(name: str) -> None:
    env = make(name, max_steps=60)
    n = 16

    def run(seed: int) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        state, obs = env.reset(n, g)
        ga = torch.Generator().manual_seed(seed + 100)
        outs = [obs]
        for _ in range(80):
            state, obs, r, te, tr = env.step(state, torch.randint(0, env.spec.n_actions, (n,), generator=ga), g)
            outs += [obs, r, te, tr, state.t]
        return outs

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    s1, _ = env.reset(n, g1)
    s2, _ = env.reset(n, g2)
    ga = torch.Generator().manual_seed(8)
    ended = 0
    for _ in range(80):
        act = torch.randint(0, env.spec.n_actions, (n,), generator=ga)
        s1, o1, r1, te1, tr1 = env.step(s1, act, g1)
        out = step_with_final_obs(env, s2, act, g2)
        s2 = out.state
        assert torch.equal(o1, out.obs) and torch.equal(r1, out.reward) and torch.equal(te1, out.terminated)
        assert torch.equal(tr1, out.truncated) and all(torch.equal(x, y) for x, y in zip(s1.game, s2.game))
        assert o1.dtype == torch.bool and tuple(o1.shape) == (n, *env.spec.obs_shape) and r1.dtype == torch.float32
        ended += int((te1 | tr1).sum())
    assert ended > 0


def test_registry_ids_and_specs() -> None:
    for name, game, channels, n_min in (("SpaceInvaders", SpaceInvaders, 6, 4), ("Seaquest", Seaquest, 10, 6)):
        for env_id, n_act, sticky in ((name, n_min, 0.1), (f"MinAtar/{name}-v1", n_min, 0.1),
                                      (f"MinAtar/{name}-v0", 6, 0.1), (f"{name}-MinAtar", n_min, 0.0)):
            env = make(env_id)
            assert isinstance(env.game, game) and env.spec.n_actions == n_act, env_id
            assert env.spec.obs_shape == (10, 10, channels) and env.spec.max_episode_steps == 1000
            assert float(env.default_params().sticky_prob) == pytest.approx(sticky)
    assert make("space_invaders").game.module == "space_invaders" and make("seaquest").game.module == "seaquest"


def test_seaquest_draws_follow_minatar_distribution() -> None:
    d = Seaquest().step_draws(20_000, torch.Generator().manual_seed(0))
    assert d.enemy_y.min() == 1 and d.enemy_y.max() == 8 and d.diver_y.min() == 1 and d.diver_y.max() == 8
    assert abs(d.enemy_lr.float().mean() - 0.5) < 0.02 and abs(d.enemy_sub.float().mean() - 1 / 3) < 0.02
    assert abs(d.diver_lr.float().mean() - 0.5) < 0.02


# ------------------------------------------------------------------------------------------------ benchmark
def test_bench_script_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, str(ROOT / "scripts" / "bench_minatar.py"), "--games", "SpaceInvaders", "Seaquest",
           "--sizes", "4", "--steps", "5", "--repeats", "1", "--backends", "torch", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(out.read_text())
    rows = payload["results"]
    assert {(r["game"], r["backend"], r["batch_size"]) for r in rows} == {("SpaceInvaders", "torch", 4),
                                                                          ("Seaquest", "torch", 4)}
    assert all(r["steps"] == 5 and r["steps_per_s"] > 0 for r in rows) and payload["torch_threads"] == 1
    assert "torch/gymnax" in done.stdout
