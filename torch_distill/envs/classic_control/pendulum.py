"""Pendulum-v1: inverted pendulum swing-up as gymnasium's ``PendulumEnv``."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from torch_distill.envs.classic_control.base import _ClassicControlEnv
from torch_distill.envs.core import EnvSpec


class PendulumState(NamedTuple):
    """Pendulum state, every field ``[B]`` (``theta`` is not wrapped, as in gymnasium)."""

    theta: torch.Tensor
    theta_dot: torch.Tensor
    time: torch.Tensor  # int64


class PendulumParams(NamedTuple):
    """gymnasium ``PendulumEnv`` attributes ``max_speed, max_torque, dt, g, m, l`` (0-dim or ``[B]``)."""

    max_speed: torch.Tensor
    max_torque: torch.Tensor
    dt: torch.Tensor
    gravity: torch.Tensor  # gymnasium's ``g`` (make kwarg ``g=10.0``)
    mass: torch.Tensor  # ``m``
    length: torch.Tensor  # ``l``


class Pendulum(_ClassicControlEnv):
    """Inverted pendulum swing-up as gymnasium's ``PendulumEnv`` (semi-implicit Euler, ``dt = 0.05``).

    Action ``[B, 1]`` torque clipped to ``[-2, 2]``; reward ``-(angle_normalize(th)^2 + 0.1 thdot^2 +
    0.001 u^2)`` with the clipped ``u``; angular velocity clipped to ``+-8``. Never terminates (truncated at 200
    steps). Initial ``th ~ U(-pi, pi)``, ``thdot ~ U(-1, 1)``. Observation ``[cos th, sin th, thdot]``.
    """

    State = PendulumState
    Params = PendulumParams
    _default_values = dict(max_speed=8.0, max_torque=2.0, dt=0.05, gravity=10.0, mass=1.0, length=1.0)
    _max_steps = {"Pendulum-v1": 200}

    def _make_spec(self, env_id: str, max_episode_steps: int) -> EnvSpec:
        return EnvSpec(
            env_id, (3,), False, action_dim=1, action_low=(-2.0,), action_high=(2.0,), max_episode_steps=max_episode_steps
        )

    def _sample(self, n: int, generator: torch.Generator, params: Any) -> PendulumState:
        theta, theta_dot = self._uniform(n, generator, [-math.pi, -1.0], [math.pi, 1.0])
        return PendulumState(theta, theta_dot, torch.zeros(n, dtype=torch.int64, device=generator.device))

    def _dynamics(self, s: PendulumState, action: torch.Tensor, p: PendulumParams):  # type: ignore[override]
        th, thdot = s.theta, s.theta_dot
        u = torch.minimum(torch.maximum(action[:, 0], -p.max_torque), p.max_torque)
        th_norm = torch.remainder(th + math.pi, 2 * math.pi) - math.pi
        costs = th_norm.square() + 0.1 * thdot.square() + 0.001 * u.square()
        newthdot = thdot + (3 * p.gravity / (2 * p.length) * torch.sin(th) + 3.0 / (p.mass * p.length**2) * u) * p.dt
        newthdot = torch.minimum(torch.maximum(newthdot, -p.max_speed), p.max_speed)
        newth = th + newthdot * p.dt
        terminated = torch.zeros_like(th, dtype=torch.bool)
        return (newth, newthdot), -costs, terminated

    def observation(self, s: PendulumState) -> torch.Tensor:
        return torch.stack((torch.cos(s.theta), torch.sin(s.theta), s.theta_dot), dim=-1).to(torch.float32)
