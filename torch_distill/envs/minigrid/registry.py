"""Registry of batched MiniGrid envs (``make("MiniGrid-DoorKey-8x8-v0")``) and the env class.

The env follows ``torch_distill.envs.core.FunctionalEnv``::

    env = make("MiniGrid-DoorKey-8x8-v0")
    params = env.default_params()
    g = torch.Generator().manual_seed(0)
    state, obs = env.reset(4096, g, params)
    state, obs, reward, terminated, truncated = env.step(state, action, g, params)

``obs`` is a :class:`MiniGridObs` (``image [B, 7, 7, 3]`` uint8, ``direction [B]``, ``mission [B, 4]``
uint8 -- the mission's object types/colours as integers, zeros for ids without a mission target).

Ids (``registered_ids()``, 62): Empty 5/6/8/16 and Random 5/6, DoorKey 5/6/8/16, FourRooms, LavaGap S5-S7,
SimpleCrossing / LavaCrossing S9N1-S9N3 and S11N5, DistShift 1/2, Dynamic-Obstacles 5/6/8/16 and Random 5/6
(``action_space.n = 3``), GoToDoor 5/6/8, Fetch 5x5-N2/6x6-N2/8x8-N3, GoToObject 6x6-N2/8x8-N2, PutNear
6x6-N2/8x8-N3, RedBlueDoors 6/8, Unlock, UnlockPickup, BlockedUnlockPickup, KeyCorridor S3R1-S6R3,
LockedRoom, Memory S7/S9/S11/S13 and S13Random/S17Random, MultiRoom N2-S4/N4-S5 (v0: 6 rooms, v1: 4)/N6.
Each is replayed step for step against Farama MiniGrid in ``tests/envs/test_minigrid.py`` and its layout
distribution checked in ``tests/envs/test_minigrid_layouts.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from torch_distill.envs.core import EnvSpec
from torch_distill.envs.minigrid.core import (
    N_ACTIONS,
    VIEW_SIZE,
    KernelTables,
    Layout,
    MiniGridObs,
    MiniGridParams,
    MiniGridState,
    build_tables,
    observe,
    reset_rows,
    transition,
)
from torch_distill.envs.minigrid.layouts import (
    CrossingLayout,
    DistShiftLayout,
    DoorKeyLayout,
    DynamicObstaclesLayout,
    EmptyLayout,
    FourRoomsLayout,
    GoToDoorLayout,
    KeyCorridorLayout,
    LavaGapLayout,
    LockedRoomLayout,
    MemoryLayout,
    MultiRoomLayout,
    LayoutGenerator,
    ObjectsLayout,
    RedBlueDoorsLayout,
    UnlockLayout,
)
from torch_distill.envs.minigrid.tasks import TASKS, task_step

__all__ = ["MiniGridConfig", "BatchedMiniGrid", "make", "registered_ids", "REGISTRY"]


@dataclass(frozen=True)
class MiniGridConfig:
    """Static description of one MiniGrid id.

    Attributes:
        env_id: MiniGrid id, e.g. ``"MiniGrid-DoorKey-8x8-v0"``.
        layout: factory of the batched layout generator.
        max_steps: MiniGrid's default ``max_steps`` for the id.
        see_through_walls: MiniGrid's ``see_through_walls`` (True for Empty-*: no occlusion).
        has_boxes: whether boxes can occur (the observation then hides box contents).
        walled: whether the grid border is always walls (lets the view skip an outside-the-grid select).
        task: the id's extra rules (see :mod:`torch_distill.envs.minigrid.tasks`).
        n_actions: size of the action space (MiniGrid's ``action_space.n``: 3 for Dynamic-Obstacles).
        n_obstacles: number of moving obstacles (Dynamic-Obstacles).
    """

    env_id: str
    layout: Callable[[], LayoutGenerator]
    max_steps: int
    see_through_walls: bool = False
    has_boxes: bool = False
    walled: bool = True
    task: str = "goal"
    n_actions: int = N_ACTIONS
    n_obstacles: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"{self.env_id}: unknown task {self.task!r}; expected one of {TASKS}")


REGISTRY: dict[str, MiniGridConfig] = {}


def _register(cfg: MiniGridConfig) -> None:
    REGISTRY[cfg.env_id] = cfg


for _n in (5, 6, 8, 16):
    _register(
        MiniGridConfig(f"MiniGrid-Empty-{_n}x{_n}-v0", (lambda n=_n: EmptyLayout(n, False)), 4 * _n * _n, True)
    )
    _register(
        MiniGridConfig(f"MiniGrid-DoorKey-{_n}x{_n}-v0", (lambda n=_n: DoorKeyLayout(n)), 10 * _n * _n)
    )
for _n in (5, 6):
    _register(
        MiniGridConfig(f"MiniGrid-Empty-Random-{_n}x{_n}-v0", (lambda n=_n: EmptyLayout(n, True)), 4 * _n * _n, True)
    )
_register(MiniGridConfig("MiniGrid-FourRooms-v0", FourRoomsLayout, 100))
for _n in (5, 6, 7):
    _register(MiniGridConfig(f"MiniGrid-LavaGapS{_n}-v0", (lambda n=_n: LavaGapLayout(n)), 4 * _n * _n))
for _s, _k in ((9, 1), (9, 2), (9, 3), (11, 5)):
    for _name, _obst in (("Lava", "lava"), ("Simple", "wall")):
        _register(
            MiniGridConfig(
                f"MiniGrid-{_name}CrossingS{_s}N{_k}-v0",
                (lambda s=_s, k=_k, o=_obst: CrossingLayout(s, k, o)),
                4 * _s * _s,
            )
        )
for _i, _row in ((1, 2), (2, 5)):
    _register(
        MiniGridConfig(f"MiniGrid-DistShift{_i}-v0", (lambda r=_row: DistShiftLayout(r)), 4 * 9 * 7, True)
    )
for _n, _k in ((5, 2), (6, 3), (8, 4), (16, 8)):
    _register(
        MiniGridConfig(
            f"MiniGrid-Dynamic-Obstacles-{_n}x{_n}-v0",
            (lambda n=_n, k=_k: DynamicObstaclesLayout(n, k, False)),
            4 * _n * _n,
            True,
            task="dynamic_obstacles",
            n_actions=3,
            n_obstacles=_k,
        )
    )
for _n, _k in ((5, 2), (6, 3)):
    _register(
        MiniGridConfig(
            f"MiniGrid-Dynamic-Obstacles-Random-{_n}x{_n}-v0",
            (lambda n=_n, k=_k: DynamicObstaclesLayout(n, k, True)),
            4 * _n * _n,
            True,
            task="dynamic_obstacles",
            n_actions=3,
            n_obstacles=_k,
        )
    )
for _n in (5, 6, 8):
    _register(
        MiniGridConfig(f"MiniGrid-GoToDoor-{_n}x{_n}-v0", (lambda n=_n: GoToDoorLayout(n)), 4 * _n * _n, True,
                       task="goto")
    )
for _n, _k in ((5, 2), (6, 2), (8, 3)):
    _register(
        MiniGridConfig(f"MiniGrid-Fetch-{_n}x{_n}-N{_k}-v0", (lambda n=_n, k=_k: ObjectsLayout("fetch", n, k)),
                       5 * _n * _n, True, task="fetch")
    )
for _n, _k in ((6, 2), (8, 2)):
    _register(
        MiniGridConfig(f"MiniGrid-GoToObject-{_n}x{_n}-N{_k}-v0", (lambda n=_n, k=_k: ObjectsLayout("goto", n, k)),
                       5 * _n * _n, True, has_boxes=True, task="goto")
    )
for _n, _k in ((6, 2), (8, 3)):
    _register(
        MiniGridConfig(f"MiniGrid-PutNear-{_n}x{_n}-N{_k}-v0", (lambda n=_n, k=_k: ObjectsLayout("put_near", n, k)),
                       5 * _n, True, has_boxes=True, task="put_near")
    )
for _n in (6, 8):
    _register(
        MiniGridConfig(f"MiniGrid-RedBlueDoors-{_n}x{_n}-v0", (lambda n=_n: RedBlueDoorsLayout(n)), 20 * _n * _n,
                       task="red_blue_doors")
    )
_register(MiniGridConfig("MiniGrid-Unlock-v0", lambda: UnlockLayout("unlock"), 8 * 36, task="unlock"))
_register(
    MiniGridConfig("MiniGrid-UnlockPickup-v0", lambda: UnlockLayout("pickup"), 8 * 36, has_boxes=True,
                   task="pickup_target")
)
_register(
    MiniGridConfig("MiniGrid-BlockedUnlockPickup-v0", lambda: UnlockLayout("blocked"), 16 * 36, has_boxes=True,
                   task="pickup_target")
)
for _s, _r in ((3, 1), (3, 2), (3, 3), (4, 3), (5, 3), (6, 3)):
    _register(
        MiniGridConfig(f"MiniGrid-KeyCorridorS{_s}R{_r}-v0", (lambda s=_s, r=_r: KeyCorridorLayout(s, r)),
                       30 * _s * _s, task="pickup_target")
    )
_register(MiniGridConfig("MiniGrid-LockedRoom-v0", LockedRoomLayout, 10 * 19))
for _n, _rand in ((7, False), (9, False), (11, False), (13, False), (13, True), (17, True)):
    _register(
        MiniGridConfig(
            f"MiniGrid-MemoryS{_n}{'Random' if _rand else ''}-v0",
            (lambda n=_n, r=_rand: MemoryLayout(n, r)),
            5 * _n * _n,
            task="memory",
        )
    )
# MultiRoom: (id, rooms, max room size, parallel chain attempts); N4-S5-v0 has 6 rooms in MiniGrid 3.2
for _id, _n, _s, _k in (("N2-S4-v0", 2, 4, 5), ("N4-S5-v0", 6, 5, 16), ("N4-S5-v1", 4, 5, 10), ("N6-v0", 6, 10, 40)):
    _register(
        MiniGridConfig(
            f"MiniGrid-MultiRoom-{_id}", (lambda n=_n, s=_s, k=_k: MultiRoomLayout(n, s, k)), 20 * _n, walled=False
        )
    )


def registered_ids() -> list[str]:
    """All ids :func:`make` accepts, sorted."""
    return sorted(REGISTRY)


class BatchedMiniGrid:
    """A natively batched MiniGrid env (``FunctionalEnv``) for one MiniGrid id.

    Args:
        config: the id's :class:`MiniGridConfig`.
        compile: wrap the deterministic part of ``step`` (transition, auto-reset selection, layout
            building, observation) in ``torch.compile``; randomness is drawn eagerly outside it.
    """

    def __init__(self, config: MiniGridConfig, compile: bool = False) -> None:
        self.config = config
        self.layout: LayoutGenerator = config.layout()
        self.height = self.layout.height
        self.width = self.layout.width
        self.spec = EnvSpec(
            env_id=config.env_id,
            obs_shape=(VIEW_SIZE, VIEW_SIZE, 3),
            discrete=True,
            n_actions=config.n_actions,
            max_episode_steps=config.max_steps,
        )
        self._default_params: dict[str, MiniGridParams] = {}
        self._step_fn: Callable[..., tuple[MiniGridState, MiniGridObs, torch.Tensor, torch.Tensor, torch.Tensor]]
        # Inductor's vectorised CPU code for these gathers/LUT lookups measured slower than scalar loops on
        # the 2-core AVX-512 test machine (DoorKey-8x8, B=4096: 18 ms vs 4 ms per step), hence simdlen=1.
        self._step_fn = (
            torch.compile(self._step_kernel, dynamic=False, options={"cpp.simdlen": 1})
            if compile
            else self._step_kernel
        )

    def __repr__(self) -> str:
        return f"BatchedMiniGrid({self.config.env_id!r}, {self.height}x{self.width})"

    # --- pieces ---------------------------------------------------------------------------------------------
    def tables(self, device: torch.device | str) -> KernelTables:
        """Lookup tables of this grid size on ``device`` (cached)."""
        return build_tables(self.height, self.width, device)

    def default_params(self, device: torch.device | str = "cpu") -> MiniGridParams:
        """``MiniGridParams(max_steps=MiniGrid's default for the id)`` on ``device``."""
        return MiniGridParams(max_steps=torch.tensor(self.config.max_steps, dtype=torch.int32, device=device))

    def observe(self, state: MiniGridState) -> MiniGridObs:
        """MiniGrid's observation of ``state`` (see :func:`observe`)."""
        c = self.config
        return observe(state, self.tables(state.grid.device), c.see_through_walls, c.has_boxes, c.walled)

    def task_transition(
        self,
        state: MiniGridState,
        action: torch.Tensor,
        obstacle_u: torch.Tensor | None = None,
        forced_obstacles: torch.Tensor | None = None,
    ) -> tuple[MiniGridState, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One MiniGrid step of this id without auto-reset: ``(state, reward, terminated, truncated)``.

        ``obstacle_u [B, K]`` (uniforms) or ``forced_obstacles [B, K, 2]`` (targets, e.g. MiniGrid's own moves)
        drive the Dynamic-Obstacles moves; ``obstacle_u`` defaults to 0.5.
        """
        if obstacle_u is None and forced_obstacles is None and self.config.n_obstacles:
            obstacle_u = torch.full(state.obstacles.shape[:2], 0.5, dtype=torch.float64, device=state.grid.device)
        nxt, r, te, tr, _ = task_step(
            self.config.task, state, action, self.tables(state.grid.device), obstacle_u, forced_obstacles
        )
        return nxt, r, te, tr

    def _check_state(self, state: MiniGridState) -> None:
        g = state.grid
        if g.dim() != 4 or tuple(g.shape[1:]) != (self.height, self.width, 3) or g.dtype != torch.uint8:
            raise ValueError(
                f"{self.config.env_id}: state.grid must be uint8 [B, {self.height}, {self.width}, 3], "
                f"got {tuple(g.shape)} {g.dtype}"
            )

    # --- FunctionalEnv ---------------------------------------------------------------------------------------
    def reset(
        self, batch_size: int, generator: torch.Generator, params: MiniGridParams | None = None
    ) -> tuple[MiniGridState, MiniGridObs]:
        """Fresh episodes for ``batch_size`` envs drawn with ``generator`` (on the generator's device)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        device = generator.device
        params = params if params is not None else self.default_params(device)
        lay = self.layout.sample(batch_size, generator)
        b = batch_size
        state = MiniGridState(
            grid=lay.grid.expand(b, -1, -1, -1).contiguous(),
            agent_pos=lay.agent_pos,
            agent_dir=lay.agent_dir,
            carrying=self.tables(device).empty3.repeat(b, 1),
            step_count=torch.zeros(b, dtype=torch.int32, device=device),
            max_steps=torch.as_tensor(params.max_steps, device=device).to(torch.int32).expand(b).contiguous(),
            mission=(
                lay.mission if lay.mission is not None else torch.zeros(b, 4, dtype=torch.uint8, device=device)
            ),
            target_pos=(
                lay.target_pos if lay.target_pos is not None else torch.zeros(b, 2, dtype=torch.int64, device=device)
            ),
            obstacles=(
                lay.obstacles
                if lay.obstacles is not None
                else torch.zeros(b, 0, 2, dtype=torch.int64, device=device)
            ),
        )
        return state, self.observe(state)

    def _step_kernel(
        self,
        state: MiniGridState,
        action: torch.Tensor,
        draws: tuple[torch.Tensor, ...],
        max_steps: torch.Tensor,
        obstacle_u: torch.Tensor | None = None,
    ) -> tuple[MiniGridState, MiniGridObs, torch.Tensor, torch.Tensor, torch.Tensor]:
        tables = self.tables(state.grid.device)
        if self.config.task == "goal":
            nxt, reward, terminated, truncated = transition(state, action, tables)
        else:
            nxt, reward, terminated, truncated, _ = task_step(self.config.task, state, action, tables, obstacle_u)
        fresh: Layout = self.layout.build(draws)
        nxt = reset_rows(nxt, terminated | truncated, fresh, max_steps, tables.empty3)
        c = self.config
        obs = observe(nxt, tables, c.see_through_walls, c.has_boxes, c.walled)
        return nxt, obs, reward, terminated, truncated

    def _params_on(self, state: MiniGridState, params: MiniGridParams | None) -> MiniGridParams:
        if params is None:
            dev = str(state.grid.device)
            if dev not in self._default_params:  # cached: no host-to-device copy per step
                self._default_params[dev] = self.default_params(state.grid.device)
            params = self._default_params[dev]
        return params

    def _obstacle_draws(self, b: int, generator: torch.Generator) -> torch.Tensor | None:
        if not self.config.n_obstacles:
            return None
        k = self.config.n_obstacles
        return torch.rand(b, k, generator=generator, dtype=torch.float64, device=generator.device)

    def transition(
        self,
        state: MiniGridState,
        action: torch.Tensor,
        generator: torch.Generator,
        params: MiniGridParams | None = None,
    ) -> tuple[MiniGridState, MiniGridObs, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`step` without the auto-reset (the FunctionalEnv contract): ``(state, obs, reward, terminated,
        truncated)`` with the last state and observation of the rows that ended. It draws the obstacle moves,
        :meth:`reset_done` the fresh layouts: the same draws as ``step`` (which observes once instead of twice)."""
        b = state.grid.shape[0]
        if action.shape != (b,):
            raise ValueError(f"action must have shape [{b}], got {tuple(action.shape)}")
        tables = self.tables(state.grid.device)
        obstacle_u = self._obstacle_draws(b, generator)
        if self.config.task == "goal":
            nxt, reward, terminated, truncated = transition(state, action, tables)
        else:
            nxt, reward, terminated, truncated, _ = task_step(self.config.task, state, action, tables, obstacle_u)
        return nxt, self.observe(nxt), reward, terminated, truncated

    def reset_done(
        self,
        done: torch.Tensor,
        state: MiniGridState,
        obs: MiniGridObs,
        generator: torch.Generator,
        params: MiniGridParams | None = None,
    ) -> tuple[MiniGridState, MiniGridObs]:
        """Replace the rows where ``done [B]`` by fresh episodes drawn with ``generator``: ``(state, obs)``."""
        params = self._params_on(state, params)
        tables = self.tables(state.grid.device)
        fresh: Layout = self.layout.build(self.layout.draw(state.grid.shape[0], generator))
        max_steps = torch.as_tensor(params.max_steps, device=state.grid.device)
        nxt = reset_rows(state, done, fresh, max_steps, tables.empty3)
        return nxt, self.observe(nxt)

    def step(
        self,
        state: MiniGridState,
        action: torch.Tensor,
        generator: torch.Generator,
        params: MiniGridParams | None = None,
    ) -> tuple[MiniGridState, MiniGridObs, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step every env; rows that end are replaced by fresh episodes (their ``obs`` is the reset obs).

        Args:
            state: batched state (``B`` envs).
            action: ``[B]`` integer actions in ``0..6``.
            generator: source of the fresh layouts for auto-reset (and of the obstacle moves).
            params: :class:`MiniGridParams` (``max_steps`` of fresh episodes); defaults to the id's.

        Returns:
            ``(state, obs, reward [B] float32, terminated [B] bool, truncated [B] bool)``.
        """
        b = state.grid.shape[0]
        if action.shape != (b,):
            raise ValueError(f"action must have shape [{b}], got {tuple(action.shape)}")
        max_steps = self._params_on(state, params).max_steps
        obstacle_u = self._obstacle_draws(b, generator)  # the obstacle moves first, then fresh layouts (as
        draws = self.layout.draw(b, generator)  # transition + reset_done draw them)
        return self._step_fn(
            state, action, draws, torch.as_tensor(max_steps, device=state.grid.device), obstacle_u
        )


def make(env_id: str, compile: bool = False) -> BatchedMiniGrid:
    """Build the batched env of a MiniGrid id (``"MiniGrid-DoorKey-8x8-v0"``; the ``MiniGrid-`` prefix and
    ``-v0`` suffix may be omitted).

    Raises:
        KeyError: unknown id (the message lists the supported ids).
    """
    key = env_id
    if key not in REGISTRY:
        cand = key if key.startswith("MiniGrid-") else f"MiniGrid-{key}"
        cand = cand if cand.endswith("-v0") else f"{cand}-v0"
        if cand not in REGISTRY:
            raise KeyError(f"unknown MiniGrid id {env_id!r}; supported: {', '.join(registered_ids())}")
        key = cand
    return BatchedMiniGrid(REGISTRY[key], compile=compile)
