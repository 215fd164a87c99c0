"""Objects to find, fetch or remember: Fetch, GoToObject, PutNear (``ObjectsLayout``) and Memory.
"""

from __future__ import annotations

import torch

from torch_distill.envs.minigrid.core import (
    COLOR,
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

__all__ = ["MemoryLayout", "ObjectsLayout"]


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
        type_ids = _const(tuple(_TYPE_IDS[t] for t in self.types), device, torch.int64)
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
