"""Replaying minatar's own random numbers through the batched MinAtar envs (a test helper for every game).

``minatar.Environment`` owns one ``numpy.random.RandomState`` shared by the sticky-action wrapper and the game.
:class:`Reference` replaces both references to it by :class:`RecordingRandom` proxies that log every call
(``Call(source, method, args, kwargs, result)``, ``source`` "wrapper" for the sticky-action ``rand()``, "game" for
the game's own draws). A game's :class:`DrawCodec` turns the game calls of one ``reset()`` / ``act()`` into that
row's draws in the layout of ``game.reset_draws`` / ``game.step_draws`` (NumPy values, or a NamedTuple of them);
called with no calls it returns filler draws for a row that does not draw (a row that did not reset, a step that
spawned nothing). :func:`replay` steps ``len(seeds)`` references and the batched env side by side with
``MinAtarEnv.transition_with_draws`` / ``reset_done_with_draws`` and compares observation, reward and terminal
flag at every step, resetting a row (in both) when its episode ends::

    stats = replay(make("Breakout"), BreakoutCodec(), seeds=range(8), steps=2000)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol, Sequence

import numpy as np
import torch

__all__ = [
    "Call",
    "RecordingRandom",
    "Reference",
    "DrawCodec",
    "stack_rows",
    "replay",
    "ReplayStats",
    "methods",
    "first_difference",
]


class Call(NamedTuple):
    source: str  # "wrapper" (minatar.Environment: the sticky-action draw) or "game" (the game's Env)
    method: str  # "rand", "randint", "choice", ...
    args: tuple
    kwargs: dict
    result: Any


class RecordingRandom:
    """A proxy of a ``numpy.random.RandomState`` that appends every method call to ``log``."""

    def __init__(self, rs: np.random.RandomState, log: list[Call], source: str) -> None:
        self._rs, self._log, self._source = rs, log, source

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._rs, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            # a copy: the games modify returned arrays in place (Freeway's ``speeds *= directions``)
            kept = result.copy() if isinstance(result, np.ndarray) else result
            self._log.append(Call(self._source, name, args, kwargs, kept))
            return result

        return call


class Reference:
    """A seeded ``minatar.Environment`` with every random draw recorded (``env.seed(seed)`` then ``reset()``)."""

    def __init__(self, module: str, seed: int, sticky_prob: float = 0.1, ramping: bool = True) -> None:
        from minatar import Environment

        env = Environment(module, sticky_action_prob=sticky_prob, difficulty_ramping=ramping)
        env.seed(int(seed))
        self.log: list[Call] = []
        rs = env.random
        env.random = RecordingRandom(rs, self.log, "wrapper")
        env.env.random = RecordingRandom(rs, self.log, "game")
        self.env = env
        self.reset_calls = self.reset()

    def reset(self) -> list[Call]:
        """``env.reset()``; returns the game's calls."""
        self.log.clear()
        self.env.reset()
        return self._game_calls()

    def act(self, action: int) -> tuple[float, bool, float, list[Call]]:
        """``env.act(action)`` (a full-action index): ``(reward, terminal, sticky uniform, game calls)``."""
        self.log.clear()
        reward, terminal = self.env.act(int(action))
        wrapper = [c for c in self.log if c.source == "wrapper"]
        if len(wrapper) != 1 or wrapper[0].method != "rand" or self.log[0] is not wrapper[0]:
            raise AssertionError(f"expected one sticky-action rand() before the game's draws, got {self.log}")
        return float(reward), bool(terminal), float(wrapper[0].result), self._game_calls()

    def _game_calls(self) -> list[Call]:
        return [c for c in self.log if c.source == "game"]

    def state(self) -> np.ndarray:
        return np.asarray(self.env.state(), dtype=bool)


class DrawCodec(Protocol):
    """One game's conversion of recorded calls into one row's draws (NumPy values or a NamedTuple of them)."""

    def reset(self, calls: Sequence[Call]) -> Any: ...

    def step(self, calls: Sequence[Call]) -> Any: ...


def methods(calls: Sequence[Call]) -> list[str]:
    """The method names of ``calls`` (for codecs' sanity checks)."""
    return [c.method for c in calls]


def stack_rows(rows: Sequence[Any], device: torch.device | str = "cpu") -> Any:
    """Stack per-row draws (NumPy values, or NamedTuples of them) into batched tensors ``[B, ...]``."""
    first = rows[0]
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(stack_rows(list(col), device) for col in zip(*rows)))
    return torch.from_numpy(np.stack([np.asarray(r) for r in rows])).to(device)


class ReplayStats(NamedTuple):
    steps: int  # batched steps compared
    terminals: int  # episode ends seen (over all rows)
    reward: float  # total reward (over all rows)
    sticky: int  # steps where the sticky action replaced the chosen one (over all rows)


