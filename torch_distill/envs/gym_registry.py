"""Every native env in gymnasium's registry, under the ``torch_distill/`` namespace.

    import gymnasium, torch_distill                          # importing the package registers the ids
    env = gymnasium.make("torch_distill/MiniGrid-DoorKey-8x8-v0")        # one env, NumPy observations
    venv = gymnasium.make_vec("torch_distill/CartPole-v1", num_envs=4096,
                              vectorization_mode="vector_entry_point")   # one torch batch, no per-env objects
    env = gymnasium.make("torch_distill/SyntheticEnv-v0", path="runs/.../env.safetensors")

Registered: the classic-control envs, every MiniGrid id (its ``image`` / ``direction`` / ``mission`` dict
observation), every shipped synthetic env (``SCB-CartPole-v1``, ``MDP-CartPole-v0``, ...) and
``SyntheticEnv-v0`` (a saved synthetic-env file, ``path=``). :func:`make_env` builds the single env
(:class:`SingleFunctionalEnv`: the batched env at batch size 1), :func:`make_vector` the batched
:class:`~torch_distill.envs.gym_adapter.FunctionalVectorEnv`. The envs truncate themselves at their spec's
``max_episode_steps`` (no ``TimeLimit`` is added); seeding follows gymnasium: ``reset(seed=s)`` re-seeds the env's
``torch.Generator`` with ``s``, ``reset()`` continues it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from torch_distill.envs.core import FunctionalEnv, step_with_final_obs
from torch_distill.envs.gym_adapter import (
    FunctionalVectorEnv,
    single_action_space,
    single_observation_space,
)

__all__ = [
    "NAMESPACE",
    "SYNTHETIC_FILE_ID",
    "SingleFunctionalEnv",
    "make_env",
    "make_functional",
    "make_vector",
    "register_envs",
    "registered_ids",
]

NAMESPACE = "torch_distill"
SYNTHETIC_FILE_ID = "SyntheticEnv-v0"


def make_functional(name: str, path: str | None = None, device: torch.device | str = "cpu") -> FunctionalEnv:
    """The native env registered as ``torch_distill/<name>``."""
    from torch_distill.envs.synthetic.files import (
        load_synthetic_env,
        shipped_synthetic_envs,
    )

    if name == SYNTHETIC_FILE_ID:
        if path is None:
            raise ValueError(f"{NAMESPACE}/{SYNTHETIC_FILE_ID} needs path=FILE (a saved synthetic-env file)")
        return load_synthetic_env(path, device)
    if path is not None:
        raise ValueError(f"path={path!r}: only {NAMESPACE}/{SYNTHETIC_FILE_ID} takes a file")
    if name in shipped_synthetic_envs():
        return load_synthetic_env(name, device)
    if name.startswith("MiniGrid-"):
        from torch_distill.envs.minigrid import make as make_minigrid

        return make_minigrid(name)  # the dict observation (image, direction, mission), as MiniGrid's own
    from torch_distill.envs.vec import make_native

    return make_native(name)


def _check_horizon(env: FunctionalEnv, max_episode_steps: int | None) -> None:
    if max_episode_steps is not None and max_episode_steps != env.spec.max_episode_steps:
        raise ValueError(f"max_episode_steps={max_episode_steps!r}: {env.spec.env_id} truncates its episodes itself "
                         f"at {env.spec.max_episode_steps} steps; wrap the env in gymnasium's TimeLimit for a shorter "
                         f"horizon")


def _row(x: Any) -> Any:
    """Row 0 of a batched observation (a tensor or a NamedTuple of tensors) as NumPy arrays of their own (an
    unchanged field, e.g. MiniGrid's mission, must not alias the previous observation)."""
    if isinstance(x, torch.Tensor):
        return x[0].detach().cpu().numpy().copy()
    return {k: v[0].detach().cpu().numpy().copy() for k, v in x._asdict().items()}


class SingleFunctionalEnv(gym.Env):
    """One gymnasium env over a natively batched :class:`FunctionalEnv` run at batch size 1.

    ``step`` returns the episode's last observation when it ends (the batched env's auto-reset state is kept for
    the next ``reset``, which starts a fresh episode). Randomness comes from one ``torch.Generator``:
    ``reset(seed=s)`` re-seeds it, ``reset()`` continues it.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, env: FunctionalEnv, device: torch.device | str = "cpu", render_mode: str | None = None) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r}: these envs have no render mode (expected None)")
        self.env = env
        self.device = torch.device(device)
        self.params = env.default_params(self.device)
        self._gen = torch.Generator(device=self.device).manual_seed(0)
        _, obs = env.reset(1, torch.Generator(device=self.device).manual_seed(0), self.params)
        self.observation_space = single_observation_space(obs)
        self.action_space = single_action_space(env.spec)
        self._state: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._gen.manual_seed(int(seed))
        self._state, obs = self.env.reset(1, self._gen, self.params)
        return _row(obs), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        spec = self.env.spec
        if spec.discrete:
            a = torch.as_tensor(np.asarray(action), device=self.device).long().reshape(1)
        else:
            a = torch.as_tensor(np.asarray(action, dtype=np.float32), device=self.device).reshape(1, spec.action_dim)
        out = step_with_final_obs(self.env, self._state, a, self._gen, self.params)
        self._state = out.state
        return (_row(out.final_obs), float(out.reward[0]), bool(out.terminated[0]), bool(out.truncated[0]), {})


def make_env(name: str, path: str | None = None, device: torch.device | str = "cpu", render_mode: str | None = None,
             max_episode_steps: int | None = None) -> SingleFunctionalEnv:
    """``gymnasium.make`` entry point: the single env ``torch_distill/<name>``."""
    env = make_functional(name, path, device)
    _check_horizon(env, max_episode_steps)
    return SingleFunctionalEnv(env, device, render_mode)


def make_vector(name: str, num_envs: int, path: str | None = None, device: torch.device | str = "cpu", seed: int = 0,
                render_mode: str | None = None, max_episode_steps: int | None = None) -> FunctionalVectorEnv:
    """``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` entry point: the batched env."""
    if render_mode is not None:
        raise ValueError(f"render_mode={render_mode!r}: these envs have no render mode (expected None)")
    env = make_functional(name, path, device)
    _check_horizon(env, max_episode_steps)
    return FunctionalVectorEnv(env, num_envs, device, seed=seed)


def registered_ids() -> list[str]:
    """The names registered under ``torch_distill/`` (without the namespace)."""
    from torch_distill.envs.synthetic.files import shipped_synthetic_envs
    from torch_distill.envs.vec import native_env_ids

    return [*native_env_ids(), *shipped_synthetic_envs(), SYNTHETIC_FILE_ID]


def register_envs() -> None:
    """Register every id of :func:`registered_ids` with gymnasium (idempotent)."""
    for name in registered_ids():
        env_id = f"{NAMESPACE}/{name}"
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=_single_entry(name),
            vector_entry_point=_vector_entry(name),
            disable_env_checker=False,
        )


def _single_entry(name: str) -> Any:
    def entry(**kwargs: Any) -> SingleFunctionalEnv:
        return make_env(name, **kwargs)

    return entry


def _vector_entry(name: str) -> Any:
    def entry(num_envs: int, **kwargs: Any) -> FunctionalVectorEnv:
        return make_vector(name, num_envs, **kwargs)

    return entry
