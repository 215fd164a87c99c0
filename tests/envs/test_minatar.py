"""MinAtar Asterix, Breakout and Freeway against ``minatar`` 1.0.15: step-for-step replay of minatar's own random
draws, generator-driven distributions, the FunctionalEnv contract, adapters, rendering and errors."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pytest
import torch

from minatar_oracle import Call, Reference, methods, replay, stack_rows
from torch_distill.envs.core import step_with_final_obs
from torch_distill.envs.minatar import (
    FULL_ACTIONS,
    MINATAR_GAMES,
    AsterixDraws,
    MinAtarParams,
    make,
    palette,
    render_rgb,
    state_from_minatar,
)

minatar = pytest.importorskip("minatar")

GAMES = ["Asterix", "Breakout", "Freeway"]


# ------------------------------------------------------------------------------------------------ draw codecs
class BreakoutCodec:
    """reset: ``randint(2)``; act: nothing."""

    def reset(self, calls: Sequence[Call]) -> Any:
        if not calls:
            return np.int64(0)
        assert methods(calls) == ["randint"] and calls[0].args == (2,), calls
        return np.int64(calls[0].result)

    def step(self, calls: Sequence[Call]) -> Any:
        assert not calls, calls
        return np.zeros(0, dtype=np.float32)


class FreewayCodec:
    """reset and every crossing: ``randint(1, 6, 8)``, ``rand(8)`` -> signed speeds ``[8]``."""

    def _speeds(self, calls: Sequence[Call]) -> Any:
        if not calls:
            return np.zeros(8, dtype=np.int64)
        assert methods(calls) == ["randint", "rand"] and calls[0].args == (1, 6, 8) and calls[1].args == (8,), calls
        return (np.asarray(calls[0].result) * np.sign(np.asarray(calls[1].result) - 0.5).astype(int)).astype(np.int64)

    reset = step = _speeds


class AsterixCodec:
    """reset: nothing; act, when an entity spawns: ``rand()`` side, ``rand()`` gold, ``randint(n_free)`` if any."""

    def reset(self, calls: Sequence[Call]) -> Any:
        assert not calls, calls
        return np.zeros(0, dtype=np.float32)

    def step(self, calls: Sequence[Call]) -> Any:
        if not calls:
            return AsterixDraws(np.bool_(False), np.bool_(False), np.float64(0.0))
        m = methods(calls)
        assert m in (["rand", "rand"], ["rand", "rand", "randint"]), calls
        slot = 0.0
        if len(m) == 3:
            (k,) = calls[2].args
            slot = (int(calls[2].result) + 0.5) / int(k)  # floor(slot * k) is the drawn index
        return AsterixDraws(np.bool_(calls[0].result < 1 / 2), np.bool_(calls[1].result < 1 / 3), np.float64(slot))


CODECS = {"Asterix": AsterixCodec(), "Breakout": BreakoutCodec(), "Freeway": FreewayCodec()}
SEEDS = list(range(8))


# ------------------------------------------------------------------------------------------------ exactness
@pytest.mark.parametrize("name", GAMES)
def test_replays_minatar_step_for_step(name: str) -> None:
    """8 seeds x 2000 random-action steps (Freeway 2600, past its 2501-frame episodes), sticky 0.1, ramping."""
    steps = 2600 if name == "Freeway" else 2000
    stats = replay(make(name), CODECS[name], SEEDS, steps, action_seed=1)
    assert stats.terminals >= len(SEEDS) and stats.reward > 0 and stats.sticky > 0


@pytest.mark.parametrize("name", GAMES)
def test_replays_minatar_full_actions_without_ramping(name: str) -> None:
    env = make(f"MinAtar/{name}-v0")
    assert env.spec.n_actions == 6 and env.actions == tuple(range(6))
    replay(env, CODECS[name], [11, 12, 13], 400, action_seed=2, sticky_prob=0.3, ramping=False)


def test_asterix_ramping_reaches_fast_levels() -> None:
    """A policy that mostly stays put lives long enough for two ramp levels (the second, at an odd ramp index,
    also shortens the move interval)."""
    levels: list[int] = []
    moves: list[int] = []

    def hook(t: int, refs: list[Reference], state: Any) -> None:
        levels.append(int(state.game.ramp_index.max()))
        moves.append(int(state.game.move_speed.min()))
        assert state.game.ramp_index.tolist() == [r.env.env.ramp_index for r in refs]
        assert state.game.spawn_speed.tolist() == [r.env.env.spawn_speed for r in refs]
        assert state.game.move_speed.tolist() == [r.env.env.move_speed for r in refs]

    replay(make("Asterix"), CODECS["Asterix"], SEEDS, 1500, action_seed=3, on_step=hook,
           policy=lambda rng, b, n: rng.choice([0, 2, 4], b, p=[0.6, 0.2, 0.2]))
    assert max(levels) >= 2 and min(moves) < 5


@pytest.mark.parametrize("name", GAMES)
def test_state_from_minatar_continues_the_reference(name: str) -> None:
    env = make(name)
    codec = CODECS[name]
    refs = [Reference(env.game.module, s) for s in (21, 22, 23)]
    rng = np.random.default_rng(0)
    for _ in range(37):
        for r in refs:
            _, term, _, _ = r.act(int(rng.choice(env.actions)))
            if term:
                r.reset()
    state = state_from_minatar([r.env for r in refs], t=[5, 6, 7])
    assert state.t.tolist() == [5, 6, 7] and state.last_action.tolist() == [r.env.last_action for r in refs]
    np.testing.assert_array_equal(env.observation(state).numpy(), np.stack([r.state() for r in refs]))
    for _ in range(20):
        a = rng.integers(0, env.spec.n_actions, len(refs))
        outs = [r.act(env.actions[i]) for r, i in zip(refs, a)]
        draws = stack_rows([codec.step(o[3]) for o in outs])
        sticky = torch.tensor([o[2] for o in outs], dtype=torch.float64)
        state, obs, reward, term, _ = env.transition_with_draws(state, torch.as_tensor(a), sticky, draws)
        np.testing.assert_array_equal(obs.numpy(), np.stack([r.state() for r in refs]))
        np.testing.assert_array_equal(reward.numpy(), [o[0] for o in outs])
        if term.any():
            break
    with pytest.raises(ValueError, match="plays"):
        env.state_from_minatar([minatar.Environment("seaquest" if name != "Seaquest" else "breakout")])


@pytest.mark.parametrize("name", GAMES)
def test_terminal_state_is_frozen(name: str) -> None:
    """minatar's act returns (0, True) and changes nothing once the game is terminal."""
    env = make(name, max_steps=10**6)
    g = torch.Generator().manual_seed(0)
    state, _ = env.reset(64, g)
    ended = torch.zeros(64, dtype=torch.bool)
    for _ in range(2600):
        state, obs, r, term, _ = env.transition(state, torch.randint(0, env.spec.n_actions, (64,), generator=g), g)
        ended |= term
        if bool(ended.any()):
            break
    assert bool(ended.any())
    before = env.observation(state)
    state2, obs2, r2, term2, _ = env.transition(state, torch.zeros(64, dtype=torch.int64), g)
    assert torch.equal(obs2[ended], before[ended]) and bool(term2[ended].all()) and bool((r2[ended] == 0).all())


