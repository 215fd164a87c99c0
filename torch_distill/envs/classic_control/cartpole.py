"""CartPole-v0/v1: cart-pole (Barto, Sutton & Anderson 1983) as gymnasium's ``CartPoleEnv``."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from torch_distill.envs.classic_control.base import _ClassicControlEnv
from torch_distill.envs.core import EnvSpec


class CartPoleState(NamedTuple):
    """CartPole state, every field ``[B]``."""

    x: torch.Tensor
    x_dot: torch.Tensor
    theta: torch.Tensor
    theta_dot: torch.Tensor
    time: torch.Tensor  # int64 steps taken in the episode


class CartPoleParams(NamedTuple):
    """gymnasium ``CartPoleEnv`` attributes (0-dim or ``[B]``)."""

    gravity: torch.Tensor
    masscart: torch.Tensor
    masspole: torch.Tensor
    length: torch.Tensor  # half the pole's length
    force_mag: torch.Tensor
    tau: torch.Tensor  # seconds between state updates
    theta_threshold_radians: torch.Tensor
    x_threshold: torch.Tensor


class CartPole(_ClassicControlEnv):
    """Cart-pole (Barto, Sutton & Anderson 1983) as gymnasium's ``CartPoleEnv``: explicit Euler, ``tau = 0.02``.

    ``CartPole-v0`` and ``CartPole-v1`` are the same gymnasium class and differ only in the time limit (200 vs
    500 steps; the reward threshold is not part of the env). Reward is +1 on every step including the
    terminating one; the episode terminates when ``|x| > 2.4`` or ``|theta| > 12 deg``. Initial state
    ``U(-0.05, 0.05)^4``. Observation ``[x, x_dot, theta, theta_dot]``.
    """

    State = CartPoleState
    Params = CartPoleParams
    _default_values = dict(
        gravity=9.8,
        masscart=1.0,
        masspole=0.1,
        length=0.5,
        force_mag=10.0,
        tau=0.02,
        theta_threshold_radians=12 * 2 * math.pi / 360,
        x_threshold=2.4,
    )
    _max_steps = {"CartPole-v1": 500, "CartPole-v0": 200}

    def _make_spec(self, env_id: str, max_episode_steps: int) -> EnvSpec:
        return EnvSpec(env_id, (4,), True, n_actions=2, max_episode_steps=max_episode_steps)

    def _sample(self, n: int, generator: torch.Generator, params: CartPoleParams) -> CartPoleState:
        x, x_dot, theta, theta_dot = self._uniform(n, generator, [-0.05] * 4, [0.05] * 4)
        return CartPoleState(x, x_dot, theta, theta_dot, torch.zeros(n, dtype=torch.int64, device=generator.device))

    def _dynamics(self, s: CartPoleState, action: torch.Tensor, p: CartPoleParams):  # type: ignore[override]
        total_mass = p.masspole + p.masscart
        polemass_length = p.masspole * p.length
        force = torch.where(action == 1, p.force_mag, -p.force_mag)
        costheta, sintheta = torch.cos(s.theta), torch.sin(s.theta)
        # Same operation order as gymnasium (https://coneural.org/florian/papers/05_cart_pole.pdf).
        temp = (force + polemass_length * s.theta_dot.square() * sintheta) / total_mass
        thetaacc = (p.gravity * sintheta - costheta * temp) / (
            p.length * (4.0 / 3.0 - p.masspole * costheta.square() / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        x = s.x + p.tau * s.x_dot
        x_dot = s.x_dot + p.tau * xacc
        theta = s.theta + p.tau * s.theta_dot
        theta_dot = s.theta_dot + p.tau * thetaacc
        # == (x < -x_threshold) | (x > x_threshold) | (theta < -theta_thr) | (theta > theta_thr), in fewer ops
        terminated = (x.abs() > p.x_threshold) | (theta.abs() > p.theta_threshold_radians)
        reward = torch.ones_like(x)
        return (x, x_dot, theta, theta_dot), reward, terminated

    def observation(self, s: CartPoleState) -> torch.Tensor:
        return torch.stack((s.x, s.x_dot, s.theta, s.theta_dot), dim=-1).to(torch.float32)
