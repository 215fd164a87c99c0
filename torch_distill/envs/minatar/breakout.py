"""MinAtar Breakout (``minatar/environments/breakout.py``), batched.

The paddle moves along the bottom row; the ball travels along diagonals, bounces off walls, bricks and the
paddle, and the episode ends when it reaches the bottom row past the paddle. +1 per brick; when all bricks are
gone and the ball reaches the bottom row, the three rows of bricks come back. Channels: paddle, ball, trail,
brick. Random numbers: one ``randint(2)`` per reset (which side the ball starts on); none per step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from torch_distill.envs.minatar.base import GRID, LEFT, RIGHT, MinAtarGame

__all__ = ["Breakout", "BreakoutState"]

# minatar's ball_dir -> (dx, dy); its tables [1, 0, 3, 2] / [3, 2, 1, 0] / [2, 3, 0, 1] negate dx / dy / both
_DX = (-1, 1, 1, -1)
_DY = (-1, -1, 1, 1)


class BreakoutState(NamedTuple):
    ball_x: torch.Tensor  # [B] int64
    ball_y: torch.Tensor  # [B] int64
    dx: torch.Tensor  # [B] int64 -1 / +1: minatar's ball_dir 0 up-left (-1, -1), 1 up-right (+1, -1),
    dy: torch.Tensor  # [B] int64 -1 / +1:   2 down-right (+1, +1), 3 down-left (-1, +1)
    pos: torch.Tensor  # [B] int64 paddle column
    last_x: torch.Tensor  # [B] int64 trail
    last_y: torch.Tensor  # [B] int64
    bricks: torch.Tensor  # [B] int64 bit mask: bit (y - 1) * 10 + x set = a brick at row y in 1..3, column x
    strike: torch.Tensor  # [B] bool: a brick was hit on the previous step
    terminal: torch.Tensor  # [B] bool

    @property
    def ball_dir(self) -> torch.Tensor:
        """minatar's ``ball_dir`` (0..3)."""
        return torch.where(self.dy < 0, (self.dx > 0).long(), 2 + (self.dx < 0).long())

    @property
    def brick_map(self) -> torch.Tensor:
        """minatar's ``brick_map`` as ``[B, 10, 10]`` bool."""
        bits = (self.bricks.unsqueeze(1) >> torch.arange(30, device=self.bricks.device)) & 1
        grid = torch.zeros(self.bricks.shape[0], GRID, GRID, dtype=torch.bool, device=self.bricks.device)
        grid[:, 1:4] = bits.bool().view(-1, 3, GRID)
        return grid


ALL_BRICKS = (1 << 30) - 1  # rows 1..3 full


