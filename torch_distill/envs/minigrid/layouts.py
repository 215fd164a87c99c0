"""Batched on-device layout generators with the same distribution as MiniGrid's ``_gen_grid``.

MiniGrid draws layouts with Python's RNG and rejection loops (``place_obj`` retries until it hits an empty
cell). Each generator here draws the same random choices for a whole batch at once and maps them to cells
without loops: a uniform cell among the ``n`` cells ``place_obj`` would accept is one uniform integer
``k < n`` mapped through an enumeration of those cells, so the distribution is the same as MiniGrid's
(not the same draws). Every generator is split in ``draw`` (random integers, uses only the given
``torch.Generator``) and ``build`` (deterministic tensor code), so ``build`` can be compiled.
"""

from __future__ import annotations

from typing import Protocol

import torch

from torch_distill.envs.minigrid.core import (
    COLOR,
    EMPTY_CELL,
    GOAL_CELL,
    LAVA_CELL,
    OBJ,
    STATE_LOCKED,
    WALL_CELL,
    Layout,
)

__all__ = [
    "LayoutGenerator",
    "EmptyLayout",
    "DoorKeyLayout",
    "FourRoomsLayout",
    "LavaGapLayout",
    "DistShiftLayout",
    "CrossingLayout",
    "DynamicObstaclesLayout",
    "GoToDoorLayout",
    "ObjectsLayout",
    "RedBlueDoorsLayout",
    "UnlockLayout",
    "KeyCorridorLayout",
    "LockedRoomLayout",
    "MemoryLayout",
    "MultiRoomLayout",
    "pick_free",
    "randint",
    "wall_rect_grid",
]


