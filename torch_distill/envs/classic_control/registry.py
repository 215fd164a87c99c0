"""The classic-control registry: gymnasium id -> native env constructor, ``make_classic_control``, and
``state_from_gymnasium`` (the batched native state of gymnasium envs of any registered id)."""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import torch

from torch_distill.envs.classic_control.acrobot import Acrobot
from torch_distill.envs.classic_control.cartpole import CartPole
from torch_distill.envs.classic_control.mountain_car import (
    MountainCar,
    MountainCarContinuous,
)
from torch_distill.envs.classic_control.pendulum import Pendulum
from torch_distill.envs.core import FunctionalEnv

CLASSIC_CONTROL: dict[str, Callable[..., FunctionalEnv]] = {
    "CartPole-v0": functools.partial(CartPole, env_id="CartPole-v0"),
    "CartPole-v1": functools.partial(CartPole, env_id="CartPole-v1"),
    "Acrobot-v1": Acrobot,
    "MountainCar-v0": MountainCar,
    "MountainCarContinuous-v0": MountainCarContinuous,
    "Pendulum-v1": Pendulum,
}
"""gymnasium id -> constructor ``(dtype=torch.float32, max_episode_steps=None)`` of the native torch env."""


def make_classic_control(env_id: str, dtype: torch.dtype = torch.float32, **kwargs: Any) -> FunctionalEnv:
    """Build the native env registered as ``env_id`` in :data:`CLASSIC_CONTROL`."""
    if env_id not in CLASSIC_CONTROL:
        raise KeyError(f"unknown classic-control env id {env_id!r}; expected one of {sorted(CLASSIC_CONTROL)}")
    return CLASSIC_CONTROL[env_id](dtype=dtype, **kwargs)


def state_from_gymnasium(
    envs: Sequence[Any], dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
) -> Any:
    """Batched native state of gymnasium classic-control envs (all of one id, already reset).

    Reads ``env.unwrapped.state`` and the ``TimeLimit`` wrapper's elapsed steps of every env; returns the
    state ``NamedTuple`` of ``CLASSIC_CONTROL[envs[0].spec.id]`` with ``[len(envs)]`` fields.
    """
    if len(envs) == 0:
        raise ValueError("state_from_gymnasium: expected a non-empty list of gymnasium envs")
    env_id = getattr(getattr(envs[0], "spec", None), "id", None)
    if env_id not in CLASSIC_CONTROL:
        raise ValueError(f"state_from_gymnasium: env id {env_id!r} is not one of {sorted(CLASSIC_CONTROL)}")
    for i, env in enumerate(envs):
        if getattr(getattr(env, "spec", None), "id", None) != env_id:
            raise ValueError(f"envs[{i}] has id {getattr(env.spec, 'id', None)!r}, expected {env_id!r} like envs[0]")
    return make_classic_control(env_id, dtype=dtype).state_from_gymnasium(envs, device=device)