def test_action_sets_match_minatar() -> None:
    import minatar.environments.breakout

    assert FULL_ACTIONS == tuple(minatar.environments.breakout.Env().action_map)
    for name, cls in MINATAR_GAMES.items():
        ref = minatar.Environment(cls.module)
        assert list(cls.minimal_actions) == ref.minimal_action_set(), name
        assert list(cls.channels) == sorted(ref.env.channels, key=ref.env.channels.get), name
        assert make(name).spec.n_actions == len(cls.minimal_actions)
        assert make(f"MinAtar/{name}-v0").spec.n_actions == 6
        assert make(name).spec.obs_shape == tuple(ref.state_shape())


def test_minimal_action_maps_to_full_action() -> None:
    """Minimal action i acts as full action minimal_actions[i]: same draws, same trajectory."""
    g_min, g_full = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    mini, full = make("Freeway"), make("Freeway", full_actions=True)
    s1, _ = mini.reset(16, g_min)
    s2, _ = full.reset(16, g_full)
    ga = torch.Generator().manual_seed(9)
    table = torch.tensor(mini.actions)
    for _ in range(200):
        a = torch.randint(0, 3, (16,), generator=ga)
        s1, o1, r1, *_ = mini.step(s1, a, g_min)
        s2, o2, r2, *_ = full.step(s2, table[a], g_full)
        assert torch.equal(o1, o2) and torch.equal(r1, r2)
    assert full.spec.env_id == "MinAtar/Freeway-v0" and mini.spec.env_id == "MinAtar/Freeway-v1"


