"""``RoomGrid`` tasks: Unlock, UnlockPickup, BlockedUnlockPickup and KeyCorridor, with ``RoomGrid``'s
room mask and ``place_agent``.
"""

from __future__ import annotations

import torch

from torch_distill.envs.minigrid.core import (
    EMPTY_CELL,
    OBJ,
    STATE_LOCKED,
    WALL_CELL,
    Layout,
)
from torch_distill.envs.minigrid.layouts.base import (
    _cells,
    _const,
    _set_flat,
    _UniformBase,
    _xy,
    pick_free,
    uniform_to_int,
    wall_rect_grid,
)

__all__ = ["KeyCorridorLayout", "UnlockLayout"]


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
        pa = _const(tuple(p[0] for p in self.pairs), device, torch.int64)
        pb = _const(tuple(p[1] for p in self.pairs), device, torch.int64)
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
