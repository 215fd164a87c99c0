"""Doors and keys on hand-built grids: DoorKey, GoToDoor, RedBlueDoors and LockedRoom.
"""

from __future__ import annotations

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
from torch_distill.envs.minigrid.layouts.base import (
    _Base,
    _cells,
    _const,
    _put,
    _UniformBase,
    _xy,
    pick_free,
    uniform_to_int,
    wall_rect_grid,
)

__all__ = ["DoorKeyLayout", "GoToDoorLayout", "LockedRoomLayout", "RedBlueDoorsLayout"]


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