# ------------------------------------------------------------------------------------------------ distributions
def _reference_episodes(module: str, n: int, policy: Any, seed: int, sticky: float = 0.1) -> tuple[np.ndarray, ...]:
    env = minatar.Environment(module, sticky_action_prob=sticky)
    env.seed(seed)
    rng = np.random.default_rng(seed)
    rets, lens = [], []
    for _ in range(n):
        env.reset()
        ret, length, done = 0.0, 0, False
        while not done:
            r, done = env.act(policy(rng))
            ret += r
            length += 1
        rets.append(ret)
        lens.append(length)
    return np.asarray(rets), np.asarray(lens)


def _native_episodes(env: Any, n: int, policy: Any, seed: int) -> tuple[np.ndarray, ...]:
    """First episode of each of ``n`` rows (``step`` auto-resets; later episodes are ignored)."""
    g = torch.Generator().manual_seed(seed)
    state, _ = env.reset(n, g)
    ret = torch.zeros(n)
    length = torch.zeros(n, dtype=torch.int64)
    live = torch.ones(n, dtype=torch.bool)
    trunc_any = torch.zeros(n, dtype=torch.bool)
    while bool(live.any()):
        state, _, r, term, trunc = env.step(state, policy(g, n), g)
        ret += r * live
        length += live.long()
        trunc_any |= trunc & live
        live &= ~(term | trunc)
    return ret.numpy(), length.numpy(), trunc_any.numpy()


def _close(a: np.ndarray, b: np.ndarray, what: str) -> None:
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert abs(a.mean() - b.mean()) <= 4 * se + 1e-9, f"{what}: {a.mean():.3f} vs minatar {b.mean():.3f} (se {se:.3f})"


@pytest.mark.parametrize("name, n_ref, n_ours", [("Breakout", 400, 800), ("Asterix", 300, 600), ("Freeway", 12, 64)])
@pytest.mark.parametrize("kind", ["random", "constant"])
def test_episode_statistics_match_minatar(name: str, kind: str, n_ref: int, n_ours: int) -> None:
    env = make(name)
    full = np.asarray(env.actions)
    const = {"Breakout": 2, "Asterix": 2, "Freeway": 1}[name]  # minimal index: r, u, u
    if kind == "random":
        ref_policy = lambda rng: int(rng.choice(full))  # noqa: E731
        our_policy = lambda g, n: torch.randint(0, len(full), (n,), generator=g)  # noqa: E731
    else:
        ref_policy = lambda rng: int(full[const])  # noqa: E731
        our_policy = lambda g, n: torch.full((n,), const, dtype=torch.int64)  # noqa: E731
    ref_ret, ref_len = _reference_episodes(env.game.module, n_ref, ref_policy, seed=5)
    ret, length, truncated = _native_episodes(env, n_ours, our_policy, seed=5)
    _close(ret, ref_ret, f"{name} {kind} return")
    if name == "Freeway":  # minatar ends on frame 2501; the 2500-step time limit truncates first
        assert (ref_len == 2501).all() and (length == 2500).all() and truncated.all()
    else:
        assert not truncated.any()
        _close(length.astype(float), ref_len.astype(float), f"{name} {kind} length")


