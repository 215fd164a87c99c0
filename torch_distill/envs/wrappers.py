"""Functional-env wrappers.

``FlatSymbolicObs`` turns a MiniGrid-style observation (``image [B, 7, 7, 3]`` uint8 cell codes, ``direction [B]``
and, where present, ``mission [B, 4]`` codes of the target object type/colour) into one float vector per env,
``[B, 7*7*3 + 4 + 4]`` (the raw cell codes, a one-hot direction, the mission codes), so that MLP policies, HaDES
datasets and the evaluator see a plain ``[B, obs_dim]`` observation. Codes are left as numbers (not one-hot) to
keep datasets small; the fixed observation normaliser rescales them.

``FlatObs`` flattens any tensor observation ``[B, *shape]`` (e.g. MinAtar's ``[B, 10, 10, C]`` bool grids) into
``[B, prod(shape)]`` float32 in row-major order; ``FlatMinAtarObs`` is its name for the MinAtar ids of the native
registry.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

import torch

from torch_distill.envs.core import EnvSpec, FunctionalEnv

__all__ = ["FlatSymbolicObs", "FlatObs", "FlatMinAtarObs"]


class FlatObs:
    """Wrap a ``FunctionalEnv`` with tensor observations ``[B, *obs_shape]`` into flat float32 ``[B, obs_dim]``
    ones (row-major ``reshape``; bool/int values become 0./1./codes). State, params, rewards and flags pass through;
    ``env`` is the wrapped env."""

    def __init__(self, env: FunctionalEnv) -> None:
        self.env = env
        inner = env.spec
        self.spec: EnvSpec = replace(inner, obs_shape=(inner.obs_dim,))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"

    def default_params(self, device: torch.device | str = "cpu") -> NamedTuple:
        return self.env.default_params(device)

    def _flat(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.reshape(obs.shape[0], -1).to(torch.float32)

    def reset(self, batch_size: int, generator: torch.Generator, params: NamedTuple | None = None):
        state, obs = self.env.reset(batch_size, generator, params)
        return state, self._flat(obs)

    def step(self, state: NamedTuple, action: torch.Tensor, generator: torch.Generator,
             params: NamedTuple | None = None):
        state, obs, reward, terminated, truncated = self.env.step(state, action, generator, params)
        return state, self._flat(obs), reward, terminated, truncated

    def transition(self, state: NamedTuple, action: torch.Tensor, generator: torch.Generator,
                   params: NamedTuple | None = None):
        state, obs, reward, terminated, truncated = self.env.transition(state, action, generator, params)
        return state, self._flat(obs), reward, terminated, truncated

    def reset_done(self, done: torch.Tensor, state: NamedTuple, obs: torch.Tensor, generator: torch.Generator,
                   params: NamedTuple | None = None):
        state, inner_obs = self.env.reset_done(done, state, None, generator, params)
        return state, self._flat(inner_obs)


class FlatSymbolicObs(FlatObs):
    """Wrap a ``FunctionalEnv`` whose obs has ``image`` and ``direction`` fields into flat float observations."""

    def __init__(self, env: FunctionalEnv) -> None:
        self.env = env
        inner = env.spec
        self.image_numel = 1
        for s in inner.obs_shape:
            self.image_numel *= s
        self.spec: EnvSpec = replace(inner, obs_shape=(self.image_numel + 4 + 4,))

    def _flat(self, obs: Any) -> torch.Tensor:
        image = obs.image.reshape(obs.image.shape[0], -1).float()
        direction = torch.nn.functional.one_hot(obs.direction.long(), 4).float()
        mission = getattr(obs, "mission", None)
        if mission is None:
            mission = torch.zeros(image.shape[0], 4, device=image.device)
        return torch.cat([image, direction, mission.reshape(image.shape[0], -1).float()], dim=-1)


class FlatMinAtarObs(FlatObs):
    """MinAtar's ``[B, 10, 10, C]`` bool observation as ``[B, 100 * C]`` float32 (cell-major, channel fastest)."""
