"""MountainCar-v0 and MountainCarContinuous-v0 (Moore 1990) as gymnasium's ``MountainCarEnv`` and
``Continuous_MountainCarEnv`` (one state type, ``MountainCarState``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from torch_distill.envs.classic_control.base import _ClassicControlEnv
from torch_distill.envs.core import EnvSpec


class MountainCarState(NamedTuple):
    """(Continuous) mountain-car state, every field ``[B]``."""

    position: torch.Tensor
    velocity: torch.Tensor
    time: torch.Tensor  # int64


class MountainCarParams(NamedTuple):
    """gymnasium ``MountainCarEnv`` attributes (0-dim or ``[B]``)."""

    force: torch.Tensor
    gravity: torch.Tensor
    max_speed: torch.Tensor
    min_position: torch.Tensor
    max_position: torch.Tensor
    goal_position: torch.Tensor
    goal_velocity: torch.Tensor


class MountainCar(_ClassicControlEnv):
    """Mountain car (Moore 1990) as gymnasium's ``MountainCarEnv``.

    Actions ``{0, 1, 2}`` accelerate by ``(action - 1) * 0.001``; gravity term ``-0.0025 cos(3 x)``; velocity
    clipped to ``+-0.07``, position to ``[-1.2, 0.6]`` (velocity zeroed when the left wall is hit moving left).
    Reward -1 per step; terminates when ``x >= 0.5`` and ``v >= 0``. Initial ``x ~ U(-0.6, -0.4)``, ``v = 0``.
    Observation ``[x, v]``.
    """

    State = MountainCarState
    Params = MountainCarParams
    _default_values = dict(
        force=0.001,
        gravity=0.0025,
        max_speed=0.07,
        min_position=-1.2,
        max_position=0.6,
        goal_position=0.5,
        goal_velocity=0.0,
    )
    _max_steps = {"MountainCar-v0": 200}

    def _make_spec(self, env_id: str, max_episode_steps: int) -> EnvSpec:
        return EnvSpec(env_id, (2,), True, n_actions=3, max_episode_steps=max_episode_steps)

    def _sample(self, n: int, generator: torch.Generator, params: Any) -> MountainCarState:
        (position,) = self._uniform(n, generator, [-0.6], [-0.4])
        zeros = torch.zeros_like(position)
        return MountainCarState(position, zeros, torch.zeros(n, dtype=torch.int64, device=generator.device))

    def _dynamics(self, s: MountainCarState, action: torch.Tensor, p: MountainCarParams):  # type: ignore[override]
        # gymnasium: velocity += (action - 1) * force + cos(3 * position) * (-gravity)  (right side first)
        velocity = s.velocity + ((action - 1).to(self.dtype) * p.force + torch.cos(3 * s.position) * (-p.gravity))
        velocity = torch.minimum(torch.maximum(velocity, -p.max_speed), p.max_speed)
        position = s.position + velocity
        position = torch.minimum(torch.maximum(position, p.min_position), p.max_position)
        velocity = torch.where((position == p.min_position) & (velocity < 0), 0.0, velocity)
        terminated = (position >= p.goal_position) & (velocity >= p.goal_velocity)
        reward = torch.full_like(position, -1.0)
        return (position, velocity), reward, terminated

    def observation(self, s: MountainCarState) -> torch.Tensor:
        return torch.stack((s.position, s.velocity), dim=-1).to(torch.float32)


class MountainCarContinuousParams(NamedTuple):
    """gymnasium ``Continuous_MountainCarEnv`` attributes (0-dim or ``[B]``); ``gravity`` is its literal 0.0025."""

    min_action: torch.Tensor
    max_action: torch.Tensor
    power: torch.Tensor
    gravity: torch.Tensor
    max_speed: torch.Tensor
    min_position: torch.Tensor
    max_position: torch.Tensor
    goal_position: torch.Tensor
    goal_velocity: torch.Tensor


class MountainCarContinuous(_ClassicControlEnv):
    """Continuous mountain car as gymnasium's ``Continuous_MountainCarEnv``.

    Action ``[B, 1]`` in ``[-1, 1]``: the force is the clipped action times ``power = 0.0015``. Goal
    ``x >= 0.45`` with ``v >= 0``. Reward ``100 * terminated - 0.1 * action**2`` where, as in gymnasium, the
    penalty uses the *unclipped* action. State: ``MountainCarState``.

    As in gymnasium (``self.state = np.array(..., dtype=np.float32)``), the state is rounded to float32 at the
    end of every step, after termination and reward are computed from the unrounded values; with
    ``dtype=torch.float64`` the step itself is computed in float64 (the initial state is not rounded either).
    """

    State = MountainCarState
    Params = MountainCarContinuousParams
    _default_values = dict(
        min_action=-1.0,
        max_action=1.0,
        power=0.0015,
        gravity=0.0025,
        max_speed=0.07,
        min_position=-1.2,
        max_position=0.6,
        goal_position=0.45,
        goal_velocity=0.0,
    )
    _max_steps = {"MountainCarContinuous-v0": 999}

    def _make_spec(self, env_id: str, max_episode_steps: int) -> EnvSpec:
        return EnvSpec(
            env_id, (2,), False, action_dim=1, action_low=(-1.0,), action_high=(1.0,), max_episode_steps=max_episode_steps
        )

    _sample = MountainCar._sample

    def _dynamics(self, s: MountainCarState, action: torch.Tensor, p: MountainCarContinuousParams):  # type: ignore[override]
        a = action[:, 0]
        force = torch.minimum(torch.maximum(a, p.min_action), p.max_action)
        velocity = s.velocity + (force * p.power - p.gravity * torch.cos(3 * s.position))
        velocity = torch.minimum(torch.maximum(velocity, -p.max_speed), p.max_speed)
        position = s.position + velocity
        position = torch.minimum(torch.maximum(position, p.min_position), p.max_position)
        velocity = torch.where((position == p.min_position) & (velocity < 0), 0.0, velocity)
        terminated = (position >= p.goal_position) & (velocity >= p.goal_velocity)
        reward = terminated.to(self.dtype) * 100.0 - a.square() * 0.1
        # gymnasium stores this env's state as float32 after every step (a no-op when dtype is float32).
        position = position.to(torch.float32).to(self.dtype)
        velocity = velocity.to(torch.float32).to(self.dtype)
        return (position, velocity), reward, terminated

    observation = MountainCar.observation
