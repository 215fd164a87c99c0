"""MinAtar Freeway (``minatar/environments/freeway.py``), batched.

The chicken (column 4) crosses eight lanes of cars from the bottom row to the top; it moves at most every 3
frames. +1 per crossing, after which the chicken returns to the bottom and the car speeds are re-drawn; a car
hit sends it back to the bottom. The game ends after 2500 frames (minatar's ``terminate_timer`` goes below 0 on
frame 2501, so the default 2500-step time limit truncates first, as in gymnax). Channels: chicken, car,
speed1..speed5 (the trail of a car, by how many frames it waits between moves).

Random numbers (reset, and every crossing): ``randint(1, 6, 8)`` speeds, then ``rand(8)`` directions
(``sign(u - 0.5)``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from torch_distill.envs.minatar.base import DOWN, GRID, UP, MinAtarGame, scatter_obs

__all__ = ["Freeway", "FreewayState"]

PLAYER_SPEED = 3
TIME_LIMIT = 2500
N_CARS = 8


class FreewayState(NamedTuple):
    car_x: torch.Tensor  # [B, 8] int64 column of the car in lane i (row i + 1)
    car_timer: torch.Tensor  # [B, 8] int64 frames until it moves
    car_speed: torch.Tensor  # [B, 8] int64 signed: |speed| frames between moves, sign = direction
    pos: torch.Tensor  # [B] int64 chicken row
    move_timer: torch.Tensor  # [B] int64
    terminate_timer: torch.Tensor  # [B] int64
    terminal: torch.Tensor  # [B] bool


class Freeway(MinAtarGame):
    """MinAtar Freeway as batched torch functions (see :class:`~torch_distill.envs.minatar.base.MinAtarGame`).

    Reset and step draws: ``[n, 8]`` int64 signed car speeds, minatar's ``randint(1, 6, 8) * sign(rand(8) - 0.5)``
    (drawn here as a uniform magnitude 1..5 times a uniform sign); a step uses them only when the chicken crosses.
    """

    name = "freeway"
    module = "freeway"
    channels = ("chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5")
    minimal_actions = (0, 2, 4)  # n, u, d
    max_steps = 2500

    def __init__(self) -> None:
        self._cache: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def _consts(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        c = self._cache.get(device)
        if c is None:
            lanes = torch.arange(1, N_CARS + 1, dtype=torch.int64, device=device) * GRID  # row offsets
            c = self._cache[device] = (lanes,)
        return c

    def _speeds(self, n: int, generator: torch.Generator, device: torch.device | None) -> torch.Tensor:
        dev = device if device is not None else generator.device
        r = torch.randint(0, 10, (n, N_CARS), generator=generator, device=dev)
        return r - 5 + (r >= 5).long()  # 0..4 -> -5..-1, 5..9 -> 1..5

    def reset_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> torch.Tensor:
        return self._speeds(n, generator, device)

    def step_draws(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> torch.Tensor:
        return self._speeds(n, generator, device)

    def init(self, draws: torch.Tensor, ramping: torch.Tensor) -> FreewayState:
        speed = draws.long()
        n, dev = speed.shape[0], speed.device

        def full(v: int) -> torch.Tensor:
            return torch.full((n,), v, dtype=torch.int64, device=dev)

        return FreewayState(torch.zeros_like(speed), speed.abs(), speed, full(9), full(PLAYER_SPEED),
                            full(TIME_LIMIT), torch.zeros(n, dtype=torch.bool, device=dev))

    def act(self, game: FreewayState, action: torch.Tensor, draws: torch.Tensor, ramping: torch.Tensor
            ) -> tuple[FreewayState, torch.Tensor, torch.Tensor]:
        ready = game.move_timer == 0
        up = ready & (action == UP)
        down = ready & (action == DOWN)
        move_timer = torch.where(up | down, PLAYER_SPEED, game.move_timer)
        pos = (game.pos - up.long() + down.long()).clamp_(0, 9)
        win = pos == 0
        reward = win.to(torch.float32)
        pos = pos.masked_fill(win, 9)
        w = win.unsqueeze(1)
        speed = torch.where(w, draws, game.car_speed)
        timer = torch.where(w, draws.abs(), game.car_timer)
        # cars: a car moves when its timer is 0 (then waits |speed| frames); the chicken, if in that car's lane,
        # goes back to the bottom when the car is on column 4 before or after the move
        move = timer == 0
        new_timer = torch.where(move, speed.abs(), timer - 1)
        x = game.car_x
        step = (speed > 0).long() * 2 - 1  # minatar: +1 if speed > 0 else -1
        new_x = (x + step * move + GRID) % GRID  # off one side -> the other
        lane = (pos - 1).clamp(0, N_CARS - 1).unsqueeze(1)
        in_lane = (pos >= 1) & (pos <= N_CARS)
        hit = in_lane & ((x.gather(1, lane) == 4) | (new_x.gather(1, lane) == 4)).squeeze(1)
        pos = pos.masked_fill(hit, 9)
        move_timer = move_timer - (move_timer > 0).long()
        terminate_timer = game.terminate_timer - 1
        terminal = terminate_timer < 0
        return FreewayState(new_x, new_timer, speed, pos, move_timer, terminate_timer, terminal), reward, terminal

    def observation(self, game: FreewayState) -> torch.Tensor:
        (lanes,) = self._consts(game.pos.device)
        c = 7
        x, speed = game.car_x, game.car_speed
        back = (x + GRID + 1 - (speed > 0).long() * 2) % GRID  # the cell behind the car, wrapped
        trail = 1 + speed.abs().clamp(1, 5)
        index = torch.cat([((game.pos * GRID + 4) * c).unsqueeze(1), (lanes + x) * c + 1, (lanes + back) * c + trail],
                          dim=1)
        return scatter_obs(game.pos.shape[0], c, index)

    def from_minatar(self, env: Any, device: torch.device | str = "cpu") -> FreewayState:
        cars = torch.tensor([[int(v) for v in car] for car in env.cars], dtype=torch.int64, device=device)
        if cars.shape != (N_CARS, 4) or not bool((cars[:, 1] == torch.arange(1, N_CARS + 1, device=device)).all()):
            raise ValueError(f"minatar Freeway cars {env.cars!r}: expected 8 cars [x, lane + 1, timer, speed]")

        def i(v: Any) -> torch.Tensor:
            return torch.tensor([int(v)], dtype=torch.int64, device=device)

        return FreewayState(cars[None, :, 0], cars[None, :, 2], cars[None, :, 3], i(env.pos), i(env.move_timer),
                            i(env.terminate_timer), torch.tensor([bool(env.terminal)], device=device))