# ------------------------------------------------------------------------------------------------ contract
@pytest.mark.parametrize("name", GAMES)
def test_step_is_transition_then_reset_done_and_deterministic(name: str) -> None:
    env = make(name, max_steps=40)
    n = 32

    def run(seed: int) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        state, obs = env.reset(n, g)
        ga = torch.Generator().manual_seed(seed + 100)
        outs = [obs]
        for _ in range(90):
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
    for _ in range(90):
        act = torch.randint(0, env.spec.n_actions, (n,), generator=ga)
        s1, o1, r1, te1, tr1 = env.step(s1, act, g1)
        out = step_with_final_obs(env, s2, act, g2)
        s2 = out.state
        assert torch.equal(o1, out.obs) and torch.equal(r1, out.reward) and torch.equal(te1, out.terminated)
        assert torch.equal(tr1, out.truncated) and torch.equal(s1.t, s2.t)
        assert obs_ok(o1, env)


def obs_ok(obs: torch.Tensor, env: Any) -> bool:
    return obs.dtype == torch.bool and tuple(obs.shape[1:]) == env.spec.obs_shape


def test_truncation_at_max_steps_and_auto_reset() -> None:
    env = make("Freeway", max_steps=7)  # Freeway never terminates before frame 2501
    g = torch.Generator().manual_seed(0)
    state, obs0 = env.reset(4, g)
    for i in range(1, 8):
        nxt, final, r, te, tr = env.transition(state, torch.ones(4, dtype=torch.int64), g)
        state, obs = env.reset_done(te | tr, nxt, final, g)
        assert not te.any() and bool(tr.all()) == (i == 7)
    assert state.t.tolist() == [0] * 4 and nxt.t.tolist() == [7] * 4
    assert bool(obs[:, 9, 4, 0].all())  # the fresh chicken is back on the bottom row
    assert torch.equal(state.last_action, nxt.last_action)  # minatar keeps last_action across resets
    # per-row params: max_steps [B], sticky_prob [B]
    p = MinAtarParams(torch.tensor([0.0, 1.0, 0.0, 1.0]), torch.tensor(True), torch.tensor([2, 3, 4, 5]))
    state, _ = env.reset(4, g, p)
    for i in range(1, 6):
        state, _, _, _, tr = env.step(state, torch.ones(4, dtype=torch.int64), g, p)
        assert tr.tolist() == [i % k == 0 for k in (2, 3, 4, 5)]
        assert state.last_action.tolist() == [2, 0, 2, 0]  # sticky 1 repeats the initial no-op forever


def test_generator_is_the_only_randomness() -> None:
    env = make("Asterix")
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    s, o = env.reset(8, g)
    a = torch.zeros(8, dtype=torch.int64)
    outs1 = [env.step(s, a, g)[1] for _ in range(30)]
    torch.manual_seed(123)
    g = torch.Generator().manual_seed(1)
    s, o = env.reset(8, g)
    outs2 = [env.step(s, a, g)[1] for _ in range(30)]
    assert all(torch.equal(x, y) for x, y in zip(outs1, outs2))


# ------------------------------------------------------------------------------------------------ registry, adapters
def test_registry_names_and_errors() -> None:
    from torch_distill.envs.vec import UnknownEnvError

    assert make("breakout").spec.env_id == "MinAtar/Breakout-v1"
    assert make("MinAtar/Breakout-v0").full_actions and not make("MinAtar-Breakout-v1").full_actions
    gx = make("Breakout-MinAtar")
    assert gx.spec.env_id == "Breakout-MinAtar" and float(gx.default_params().sticky_prob) == 0.0
    assert make("Freeway").spec.max_episode_steps == 2500 and make("Asterix").spec.max_episode_steps == 1000
    assert int(make("Asterix", max_steps=50).default_params().max_steps) == 50
    for bad in ("Pong", "MinAtar/Breakout-v2", "breakout-minatar"):
        with pytest.raises(UnknownEnvError, match="Breakout"):
            make(bad)
    with pytest.raises(TypeError, match="unexpected"):
        make("Breakout", sticky=0.1)
    with pytest.raises(ValueError, match="sticky_prob"):
        make("Breakout", sticky_prob=1.5)
    env = make("Breakout")
    g = torch.Generator().manual_seed(0)
    state, _ = env.reset(4, g)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        env.step(state, torch.tensor([0, 1, 3, 0]), g)
    with pytest.raises(ValueError, match="shape"):
        env.step(state, torch.zeros(3, dtype=torch.int64), g)
    with pytest.raises(TypeError, match="dtype"):
        env.step(state, torch.zeros(4), g)
    with pytest.raises(ValueError, match="done"):
        env.reset_done(torch.zeros(4), state, None, g)
    with pytest.raises(ValueError, match="batch_size"):
        env.reset(0, g)


