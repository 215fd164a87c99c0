"""MinAtar Seaquest (``minatar/environments/seaquest.py``), batched.

The player's submarine (front and back cell, so its heading shows) moves in 4 directions on rows 0..8 and fires
horizontally. Enemy fish and enemy submarines (which shoot) spawn at the sides and cross the screen; divers too.
+1 per enemy shot; picking up divers (at most 6) lets the player surface to refill oxygen (one diver leaves, or
all 6 for a bonus of ``oxygen * 10 // 200``); each surfacing ramps up the difficulty. The episode ends when an
enemy or an enemy bullet touches the player, oxygen runs out, or the player surfaces with no diver. Channels:
sub_front, sub_back, friendly_bullet, trail, enemy_bullet, enemy_fish, enemy_sub, oxygen_guage, diver_guage, diver.

Random numbers (none at reset): on frames where an enemy spawns, ``rand()`` (left side iff ``< 1/2``), ``rand()``
(submarine iff ``< 1/3``), ``randint(1, 9)`` (row); then, on frames where a diver spawns, ``rand()`` (side) and
``randint(1, 9)`` (row).

MinAtar keeps each kind of entity in a Python list, appends new ones and walks some lists in reverse while
removing from them. Here each list is a fixed set of slots with an ``alive`` mask, kept in list order (alive slots
first, compacted at the end of every step), so "the first fish at this cell" and "the submarines, newest first"
mean what they mean in the reference:

* friendly bullets (at most 2: the gun cools down for 5 frames, a bullet lives at most 9) are walked newest first,
  each hitting the first fish in list order at its cell, else the first submarine;
* divers (at most 2: one spawns every 30 frames and lives at most 59) are walked newest first (the diver count
  is capped at 6, so which diver is picked up depends on the order);
* fish and submarines share one block of 60 slots in spawn order (an enemy lives at most 59 frames and at most one
  spawns per frame); a fish or submarine that moves onto a friendly bullet takes the first bullet in list order,
  the newest enemy first, which is computed bullet by bullet (bullet ``j`` goes to the newest enemy at its cell not
  already taken);
* enemy bullets never interact with each other, so they are two ``[10, 10]`` planes (moving right / left).

Reference quirks kept: a submarine that leaves the screen or is shot on the frame its shot timer is due still
fires (a bullet off the screen is dropped at once, as in the reference); surfacing with 6 divers leaves a diver
count of -1 (the reference zeroes the count, then takes one diver away), which the diver gauge shows as empty.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from torch_distill.envs.minatar.base import DOWN, FIRE, GRID, LEFT, RIGHT, UP, MinAtarGame, scatter_obs

__all__ = ["Seaquest", "SeaquestState", "SeaquestDraws"]

MAX_OXYGEN = 200
INIT_SPAWN_SPEED = 20
DIVER_SPAWN_SPEED = 30
INIT_MOVE_INTERVAL = 5
SHOT_COOL_DOWN = 5
ENEMY_SHOT_INTERVAL = 10
DIVER_MOVE_INTERVAL = 5
MAX_DIVERS_CARRIED = 6

N_BULLETS = 2  # friendly bullets alive at once (see the module docstring)
N_DIVERS = 2
N_ENEMIES = 60

C_FRONT, C_BACK, C_FBULLET, C_TRAIL, C_EBULLET, C_FISH, C_SUB, C_OXYGEN, C_DIVERS, C_DIVER = range(10)


class SeaquestState(NamedTuple):
    oxygen: torch.Tensor  # [B] int64
    diver_count: torch.Tensor  # [B] int64 divers on board (-1 and below after a 6-diver surfacing, as minatar)
    sub_x: torch.Tensor  # [B] int64
    sub_y: torch.Tensor  # [B] int64 (0 = surface .. 8)
    sub_or: torch.Tensor  # [B] bool: facing right
    fb_alive: torch.Tensor  # [B, 2] bool friendly bullets, in list order
    fb_x: torch.Tensor  # [B, 2] int64
    fb_y: torch.Tensor  # [B, 2] int64
    fb_or: torch.Tensor  # [B, 2] bool: moving right
    eb_right: torch.Tensor  # [B, 10, 10] bool enemy bullets moving right (y, x)
    eb_left: torch.Tensor  # [B, 10, 10] bool enemy bullets moving left
    en_alive: torch.Tensor  # [B, 60] bool fish and submarines, in spawn order
    en_x: torch.Tensor  # [B, 60] int64
    en_y: torch.Tensor  # [B, 60] int64
    en_lr: torch.Tensor  # [B, 60] bool: moving right (spawned on the left)
    en_sub: torch.Tensor  # [B, 60] bool: a submarine (else a fish)
    en_move: torch.Tensor  # [B, 60] int64 move timer
    en_shot: torch.Tensor  # [B, 60] int64 shot timer (submarines)
    dv_alive: torch.Tensor  # [B, 2] bool divers, in list order
    dv_x: torch.Tensor  # [B, 2] int64
    dv_y: torch.Tensor  # [B, 2] int64
    dv_lr: torch.Tensor  # [B, 2] bool
    dv_move: torch.Tensor  # [B, 2] int64 move timer
    e_spawn_speed: torch.Tensor  # [B] int64
    e_spawn_timer: torch.Tensor  # [B] int64
    d_spawn_timer: torch.Tensor  # [B] int64
    move_speed: torch.Tensor  # [B] int64
    ramp_index: torch.Tensor  # [B] int64
    shot_timer: torch.Tensor  # [B] int64
    surface: torch.Tensor  # [B] bool: surfaced since last diving
    terminal: torch.Tensor  # [B] bool


class SeaquestDraws(NamedTuple):
    """The random decisions of one frame, ``[n]`` each (used only on rows where an enemy / a diver spawns)."""

    enemy_lr: torch.Tensor  # bool: the enemy spawns on the left moving right (``rand() < 1/2``)
    enemy_sub: torch.Tensor  # bool: a submarine (``rand() < 1/3``), else a fish
    enemy_y: torch.Tensor  # int64 in 1..8: its row (``randint(1, 9)``)
    diver_lr: torch.Tensor  # bool: the diver spawns on the left (``rand() < 1/2``)
    diver_y: torch.Tensor  # int64 in 1..8: its row


def _first(mask: torch.Tensor) -> torch.Tensor:
    """The first True of each row of ``mask [B, K]`` (a one-hot mask, all False where none)."""
    return mask & (mask.cumsum(1) == 1)


def _last(mask: torch.Tensor) -> torch.Tensor:
    """The last True of each row of ``mask [B, K]``."""
    c = mask.cumsum(1)
    return mask & (c == c[:, -1:])


def _compact(alive: torch.Tensor, fields: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Move the alive slots of ``[B, K]`` tensors to the front, keeping their order: ``(alive, *fields)``."""
    n, k = alive.shape
    dest = torch.where(alive, alive.cumsum(1) - 1, k)
    out = []
    for f in fields:
        buf = torch.zeros(n, k + 1, dtype=f.dtype, device=f.device)
        out.append(buf.scatter_(1, dest, f)[:, :k])
    count = alive.sum(1, keepdim=True)
    return (torch.arange(k, device=alive.device) < count, *out)