def randint(high: torch.Tensor | int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform integers in ``[0, high)`` for every row (``high`` an int or ``[B]`` tensor of positive ints).

    Uses float64 uniforms (``floor(u * high)``, exact enough for ``high < 2**20``) so that a per-row ``high``
    costs one draw. Returns ``[B]`` int64 on the generator's device.
    """
    u = torch.rand(batch_size, generator=generator, dtype=torch.float64, device=generator.device)
    return uniform_to_int(u, high)


def uniform_to_int(u: torch.Tensor, high: torch.Tensor | int) -> torch.Tensor:
    """``floor(u * high)`` clamped below ``high`` for float64 uniforms ``u`` in ``[0, 1)``."""
    k = (u * high).long()
    if isinstance(high, int):
        return k.clamp_(max=high - 1)
    return torch.minimum(k, high - 1)


def wall_rect_grid(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[H, W, 3]`` uint8 grid with MiniGrid's ``wall_rect(0, 0, W, H)`` border and empty inside."""
    g = torch.tensor(EMPTY_CELL, dtype=torch.uint8).repeat(height, width, 1)
    wall = torch.tensor(WALL_CELL, dtype=torch.uint8)
    g[0, :] = wall
    g[-1, :] = wall
    g[:, 0] = wall
    g[:, -1] = wall
    return g.to(device)


_CONST: dict[tuple[tuple[int, ...], str], torch.Tensor] = {}


def _const(values: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A cached uint8 constant on ``device`` (no host-to-device copy inside ``step``)."""
    key = (values, str(device))
    if key not in _CONST:
        _CONST[key] = torch.tensor(values, dtype=torch.uint8, device=device)
    return _CONST[key]


_CONST64: dict[tuple[tuple[int, ...], str], torch.Tensor] = {}


def _const64(values: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A cached int64 constant on ``device`` (no host-to-device copy inside ``step``)."""
    key = (values, str(device))
    if key not in _CONST64:
        _CONST64[key] = torch.tensor(values, dtype=torch.int64, device=device)
    return _CONST64[key]


def _put(grid: torch.Tensor, x: torch.Tensor, y: torch.Tensor, cell: tuple[int, int, int]) -> None:
    """In place: ``grid[b, y[b], x[b]] = cell`` for every row ``b`` of ``grid [B, H, W, 3]``."""
    b = grid.shape[0]
    rows = torch.arange(b, device=grid.device)
    grid[rows, y, x] = _const(cell, grid.device)


class LayoutGenerator(Protocol):
    """What the env needs from a layout generator."""

    height: int
    width: int

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]: ...

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout: ...

    def sample(self, batch_size: int, generator: torch.Generator) -> Layout: ...


class _Base:
    height: int
    width: int

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        raise NotImplementedError

    def sample(self, batch_size: int, generator: torch.Generator) -> Layout:
        """A batch of ``batch_size`` fresh episodes drawn with ``generator``."""
        return self.build(self.draw(batch_size, generator))


class EmptyLayout(_Base):
    """``minigrid/envs/empty.py``: walls around, goal at ``(W-2, H-2)``.

    Fixed start: agent at ``(1, 1)`` facing east. Random start (``Empty-Random-*``): ``place_agent()``, i.e. a
    uniform interior cell other than the goal, and a uniform direction.
    """

    def __init__(self, size: int, random_start: bool) -> None:
        self.height = self.width = size
        self.random_start = random_start
        self._template: dict[str, torch.Tensor] = {}

    def template(self, device: torch.device) -> torch.Tensor:
        key = str(device)
        if key not in self._template:
            g = wall_rect_grid(self.height, self.width)
            g[self.height - 2, self.width - 2] = torch.tensor(GOAL_CELL, dtype=torch.uint8)
            self._template[key] = g.to(device)
        return self._template[key]

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        if not self.random_start:
            return (torch.zeros(batch_size, dtype=torch.int64, device=generator.device),)
        # Interior cells in row-major order; the goal (W-2, H-2) is the last one, so k < n - 1 excludes it.
        n = (self.width - 2) * (self.height - 2) - 1
        return randint(n, batch_size, generator), randint(4, batch_size, generator)

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        device = draws[0].device
        b = draws[0].shape[0]
        grid = self.template(device).unsqueeze(0)
        if not self.random_start:
            pos = torch.ones(b, 2, dtype=torch.int64, device=device)
            return Layout(grid, pos, torch.zeros(b, dtype=torch.int64, device=device))
        k, d = draws
        iw = self.width - 2
        pos = torch.stack([1 + k % iw, 1 + k // iw], dim=1)
        return Layout(grid, pos, d)


class DoorKeyLayout(_Base):
    """``minigrid/envs/doorkey.py``.

    Goal at ``(W-2, H-2)``; a vertical wall at ``split ~ U{2..W-3}``; agent uniform over the left room
    ``x in [1, split-1], y in [1, H-2]`` with a uniform direction; a locked yellow door at
    ``(split, door_y)`` with ``door_y ~ U{1..H-3}`` (MiniGrid's ``_rand_int(1, height - 2)``); a yellow key
    uniform over the left room minus the agent's cell.
    """

    def __init__(self, size: int) -> None:
        self.height = self.width = size
        self._templates: dict[str, torch.Tensor] = {}

    def templates(self, device: torch.device) -> torch.Tensor:
        """``[W - 4, H, W, 3]``: walls, goal and the splitting wall at ``x = 2 + i`` for template ``i``."""
        key = str(device)
        if key not in self._templates:
            g = wall_rect_grid(self.height, self.width)
            g[self.height - 2, self.width - 2] = torch.tensor(GOAL_CELL, dtype=torch.uint8)
            bank = g.unsqueeze(0).repeat(self.width - 4, 1, 1, 1)
            for i in range(self.width - 4):
                bank[i, :, 2 + i] = torch.tensor(WALL_CELL, dtype=torch.uint8)
            self._templates[key] = bank.to(device)
        return self._templates[key]

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        w, h = self.width, self.height
        u = torch.rand(5, batch_size, generator=generator, dtype=torch.float64, device=generator.device)
        split = 2 + uniform_to_int(u[0], w - 4)
        n = (split - 1) * (h - 2)
        agent_k = uniform_to_int(u[1], n)
        agent_dir = uniform_to_int(u[2], 4)
        door_y = 1 + uniform_to_int(u[3], h - 3)
        key_k = uniform_to_int(u[4], n - 1)
        return split, agent_k, agent_dir, door_y, key_k

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        split, agent_k, agent_dir, door_y, key_k = draws
        grid = self.templates(split.device).index_select(0, split - 2)
        rw = split - 1
        key_k = key_k + (key_k >= agent_k).long()
        _put(grid, split, door_y, (OBJ["door"], COLOR["yellow"], STATE_LOCKED))
        _put(grid, 1 + key_k % rw, 1 + key_k // rw, (OBJ["key"], COLOR["yellow"], 0))
        pos = torch.stack([1 + agent_k % rw, 1 + agent_k // rw], dim=1)
        return Layout(grid, pos, agent_dir)


class FourRoomsLayout(_Base):
    """``minigrid/envs/fourrooms.py`` (19x19).

    Walls around and a cross at ``x = 9`` and ``y = 9`` with four gaps: ``(9, U{1..8})``, ``(U{1..8}, 9)``,
    ``(U{10..17}, 9)``, ``(9, U{10..17})``. Agent uniform over the 260 empty cells (256 fixed room cells +
    the 4 gaps), uniform direction; goal uniform over the empty cells minus the agent's.
    """

    def __init__(self) -> None:
        self.height = self.width = 19
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(template [19, 19, 3] uint8, room_cells [256, 2] int64 (x, y) row-major)``."""
        key = str(device)
        if key not in self._cache:
            g = wall_rect_grid(19, 19)
            wall = torch.tensor(WALL_CELL, dtype=torch.uint8)
            g[9, :] = wall
            g[:, 9] = wall
            free = [(x, y) for y in range(19) for x in range(19) if g[y, x, 0].item() == OBJ["empty"]]
            self._cache[key] = (g.to(device), torch.tensor(free, dtype=torch.int64, device=device))
        return self._cache[key]

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        u = torch.rand(7, batch_size, generator=generator, dtype=torch.float64, device=generator.device)
        gaps = [uniform_to_int(u[i], 8) for i in range(4)]
        return (*gaps, uniform_to_int(u[4], 260), uniform_to_int(u[5], 4), uniform_to_int(u[6], 259))

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        g0, g1, g2, g3, agent_k, agent_dir, goal_k = draws
        device = g0.device
        b = g0.shape[0]
        template, room = self.tables(device)
        nine = torch.full_like(g0, 9)
        gap_xy = torch.stack(
            [torch.stack([nine, 1 + g0], 1), torch.stack([1 + g1, nine], 1), torch.stack([10 + g2, nine], 1),
             torch.stack([nine, 10 + g3], 1)],
            dim=1,
        )  # [B, 4, 2]
        grid = template.unsqueeze(0).repeat(b, 1, 1, 1)
        rows = torch.arange(b, device=device).unsqueeze(1)
        grid[rows, gap_xy[:, :, 1], gap_xy[:, :, 0]] = _const(EMPTY_CELL, device)
        n_room = room.shape[0]

        def cell_of(k: torch.Tensor) -> torch.Tensor:
            in_room = (k < n_room).unsqueeze(1)
            rc = room[k.clamp(max=n_room - 1)]
            gc = gap_xy.gather(1, (k - n_room).clamp(0, 3).view(b, 1, 1).expand(b, 1, 2)).squeeze(1)
            return torch.where(in_room, rc, gc)

        pos = cell_of(agent_k)
        goal = cell_of(goal_k + (goal_k >= agent_k).long())
        _put(grid, goal[:, 0], goal[:, 1], GOAL_CELL)
        return Layout(grid, pos, agent_dir)


# --- generic batched placement -------------------------------------------------------------------------------


def pick_free(free: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index of a uniform True entry of each row of ``free [B, N]`` (the ``floor(u * n)``-th one).

    This is ``place_obj``'s rejection loop in closed form: a uniform cell among the cells it would accept.
    Rows without a True entry return an arbitrary index (callers make that impossible).
    """
    n = free.sum(1)
    k = torch.minimum((u * n).long(), (n - 1).clamp(min=0))
    c = free.long().cumsum(1)
    return (c <= k.unsqueeze(1)).sum(1).clamp(max=free.shape[1] - 1)


def _cells(grid: torch.Tensor) -> torch.Tensor:
    """``[B, H * W]`` object types."""
    return grid[..., 0].flatten(1)


def _xy(idx: torch.Tensor, width: int) -> torch.Tensor:
    return torch.stack([idx % width, idx // width], dim=1)


def _set_flat(grid: torch.Tensor, idx: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """In place: cell ``idx[b]`` (flat ``y * W + x``) of every row set to ``cells [B, 3]`` (or ``[3]``)."""
    b, h, w, _ = grid.shape
    flat = grid.view(b, h * w, 3)
    rows = torch.arange(b, device=grid.device)
    flat[rows, idx] = cells if cells.dim() == 2 else cells.expand(b, 3)
    return grid


class _UniformBase(_Base):
    """Generators whose draws are ``n_uniforms`` float64 uniforms per env: ``draw -> (u [n, B],)``."""

    n_uniforms: int

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        u = torch.rand(self.n_uniforms, batch_size, generator=generator, dtype=torch.float64, device=generator.device)
        return (u,)

    def base_grid(self, b: int, device: torch.device) -> torch.Tensor:
        key = str(device)
        cache = self.__dict__.setdefault("_tmpl", {})
        if key not in cache:
            cache[key] = self.template().to(device)
        return cache[key].unsqueeze(0).repeat(b, 1, 1, 1)

    def template(self) -> torch.Tensor:
        g = wall_rect_grid(self.height, self.width)
        g[self.height - 2, self.width - 2] = torch.tensor(GOAL_CELL, dtype=torch.uint8)
        return g


class LavaGapLayout(_UniformBase):
    """``minigrid/envs/lavagap.py``: agent (1, 1) east, goal (W-2, H-2), a lava column at
    ``x ~ U{2..W-3}`` (rows 1..H-2) with a gap at ``y ~ U{1..H-2}``."""

    n_uniforms = 2

    def __init__(self, size: int) -> None:
        self.height = self.width = size

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        w, h = self.width, self.height
        gx = 2 + uniform_to_int(u[0], w - 4)
        gy = 1 + uniform_to_int(u[1], h - 2)
        grid = self.base_grid(b, device)
        xs = torch.arange(w, device=device).view(1, 1, w)
        ys = torch.arange(h, device=device).view(1, h, 1)
        lava = (xs == gx.view(b, 1, 1)) & (ys >= 1) & (ys <= h - 2) & (ys != gy.view(b, 1, 1))
        grid = torch.where(lava.unsqueeze(-1), _const(LAVA_CELL, device), grid)
        pos = torch.ones(b, 2, dtype=torch.int64, device=device)
        return Layout(grid, pos, torch.zeros(b, dtype=torch.int64, device=device))


class DistShiftLayout(_UniformBase):
    """``minigrid/envs/distshift.py`` (9x7, fixed): goal (7, 1), lava at x = 3..5 in row 1 and row
    ``strip2_row``, agent (1, 1) east."""

    n_uniforms = 1

    def __init__(self, strip2_row: int) -> None:
        self.width, self.height = 9, 7
        self.strip2_row = strip2_row

    def template(self) -> torch.Tensor:
        g = wall_rect_grid(self.height, self.width)
        g[1, self.width - 2] = torch.tensor(GOAL_CELL, dtype=torch.uint8)
        for i in range(self.width - 6):
            g[1, 3 + i] = torch.tensor(LAVA_CELL, dtype=torch.uint8)
            g[self.strip2_row, 3 + i] = torch.tensor(LAVA_CELL, dtype=torch.uint8)
        return g

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        grid = self.base_grid(1, device)
        pos = torch.ones(b, 2, dtype=torch.int64, device=device)
        return Layout(grid, pos, torch.zeros(b, dtype=torch.int64, device=device))


class CrossingLayout(_UniformBase):
    """``minigrid/envs/crossing.py``: ``n`` rivers (lava or wall) drawn without replacement among the
    vertical columns ``x in {2, 4, ..}`` and horizontal rows ``y in {2, 4, ..}``; a path to the goal of
    ``#vertical`` horizontal moves and ``#horizontal`` vertical moves in uniformly random order; each move opens
    one cell of the next river, uniform along the current room's side. Agent (1, 1) east, goal (W-2, H-2).

    Same distribution as MiniGrid: a random permutation of the rivers (first ``n`` taken) is an argsort of
    uniforms, the shuffled path is an argsort too, and each ``np_random.choice(range(lo, hi))`` is one uniform.
    """

    def __init__(self, size: int, num_crossings: int, obstacle: str) -> None:
        self.height = self.width = size
        self.n = num_crossings
        self.cell = LAVA_CELL if obstacle == "lava" else WALL_CELL
        self.rv = len(range(2, size - 2, 2))  # candidate vertical rivers (x = 2, 4, ...)
        self.rh = len(range(2, size - 2, 2))
        self.n_uniforms = self.rv + self.rh + 2 * self.n

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        s, n, rv, rh = self.width, self.n, self.rv, self.rh
        r = rv + rh
        rank = u[:r].t().argsort(1).argsort(1)  # [B, R] position of each river in the shuffled list
        chosen = rank < n
        cv, ch = chosen[:, :rv], chosen[:, rv:]
        cand = 2 + 2 * torch.arange(rv, device=device)  # river coordinates (same for both directions)
        nv = cv.sum(1)
        # limits = [0] + sorted(chosen) + [s - 1] (padded with s - 1)
        lv = torch.cat([torch.zeros(b, 1, dtype=torch.int64, device=device),
                        torch.where(cv, cand, s - 1).sort(1).values,
                        torch.full((b, 1), s - 1, dtype=torch.int64, device=device)], 1)
        lh = torch.cat([torch.zeros(b, 1, dtype=torch.int64, device=device),
                        torch.where(ch, cand, s - 1).sort(1).values,
                        torch.full((b, 1), s - 1, dtype=torch.int64, device=device)], 1)
        grid = self.base_grid(b, device)
        xs = torch.arange(s, device=device)
        inner = (xs >= 1) & (xs <= s - 2)
        col = (cv.unsqueeze(2) & (cand.view(1, rv, 1) == xs.view(1, 1, s))).any(1)  # [B, s] river columns
        row = (ch.unsqueeze(2) & (cand.view(1, rh, 1) == xs.view(1, 1, s))).any(1)  # [B, s] river rows
        river = (row.unsqueeze(2) & inner.view(1, 1, s)) | (col.unsqueeze(1) & inner.view(1, s, 1))  # [B, y, x]
        grid = torch.where(river.unsqueeze(-1), _const(self.cell, device), grid)
        # path: position p is a horizontal move ("h", crossing a vertical river) iff its rank < nv
        prank = u[r:r + n].t().argsort(1).argsort(1)  # [B, n]
        is_h = prank < nv.unsqueeze(1)
        room_i = torch.zeros(b, dtype=torch.int64, device=device)
        room_j = torch.zeros(b, dtype=torch.int64, device=device)
        rows = torch.arange(b, device=device)
        for t in range(n):
            h_move = is_h[:, t]
            ut = u[r + n + t]
            # h: x = lv[room_i + 1], y uniform in (lh[room_j], lh[room_j + 1])
            lo_h, hi_h = lh[rows, room_j], lh[rows, room_j + 1]
            lo_v, hi_v = lv[rows, room_i], lv[rows, room_i + 1]
            y_h = lo_h + 1 + uniform_to_int(ut, (hi_h - lo_h - 1).clamp(min=1))
            x_v = lo_v + 1 + uniform_to_int(ut, (hi_v - lo_v - 1).clamp(min=1))
            x = torch.where(h_move, lv[rows, (room_i + 1).clamp(max=rv + 1)], x_v)
            y = torch.where(h_move, y_h, lh[rows, (room_j + 1).clamp(max=rh + 1)])
            grid[rows, y, x] = _const(EMPTY_CELL, device)
            room_i = room_i + h_move.long()
            room_j = room_j + (~h_move).long()
        pos = torch.ones(b, 2, dtype=torch.int64, device=device)
        return Layout(grid, pos, torch.zeros(b, dtype=torch.int64, device=device))


class DynamicObstaclesLayout(_UniformBase):
    """``minigrid/envs/dynamicobstacles.py``: walls, goal (W-2, H-2), agent at (1, 1) east or (``Random``)
    ``place_agent()``; then ``n_obstacles`` blue balls, each uniform over the empty cells but the agent's."""

    def __init__(self, size: int, n_obstacles: int, random_start: bool) -> None:
        self.height = self.width = size
        self.k = int(n_obstacles) if n_obstacles <= size / 2 + 1 else int(size / 2)
        self.random_start = random_start
        self.n_uniforms = 2 + self.k

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        w = self.width
        grid = self.base_grid(b, device)
        free = _cells(grid) == OBJ["empty"]
        if self.random_start:
            a = pick_free(free, u[0])
            pos = _xy(a, w)
            direction = uniform_to_int(u[1], 4)
        else:
            a = torch.full((b,), w + 1, dtype=torch.int64, device=device)
            pos = torch.ones(b, 2, dtype=torch.int64, device=device)
            direction = torch.zeros(b, dtype=torch.int64, device=device)
        rows = torch.arange(b, device=device)
        free[rows, a] = False
        obs = []
        ball = _const((OBJ["ball"], COLOR["blue"], 0), device)
        for i in range(self.k):
            c = pick_free(free, u[2 + i])
            free[rows, c] = False
            _set_flat(grid, c, ball)
            obs.append(_xy(c, w))
        obstacles = torch.stack(obs, 1) if obs else torch.zeros(b, 0, 2, dtype=torch.int64, device=device)
        return Layout(grid, pos, direction, obstacles=obstacles)


class GoToDoorLayout(_UniformBase):
    """``minigrid/envs/gotodoor.py``: a room of random size ``U{5..size}`` x ``U{5..size}`` at (0, 0) in the
    ``size x size`` grid; 4 closed doors of 4 distinct uniform colours, one per wall at a uniform position
    (top/bottom ``x ~ U{2..w-3}``, left/right ``y ~ U{2..h-3}``); agent uniform inside, uniform direction;
    target = a uniform door (mission ``(door, colour)``, ``target_pos`` its cell)."""

    n_uniforms = 6 + 4 + 6 + 1

    def __init__(self, size: int) -> None:
        self.height = self.width = size

    def template(self) -> torch.Tensor:
        return torch.tensor(EMPTY_CELL, dtype=torch.uint8).repeat(self.height, self.width, 1)

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        size = self.width
        rw = 5 + uniform_to_int(u[0], size - 4)
        rh = 5 + uniform_to_int(u[1], size - 4)
        xs = torch.arange(size, device=device)
        wx = (xs.view(1, 1, size) < rw.view(b, 1, 1))
        wy = (xs.view(1, size, 1) < rh.view(b, 1, 1))
        border = (xs.view(1, 1, size) == 0) | (xs.view(1, 1, size) == (rw - 1).view(b, 1, 1))
        border = border | (xs.view(1, size, 1) == 0) | (xs.view(1, size, 1) == (rh - 1).view(b, 1, 1))
        wall = wx & wy & border
        grid = torch.where(wall.unsqueeze(-1), _const(WALL_CELL, device), self.base_grid(b, device))
        dx_top = 2 + uniform_to_int(u[2], rw - 4)
        dx_bot = 2 + uniform_to_int(u[3], rw - 4)
        dy_left = 2 + uniform_to_int(u[4], rh - 4)
        dy_right = 2 + uniform_to_int(u[5], rh - 4)
        zero = torch.zeros_like(rw)
        door_xy = torch.stack([torch.stack([dx_top, zero], 1), torch.stack([dx_bot, rh - 1], 1),
                               torch.stack([zero, dy_left], 1), torch.stack([rw - 1, dy_right], 1)], 1)  # [B, 4, 2]
        colors = u[6:12].t().argsort(1)[:, :4]  # 4 distinct uniform colours in order
        rows = torch.arange(b, device=device)
        for i in range(4):
            cell = torch.stack([torch.full_like(rw, OBJ["door"]), colors[:, i], torch.ones_like(rw)], 1)
            grid[rows, door_xy[:, i, 1], door_xy[:, i, 0]] = cell.to(torch.uint8)
        inside = (wx & wy & ~border).flatten(1)
        a = pick_free(inside, u[12])
        direction = uniform_to_int(u[13], 4)
        t = uniform_to_int(u[14], 4)
        target = door_xy[rows, t]
        tcol = colors[rows, t]
        mission = torch.stack([torch.full_like(tcol, OBJ["door"]), tcol, zero, zero], 1).to(torch.uint8)
        return Layout(grid, _xy(a, size), direction, mission=mission, target_pos=target)


# --- object tasks: Fetch, GoToObject, PutNear, RedBlueDoors ---------------------------------------------------

_TYPE_IDS = {"key": OBJ["key"], "ball": OBJ["ball"], "box": OBJ["box"]}


def _near(free_w: int, h: int, xy: torch.Tensor) -> torch.Tensor:
    """``[B, H * W]`` True on the cells within Chebyshev distance 1 of ``xy [B, 2]``."""
    device = xy.device
    xs = torch.arange(free_w, device=device).repeat(h)
    ys = torch.arange(h, device=device).repeat_interleave(free_w)
    return ((xs - xy[:, :1]).abs() <= 1) & ((ys - xy[:, 1:]).abs() <= 1)


class ObjectsLayout(_UniformBase):
    """Fetch (``fetch.py``), GoToObject (``gotoobject.py``) and PutNear (``putnear.py``).

    A walled ``size x size`` room; ``n_objs`` objects, each of a uniform type in ``types`` and a uniform
    colour -- all distinct (type, colour) pairs for GoToObject/PutNear (MiniGrid redraws duplicates, i.e. a
    uniform pair among the unused ones), any pairs for Fetch -- each placed uniformly on a free cell (PutNear:
    not within one cell of an earlier object); then ``place_agent()``; then the target: a uniform object
    (Fetch, GoToObject) or a uniform object to move and a uniform other object to put it near (PutNear).
    """

    def __init__(self, kind: str, size: int, n_objs: int) -> None:
        self.kind = kind
        self.height = self.width = size
        self.n = n_objs
        self.types = ["key", "ball"] if kind == "fetch" else ["key", "ball", "box"]
        n_pairs = len(self.types) * 6
        self.n_uniforms = n_pairs + 2 * n_objs + 2 + 2

    def template(self) -> torch.Tensor:
        return wall_rect_grid(self.height, self.width)

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        w, h, n = self.width, self.height, self.n
        nt = len(self.types)
        type_ids = _const64(tuple(_TYPE_IDS[t] for t in self.types), device)
        if self.kind == "fetch":  # independent uniform (type, colour) per object
            pair = torch.stack([uniform_to_int(u[i], nt * 6) for i in range(n)], 1)
        else:  # distinct pairs: the first n of a uniform permutation of all pairs
            pair = u[: nt * 6].t().argsort(1)[:, :n]
        off = nt * 6
        otype = type_ids[pair // 6]  # [B, n]
        ocol = pair % 6
        grid = self.base_grid(b, device)
        free = _cells(grid) == OBJ["empty"]
        rows = torch.arange(b, device=device)
        pos = []
        for i in range(n):
            allowed = free
            if self.kind == "put_near":
                for p in pos:
                    allowed = allowed & ~_near(w, h, p)
            c = pick_free(allowed, u[off + i])
            free = free.clone()
            free[rows, c] = False
            cell = torch.stack([otype[:, i], ocol[:, i], torch.zeros_like(ocol[:, i])], 1).to(torch.uint8)
            _set_flat(grid, c, cell)
            pos.append(_xy(c, w))
        off += n
        a = pick_free(free, u[off])
        direction = uniform_to_int(u[off + 1], 4)
        zero = torch.zeros(b, dtype=torch.int64, device=device)
        t = uniform_to_int(u[off + 2], n)
        obj_pos = torch.stack(pos, 1)  # [B, n, 2]
        if self.kind == "put_near":
            tt = uniform_to_int(u[off + 3], n - 1)
            tt = tt + (tt >= t).long()
            mission = torch.stack([otype[rows, t], ocol[rows, t], otype[rows, tt], ocol[rows, tt]], 1)
            target = obj_pos[rows, tt]
        else:
            mission = torch.stack([otype[rows, t], ocol[rows, t], zero, zero], 1)
            target = obj_pos[rows, t] if self.kind == "goto" else torch.zeros(b, 2, dtype=torch.int64, device=device)
        return Layout(grid, _xy(a, w), direction, mission=mission.to(torch.uint8), target_pos=target)


class RedBlueDoorsLayout(_UniformBase):
    """``redbluedoors.py``: a ``2s x s`` grid, an ``s x s`` room at ``x = s // 2``; agent uniform inside it
    (uniform direction); a closed red door at ``(s // 2, U{1..s-2})`` and a closed blue door at
    ``(s // 2 + s - 1, U{1..s-2})``."""

    n_uniforms = 4

    def __init__(self, size: int) -> None:
        self.size = size
        self.height, self.width = size, 2 * size

    def template(self) -> torch.Tensor:
        s = self.size
        g = wall_rect_grid(s, 2 * s)
        wall = torch.tensor(WALL_CELL, dtype=torch.uint8)
        g[0, s // 2 : s // 2 + s] = wall
        g[s - 1, s // 2 : s // 2 + s] = wall
        g[:, s // 2] = wall
        g[:, s // 2 + s - 1] = wall
        return g

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        s = self.size
        grid = self.base_grid(b, device)
        xs = torch.arange(self.width, device=device).repeat(self.height)
        inside = (_cells(grid) == OBJ["empty"]) & (xs > s // 2) & (xs < s // 2 + s - 1)
        a = pick_free(inside, u[0])
        direction = uniform_to_int(u[1], 4)
        ry = 1 + uniform_to_int(u[2], s - 2)
        by = 1 + uniform_to_int(u[3], s - 2)
        rows = torch.arange(b, device=device)
        grid[rows, ry, s // 2] = _const((OBJ["door"], COLOR["red"], 1), device)
        grid[rows, by, s // 2 + s - 1] = _const((OBJ["door"], COLOR["blue"], 1), device)
        return Layout(grid, _xy(a, self.width), direction)


# --- RoomGrid tasks: Unlock, UnlockPickup, BlockedUnlockPickup, KeyCorridor ----------------------------------


def _room_cells(width: int, height: int, x0: int, y0: int, sx: int, sy: int, device: torch.device) -> torch.Tensor:
    """``[H * W]`` True on the cells of the rectangle ``[x0, x0 + sx) x [y0, y0 + sy)``."""
    xs = torch.arange(width, device=device).repeat(height)
    ys = torch.arange(height, device=device).repeat_interleave(width)
    return (xs >= x0) & (xs < x0 + sx) & (ys >= y0) & (ys < y0 + sy)


def _place_agent_in_room(
    grid: torch.Tensor, room: torch.Tensor, u_cell: torch.Tensor, dir_vec: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``RoomGrid.place_agent``: a uniform (cell, direction) with the cell empty inside ``room [H * W]`` and the
    cell in front empty or a wall (MiniGrid redraws both until that holds)."""
    b, h, w, _ = grid.shape
    t = _cells(grid)
    device = grid.device
    idx = torch.arange(h * w, device=device)
    x, y = idx % w, idx // w
    ok = []
    for d in range(4):
        fx = (x + int(dir_vec[d, 0])).clamp(0, w - 1)
        fy = (y + int(dir_vec[d, 1])).clamp(0, h - 1)
        ft = t[:, fy * w + fx]
        ok.append((t == OBJ["empty"]) & room & ((ft == OBJ["empty"]) | (ft == OBJ["wall"])))
    cand = torch.stack(ok, 2).flatten(1)  # [B, H * W * 4], (cell, dir) row-major
    k = pick_free(cand, u_cell)
    return _xy(k // 4, w), k % 4


_DIRS = torch.tensor([(1, 0), (0, 1), (-1, 0), (0, -1)], dtype=torch.int64)


class UnlockLayout(_UniformBase):
    """``unlock.py`` / ``unlockpickup.py`` / ``blockedunlockpickup.py`` on a 1x2 ``RoomGrid`` of 6x6 rooms.

    Right door position of the left room ``(5, U{1..4})``, a locked door of a uniform colour there; (pickup
    variants) first a box of a uniform colour uniform in the right room's interior minus the cells within
    Manhattan distance 1 of the default agent cell (8, 3) (``reject_next_to``); (blocked) a ball of a uniform
    colour at ``(4, door_y)``; a key of the door's colour uniform on the free cells of the left room; the agent
    by ``RoomGrid.place_agent(0, 0)``. Mission (pickup variants): ``(box, colour)``.
    """

    n_uniforms = 8

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "unlock", "pickup", "blocked"
        self.height, self.width = 6, 11

    def template(self) -> torch.Tensor:
        g = wall_rect_grid(6, 11)
        g[:, 5] = torch.tensor(WALL_CELL, dtype=torch.uint8)
        return g

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        w, h = self.width, self.height
        grid = self.base_grid(b, device)
        rows = torch.arange(b, device=device)
        zero = torch.zeros(b, dtype=torch.int64, device=device)
        door_y = 1 + uniform_to_int(u[0], 4)
        door_col = uniform_to_int(u[1], 6)
        mission = None
        if self.kind != "unlock":
            right = _room_cells(w, h, 6, 1, 4, 4, device)
            idx = torch.arange(h * w, device=device)
            near_agent = ((idx % w - 8).abs() + (idx // w - 3).abs()) < 2
            box_col = uniform_to_int(u[2], 6)
            c = pick_free((right & ~near_agent).expand(b, -1), u[3])
            _set_flat(grid, c, torch.stack([torch.full_like(box_col, OBJ["box"]), box_col, zero], 1).to(torch.uint8))
            mission = torch.stack([torch.full_like(box_col, OBJ["box"]), box_col, zero, zero], 1).to(torch.uint8)
        grid[rows, door_y, 5] = torch.stack(
            [torch.full_like(door_col, OBJ["door"]), door_col, torch.full_like(door_col, STATE_LOCKED)], 1
        ).to(torch.uint8)
        if self.kind == "blocked":
            ball_col = uniform_to_int(u[4], 6)
            grid[rows, door_y, 4] = torch.stack([torch.full_like(ball_col, OBJ["ball"]), ball_col, zero], 1).to(
                torch.uint8
            )
        left = _room_cells(w, h, 0, 0, 6, 6, device)
        free = (_cells(grid) == OBJ["empty"]) & left
        k = pick_free(free, u[5])
        _set_flat(grid, k, torch.stack([torch.full_like(door_col, OBJ["key"]), door_col, zero], 1).to(torch.uint8))
        pos, direction = _place_agent_in_room(grid, left, u[6], _DIRS)
        return Layout(grid, pos, direction, mission=mission)


class KeyCorridorLayout(_UniformBase):
    """``keycorridor.py``: a ``RoomGrid`` of ``R`` rows x 3 columns of ``S x S`` rooms.

    MiniGrid draws every room's right/down door position, opens the middle column into a hallway, puts a
    locked door (uniform colour) at the right door position of middle room ``r ~ U{0..R-1}``, a ball of a
    uniform colour uniform in room ``(2, r)``, a key of the locked door's colour uniform in room
    ``(0, U{0..R-1})``, the agent by ``RoomGrid.place_agent(1, R // 2)``, and then ``connect_all()``: it picks
    uniform (room, wall) pairs and adds a closed door of a uniform colour on every pick that has no door yet
    and touches no locked room, until every room is reachable. Picks with no effect do not change the state,
    so the doors added are the shortest prefix of a uniformly random order of the candidate walls that
    connects all rooms -- what :meth:`build` does, with the reachability closure as tensor code.
    Mission: ``(ball, colour)``.
    """

    def __init__(self, room_size: int, num_rows: int) -> None:
        self.s, self.r = room_size, num_rows
        self.width = (room_size - 1) * 3 + 1
        self.height = (room_size - 1) * num_rows + 1
        # walls between rooms: (room a, room b, door index of a (0 right, 1 down)); rooms numbered j * 3 + i
        self.pairs = [(j * 3 + i, j * 3 + i + 1, 0, i, j) for j in range(num_rows) for i in range(2)]
        self.pairs += [(j * 3 + i, (j + 1) * 3 + i, 1, i, j) for j in range(num_rows - 1) for i in range(3)]
        self.n_uniforms = 3 * num_rows + 3 * (num_rows - 1) + 8 + 2 * len(self.pairs)

    def template(self) -> torch.Tensor:
        s, r = self.s, self.r
        g = torch.tensor(EMPTY_CELL, dtype=torch.uint8).repeat(self.height, self.width, 1)
        wall = torch.tensor(WALL_CELL, dtype=torch.uint8)
        for k in range(r + 1):
            g[k * (s - 1), :] = wall
        for k in range(4):
            g[:, k * (s - 1)] = wall
        for j in range(1, r):  # remove_wall(1, j, 3): the hallway
            g[j * (s - 1), (s - 1) + 1 : 2 * (s - 1)] = torch.tensor(EMPTY_CELL, dtype=torch.uint8)
        return g

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        s, r, w, h = self.s, self.r, self.width, self.height
        rows = torch.arange(b, device=device)
        zero = torch.zeros(b, dtype=torch.int64, device=device)
        q = 0
        # right door of room (i, j): (x = (i + 1)(s - 1), y = j (s - 1) + U{1..s-2}); down door: symmetric
        right_y = torch.stack([torch.stack([j * (s - 1) + 1 + uniform_to_int(u[q + j * 3 + i], s - 2)
                                            for i in range(3)], 1) for j in range(r)], 1)  # [B, R, 3]
        q += 3 * r
        down_x = [[i * (s - 1) + 1 + uniform_to_int(u[q + j * 3 + i], s - 2) for i in range(3)] for j in range(r - 1)]
        q += 3 * (r - 1)
        grid = self.base_grid(b, device)
        room_idx = uniform_to_int(u[q], r)
        lock_col = uniform_to_int(u[q + 1], 6)
        lock_y = right_y[rows, room_idx, 1]
        grid[rows, lock_y, 2 * (s - 1)] = torch.stack(
            [torch.full_like(lock_col, OBJ["door"]), lock_col, torch.full_like(lock_col, STATE_LOCKED)], 1
        ).to(torch.uint8)
        # ball: uniform interior cell of room (2, room_idx)
        ball_col = uniform_to_int(u[q + 2], 6)
        n_in = (s - 2) * (s - 2)
        k = uniform_to_int(u[q + 3], n_in)
        bx = 2 * (s - 1) + 1 + k % (s - 2)
        by = room_idx * (s - 1) + 1 + k // (s - 2)
        grid[rows, by, bx] = torch.stack([torch.full_like(ball_col, OBJ["ball"]), ball_col, zero], 1).to(torch.uint8)
        # key: uniform interior cell of room (0, U{0..R-1})
        key_room = uniform_to_int(u[q + 4], r)
        k = uniform_to_int(u[q + 5], n_in)
        kx = 1 + k % (s - 2)
        ky = key_room * (s - 1) + 1 + k // (s - 2)
        grid[rows, ky, kx] = torch.stack([torch.full_like(lock_col, OBJ["key"]), lock_col, zero], 1).to(torch.uint8)
        m = r // 2
        room = _room_cells(w, h, s - 1, m * (s - 1), s, s, device)
        pos, direction = _place_agent_in_room(grid, room, u[q + 6], _DIRS)
        q += 8
        # connect_all
        n_rooms = 3 * r
        adj = torch.zeros(b, n_rooms, n_rooms, dtype=torch.bool, device=device)
        for j in range(r - 1):  # hallway
            adj[:, j * 3 + 1, (j + 1) * 3 + 1] = True
            adj[:, (j + 1) * 3 + 1, j * 3 + 1] = True
        locked_room = room_idx * 3 + 2
        adj[rows, locked_room, locked_room - 1] = True
        adj[rows, locked_room - 1, locked_room] = True
        eye = torch.eye(n_rooms, dtype=torch.bool, device=device)
        start = torch.zeros(n_rooms, dtype=torch.bool, device=device)
        start[m * 3 + 1] = True

        def all_reached(a: torch.Tensor) -> torch.Tensor:
            reach = start.expand(b, n_rooms)
            step = (a | eye).float()
            for _ in range(n_rooms):
                reach = torch.bmm(reach.float().unsqueeze(1), step).squeeze(1) > 0
            return reach.all(1)

        order = u[q : q + len(self.pairs)].t().argsort(1)  # [B, P] a uniform order of the walls
        q += len(self.pairs)
        pa = _const64(tuple(p[0] for p in self.pairs), device)
        pb = _const64(tuple(p[1] for p in self.pairs), device)
        xs_, ys_ = [], []  # the door cell of every wall
        for _, _, kind, i, j in self.pairs:
            if kind == 0:
                xs_.append(torch.full_like(zero, (i + 1) * (s - 1)))
                ys_.append(right_y[:, j, i])
            else:
                xs_.append(down_x[j][i])
                ys_.append(torch.full_like(zero, (j + 1) * (s - 1)))
        wall_x, wall_y = torch.stack(xs_, 1), torch.stack(ys_, 1)  # [B, P]
        for t in range(len(self.pairs)):
            p = order[:, t]
            a_room, b_room = pa[p], pb[p]
            cand = ~adj[rows, a_room, b_room] & (a_room != locked_room) & (b_room != locked_room)
            add = cand & ~all_reached(adj)
            adj[rows, a_room, b_room] |= add
            adj[rows, b_room, a_room] |= add
            col = uniform_to_int(u[q + t], 6)
            door = torch.stack([torch.full_like(col, OBJ["door"]), col, torch.ones_like(col)], 1).to(torch.uint8)
            dx, dy = wall_x[rows, p], wall_y[rows, p]
            cur = grid[rows, dy, dx]
            grid[rows, dy, dx] = torch.where(add.unsqueeze(1), door, cur)
        mission = torch.stack([torch.full_like(ball_col, OBJ["ball"]), ball_col, zero, zero], 1).to(torch.uint8)
        return Layout(grid, pos, direction, mission=mission)


# --- LockedRoom, Memory ---------------------------------------------------------------------------------------


class LockedRoomLayout(_UniformBase):
    """``lockedroom.py`` (19x19): a hallway ``x in 8..10`` between two walls with 3 rooms on each side
    (doors at ``(7, 6n + 3)`` and ``(11, 6n + 3)``). One uniform room of the 6 is locked and holds the goal
    (uniform interior cell); the 6 doors get a uniform permutation of the 6 colours; a key of the locked
    door's colour lies uniform in the interior of a uniform other room; the agent is uniform in the hallway
    with a uniform direction. Mission: ``(key, locked colour, door, key room's colour)``.
    """

    n_uniforms = 6 + 8

    def __init__(self) -> None:
        self.height = self.width = 19

    def template(self) -> torch.Tensor:
        g = wall_rect_grid(19, 19)
        wall = torch.tensor(WALL_CELL, dtype=torch.uint8)
        g[:, 7] = wall
        g[:, 11] = wall
        for n in range(3):
            g[6 * n, 0:7] = wall
            g[6 * n, 11:19] = wall
        return g

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        rows = torch.arange(b, device=device)
        grid = self.base_grid(b, device)
        colors = u[:6].t().argsort(1)  # colour of room r (rooms: n = 0..2, left then right)
        ridx = torch.arange(6, device=device)
        room_x = torch.where(ridx % 2 == 0, 0, 11)  # room top x
        room_y = 6 * (ridx // 2)
        locked = uniform_to_int(u[6], 6)
        state = torch.where(ridx.unsqueeze(0) == locked.unsqueeze(1), STATE_LOCKED, 1)  # [B, 6]
        for r in range(6):
            cell = torch.stack([torch.full_like(locked, OBJ["door"]), colors[:, r], state[:, r]], 1).to(torch.uint8)
            grid[rows, 6 * (r // 2) + 3, 7 if r % 2 == 0 else 11] = cell
        g = uniform_to_int(u[7], 30)
        gx = room_x[locked] + 1 + g % 6
        gy = room_y[locked] + 1 + g // 6
        grid[rows, gy, gx] = _const(GOAL_CELL, device)
        kr = uniform_to_int(u[8], 5)
        kr = kr + (kr >= locked).long()
        k = uniform_to_int(u[9], 30)
        lock_col = colors[rows, locked]
        zero = torch.zeros_like(locked)
        key = torch.stack([torch.full_like(locked, OBJ["key"]), lock_col, zero], 1).to(torch.uint8)
        grid[rows, room_y[kr] + 1 + k // 6, room_x[kr] + 1 + k % 6] = key
        a = uniform_to_int(u[10], 3 * 17)
        pos = torch.stack([8 + a % 3, 1 + a // 3], 1)
        direction = uniform_to_int(u[11], 4)
        mission = torch.stack(
            [torch.full_like(locked, OBJ["key"]), lock_col, torch.full_like(locked, OBJ["door"]), colors[rows, kr]], 1
        ).to(torch.uint8)
        return Layout(grid, pos, direction, mission=mission)


class MemoryLayout(_UniformBase):
    """``memory.py``: a start room (a green key or ball, uniform, at ``(1, h/2 - 1)``), a hallway to
    ``x = e`` (``e = W - 3``, or ``U{4..W-3}`` for ``Random``), and at its end a green key and ball in
    uniform order at ``(e + 1, h/2 -+ 2)``. Agent at ``(U{1..e}, h/2)`` facing east. ``target_pos`` is the
    success cell (next to the object matching the start room's); the failure cell is its mirror image.
    """

    n_uniforms = 4

    def __init__(self, size: int, random_length: bool) -> None:
        self.height = self.width = size
        self.random_length = random_length

    def template(self) -> torch.Tensor:
        return wall_rect_grid(self.height, self.width)

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        w, h = self.width, self.height
        mid = h // 2
        up, low = mid - 2, mid + 2
        if self.random_length:
            e = 4 + uniform_to_int(u[0], w - 6)
        else:
            e = torch.full((b,), w - 3, dtype=torch.int64, device=device)
        grid = self.base_grid(b, device)
        xs = torch.arange(w, device=device).view(1, 1, w)
        ys = torch.arange(h, device=device).view(1, h, 1)
        ev = e.view(b, 1, 1)
        wall = ((ys == up) | (ys == low)) & (xs >= 1) & (xs <= 4)
        wall = wall | ((xs == 4) & ((ys == up + 1) | (ys == low - 1)))
        wall = wall | ((xs >= 5) & (xs < ev) & ((ys == up + 1) | (ys == low - 1)))
        wall = wall | ((xs == ev) & (ys != mid)) | (xs == ev + 2)
        grid = torch.where(wall.unsqueeze(-1), _const(WALL_CELL, device), grid)
        ax = 1 + uniform_to_int(u[1], e)
        start_is_ball = uniform_to_int(u[2], 2)  # 0 key, 1 ball
        first_is_ball = uniform_to_int(u[3], 2)  # other_objs: 0 -> [Ball, Key], 1 -> [Key, Ball]
        first_is_ball = 1 - first_is_ball
        rows = torch.arange(b, device=device)
        green = COLOR["green"]

        def obj(is_ball: torch.Tensor) -> torch.Tensor:
            t = torch.where(is_ball == 1, OBJ["ball"], OBJ["key"])
            return torch.stack([t, torch.full_like(t, green), torch.zeros_like(t)], 1).to(torch.uint8)

        grid[rows, torch.full_like(e, mid - 1), torch.ones_like(e)] = obj(start_is_ball)
        grid[rows, torch.full_like(e, mid - 2), e + 1] = obj(first_is_ball)
        grid[rows, torch.full_like(e, mid + 2), e + 1] = obj(1 - first_is_ball)
        succ_y = torch.where(start_is_ball == first_is_ball, mid - 1, mid + 1)
        target = torch.stack([e + 1, succ_y], 1)
        pos = torch.stack([ax, torch.full_like(ax, mid)], 1)
        return Layout(grid, pos, torch.zeros(b, dtype=torch.int64, device=device), target_pos=target)


# --- MultiRoom ------------------------------------------------------------------------------------------------


def _split(u: torch.Tensor, high: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
    """A uniform integer ``k < high`` and a fresh uniform from one float64 uniform ``u`` (``k = floor(u *
    high)``, remainder ``u * high - k`` rescaled to ``[0, 1)``; each split costs ``log2(high)`` of 53 bits)."""
    x = u * high
    k = x.floor()
    k = k.clamp(max=high - 1) if isinstance(high, int) else torch.minimum(k, (high - 1).to(x.dtype))
    return k.long(), (x - k).clamp(0.0, 1.0 - 2**-53)


class MultiRoomLayout(_UniformBase):
    """``multiroom.py``: a chain of ``n`` rooms in a 25x25 grid (no outer wall).

    MiniGrid builds chains by recursive placement -- the first room at a uniform ``entryDoorPos``, then each
    room tries up to 8 times to attach a next room behind a uniform other wall (uniform door position on it,
    uniform size ``U{4..S}``, uniform offset), rejecting rooms that leave the grid or overlap an earlier room
    but the previous one -- and restarts whole chains until one has ``n`` rooms. Here ``attempts`` chains per
    env are built in parallel with exactly those rules (each try's integers split from one uniform) and the
    first complete one is kept (attempts whose first room leaves the grid, which MiniGrid discards, are not
    drawn at all): the same distribution, except with probability ``(1 - p)^attempts`` (p the chance that
    such a chain completes, from MiniGrid's measured restart counts: ~0.97 / 0.61 / 0.80 / 0.33 for N2-S4 /
    N4-S5-v0 (6 rooms) / N4-S5-v1 / N6) when every attempt fails and the longest chain is kept instead
    (attempts are chosen to make that < 1e-6). Entry doors get a uniform colour
    other than the previous door's; the agent is uniform in the first room, the goal uniform in the last.
    """

    def __init__(self, n_rooms: int, max_size: int, attempts: int) -> None:
        self.height = self.width = 25
        self.n, self.max_size, self.k = n_rooms, max_size, attempts
        self.n_uniforms = attempts * (2 + 8 * (n_rooms - 1)) + n_rooms + 4

    def template(self) -> torch.Tensor:
        return torch.tensor(EMPTY_CELL, dtype=torch.uint8).repeat(25, 25, 1)

    def _first_room_pairs(self, device: torch.device) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """Valid ``(x, size_x)`` and ``(y, size_y)`` pairs of the first room (cached per device)."""
        key = str(device)
        cache = self.__dict__.setdefault("_pairs", {})
        if key not in cache:
            sizes = range(4, self.max_size + 1)
            xs = [(x, sx) for sx in sizes for x in range(self.width - 2) if x + sx <= self.width]
            ys = [(y, sy) for sy in sizes for y in range(self.width - 2) if y + sy < self.height]
            cache[key] = tuple(
                (torch.tensor([a for a, _ in ps], device=device), torch.tensor([c for _, c in ps], device=device))
                for ps in (xs, ys)
            )
        return cache[key]

    def _chains(self, u: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Build ``R = B * attempts`` chains from ``u [2 + 8 (n - 1), R]``: returns room tops/sizes
        ``[R, n, 2]`` each, entry doors ``[R, n, 2]`` and the chain length ``[R]``."""
        n, w, h, smin, smax = self.n, self.width, self.height, 4, self.max_size
        nsz = smax - smin + 1
        rr = u.shape[1]
        device = u.device
        top = torch.zeros(rr, n, 2, dtype=torch.int64, device=device)
        size = torch.zeros(rr, n, 2, dtype=torch.int64, device=device)
        entry = torch.zeros(rr, n, 2, dtype=torch.int64, device=device)
        # first room: entryDoorPos = (U{0..W-3}, U{0..W-3}) is its top, size U{4..S}^2; attempts whose first
        # room leaves the grid have no room and are discarded by MiniGrid, so (x, size_x) is drawn uniformly
        # among the pairs with x + size_x <= W, and (y, size_y) among those with y + size_y < H
        (px, psx_), (py, psy_) = self._first_room_pairs(device)
        kx = uniform_to_int(u[0], px.shape[0])
        ky = uniform_to_int(u[1], py.shape[0])
        ex, sx, ey, sy = px[kx], psx_[kx], py[ky], psy_[ky]
        ok = torch.ones(rr, dtype=torch.bool, device=device)
        top[:, 0] = torch.stack([ex, ey], 1)
        size[:, 0] = torch.stack([sx, sy], 1)
        entry[:, 0] = torch.stack([ex, ey], 1)
        length = ok.long()
        alive = ok.clone()  # the chain may still grow
        entry_wall = torch.full((rr,), 2, dtype=torch.int64, device=device)
        q = 2
        for r in range(1, n):
            placed = torch.zeros(rr, dtype=torch.bool, device=device)
            next_entry = entry_wall
            ptx, pty = top[:, r - 1, 0], top[:, r - 1, 1]
            psx, psy = size[:, r - 1, 0], size[:, r - 1, 1]
            for _ in range(8):
                v = u[q]
                q += 1
                wi, v = _split(v, 3)
                exit_wall = wi + (wi >= entry_wall).long()  # uniform over the 3 other walls, sorted
                vert = (exit_wall == 0) | (exit_wall == 2)  # door on a vertical wall: offset along y
                off, v = _split(v, torch.where(vert, psy, psx) - 2)
                off = off + 1
                dx = torch.where(exit_wall == 0, ptx + psx - 1, torch.where(exit_wall == 2, ptx, ptx + off))
                dy = torch.where(exit_wall == 1, pty + psy - 1, torch.where(exit_wall == 3, pty, pty + off))
                nsx, v = _split(v, nsz)
                nsy, v = _split(v, nsz)
                nsx, nsy = nsx + smin, nsy + smin
                new_entry = (exit_wall + 2) % 4
                # top: entry 0 (right): x = dx - sx + 1, y ~ U{dy - sy + 2 .. dy - 1}; 1 (south): x ~ U{..},
                # y = dy - sy + 1; 2 (left): x = dx, y ~ U; 3 (top): x ~ U, y = dy
                along_y = (new_entry == 0) | (new_entry == 2)
                span = torch.where(along_y, nsy, nsx) - 2
                o, v = _split(v, span)
                tx = torch.where(
                    new_entry == 0, dx - nsx + 1, torch.where(new_entry == 2, dx, dx - nsx + 2 + o)
                )
                ty = torch.where(
                    new_entry == 1, dy - nsy + 1, torch.where(new_entry == 3, dy, dy - nsy + 2 + o)
                )
                good = (tx >= 0) & (ty >= 0) & (tx + nsx <= w) & (ty + nsy < h)
                for p in range(r - 1):  # every earlier room but the previous one
                    qx, qy = top[:, p, 0], top[:, p, 1]
                    qsx, qsy = size[:, p, 0], size[:, p, 1]
                    non = (tx + nsx < qx) | (qx + qsx <= tx) | (ty + nsy < qy) | (qy + qsy <= ty)
                    good = good & non
                take = alive & ~placed & good
                top[:, r] = torch.where(take.unsqueeze(1), torch.stack([tx, ty], 1), top[:, r])
                size[:, r] = torch.where(take.unsqueeze(1), torch.stack([nsx, nsy], 1), size[:, r])
                entry[:, r] = torch.where(take.unsqueeze(1), torch.stack([dx, dy], 1), entry[:, r])
                next_entry = torch.where(take, new_entry, next_entry)
                placed = placed | take
            entry_wall = next_entry
            alive = alive & placed
            length = length + alive.long()
        return top, size, entry, length

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        (u,) = draws
        b, device = u.shape[1], u.device
        n, k, w, h = self.n, self.k, self.width, self.height
        per = 2 + 8 * (n - 1)
        ua = u[: k * per].view(per, k * b)  # attempt a of env i is column a * b + i
        top, size, entry, length = self._chains(ua)
        top, size, entry = top.view(k, b, n, 2), size.view(k, b, n, 2), entry.view(k, b, n, 2)
        length = length.view(k, b)
        full = length == n
        score = torch.where(full, 2 * n + 1, length).float() - torch.arange(k, device=device).view(k, 1) / (2 * k)
        best = score.argmax(0)  # first complete attempt, else the (first) longest
        rows = torch.arange(b, device=device)
        top, size, entry, length = top[best, rows], size[best, rows], entry[best, rows], length[best, rows]
        rest = u[k * per :]
        grid = self.base_grid(b, device)
        xs = torch.arange(w, device=device).view(1, 1, w)
        ys = torch.arange(h, device=device).view(1, h, 1)
        prev_col = torch.full((b,), -1, dtype=torch.int64, device=device)
        for r in range(n):
            exists = (r < length).view(b, 1, 1)
            tx, ty = top[:, r, 0].view(b, 1, 1), top[:, r, 1].view(b, 1, 1)
            sx, sy = size[:, r, 0].view(b, 1, 1), size[:, r, 1].view(b, 1, 1)
            inx = (xs >= tx) & (xs < tx + sx)
            iny = (ys >= ty) & (ys < ty + sy)
            border = (inx & ((ys == ty) | (ys == ty + sy - 1))) | (iny & ((xs == tx) | (xs == tx + sx - 1)))
            grid = torch.where((border & exists).unsqueeze(-1), _const(WALL_CELL, device), grid)
            if r > 0:
                c = uniform_to_int(rest[r], torch.where(prev_col >= 0, 5, 6))
                c = c + ((prev_col >= 0) & (c >= prev_col)).long()
                door = torch.stack([torch.full_like(c, OBJ["door"]), c, torch.ones_like(c)], 1).to(torch.uint8)
                ex, ey = entry[:, r, 0], entry[:, r, 1]
                cur = grid[rows, ey, ex]
                grid[rows, ey, ex] = torch.where((r < length).unsqueeze(1), door, cur)
                prev_col = torch.where(r < length, c, prev_col)
        last = (length - 1).clamp(min=0)

        def room_mask(i: torch.Tensor) -> torch.Tensor:
            tx, ty = top[rows, i, 0].view(b, 1, 1), top[rows, i, 1].view(b, 1, 1)
            sx, sy = size[rows, i, 0].view(b, 1, 1), size[rows, i, 1].view(b, 1, 1)
            return ((xs >= tx) & (xs < tx + sx) & (ys >= ty) & (ys < ty + sy)).flatten(1)

        free = _cells(grid) == OBJ["empty"]
        a = pick_free(free & room_mask(torch.zeros_like(last)), rest[0])
        direction = uniform_to_int(rest[n], 4)
        gmask = free & room_mask(last)
        gmask[rows, a] = False
        g = pick_free(gmask, rest[n + 1])
        _set_flat(grid, g, _const(GOAL_CELL, device))
        return Layout(grid, _xy(a, w), direction)
