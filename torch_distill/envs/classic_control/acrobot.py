"""Acrobot-v1: acrobot ("book" dynamics, one RK4 step of ``dt = 0.2``) as gymnasium's ``AcrobotEnv``."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from torch_distill.envs.classic_control.base import _ClassicControlEnv
from torch_distill.envs.core import EnvSpec


class AcrobotState(NamedTuple):
    """Acrobot state, every field ``[B]`` (angles in ``[-pi, pi]``)."""

    theta1: torch.Tensor
    theta2: torch.Tensor
    dtheta1: torch.Tensor
    dtheta2: torch.Tensor
    time: torch.Tensor  # int64


class AcrobotParams(NamedTuple):
    """gymnasium ``AcrobotEnv`` class constants (0-dim or ``[B]``).

    ``LINK_LENGTH_2`` only affects rendering in gymnasium and is omitted; ``torque_noise_max`` is 0 in
    gymnasium and not implemented.
    """

    link_length_1: torch.Tensor
    link_mass_1: torch.Tensor
    link_mass_2: torch.Tensor
    link_com_pos_1: torch.Tensor
    link_com_pos_2: torch.Tensor
    link_moi: torch.Tensor  # moment of inertia of both links
    max_vel_1: torch.Tensor
    max_vel_2: torch.Tensor
    gravity: torch.Tensor
    dt: torch.Tensor


class Acrobot(_ClassicControlEnv):
    """Acrobot (Sutton 1996; Sutton & Barto 2018 "book" dynamics) as gymnasium's ``AcrobotEnv``.

    Actions ``{0, 1, 2}`` apply torque ``action - 1`` to the middle joint; one step is a single RK4 step of
    ``dt = 0.2`` (gymnasium's ``rk4`` over ``t = [0, dt]``), then angles are wrapped to ``[-pi, pi]`` and
    velocities clipped to ``4 pi`` / ``9 pi``. Reward -1 per step, 0 on the terminating step; terminates when
    ``-cos(theta1) - cos(theta1 + theta2) > 1``. Initial state ``U(-0.1, 0.1)^4``. Observation
    ``[cos t1, sin t1, cos t2, sin t2, dt1, dt2]``.
    """

    State = AcrobotState
    Params = AcrobotParams
    _default_values = dict(
        link_length_1=1.0,
        link_mass_1=1.0,
        link_mass_2=1.0,
        link_com_pos_1=0.5,
        link_com_pos_2=0.5,
        link_moi=1.0,
        max_vel_1=4 * math.pi,
        max_vel_2=9 * math.pi,
        gravity=9.8,
        dt=0.2,
    )
    _max_steps = {"Acrobot-v1": 500}

    def _make_spec(self, env_id: str, max_episode_steps: int) -> EnvSpec:
        return EnvSpec(env_id, (6,), True, n_actions=3, max_episode_steps=max_episode_steps)

    def _sample(self, n: int, generator: torch.Generator, params: AcrobotParams) -> AcrobotState:
        t1, t2, d1, d2 = self._uniform(n, generator, [-0.1] * 4, [0.1] * 4)
        return AcrobotState(t1, t2, d1, d2, torch.zeros(n, dtype=torch.int64, device=generator.device))

    def _dynamics(self, s: AcrobotState, action: torch.Tensor, p: AcrobotParams):  # type: ignore[override]
        m1, m2, l1 = p.link_mass_1, p.link_mass_2, p.link_length_1
        lc1, lc2, inertia, g = p.link_com_pos_1, p.link_com_pos_2, p.link_moi, p.gravity
        # Param-only subexpressions of gymnasium's ``_dsdt``, hoisted with the same left-to-right association
        # (a + b + c == (a + b) + c), so the float64 result is the same as gymnasium's.
        c_d1a = m1 * lc1**2
        c_d1b = l1**2 + lc2**2
        c_d1c = 2 * l1 * lc2
        c_d2a = lc2**2
        c_d2b = l1 * lc2
        c_phi2 = m2 * lc2 * g
        c_phi1a = -m2 * l1 * lc2
        c_phi1b = 2 * m2 * l1 * lc2
        c_phi1c = (m1 * lc1 + m2 * l1) * g
        c_dd2 = m2 * l1 * lc2
        c_den = m2 * lc2**2 + inertia
        half_pi = math.pi / 2.0
        a = (action - 1).to(self.dtype)

        def dsdt(theta1: torch.Tensor, theta2: torch.Tensor, dtheta1: torch.Tensor, dtheta2: torch.Tensor):
            cos2, sin2 = torch.cos(theta2), torch.sin(theta2)
            d1 = c_d1a + m2 * (c_d1b + c_d1c * cos2) + inertia + inertia
            d2 = m2 * (c_d2a + c_d2b * cos2) + inertia
            phi2 = c_phi2 * torch.cos(theta1 + theta2 - half_pi)
            phi1 = (
                c_phi1a * dtheta2**2 * sin2
                - c_phi1b * dtheta2 * dtheta1 * sin2
                + c_phi1c * torch.cos(theta1 - half_pi)
                + phi2
            )
            ddtheta2 = (a + d2 / d1 * phi1 - c_dd2 * dtheta1**2 * sin2 - phi2) / (c_den - d2**2 / d1)
            ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
            return dtheta1, dtheta2, ddtheta1, ddtheta2

        # gymnasium's rk4(derivs, y0, [0, dt]): one classical Runge-Kutta step.
        y0 = (s.theta1, s.theta2, s.dtheta1, s.dtheta2)
        dt = p.dt
        dt2 = dt / 2.0
        k1 = dsdt(*y0)
        k2 = dsdt(*(y + dt2 * k for y, k in zip(y0, k1)))
        k3 = dsdt(*(y + dt2 * k for y, k in zip(y0, k2)))
        k4 = dsdt(*(y + dt * k for y, k in zip(y0, k3)))
        dt6 = dt / 6.0
        t1, t2, d1, d2 = (y + dt6 * (a1 + 2 * a2 + 2 * a3 + a4) for y, a1, a2, a3, a4 in zip(y0, k1, k2, k3, k4))
        t1, t2 = _wrap_pi(t1), _wrap_pi(t2)
        d1 = torch.minimum(torch.maximum(d1, -p.max_vel_1), p.max_vel_1)
        d2 = torch.minimum(torch.maximum(d2, -p.max_vel_2), p.max_vel_2)
        terminated = -torch.cos(t1) - torch.cos(t2 + t1) > 1.0
        reward = terminated.to(self.dtype) - 1.0
        return (t1, t2, d1, d2), reward, terminated

    def observation(self, s: AcrobotState) -> torch.Tensor:
        return torch.stack(
            (torch.cos(s.theta1), torch.sin(s.theta1), torch.cos(s.theta2), torch.sin(s.theta2), s.dtheta1, s.dtheta2),
            dim=-1,
        ).to(torch.float32)


def _wrap_pi(x: torch.Tensor) -> torch.Tensor:
    """gymnasium's ``wrap(x, -pi, pi)`` (repeated subtraction/addition of ``2 pi``), without host branching.

    Two exact rounds cover every reachable Acrobot state (an angle moves by < 4 pi in one 0.2 s step); anything
    still outside (never seen) falls back to a remainder.
    """
    lo, hi = -math.pi, math.pi
    diff = hi - lo
    for _ in range(2):
        x = torch.where(x > hi, x - diff, torch.where(x < lo, x + diff, x))
    return torch.where((x > hi) | (x < lo), torch.remainder(x - lo, diff) + lo, x)