def _append(alive: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """The slot ``[B, K]`` (one-hot, or none) where a compacted list appends an element on rows ``add [B]``: the first
    free slot (an append to a full list is dropped; the capacities are the reference's maxima)."""
    return _first(~alive) & add.unsqueeze(1)


class Seaquest(MinAtarGame):
    """MinAtar Seaquest as batched torch functions (see :class:`~torch_distill.envs.minatar.base.MinAtarGame` and
    the module docstring for the slot layout).

    Reset draws: none (an ``[n, 0]`` tensor). Step draws: :class:`SeaquestDraws` (``torch.rand((n, 3))`` for the
    three coin flips, ``torch.randint(1, 9, (n, 2))`` for the rows).
    """

    name = "seaquest"
    module = "seaquest"
    channels = ("sub_front", "sub_back", "friendly_bullet", "trail", "enemy_bullet", "enemy_fish", "enemy_sub",
                "oxygen_guage", "diver_guage", "diver")
    minimal_actions = (0, 1, 2, 3, 4, 5)  # n, l, u, r, d, f
    max_steps = 1000

    def __init__(self) -> None:
        self._cache: dict[torch.device, torch.Tensor] = {}

    def _cols(self, device: torch.device) -> torch.Tensor:
        c = self._cache.get(device)
        if c is None:
            c = self._cache[device] = torch.arange(GRID, dtype=torch.int64, device=device)
        return c

    def reset_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> torch.Tensor:
        dev = device if device is not None else generator.device
        return torch.empty(n, 0, device=dev)

    def step_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> SeaquestDraws:
        dev = device if device is not None else generator.device
        u = torch.rand(n, 3, generator=generator, device=dev)
        y = torch.randint(1, 9, (n, 2), generator=generator, device=dev)
        return SeaquestDraws(u[:, 0] < 0.5, u[:, 1] < 1.0 / 3.0, y[:, 0], u[:, 2] < 0.5, y[:, 1])

    def init(self, draws: torch.Tensor, ramping: torch.Tensor) -> SeaquestState:
        n, dev = draws.shape[0], draws.device

        def full(v: int, k: int | None = None) -> torch.Tensor:
            return torch.full((n,) if k is None else (n, k), v, dtype=torch.int64, device=dev)

        def false(*shape: int) -> torch.Tensor:
            return torch.zeros(n, *shape, dtype=torch.bool, device=dev)

        return SeaquestState(
            full(MAX_OXYGEN), full(0), full(5), full(0), false(),
            false(N_BULLETS), full(0, N_BULLETS), full(0, N_BULLETS), false(N_BULLETS),
            false(GRID, GRID), false(GRID, GRID),
            false(N_ENEMIES), full(0, N_ENEMIES), full(0, N_ENEMIES), false(N_ENEMIES), false(N_ENEMIES),
            full(0, N_ENEMIES), full(0, N_ENEMIES),
            false(N_DIVERS), full(0, N_DIVERS), full(0, N_DIVERS), false(N_DIVERS), full(0, N_DIVERS),
            full(INIT_SPAWN_SPEED), full(INIT_SPAWN_SPEED), full(DIVER_SPAWN_SPEED), full(INIT_MOVE_INTERVAL),
            full(0), full(0), torch.ones(n, dtype=torch.bool, device=dev), false())

    # ------------------------------------------------------------------------------------------------ act
    def act(self, game: SeaquestState, action: torch.Tensor, draws: SeaquestDraws, ramping: torch.Tensor
            ) -> tuple[SeaquestState, torch.Tensor, torch.Tensor]:
        g = game
        n, dev = action.shape[0], action.device
        rows = torch.arange(n, device=dev)
        move_speed = g.move_speed.unsqueeze(1)

        # spawn an enemy (not into a row holding one that moves the other way), then a diver
        spawn = g.e_spawn_timer == 0
        lr, ey = draws.enemy_lr.unsqueeze(1), draws.enemy_y.unsqueeze(1)
        clash = (g.en_alive & (g.en_y == ey) & (g.en_lr != lr)).any(1)
        slot = _append(g.en_alive, spawn & ~clash)
        en_alive = g.en_alive | slot
        en_x = torch.where(slot, torch.where(lr, 0, GRID - 1), g.en_x)
        en_y = torch.where(slot, ey, g.en_y)
        en_lr = torch.where(slot, lr, g.en_lr)
        en_sub = torch.where(slot, draws.enemy_sub.unsqueeze(1), g.en_sub)
        en_move = torch.where(slot, move_speed, g.en_move)
        en_shot = torch.where(slot, ENEMY_SHOT_INTERVAL, g.en_shot)
        e_spawn_timer = torch.where(spawn, g.e_spawn_speed, g.e_spawn_timer)

        d_spawn = g.d_spawn_timer == 0
        dlr = draws.diver_lr.unsqueeze(1)
        dslot = _append(g.dv_alive, d_spawn)
        dv_alive = g.dv_alive | dslot
        dv_x = torch.where(dslot, torch.where(dlr, 0, GRID - 1), g.dv_x)
        dv_y = torch.where(dslot, draws.diver_y.unsqueeze(1), g.dv_y)
        dv_lr = torch.where(dslot, dlr, g.dv_lr)
        dv_move = torch.where(dslot, DIVER_MOVE_INTERVAL, g.dv_move)
        d_spawn_timer = torch.where(d_spawn, DIVER_SPAWN_SPEED, g.d_spawn_timer)

        # the player: fire (gun cool) appends a bullet at the submarine, else move
        fire = (action == FIRE) & (g.shot_timer == 0)
        fslot = _append(g.fb_alive, fire)
        fb_alive = g.fb_alive | fslot
        fb_x = torch.where(fslot, g.sub_x.unsqueeze(1), g.fb_x)
        fb_y = torch.where(fslot, g.sub_y.unsqueeze(1), g.fb_y)
        fb_or = torch.where(fslot, g.sub_or.unsqueeze(1), g.fb_or)
        shot_timer = torch.where(fire, SHOT_COOL_DOWN, g.shot_timer)
        left, right = action == LEFT, action == RIGHT
        sub_x = (g.sub_x - left.long() + right.long()).clamp(0, GRID - 1)
        sub_or = torch.where(left, False, torch.where(right, True, g.sub_or))
        sub_y = (g.sub_y - (action == UP).long() + (action == DOWN).long()).clamp(0, GRID - 2)
        px, py = sub_x.unsqueeze(1), sub_y.unsqueeze(1)

        # friendly bullets, newest first: move; off the screen, gone; else the first fish at the cell, else the
        # first submarine, is shot
        reward = torch.zeros(n, dtype=torch.int64, device=dev)
        fb_alive_l, fb_x_l = list(fb_alive.unbind(1)), list(fb_x.unbind(1))
        for j in reversed(range(N_BULLETS)):
            x = fb_x_l[j] + torch.where(fb_or[:, j], 1, -1)
            inside = fb_alive_l[j] & (x >= 0) & (x < GRID)
            at = en_alive & (en_x == x.unsqueeze(1)) & (en_y == fb_y[:, j:j + 1]) & inside.unsqueeze(1)
            fish = at & ~en_sub
            hit_fish = fish.any(1, keepdim=True)
            kill = _first(fish) | _first(at & en_sub & ~hit_fish)
            hit = kill.any(1)
            en_alive = en_alive & ~kill
            reward = reward + hit.long()
            fb_alive_l[j], fb_x_l[j] = inside & ~hit, x

        # divers, newest first: picked up at the submarine's cell (while fewer than 6 are on board), else move
        diver_count = g.diver_count
        dv_alive_l, dv_x_l, dv_move_l = list(dv_alive.unbind(1)), list(dv_x.unbind(1)), list(dv_move.unbind(1))
        for j in reversed(range(N_DIVERS)):
            alive, x, timer, y = dv_alive_l[j], dv_x_l[j], dv_move_l[j], dv_y[:, j]
            grab = alive & (x == sub_x) & (y == sub_y) & (diver_count < MAX_DIVERS_CARRIED)
            diver_count = diver_count + grab.long()
            rest = alive & ~grab
            moves = rest & (timer == 0)
            timer = torch.where(moves, DIVER_MOVE_INTERVAL, timer - rest.long())
            x = x + torch.where(dv_lr[:, j], 1, -1) * moves.long()
            out = moves & ((x < 0) | (x >= GRID))
            grab2 = moves & ~out & (x == sub_x) & (y == sub_y) & (diver_count < MAX_DIVERS_CARRIED)
            diver_count = diver_count + grab2.long()
            dv_alive_l[j], dv_x_l[j], dv_move_l[j] = rest & ~out & ~grab2, x, timer

        # enemy submarines, then enemy bullets, then fish
        step = torch.where(en_lr, 1, -1)
        subs = en_alive & en_sub
        terminal, en_x, en_move, en_alive, fb_alive_l, reward, moved_out = self._enemies(
            subs, en_x, en_y, en_alive, en_move, step, move_speed, px, py, fb_alive_l, fb_x_l, fb_y, reward)
        shoots = subs & (en_shot == 0)
        en_shot = torch.where(shoots, ENEMY_SHOT_INTERVAL, en_shot - subs.long())
        new_bullet = shoots & ~moved_out  # (a bullet fired from off the screen is dropped at once)

        cell = en_y * GRID + en_x
        eb_right = self._add_bullets(g.eb_right, cell, new_bullet & en_lr)
        eb_left = self._add_bullets(g.eb_left, cell, new_bullet & ~en_lr)
        terminal = terminal | (eb_right | eb_left)[rows, sub_y, sub_x]
        eb_right = torch.cat([torch.zeros_like(eb_right[:, :, :1]), eb_right[:, :, :-1]], 2)
        eb_left = torch.cat([eb_left[:, :, 1:], torch.zeros_like(eb_left[:, :, :1])], 2)
        terminal = terminal | (eb_right | eb_left)[rows, sub_y, sub_x]

        fish = en_alive & ~en_sub
        term_f, en_x, en_move, en_alive, fb_alive_l, reward, _ = self._enemies(
            fish, en_x, en_y, en_alive, en_move, step, move_speed, px, py, fb_alive_l, fb_x_l, fb_y, reward)
        terminal = terminal | term_f

        # timers, oxygen, surfacing
        e_spawn_timer = e_spawn_timer - (e_spawn_timer > 0).long()
        d_spawn_timer = d_spawn_timer - (d_spawn_timer > 0).long()
        shot_timer = shot_timer - (shot_timer > 0).long()
        oxygen = g.oxygen
        terminal = terminal | (oxygen <= 0)
        below = sub_y > 0
        oxygen = oxygen - below.long()
        surfacing = ~below & ~g.surface
        terminal = terminal | (surfacing & (diver_count == 0))
        surfaced = surfacing & (diver_count != 0)
        full = surfaced & (diver_count == MAX_DIVERS_CARRIED)
        reward = reward + torch.where(full, oxygen * 10 // MAX_OXYGEN, 0)
        diver_count = torch.where(full, 0, diver_count) - surfaced.long()
        oxygen = torch.where(surfaced, MAX_OXYGEN, oxygen)
        surface = torch.where(below, False, g.surface | surfaced)
        e_spawn_speed, ms, ramp_index = g.e_spawn_speed, g.move_speed, g.ramp_index
        ramp = surfaced & ramping & ((e_spawn_speed > 1) | (ms > 2))
        move_speed_next = ms - (ramp & (ms > 2) & (ramp_index % 2 == 1)).long()
        e_spawn_speed = e_spawn_speed - (ramp & (e_spawn_speed > 1)).long()
        ramp_index = ramp_index + ramp.long()

        fb = _compact(torch.stack(fb_alive_l, 1), (torch.stack(fb_x_l, 1), fb_y, fb_or))
        dv = _compact(torch.stack(dv_alive_l, 1), (torch.stack(dv_x_l, 1), dv_y, dv_lr, torch.stack(dv_move_l, 1)))
        en = _compact(en_alive, (en_x, en_y, en_lr, en_sub, en_move, en_shot))
        state = SeaquestState(oxygen, diver_count, sub_x, sub_y, sub_or, *fb, eb_right, eb_left, *en, *dv,
                              e_spawn_speed, e_spawn_timer, d_spawn_timer, move_speed_next, ramp_index, shot_timer,
                              surface, terminal)
        return state, reward.to(torch.float32), terminal

    @staticmethod
    def _enemies(mask: torch.Tensor, en_x: torch.Tensor, en_y: torch.Tensor, en_alive: torch.Tensor,
                 en_move: torch.Tensor, step: torch.Tensor, move_speed: torch.Tensor, px: torch.Tensor,
                 py: torch.Tensor, fb_alive_l: list[torch.Tensor], fb_x_l: list[torch.Tensor], fb_y: torch.Tensor,
                 reward: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """minatar's loop over the enemy subs (or fish) ``mask [B, E]``, newest first: touching the player ends the
        game; when its move timer is due the enemy moves (off the screen: gone; onto the player: game over; onto a
        friendly bullet: both gone, +1). Returns ``(terminal [B], en_x, en_move, en_alive, fb_alive_l, reward,
        moved_out [B, E])``."""
        at_player = (en_x == px) & (en_y == py)
        terminal = (mask & at_player).any(1)
        moves = mask & (en_move == 0)
        en_move = torch.where(moves, move_speed, en_move - mask.long())
        en_x = en_x + step * moves.long()
        out = moves & ((en_x < 0) | (en_x >= GRID))
        onto_player = moves & ~out & (en_x == px) & (en_y == py)
        terminal = terminal | onto_player.any(1)
        cand = moves & ~out & ~onto_player
        # Each moving enemy takes the first live bullet (list order) at its cell, newest enemy first; so bullet j
        # (in list order) goes to the newest enemy at its cell that no earlier bullet took.
        shot = torch.zeros_like(cand)
        fb_alive_l = list(fb_alive_l)
        for j in range(len(fb_alive_l)):
            c = cand & ~shot & (en_x == fb_x_l[j].unsqueeze(1)) & (en_y == fb_y[:, j:j + 1]) \
                & fb_alive_l[j].unsqueeze(1)
            shot = shot | _last(c)
            hit = c.any(1)
            fb_alive_l[j] = fb_alive_l[j] & ~hit
            reward = reward + hit.long()
        return terminal, en_x, en_move, en_alive & ~out & ~shot, fb_alive_l, reward, out

    @staticmethod
    def _add_bullets(plane: torch.Tensor, cell: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``plane [B, 10, 10]`` with the cells ``cell [B, E]`` (``y * 10 + x``) set where ``mask [B, E]``."""
        n = plane.shape[0]
        flat = torch.zeros(n, GRID * GRID + 1, dtype=torch.bool, device=plane.device)
        flat[:, :GRID * GRID] = plane.view(n, GRID * GRID)
        flat.scatter_(1, torch.where(mask, cell, GRID * GRID), True)
        return flat[:, :GRID * GRID].view(n, GRID, GRID)

    # ------------------------------------------------------------------------------------------------ obs
    def observation(self, game: SeaquestState) -> torch.Tensor:
        g = game
        n = g.sub_x.shape[0]
        c = len(self.channels)
        dummy = GRID * GRID * c
        cols = self._cols(g.sub_x.device)

        def idx(y: torch.Tensor, x: torch.Tensor, ch: Any, valid: torch.Tensor) -> torch.Tensor:
            return torch.where(valid, (y * GRID + x) * c + ch, dummy)

        def trail(y: torch.Tensor, x: torch.Tensor, lr: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
            back = x - torch.where(lr, 1, -1)
            return idx(y, back, C_TRAIL, alive & (back >= 0) & (back < GRID))

        true = torch.ones_like(g.sub_or)
        back = g.sub_x - torch.where(g.sub_or, 1, -1)
        oxygen_cells = g.oxygen.clamp(min=0) * 10 // MAX_OXYGEN
        bottom = torch.full_like(cols, GRID - 1)
        index = torch.cat([
            idx(g.sub_y, g.sub_x, C_FRONT, true).unsqueeze(1),
            idx(g.sub_y, back, C_BACK, true).unsqueeze(1),
            idx(g.fb_y, g.fb_x, C_FBULLET, g.fb_alive),
            idx(g.en_y, g.en_x, C_FISH + g.en_sub.long(), g.en_alive),
            trail(g.en_y, g.en_x, g.en_lr, g.en_alive),
            idx(g.dv_y, g.dv_x, C_DIVER, g.dv_alive),
            trail(g.dv_y, g.dv_x, g.dv_lr, g.dv_alive),
            idx(bottom, cols, C_OXYGEN, cols < oxygen_cells.unsqueeze(1)),
            idx(bottom, cols, C_DIVERS, (cols >= 9 - g.diver_count.unsqueeze(1)) & (cols < GRID - 1)),
        ], 1)
        return scatter_obs(n, c, index, {C_EBULLET: g.eb_right | g.eb_left})

    # ------------------------------------------------------------------------------------------------ interop
    def from_minatar(self, env: Any, device: torch.device | str = "cpu") -> SeaquestState:
        """The batch-1 state of a live minatar Seaquest game. Fish and submarines go into the enemy slots
        submarines first (only the order within each kind matters)."""
        def i(v: Any) -> torch.Tensor:
            return torch.tensor([int(v)], dtype=torch.int64, device=device)

        def b(v: Any) -> torch.Tensor:
            return torch.tensor([bool(v)], device=device)

        def slots(items: list[list[Any]], k: int, width: int) -> list[torch.Tensor]:
            if len(items) > k:
                raise ValueError(f"minatar Seaquest holds {len(items)} entities of a kind, more than the {k} slots")
            vals = torch.zeros(1, k, width, dtype=torch.int64)
            for s, item in enumerate(items):
                vals[0, s] = torch.tensor([int(v) for v in item[:width]])
            alive = torch.zeros(1, k, dtype=torch.bool)
            alive[0, :len(items)] = True
            return [alive.to(device), *(vals[..., w].to(device) for w in range(width))]

        fb = slots(env.f_bullets, N_BULLETS, 3)
        enemies = [list(s) + [1] for s in env.e_subs] + [list(f[:4]) + [0, 0] for f in env.e_fish]
        en = slots([[e[0], e[1], e[2], e[5], e[3], e[4]] for e in enemies], N_ENEMIES, 6)
        dv = slots(env.divers, N_DIVERS, 4)
        planes = torch.zeros(2, GRID, GRID, dtype=torch.bool)
        for x, y, lr in env.e_bullets:
            if 0 <= x < GRID:
                planes[0 if lr else 1, y, x] = True
        planes = planes.to(device)
        return SeaquestState(
            i(env.oxygen), i(env.diver_count), i(env.sub_x), i(env.sub_y), b(env.sub_or),
            fb[0], fb[1], fb[2], fb[3].bool(), planes[0:1], planes[1:2],
            en[0], en[1], en[2], en[3].bool(), en[4].bool(), en[5], en[6],
            dv[0], dv[1], dv[2], dv[3].bool(), dv[4],
            i(env.e_spawn_speed), i(env.e_spawn_timer), i(env.d_spawn_timer), i(env.move_speed), i(env.ramp_index),
            i(env.shot_timer), b(env.surface), b(env.terminal))