class Breakout(MinAtarGame):
    """MinAtar Breakout as batched torch functions (see :class:`~torch_distill.envs.minatar.base.MinAtarGame`).

    Reset draws: ``[n]`` int64 in {0, 1} (minatar's ``randint(2)``: 0 starts the ball at column 0 moving
    down-right, 1 at column 9 moving down-left). Step draws: none (an ``[n, 0]`` tensor). Bricks only ever lie
    in rows 1..3, so the state keeps them as a 30-bit mask (the observation is built from a 1024-row table of
    10-brick rows).
    """

    name = "breakout"
    module = "breakout"
    channels = ("paddle", "ball", "trail", "brick")
    minimal_actions = (0, 1, 3)  # n, l, r
    max_steps = 1000

    def __init__(self) -> None:
        self._cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def _consts(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        c = self._cache.get(device)
        if c is None:
            codes = torch.arange(1024, device=device).unsqueeze(1)
            rows = torch.zeros(1024, GRID, 4, dtype=torch.bool, device=device)
            rows[..., 3] = ((codes >> torch.arange(GRID, device=device)) & 1).bool()
            c = self._cache[device] = (rows.view(1024, GRID * 4), torch.tensor([0, 10, 20], device=device))
        return c

    def reset_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> torch.Tensor:
        dev = device if device is not None else generator.device
        return torch.randint(0, 2, (n,), generator=generator, device=dev)

    def step_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> torch.Tensor:
        dev = device if device is not None else generator.device
        return torch.empty(n, 0, device=dev)

    def init(self, draws: torch.Tensor, ramping: torch.Tensor) -> BreakoutState:
        start = draws.long()
        n, dev = start.shape[0], start.device
        ball_x = start * 9
        ball_y = torch.full((n,), 3, dtype=torch.int64, device=dev)
        false = torch.zeros(n, dtype=torch.bool, device=dev)
        return BreakoutState(ball_x, ball_y, 1 - 2 * start, torch.ones_like(start),
                             torch.full((n,), 4, dtype=torch.int64, device=dev), ball_x, ball_y,
                             torch.full((n,), ALL_BRICKS, dtype=torch.int64, device=dev), false, false)

    def act(self, game: BreakoutState, action: torch.Tensor, draws: Any, ramping: torch.Tensor
            ) -> tuple[BreakoutState, torch.Tensor, torch.Tensor]:
        pos = (game.pos - (action == LEFT).long() + (action == RIGHT).long()).clamp_(0, 9)
        bx, by, dx, dy = game.ball_x, game.ball_y, game.dx, game.dy
        new_x = bx + dx
        new_y = by + dy
        out_x = (new_x < 0) | (new_x > 9)
        new_x = new_x.clamp(0, 9)
        dx = dx - 2 * dx * out_x  # reflect off the side walls
        top = new_y < 0
        new_y = new_y.clamp(min=0)
        bit = (new_y - 1) * GRID + new_x
        in_rows = (new_y >= 1) & (new_y <= 3)
        hit_brick = in_rows & (((game.bricks >> bit.clamp(0, 29)) & 1) == 1)
        breaks = hit_brick & ~game.strike
        bottom = ~top & ~hit_brick & (new_y == 9)
        bricks = game.bricks & ~(breaks.long() << bit.clamp(0, 29))
        # bottom row: restore the bricks if none is left, then the paddle bounces the ball or the game ends
        bricks = torch.where(bottom & (bricks == 0), ALL_BRICKS, bricks)
        centre = bottom & (bx == pos)
        edge = bottom & ~centre & (new_x == pos)
        terminal = bottom & ~centre & ~edge
        dy = dy - 2 * dy * (top | breaks | centre | edge)
        dx = dx - 2 * dx * edge
        new_y = torch.where(breaks | centre | edge, by, new_y)
        state = BreakoutState(new_x, new_y, dx, dy, pos, bx, by, bricks, hit_brick, terminal)
        return state, breaks.to(torch.float32), terminal

    def observation(self, game: BreakoutState) -> torch.Tensor:
        rows, shifts = self._consts(game.pos.device)
        n, c = game.pos.shape[0], 4
        obs = torch.zeros(n, GRID * GRID * c + 1, dtype=torch.bool, device=game.pos.device)
        codes = ((game.bricks.unsqueeze(1) >> shifts) & 1023).view(-1)
        obs[:, GRID * c: 4 * GRID * c] = rows.index_select(0, codes).view(n, 3 * GRID * c)
        index = torch.stack([(90 + game.pos) * c, (game.ball_y * GRID + game.ball_x) * c + 1,
                             (game.last_y * GRID + game.last_x) * c + 2], dim=1)
        obs.scatter_(1, index, True)
        return obs[:, : GRID * GRID * c].view(n, GRID, GRID, c)

    def from_minatar(self, env: Any, device: torch.device | str = "cpu") -> BreakoutState:
        def i(v: Any) -> torch.Tensor:
            return torch.tensor([int(v)], dtype=torch.int64, device=device)

        def b(v: Any) -> torch.Tensor:
            return torch.tensor([bool(v)], device=device)

        grid = env.brick_map != 0
        if grid[0].any() or grid[4:].any():
            raise ValueError("minatar Breakout brick_map has bricks outside rows 1..3, which the game never makes")
        bricks = sum(1 << k for k, v in enumerate(grid[1:4].reshape(-1).tolist()) if v)
        d = int(env.ball_dir)
        return BreakoutState(i(env.ball_x), i(env.ball_y), i(_DX[d]), i(_DY[d]), i(env.pos), i(env.last_x),
                             i(env.last_y), i(bricks), b(env.strike), b(env.terminal))
