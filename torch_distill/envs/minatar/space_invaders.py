"""MinAtar Space Invaders (``minatar/environments/space_invaders.py``), batched.

The player's cannon moves along the bottom row and fires bullets upward at a 4 x 6 block of aliens, which move
sideways until one reaches the edge, then step down and turn around; the alien nearest the cannon (columns by
distance, ties to the lower column; its lowest alien) shoots every 10 frames. +1 per alien shot; when the wave is
cleared a new one comes, faster with difficulty ramping. The episode ends when an alien or an enemy bullet
reaches the cannon, or an alien reaches the bottom row while stepping down. Channels: cannon, alien, alien_left,
alien_right, friendly_bullet, enemy_bullet.

Random numbers: none (the game is deterministic; only minatar's sticky actions are random).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from torch_distill.envs.minatar.base import FIRE, GRID, LEFT, RIGHT, MinAtarGame

__all__ = ["SpaceInvaders", "SpaceInvadersState"]

SHOT_COOL_DOWN = 5
ENEMY_MOVE_INTERVAL = 12
ENEMY_SHOT_INTERVAL = 10


class SpaceInvadersState(NamedTuple):
    """Each 10 x 10 map is two int64 words: ``*_lo`` holds rows 0..4, ``*_hi`` rows 5..9, cell ``(y, x)`` at bit
    ``10 * (y % 5) + x``."""

    pos: torch.Tensor  # [B] int64 cannon column (row 9)
    f_lo: torch.Tensor  # [B] int64 friendly bullets, rows 0..4
    f_hi: torch.Tensor  # [B] int64 friendly bullets, rows 5..9
    e_lo: torch.Tensor  # [B] int64 enemy bullets
    e_hi: torch.Tensor  # [B] int64
    a_lo: torch.Tensor  # [B] int64 aliens
    a_hi: torch.Tensor  # [B] int64
    alien_count: torch.Tensor  # [B] int64 aliens alive (minatar's ``np.count_nonzero(alien_map)``)
    alien_dir: torch.Tensor  # [B] int64: -1 left, +1 right
    enemy_move_interval: torch.Tensor  # [B] int64
    alien_move_timer: torch.Tensor  # [B] int64
    alien_shot_timer: torch.Tensor  # [B] int64
    ramp_index: torch.Tensor  # [B] int64
    shot_timer: torch.Tensor  # [B] int64
    terminal: torch.Tensor  # [B] bool


ROW = 0x3FF  # the 10 bits of one row
LOW5 = (1 << 50) - 1  # the 5 rows of a word
COLUMN = sum(1 << (10 * r) for r in range(5))  # column 0 of the 5 rows of a word
WAVE_LO = sum(0b0011111100 << (10 * r) for r in range(4))  # rows 0..3, columns 2..7
WAVE_SIZE = 24


class _Tables(NamedTuple):
    nearest: torch.Tensor  # [10 * 1024] int64: column of the alien nearest to pos given the occupied columns
    obs: torch.Tensor  # [65536, 30] uint8: half-row code -> its 5 cells x 6 channels (see ``observation``)
    halves: torch.Tensor  # [10] int64 shifts 0, 5, .., 45 of the half rows of a word


def _tables(device: torch.device) -> _Tables:
    masks = torch.arange(1024)
    bits = (masks.unsqueeze(1) >> torch.arange(GRID)) & 1  # [1024, 10]
    cols = torch.arange(GRID)
    # minatar's search order: columns sorted by |x - pos| (a stable sort: ties to the lower column)
    key = (cols.view(1, 1, GRID) - cols.view(GRID, 1, 1)).abs() * GRID + cols.view(1, 1, GRID)  # [pos, 1, x]
    key = key + (1 - bits.unsqueeze(0)) * GRID * GRID  # [pos, mask, x]
    nearest = key.argmin(2).reshape(-1)
    # half-row code: bits 0..4 aliens, 5..9 friendly bullets, 10..14 enemy bullets of 5 cells, bit 15 aliens
    # moving left -> [5 cells, 6 channels] (cannon, alien, alien_left, alien_right, friendly_bullet, enemy_bullet)
    code = torch.arange(1 << 16).unsqueeze(1)
    k = torch.arange(5)
    alien, fb, eb, left = (code >> k) & 1, (code >> (5 + k)) & 1, (code >> (10 + k)) & 1, (code >> 15) & 1
    zero = torch.zeros_like(alien)
    obs = torch.stack([zero, alien, alien * left, alien * (1 - left), fb, eb], 2).to(torch.uint8).view(-1, 30)
    return _Tables(nearest.to(device), obs.to(device), (5 * torch.arange(GRID)).to(device))


def _popcount(x: torch.Tensor) -> torch.Tensor:
    """Set bits of non-negative int64 values below ``2**56`` (SWAR, no overflow)."""
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    x = x + (x >> 8)
    x = x + (x >> 16)
    x = x + (x >> 32)
    return x & 0x7F


def _count(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Set cells of a map (both words)."""
    return _popcount(torch.stack([lo, hi])).sum(0)


