"""Lava, walls to cross and moving obstacles: LavaGap, DistShift, Crossing and DynamicObstacles.
"""

from __future__ import annotations

import torch

from torch_distill.envs.minigrid.core import (
    COLOR,
    EMPTY_CELL,
    GOAL_CELL,
    LAVA_CELL,
    OBJ,
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

__all__ = ["CrossingLayout", "DistShiftLayout", "DynamicObstaclesLayout", "LavaGapLayout"]


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