def first_difference(ours: np.ndarray, ref: np.ndarray, channels: Sequence[str]) -> str:
    """A readable description of where two ``[10, 10, C]`` observations differ."""
    diff = np.argwhere(ours != ref)
    if len(diff) == 0:
        return "no difference"
    y, x, c = diff[0]
    return (f"{len(diff)} cells differ; first at (y={y}, x={x}, channel {channels[c]!r}): ours {bool(ours[y, x, c])}, "
            f"minatar {bool(ref[y, x, c])}")


def replay(env: Any, codec: DrawCodec, seeds: Sequence[int], steps: int, action_seed: int = 0,
           sticky_prob: float = 0.1, ramping: bool = True,
           policy: Callable[[np.random.Generator, int, int], np.ndarray] | None = None,
           on_step: Callable[[int, list[Reference], Any], None] | None = None) -> ReplayStats:
    """Step ``len(seeds)`` recorded minatar references and ``env`` (a ``MinAtarEnv``, batch = the seeds) together.

    Args:
        env: the batched env; its action set (minimal or full) picks the actions given to minatar.
        codec: the game's :class:`DrawCodec`.
        seeds: one minatar seed per row.
        steps: batched steps to compare.
        action_seed: seed of the uniformly random actions (``policy(rng, batch, n_actions) -> [B]`` overrides).
        on_step: optional hook ``(step, references, state)`` called after every compared step.

    The env runs with ``max_steps`` beyond ``steps`` (no truncation): a row is reset when minatar's episode ends.
    Raises ``AssertionError`` naming the game, seed and step of the first mismatch.
    """
    from torch_distill.envs.minatar.base import MinAtarParams

    game = env.game
    refs = [Reference(game.module, s, sticky_prob, ramping) for s in seeds]
    batch = len(refs)
    # float64 sticky_prob: the recorded float64 uniforms are compared with minatar's Python-float probability exactly
    params = MinAtarParams(torch.tensor(sticky_prob, dtype=torch.float64), torch.tensor(bool(ramping)),
                           torch.tensor(steps + 10, dtype=torch.int64))
    state, obs = env.reset_with_draws(stack_rows([codec.reset(r.reset_calls) for r in refs]), params)
    _check(obs, refs, seeds, game, -1, "reset")
    rng = np.random.default_rng(action_seed)
    table = np.asarray(env.actions)
    n_act = len(table)
    terminals, total, sticky = 0, 0.0, 0
    for t in range(steps):
        a = policy(rng, batch, n_act) if policy is not None else rng.integers(0, n_act, batch)
        outs = [ref.act(table[ai]) for ref, ai in zip(refs, a)]
        sticky_u = torch.tensor([o[2] for o in outs], dtype=torch.float64)
        draws = stack_rows([codec.step(o[3]) for o in outs])
        prev_last = state.last_action
        state, obs, reward, terminated, truncated = env.transition_with_draws(
            state, torch.as_tensor(a, dtype=torch.int64), sticky_u, draws, params)
        sticky += int((state.last_action != torch.as_tensor(table[a])).sum())
        ref_r = np.array([o[0] for o in outs], dtype=np.float32)
        ref_term = np.array([o[1] for o in outs])
        last = np.array([r.env.last_action for r in refs])
        where = f"{game.name}, step {t}"
        if not np.array_equal(state.last_action.numpy(), last):
            raise AssertionError(f"{where}: last_action {state.last_action.tolist()} != minatar's {last.tolist()} "
                                 f"(previous {prev_last.tolist()}, chosen {table[a].tolist()})")
        _check(obs, refs, seeds, game, t, "step")
        if not np.array_equal(reward.numpy(), ref_r):
            raise AssertionError(f"{where}: reward {reward.tolist()} != minatar's {ref_r.tolist()} "
                                 f"(seeds {list(seeds)})")
        if not np.array_equal(terminated.numpy(), ref_term):
            raise AssertionError(f"{where}: terminal {terminated.tolist()} != minatar's {ref_term.tolist()}")
        if bool(truncated.any()):
            raise AssertionError(f"{where}: unexpected truncation")
        total += float(ref_r.sum())
        if on_step is not None:
            on_step(t, refs, state)
        if ref_term.any():
            terminals += int(ref_term.sum())
            rows = [codec.reset(r.reset() if d else []) for r, d in zip(refs, ref_term)]
            state, obs = env.reset_done_with_draws(torch.from_numpy(ref_term), state, stack_rows(rows), params)
            _check(obs, refs, seeds, game, t, "reset after the episode's end")
    return ReplayStats(steps, terminals, total, sticky)


def _check(obs: torch.Tensor, refs: list[Reference], seeds: Sequence[int], game: Any, t: int, what: str) -> None:
    ours = obs.numpy()
    for i, ref in enumerate(refs):
        want = ref.state()
        if not np.array_equal(ours[i], want):
            raise AssertionError(f"{game.name}, seed {seeds[i]}, step {t} ({what}): observation differs: "
                                 f"{first_difference(ours[i], want, game.channels)}")
