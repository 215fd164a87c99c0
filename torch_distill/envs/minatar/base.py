"""Shared machinery of the MinAtar games: actions, params, the game contract and the ``FunctionalEnv``.

MinAtar (Young & Tian, 2019, ``minatar`` 1.0.15) wraps each game in ``minatar.Environment``, which owns ONE
``numpy.random.RandomState`` shared with the game and adds sticky actions::

    def act(self, a):                       # a: index into FULL_ACTIONS
        if self.random.rand() < self.sticky_action_prob:
            a = self.last_action
        self.last_action = a
        return self.env.act(a)              # (reward, terminal)

``reset()`` resets the game and keeps ``last_action``. Here the same is written for a batch: a game is a stateless
:class:`MinAtarGame` (pure functions of tensors ``[B, ...]``), and :class:`MinAtarEnv` adds sticky actions, the
minimal/full action set, the time limit and the auto-reset of :mod:`torch_distill.envs.core`.

Randomness. Every random number a game consumes is drawn up front from the ``torch.Generator`` as a *draw* record
of static shape (the largest number the game might need: a row that needs none ignores its draws), so a step
never branches on tensor values. ``transition`` draws, in this order: the sticky-action uniforms ``[B]``, then
``game.step_draws``; ``step`` / ``reset_done`` then draw ``game.reset_draws`` for the whole batch. The
deterministic cores :meth:`MinAtarEnv.transition_with_draws` and :meth:`MinAtarEnv.reset_done_with_draws` take
those draws as arguments; the exactness tests feed them the numbers MinAtar's ``RandomState`` produced.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, Sequence

import torch

from torch_distill.envs.core import EnvSpec

__all__ = [
    "FULL_ACTIONS",
    "NOOP",
    "LEFT",
    "UP",
    "RIGHT",
    "DOWN",
    "FIRE",
    "GRID",
    "MinAtarParams",
    "MinAtarState",
    "MinAtarGame",
    "MinAtarEnv",
    "where_rows",
    "scatter_obs",
]

FULL_ACTIONS: tuple[str, ...] = ("n", "l", "u", "r", "d", "f")
"""MinAtar's 6 actions (``Env.action_map``): no-op, left, up, right, down, fire; index 0..5."""
NOOP, LEFT, UP, RIGHT, DOWN, FIRE = range(6)
GRID = 10
"""Every MinAtar game is a 10 x 10 grid."""

StepResult = tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class MinAtarParams(NamedTuple):
    """Per-call env params (``[]`` broadcast to every row, or ``[B]``: one value per row)."""

    sticky_prob: torch.Tensor  # float32: probability of repeating the previous action (minatar's 0.1)
    ramping: torch.Tensor  # bool: difficulty ramping (minatar's ``difficulty_ramping``, default True)
    max_steps: torch.Tensor  # int64: time limit (truncation) in env steps


class MinAtarState(NamedTuple):
    """``game``: the game's state NamedTuple of ``[B, ...]`` tensors; ``last_action [B]`` int64 (an index into
    :data:`FULL_ACTIONS`, MinAtar's ``last_action``, kept across resets as MinAtar does); ``t [B]`` int64 steps taken
    in the current episode."""

    game: Any
    last_action: torch.Tensor
    t: torch.Tensor


def where_rows(mask: torch.Tensor, a: Any, b: Any) -> Any:
    """Row-wise ``where(mask [B], a, b)`` of two ``[B, ...]`` tensors or two NamedTuples of them."""
    if isinstance(a, torch.Tensor):
        return torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)
    return type(a)(*(where_rows(mask, x, y) for x, y in zip(a, b)))


