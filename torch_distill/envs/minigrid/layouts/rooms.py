"""Open rooms: Empty, FourRooms and MultiRoom.
"""

from __future__ import annotations

import torch

from torch_distill.envs.minigrid.core import (
    EMPTY_CELL,
    GOAL_CELL,
    OBJ,
    WALL_CELL,
    Layout,
)
from torch_distill.envs.minigrid.layouts.base import (
    _Base,
    _cells,
    _const,
    _put,
    _set_flat,
    _split,
    _UniformBase,
    _xy,
    pick_free,
    randint,
    uniform_to_int,
    wall_rect_grid,
)

__all__ = ["EmptyLayout", "FourRoomsLayout", "MultiRoomLayout"]


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
