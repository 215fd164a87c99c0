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
    OBJ,
    STATE_LOCKED,
    WALL_CELL,
    Layout,
)

__all__ = ["LayoutGenerator", "EmptyLayout", "DoorKeyLayout", "FourRoomsLayout", "randint", "wall_rect_grid"]


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