def scatter_obs(batch: int, n_channels: int, index: torch.Tensor, planes: dict[int, torch.Tensor] | None = None,
                device: torch.device | None = None) -> torch.Tensor:
    """Build a ``[B, 10, 10, C]`` bool observation in one scatter.

    Args:
        index: ``[B, K]`` int64 flat indices ``(y * 10 + x) * C + channel`` of the cells to set; an index of
            ``100 * C`` (one past the end) sets nothing (a dummy slot for entities that are absent).
        planes: optional dense ``{channel: [B, 10, 10] bool}`` planes copied in first (e.g. a brick map).
    """
    size = GRID * GRID * n_channels
    obs = torch.zeros(batch, size + 1, dtype=torch.bool, device=device if device is not None else index.device)
    if planes:
        grid = obs[:, :size].view(batch, GRID, GRID, n_channels)
        for c, plane in planes.items():
            grid[..., c] = plane
    obs.scatter_(1, index, True)
    return obs[:, :size].view(batch, GRID, GRID, n_channels)


class MinAtarGame:
    """One MinAtar game as stateless batched functions (one subclass per game; instances hold only caches).

    Class attributes: ``name`` (``"breakout"``), ``module`` (the ``minatar.environments`` module name),
    ``channels`` (channel names in the order of the game's ``channels`` dict), ``minimal_actions`` (indices into
    :data:`FULL_ACTIONS` in the order of ``minimal_action_set()``), ``max_steps`` (default time limit, gymnax's).

    Methods (all batched over ``B``: no Python loop over rows, no host syncs):

    * ``reset_draws(n, generator, device)`` / ``step_draws(n, generator, device)``: the random numbers one
      ``reset()`` / one ``act()`` consumes (a tensor or a NamedTuple of ``[n, ...]`` tensors; ``step_draws`` always
      draws the most the game might need);
    * ``init(draws, ramping [B] bool) -> game state`` (a NamedTuple of ``[B, ...]`` tensors with a ``terminal [B]``
      bool field);
    * ``act(game, action [B] int64 full-action index, draws, ramping [B] bool) -> (game, reward [B] float32,
      terminal [B] bool)`` for rows that are not yet terminal (:class:`MinAtarEnv` freezes terminal rows, as
      MinAtar's ``act`` returns ``(0, True)`` unchanged once terminal);
    * ``observation(game) -> [B, 10, 10, C]`` bool (MinAtar's ``state()``);
    * ``from_minatar(env) -> game state`` of batch 1 from a live ``minatar`` game object (``Environment.env``).
    """

    name: ClassVar[str]
    module: ClassVar[str]
    channels: ClassVar[tuple[str, ...]]
    minimal_actions: ClassVar[tuple[int, ...]]
    max_steps: ClassVar[int] = 1000

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def reset_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> Any:
        raise NotImplementedError

    def step_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> Any:
        raise NotImplementedError

    def init(self, draws: Any, ramping: torch.Tensor) -> Any:
        raise NotImplementedError

    def act(self, game: Any, action: torch.Tensor, draws: Any, ramping: torch.Tensor
            ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def observation(self, game: Any) -> torch.Tensor:
        raise NotImplementedError

    def from_minatar(self, env: Any, device: torch.device | str = "cpu") -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _device(generator: torch.Generator, device: torch.device | str | None) -> torch.device:
    return torch.device(device) if device is not None else generator.device


class MinAtarEnv:
    """A MinAtar game as a natively batched :class:`~torch_distill.envs.core.FunctionalEnv`.

    Args:
        game: the :class:`MinAtarGame` (an instance or its class).
        full_actions: ``Discrete(6)`` over :data:`FULL_ACTIONS` (minatar's ``MinAtar/<Game>-v0``) instead of the
            game's minimal action set (``-v1``, gymnax's default).
        env_id: the spec's id (default ``MinAtar/<Game>-v1`` / ``-v0``).
        sticky_prob, ramping, max_steps: the defaults of :meth:`default_params` (minatar's 0.1 and True; the
            time limit defaults to ``game.max_steps``, gymnax's: 1000, Freeway 2500).

    Observations are ``[B, 10, 10, C]`` bool (MinAtar's ``state()``); rewards float32; ``terminated`` is the game's
    terminal flag, ``truncated = t >= max_steps and not terminated``. Actions are integer ``[B]`` indices into the
    action set (checked for range on the CPU only, which needs no device sync).
    """

    def __init__(self, game: MinAtarGame | type, full_actions: bool = False, env_id: str | None = None,
                 sticky_prob: float = 0.1, ramping: bool = True, max_steps: int | None = None) -> None:
        if isinstance(game, type):
            game = game()
        if not isinstance(game, MinAtarGame):
            raise TypeError(f"game={game!r}: expected a MinAtarGame")
        sticky_prob = float(sticky_prob)
        if not 0.0 <= sticky_prob <= 1.0:
            raise ValueError(f"sticky_prob={sticky_prob!r}: expected a probability in [0, 1]")
        steps = game.max_steps if max_steps is None else max_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"max_steps={max_steps!r}: expected a positive int")
        self.game = game
        self.full_actions = bool(full_actions)
        self.actions: tuple[int, ...] = tuple(range(len(FULL_ACTIONS))) if full_actions else tuple(game.minimal_actions)
        title = game.module.title().replace("_", "")
        env_id = env_id if env_id is not None else f"MinAtar/{title}-v{0 if full_actions else 1}"
        self.spec = EnvSpec(env_id, (GRID, GRID, game.n_channels), True, n_actions=len(self.actions),
                            max_episode_steps=steps)
        self._defaults = (sticky_prob, bool(ramping), steps)
        self._params_cache: dict[torch.device, MinAtarParams] = {}
        self._table_cache: dict[torch.device, torch.Tensor] = {}

    def __repr__(self) -> str:
        s, r, m = self._defaults
        return f"MinAtarEnv({self.spec.env_id}, sticky_prob={s}, ramping={r}, max_steps={m})"

    # ------------------------------------------------------------------------------------------------ params
    def default_params(self, device: torch.device | str = "cpu") -> MinAtarParams:
        """``MinAtarParams`` of 0-dim tensors on ``device`` (the constructor's defaults)."""
        dev = torch.device(device)
        s, r, m = self._defaults
        return MinAtarParams(torch.tensor(s, dtype=torch.float32, device=dev), torch.tensor(r, device=dev),
                             torch.tensor(m, dtype=torch.int64, device=dev))

    def _params(self, params: MinAtarParams | None, device: torch.device) -> MinAtarParams:
        if params is not None:
            return params
        p = self._params_cache.get(device)
        if p is None:
            p = self._params_cache[device] = self.default_params(device)
        return p

    def _table(self, device: torch.device) -> torch.Tensor:
        t = self._table_cache.get(device)
        if t is None:
            t = self._table_cache[device] = torch.tensor(self.actions, dtype=torch.int64, device=device)
        return t

    # ------------------------------------------------------------------------------------------------ draws
    def sticky_draws(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The sticky-action uniforms ``[n]`` float32 of one step."""
        return torch.rand(n, generator=generator, device=generator.device)

    # ------------------------------------------------------------------------------------------------ contract
    def reset(self, batch_size: int, generator: torch.Generator, params: MinAtarParams | None = None
              ) -> tuple[MinAtarState, torch.Tensor]:
        """``batch_size`` fresh episodes (``last_action = 0``, ``t = 0``): ``(state, obs [B, 10, 10, C] bool)``."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive int")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator={generator!r}: expected a torch.Generator")
        dev = generator.device
        draws = self.game.reset_draws(batch_size, generator, dev)
        return self.reset_with_draws(draws, params, dev)

    def reset_with_draws(self, draws: Any, params: MinAtarParams | None = None,
                         device: torch.device | str | None = None) -> tuple[MinAtarState, torch.Tensor]:
        """:meth:`reset` from given reset draws (``game.reset_draws`` layout, batch ``B``)."""
        first = draws if isinstance(draws, torch.Tensor) else next(iter(draws), None)
        if first is None:
            raise ValueError("reset_with_draws: draws hold no tensor; pass device= and use reset() for such games")
        batch, dev = first.shape[0], first.device
        p = self._params(params, dev)
        game = self.game.init(draws, p.ramping.expand(batch))
        zeros = torch.zeros(batch, dtype=torch.int64, device=dev)
        state = MinAtarState(game, zeros, zeros)
        return state, self.game.observation(game)

    def step(self, state: MinAtarState, action: torch.Tensor, generator: torch.Generator,
             params: MinAtarParams | None = None) -> StepResult:
        """:meth:`transition` then :meth:`reset_done` on ``terminated | truncated`` (same draws, same order; the
        final observations are not computed). Returns ``(state, obs, reward, terminated, truncated)``."""
        dev = state.t.device
        p = self._params(params, dev)
        batch = state.t.shape[0]
        sticky_u = self.sticky_draws(batch, generator)
        draws = self.game.step_draws(batch, generator, dev)
        nxt, reward, terminated, truncated = self._advance(state, action, sticky_u, draws, p)
        fresh = self.game.reset_draws(batch, generator, dev)
        merged, obs = self._merge_reset(terminated | truncated, nxt, fresh, p)
        return merged, obs, reward, terminated, truncated

    def transition(self, state: MinAtarState, action: torch.Tensor, generator: torch.Generator,
                   params: MinAtarParams | None = None) -> StepResult:
        """One step without auto-reset: ``(state, obs, reward, terminated, truncated)``, the state and ``obs`` of
        rows that ended being their last ones. Draws the sticky uniforms, then ``game.step_draws``."""
        batch = state.t.shape[0]
        sticky_u = self.sticky_draws(batch, generator)
        draws = self.game.step_draws(batch, generator, state.t.device)
        return self.transition_with_draws(state, action, sticky_u, draws, params)

    def transition_with_draws(self, state: MinAtarState, action: torch.Tensor, sticky_u: torch.Tensor, draws: Any,
                              params: MinAtarParams | None = None) -> StepResult:
        """The deterministic core of :meth:`transition`: ``sticky_u [B]`` uniforms (the action repeats the previous
        one where ``sticky_u < sticky_prob``, MinAtar's ``random.rand() < sticky_action_prob``) and the game's step
        ``draws``."""
        p = self._params(params, state.t.device)
        nxt, reward, terminated, truncated = self._advance(state, action, sticky_u, draws, p)
        return nxt, self.game.observation(nxt.game), reward, terminated, truncated

    def reset_done(self, done: torch.Tensor, state: MinAtarState, obs: torch.Tensor | None, generator: torch.Generator,
                   params: MinAtarParams | None = None) -> tuple[MinAtarState, torch.Tensor]:
        """Replace the rows where ``done [B]`` by fresh episodes (``t = 0``, ``last_action`` kept as MinAtar keeps
        it). One batch of ``game.reset_draws`` is drawn whatever ``done`` holds; ``obs`` is recomputed."""
        batch = state.t.shape[0]
        self._check_done(done, batch)
        fresh = self.game.reset_draws(batch, generator, state.t.device)
        return self._merge_reset(done, state, fresh, self._params(params, state.t.device))

    def reset_done_with_draws(self, done: torch.Tensor, state: MinAtarState, draws: Any,
                              params: MinAtarParams | None = None) -> tuple[MinAtarState, torch.Tensor]:
        """The deterministic core of :meth:`reset_done` with given reset ``draws`` (batch ``B``)."""
        self._check_done(done, state.t.shape[0])
        return self._merge_reset(done, state, draws, self._params(params, state.t.device))

    def observation(self, state: MinAtarState) -> torch.Tensor:
        """``[B, 10, 10, C]`` bool observation of ``state``."""
        return self.game.observation(state.game)

    # ------------------------------------------------------------------------------------------------ pieces
    def _check_done(self, done: torch.Tensor, batch: int) -> None:
        if not isinstance(done, torch.Tensor) or done.shape != (batch,) or done.dtype != torch.bool:
            shape = tuple(done.shape) if isinstance(done, torch.Tensor) else type(done).__name__
            raise ValueError(f"{self.spec.env_id}: done has shape {shape}, expected a ({batch},) bool tensor")

    def _check_action(self, action: torch.Tensor, batch: int) -> torch.Tensor:
        if not isinstance(action, torch.Tensor):
            raise TypeError(f"{self.spec.env_id}: action must be a torch.Tensor, got {type(action).__name__}")
        if action.shape != (batch,):
            raise ValueError(f"{self.spec.env_id}: action shape {tuple(action.shape)}, expected ({batch},) integer "
                             f"actions")
        if action.dtype.is_floating_point or action.dtype.is_complex or action.dtype == torch.bool:
            raise TypeError(f"{self.spec.env_id}: action dtype {action.dtype}, expected an integer dtype (int64)")
        if action.device.type == "cpu":  # a range check costs no device sync on the CPU
            lo, hi = torch.aminmax(action)
            if int(lo) < 0 or int(hi) >= len(self.actions):
                raise ValueError(f"{self.spec.env_id}: actions must lie in [0, {len(self.actions)}), got values in "
                                 f"[{int(lo)}, {int(hi)}]")
        return action

    def _advance(self, state: MinAtarState, action: torch.Tensor, sticky_u: torch.Tensor, draws: Any,
                 p: MinAtarParams) -> tuple[MinAtarState, torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = state.t.shape[0]
        action = self._check_action(action, batch)
        full = self._table(action.device)[action.long()]
        a = torch.where(sticky_u < p.sticky_prob, state.last_action, full)
        old = state.game
        game, reward, terminal = self.game.act(old, a, draws, p.ramping.expand(batch))
        # MinAtar's act returns (0, True) and changes nothing once the game is terminal (a game state without a
        # ``terminal`` field must do this itself).
        was = getattr(old, "terminal", None)
        if was is not None:
            game = where_rows(was, old, game)
            reward = reward.masked_fill(was, 0.0)
            terminal = terminal | was
        t = state.t + 1
        truncated = (t >= p.max_steps) & ~terminal
        return MinAtarState(game, a, t), reward, terminal, truncated

    def _merge_reset(self, done: torch.Tensor, state: MinAtarState, draws: Any,
                     p: MinAtarParams) -> tuple[MinAtarState, torch.Tensor]:
        batch = done.shape[0]
        fresh = self.game.init(draws, p.ramping.expand(batch))
        game = where_rows(done, fresh, state.game)
        merged = MinAtarState(game, state.last_action, state.t.masked_fill(done, 0))
        return merged, self.game.observation(game)

    # ------------------------------------------------------------------------------------------------ interop
    def state_from_minatar(self, envs: Sequence[Any], t: Sequence[int] | torch.Tensor | None = None,
                           device: torch.device | str = "cpu") -> MinAtarState:
        """Batch live ``minatar.Environment`` objects (this game): game fields, ``last_action``, ``t`` (default 0)."""
        if len(envs) == 0:
            raise ValueError("state_from_minatar: expected a non-empty list of minatar.Environment objects")
        for i, env in enumerate(envs):
            name = getattr(env, "env_name", None)
            if name != self.game.module:
                raise ValueError(f"envs[{i}] plays {name!r}, expected {self.game.module!r}")
        dev = torch.device(device)
        rows = [self.game.from_minatar(env.env, dev) for env in envs]
        game = type(rows[0])(*(torch.cat(f) for f in zip(*rows)))
        last = torch.tensor([int(env.last_action) for env in envs], dtype=torch.int64, device=dev)
        if t is None:
            steps = torch.zeros(len(envs), dtype=torch.int64, device=dev)
        else:
            steps = torch.as_tensor(t, dtype=torch.int64).to(dev).reshape(len(envs))
        return MinAtarState(game, last, steps)