def _columns(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """The 10-bit mask of the columns holding a set cell."""
    v = lo | hi
    v = v | (v >> 10) | (v >> 20) | (v >> 30) | (v >> 40)
    return v & ROW


def _top_row(c: torch.Tensor) -> torch.Tensor:
    """The highest row (0..4) set in a word masked to one column (bits at multiples of 10)."""
    return (c >= 1 << 10).long() + (c >= 1 << 20).long() + (c >= 1 << 30).long() + (c >= 1 << 40).long()


class SpaceInvaders(MinAtarGame):
    """MinAtar Space Invaders as batched torch functions (see :class:`~torch_distill.envs.minatar.base.MinAtarGame`).

    Reset draws and step draws: none (``[n, 0]`` tensors). Each map is packed into two int64 words
    (:class:`SpaceInvadersState`), so every ``np.roll`` of the reference is a few shifts of ``[B]`` words (the
    aliens' sideways step never wraps: they turn around first; their step down does wrap, as ``np.roll`` does,
    on the frame the game ends).
    """

    name = "space_invaders"
    module = "space_invaders"
    channels = ("cannon", "alien", "alien_left", "alien_right", "friendly_bullet", "enemy_bullet")
    minimal_actions = (0, 1, 3, 5)  # n, l, r, f
    max_steps = 1000

    def __init__(self) -> None:
        self._cache: dict[torch.device, _Tables] = {}

    def _consts(self, device: torch.device) -> _Tables:
        c = self._cache.get(device)
        if c is None:
            c = self._cache[device] = _tables(device)
        return c

    def reset_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> torch.Tensor:
        dev = device if device is not None else generator.device
        return torch.empty(n, 0, device=dev)

    def step_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> torch.Tensor:
        dev = device if device is not None else generator.device
        return torch.empty(n, 0, device=dev)

    def init(self, draws: torch.Tensor, ramping: torch.Tensor) -> SpaceInvadersState:
        n, dev = draws.shape[0], draws.device

        def full(v: int) -> torch.Tensor:
            return torch.full((n,), v, dtype=torch.int64, device=dev)

        zero = full(0)
        return SpaceInvadersState(full(5), zero, zero, zero, zero, full(WAVE_LO), zero, full(WAVE_SIZE), full(-1),
                                  full(ENEMY_MOVE_INTERVAL), full(ENEMY_MOVE_INTERVAL), full(ENEMY_SHOT_INTERVAL),
                                  zero, zero, torch.zeros(n, dtype=torch.bool, device=dev))

    def act(self, game: SpaceInvadersState, action: torch.Tensor, draws: Any, ramping: torch.Tensor
            ) -> tuple[SpaceInvadersState, torch.Tensor, torch.Tensor]:
        g = game
        tb = self._consts(action.device)
        # the player: fire (when the gun is cool) puts a bullet above the cannon, else left / right
        fire = (action == FIRE) & (g.shot_timer == 0)
        shot_timer = torch.where(fire, SHOT_COOL_DOWN, g.shot_timer)
        f_hi = g.f_hi | (fire.long() << (40 + g.pos))
        pos = (g.pos - (action == LEFT).long() + (action == RIGHT).long()).clamp(0, GRID - 1)
        cannon = 40 + pos  # the cannon's bit in the *_hi words
        # friendly bullets move up (off the top: gone), enemy bullets down (off the bottom: gone)
        f_lo = (g.f_lo >> 10) | ((f_hi & ROW) << 40)
        f_hi = f_hi >> 10
        e_hi = ((g.e_hi << 10) & LOW5) | (g.e_lo >> 40)
        e_lo = (g.e_lo << 10) & LOW5
        a_lo, a_hi = g.a_lo, g.a_hi
        terminal = (((e_hi | a_hi) >> cannon) & 1) != 0
        # aliens: every alien_move_timer frames they step sideways, or down (and turn) at an edge
        move = g.alien_move_timer == 0
        move_timer = torch.where(move, torch.minimum(g.alien_count, g.enemy_move_interval), g.alien_move_timer)
        occupied = _columns(a_lo, a_hi)
        left = g.alien_dir < 0
        turn = move & torch.where(left, (occupied & 1) != 0, (occupied & (1 << (GRID - 1))) != 0)
        alien_dir = torch.where(turn, -g.alien_dir, g.alien_dir)
        terminal = terminal | (turn & ((a_hi >> 40) != 0))
        side = move & ~turn
        right_by, left_by = (side & ~left).long(), (side & left).long()
        down_lo = ((a_lo << 10) & LOW5) | (a_hi >> 40)
        down_hi = ((a_hi << 10) & LOW5) | (a_lo >> 40)
        a_lo = torch.where(turn, down_lo, (a_lo >> left_by) << right_by)
        a_hi = torch.where(turn, down_hi, (a_hi >> left_by) << right_by)
        terminal = terminal | (((a_hi >> cannon) & 1) != 0)
        # the alien nearest the cannon shoots: columns by |x - pos| (ties: lower column), its lowest alien
        shoot = g.alien_shot_timer == 0
        alien_shot_timer = torch.where(shoot, ENEMY_SHOT_INTERVAL, g.alien_shot_timer)
        occupied = (occupied >> left_by) << right_by  # (stepping down keeps the columns)
        col = tb.nearest[pos * 1024 + occupied]
        in_hi = (a_hi >> col) & COLUMN
        upper = in_hi != 0
        row5 = _top_row(torch.where(upper, in_hi, (a_lo >> col) & COLUMN))
        bullet = (shoot & (occupied != 0)).long() << (row5 * 10 + col)
        e_hi = e_hi | (bullet * upper)
        e_lo = e_lo | (bullet * ~upper)
        # friendly bullets kill the aliens they share a cell with
        k_lo, k_hi = a_lo & f_lo, a_hi & f_hi
        kills = _count(k_lo, k_hi)
        a_lo, a_hi, f_lo, f_hi = a_lo & ~k_lo, a_hi & ~k_hi, f_lo & ~k_lo, f_hi & ~k_hi
        # timers; a cleared wave comes back (one frame faster with ramping, down to 6)
        shot_timer = shot_timer - (shot_timer > 0).long()
        count = g.alien_count - kills
        cleared = count == 0
        ramp = (cleared & (g.enemy_move_interval > 6) & ramping).long()
        a_lo = a_lo | (cleared.long() * WAVE_LO)
        count = count + cleared.long() * WAVE_SIZE
        state = SpaceInvadersState(pos, f_lo, f_hi, e_lo, e_hi, a_lo, a_hi, count, alien_dir,
                                   g.enemy_move_interval - ramp, move_timer - 1, alien_shot_timer - 1,
                                   g.ramp_index + ramp, shot_timer, terminal)
        return state, kills.to(torch.float32), terminal

    def observation(self, game: SpaceInvadersState) -> torch.Tensor:
        g = game
        n = g.pos.shape[0]
        tb = self._consts(g.pos.device)
        words = torch.stack([g.a_lo, g.a_hi, g.f_lo, g.f_hi, g.e_lo, g.e_hi], 1).view(n, 3, 2, 1)
        halves = (words >> tb.halves) & 31  # [B, map, word, half row]: the 20 half rows of each map
        left = ((g.alien_dir < 0).long() << 15).view(n, 1, 1)
        code = halves[:, 0] | (halves[:, 1] << 5) | (halves[:, 2] << 10) | left
        obs = tb.obs.index_select(0, code.view(-1)).view(-1)  # one gather: [B * 20 half rows, 30]
        cannon = torch.arange(n, device=g.pos.device) * (GRID * GRID * 6) + ((GRID - 1) * GRID + g.pos) * 6
        obs.index_fill_(0, cannon, 1)
        return obs.view(torch.bool).view(n, GRID, GRID, 6)

    def from_minatar(self, env: Any, device: torch.device | str = "cpu") -> SpaceInvadersState:
        def i(v: Any) -> torch.Tensor:
            return torch.tensor([int(v)], dtype=torch.int64, device=device)

        def words(v: Any) -> tuple[torch.Tensor, torch.Tensor]:
            cells = [(y, x) for y in range(GRID) for x in range(GRID) if v[y, x] != 0]
            lo = sum(1 << (10 * y + x) for y, x in cells if y < 5)
            hi = sum(1 << (10 * (y - 5) + x) for y, x in cells if y >= 5)
            return i(lo), i(hi)

        return SpaceInvadersState(i(env.pos), *words(env.f_bullet_map), *words(env.e_bullet_map),
                                  *words(env.alien_map), i(np.count_nonzero(env.alien_map)), i(env.alien_dir),
                                  i(env.enemy_move_interval),
                                  i(env.alien_move_timer), i(env.alien_shot_timer), i(env.ramp_index),
                                  i(env.shot_timer), torch.tensor([bool(env.terminal)], device=device))
