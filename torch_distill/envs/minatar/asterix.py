"""MinAtar Asterix (``minatar/environments/asterix.py``), batched.

The player moves in the 4 directions on rows 1..8; enemies and gold spawn from the sides of a random free row
(one entity per row, 8 slots) and move horizontally. +1 per gold picked up; touching an enemy ends the episode.
With difficulty ramping, every 100 frames the spawn interval (and every other time the move interval) shrinks.
Channels: player, enemy, trail, gold.

Random numbers, only on frames where an entity spawns: ``rand()`` (side: left iff ``< 1/2``), ``rand()`` (gold
iff ``< 1/3``), then, if a row is free, ``randint(number of free rows)`` (which free row). None at reset.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from torch_distill.envs.minatar.base import DOWN, GRID, LEFT, RIGHT, UP, MinAtarGame, scatter_obs

__all__ = ["Asterix", "AsterixState", "AsterixDraws"]

RAMP_INTERVAL = 100
INIT_SPAWN_SPEED = 10
INIT_MOVE_INTERVAL = 5
N_SLOTS = 8


class AsterixState(NamedTuple):
    player_x: torch.Tensor  # [B] int64
    player_y: torch.Tensor  # [B] int64 (1..8)
    alive: torch.Tensor  # [B, 8] bool: slot i (row i + 1) holds an entity
    ent_x: torch.Tensor  # [B, 8] int64 its column
    ent_lr: torch.Tensor  # [B, 8] bool: moves right (spawned on the left)
    ent_gold: torch.Tensor  # [B, 8] bool: gold (else an enemy)
    spawn_speed: torch.Tensor  # [B] int64
    spawn_timer: torch.Tensor  # [B] int64
    move_speed: torch.Tensor  # [B] int64
    move_timer: torch.Tensor  # [B] int64
    ramp_timer: torch.Tensor  # [B] int64
    ramp_index: torch.Tensor  # [B] int64
    terminal: torch.Tensor  # [B] bool


class AsterixDraws(NamedTuple):
    """The random decisions of one spawn, ``[n]`` each (used only on rows that spawn)."""

    lr: torch.Tensor  # bool: spawn on the left moving right (minatar's ``rand() < 1/2``)
    gold: torch.Tensor  # bool: gold (``rand() < 1/3``)
    slot: torch.Tensor  # float32 in [0, 1): the free row is number ``floor(slot * n_free)`` (``randint(n_free)``)


class Asterix(MinAtarGame):
    """MinAtar Asterix as batched torch functions (see :class:`~torch_distill.envs.minatar.base.MinAtarGame`).

    Reset draws: none (an ``[n, 0]`` tensor). Step draws: :class:`AsterixDraws` from one ``torch.rand((n, 3))``.
    """

    name = "asterix"
    module = "asterix"
    channels = ("player", "enemy", "trail", "gold")
    minimal_actions = (0, 1, 2, 3, 4)  # n, l, u, r, d
    max_steps = 1000

    def __init__(self) -> None:
        self._cache: dict[torch.device, torch.Tensor] = {}

    def _rows(self, device: torch.device) -> torch.Tensor:
        r = self._cache.get(device)
        if r is None:
            r = self._cache[device] = torch.arange(1, N_SLOTS + 1, dtype=torch.int64, device=device)
        return r

    def reset_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> torch.Tensor:
        dev = device if device is not None else generator.device
        return torch.empty(n, 0, device=dev)

    def step_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> AsterixDraws:
        dev = device if device is not None else generator.device
        u = torch.rand(n, 3, generator=generator, device=dev)
        return AsterixDraws(u[:, 0] < 0.5, u[:, 1] < 1.0 / 3.0, u[:, 2])

    def init(self, draws: torch.Tensor, ramping: torch.Tensor) -> AsterixState:
        n, dev = draws.shape[0], draws.device

        def full(v: int) -> torch.Tensor:
            return torch.full((n,), v, dtype=torch.int64, device=dev)

        false8 = torch.zeros(n, N_SLOTS, dtype=torch.bool, device=dev)
        return AsterixState(full(5), full(5), false8, torch.zeros(n, N_SLOTS, dtype=torch.int64, device=dev), false8,
                            false8, full(INIT_SPAWN_SPEED), full(INIT_SPAWN_SPEED), full(INIT_MOVE_INTERVAL),
                            full(INIT_MOVE_INTERVAL), full(RAMP_INTERVAL), full(0),
                            torch.zeros(n, dtype=torch.bool, device=dev))

    def act(self, game: AsterixState, action: torch.Tensor, draws: AsterixDraws, ramping: torch.Tensor
            ) -> tuple[AsterixState, torch.Tensor, torch.Tensor]:
        rows = self._rows(action.device)
        # spawn into the floor(slot * n_free)-th free row when the spawn timer is up
        spawn = game.spawn_timer == 0
        free = ~game.alive
        n_free = free.sum(1)
        k = torch.minimum((draws.slot * n_free).long(), n_free - 1)  # (float rounding of slot * n_free)
        chosen = free & (free.cumsum(1) == (k + 1).unsqueeze(1)) & spawn.unsqueeze(1)
        lr = draws.lr.unsqueeze(1)
        alive = game.alive | chosen
        ent_x = torch.where(chosen, 9 - 9 * lr.long(), game.ent_x)  # left side: column 0
        ent_lr = torch.where(chosen, lr, game.ent_lr)
        ent_gold = torch.where(chosen, draws.gold.unsqueeze(1), game.ent_gold)
        spawn_timer = torch.where(spawn, game.spawn_speed, game.spawn_timer)
        # player
        px = (game.player_x - (action == LEFT).long() + (action == RIGHT).long()).clamp_(0, 9)
        py = (game.player_y - (action == UP).long() + (action == DOWN).long()).clamp_(1, 8)
        on_row = rows == py.unsqueeze(1)
        pxc = px.unsqueeze(1)
        # collisions before the entities move
        at = alive & on_row & (ent_x == pxc)
        picked = at & ent_gold
        reward = picked.sum(1)
        terminal = (at & ~ent_gold).any(1)
        alive = alive & ~picked
        # entities move every move_speed frames
        mv = game.move_timer == 0
        move_timer = torch.where(mv, game.move_speed, game.move_timer)
        moved = alive & mv.unsqueeze(1)
        ent_x = ent_x + (ent_lr.long() * 2 - 1) * moved
        off = (ent_x < 0) | (ent_x > 9)
        alive = alive & ~off
        at = moved & alive & on_row & (ent_x == pxc)
        picked = at & ent_gold
        reward = reward + picked.sum(1)
        terminal = terminal | (at & ~ent_gold).any(1)
        alive = alive & ~picked
        spawn_timer = spawn_timer - 1
        move_timer = move_timer - 1
        # difficulty ramp
        spawn_speed, move_speed = game.spawn_speed, game.move_speed
        ramp = ramping & ((spawn_speed > 1) | (move_speed > 1))
        tick = ramp & (game.ramp_timer >= 0)
        level = ramp & ~tick
        ramp_timer = torch.where(level, RAMP_INTERVAL, game.ramp_timer - tick.long())
        move_speed = move_speed - (level & (move_speed > 1) & (game.ramp_index % 2 == 1)).long()
        spawn_speed = spawn_speed - (level & (spawn_speed > 1)).long()
        ramp_index = game.ramp_index + level.long()
        state = AsterixState(px, py, alive, ent_x, ent_lr, ent_gold, spawn_speed, spawn_timer, move_speed, move_timer,
                             ramp_timer, ramp_index, terminal)
        return state, reward.to(torch.float32), terminal

    def observation(self, game: AsterixState) -> torch.Tensor:
        rows = self._rows(game.player_x.device)
        c = 4
        dummy = GRID * GRID * c
        base = rows * GRID
        x = game.ent_x
        ent = torch.where(game.alive, (base + x) * c + 1 + 2 * game.ent_gold.long(), dummy)  # gold 3, enemy 1
        back = x + 1 - 2 * game.ent_lr.long()
        trail = torch.where(game.alive & (back >= 0) & (back <= 9), (base + back) * c + 2, dummy)
        player = ((game.player_y * GRID + game.player_x) * c).unsqueeze(1)
        return scatter_obs(x.shape[0], c, torch.cat([player, ent, trail], dim=1))

    def from_minatar(self, env: Any, device: torch.device | str = "cpu") -> AsterixState:
        ents = list(env.entities)
        if len(ents) != N_SLOTS:
            raise ValueError(f"minatar Asterix entities {ents!r}: expected {N_SLOTS} slots")
        for i, e in enumerate(ents):
            if e is not None and int(e[1]) != i + 1:
                raise ValueError(f"minatar Asterix entity {e!r} in slot {i}: expected row {i + 1}")

        def col(j: int, dtype: torch.dtype) -> torch.Tensor:
            return torch.tensor([[e[j] if e is not None else 0 for e in ents]], dtype=dtype, device=device)

        alive = torch.tensor([[e is not None for e in ents]], device=device)

        def i(v: Any) -> torch.Tensor:
            return torch.tensor([int(v)], dtype=torch.int64, device=device)

        return AsterixState(i(env.player_x), i(env.player_y), alive, col(0, torch.int64), col(2, torch.bool),
                            col(3, torch.bool), i(env.spawn_speed), i(env.spawn_timer), i(env.move_speed),
                            i(env.move_timer), i(env.ramp_timer), i(env.ramp_index),
                            torch.tensor([bool(env.terminal)], device=device))