def test_native_registry_flat_view_and_gymnasium() -> None:
    import gymnasium as gym

    import torch_distill  # noqa: F401  (registers the ids)
    from torch_distill.envs.gym_adapter import FunctionalVectorEnv
    from torch_distill.envs.vec import make_native, native_env_ids

    ids = native_env_ids()
    assert {"MinAtar-Breakout-v1", "MinAtar-Freeway-v0", "Asterix-MinAtar"} <= set(ids)
    env = make_native("MinAtar-Breakout-v1")
    assert env.spec.obs_shape == (400,)
    g = torch.Generator().manual_seed(0)
    state, obs = env.reset(5, g)
    assert obs.dtype == torch.float32 and obs.shape == (5, 400)
    inner = make("Breakout")
    _, ref = inner.reset(5, torch.Generator().manual_seed(0))
    assert torch.equal(obs, ref.reshape(5, -1).float())
    venv = gym.make_vec("torch_distill/MinAtar-Asterix-v1", num_envs=6, vectorization_mode="vector_entry_point")
    assert isinstance(venv, FunctionalVectorEnv)
    o, _ = venv.reset(seed=0)
    for _ in range(50):
        o, r, te, tr, _ = venv.step(venv.action_space.sample())
        assert venv.observation_space.contains(o) and r.dtype == np.float32
    venv.close()
    # the bool-observation env directly under the gymnasium vector adapter
    venv = FunctionalVectorEnv(make("Freeway"), 4, seed=0)
    o, _ = venv.reset(seed=1)
    assert o.dtype == np.bool_ and o.shape == (4, 10, 10, 7)
    venv.close()


def test_torchrl_check_env_specs() -> None:
    pytest.importorskip("torchrl")
    from torchrl.envs.utils import check_env_specs

    from torch_distill.envs.torchrl_adapter import TorchRLEnv

    for env in (make("Breakout"), make("MinAtar/Asterix-v0")):
        tenv = TorchRLEnv(env, 4, seed=0)
        check_env_specs(tenv, seed=0)
        td = tenv.rollout(20, break_when_any_done=False)
        assert td.shape == torch.Size([4, 20])


# ------------------------------------------------------------------------------------------------ render
def test_render_rgb_uses_minatars_palette() -> None:
    import matplotlib

    for c in (4, 6, 7, 10):
        rgb = matplotlib.colormaps["cubehelix"](np.linspace(0, 1, c + 2)[1:-1])[:, :3]  # seaborn's sampling
        want = np.concatenate([[[0, 0, 0]], np.round(rgb * 255)]).astype(np.uint8)
        np.testing.assert_array_equal(palette(c).numpy(), want)
    try:
        import seaborn as sns

        want = np.round(np.asarray(sns.color_palette("cubehelix", 7)) * 255)
        np.testing.assert_array_equal(palette(7).numpy()[1:], want)
    except ImportError:
        pass
    env = make("Breakout")
    _, obs = env.reset(3, torch.Generator().manual_seed(0))
    frames = render_rgb(obs, cell=4)
    assert frames.shape == (3, 40, 40, 3) and frames.dtype == torch.uint8
    pal = palette(4)
    numerical = (obs.long() * torch.arange(1, 5)).amax(-1)
    assert torch.equal(render_rgb(obs), pal[numerical])
    assert torch.equal(frames[:, 9 * 4, 4 * 4], pal[1].expand(3, 3))  # paddle colour at (9, 4)
    assert torch.equal(frames[:, 0, 0], pal[0].expand(3, 3))  # empty cell is black
    assert torch.equal(frames[:, 4 * 1, 5 * 4], pal[4].expand(3, 3))  # a brick (row 1)
    with pytest.raises(ValueError, match="shape"):
        render_rgb(obs[0])
