"""A gymnasium ``VectorEnv`` over any natively batched ``FunctionalEnv`` (NumPy in and out, one batch).

    from torch_distill.envs.minigrid import make
    venv = FunctionalVectorEnv(make("MiniGrid-DoorKey-8x8-v0"), num_envs=1024)
    obs, info = venv.reset(seed=0)                 # obs: dict of [N, ...] arrays (image, direction, mission)
    obs, reward, terminated, truncated, info = venv.step(venv.action_space.sample())

The functional env does the batching and the auto-reset; this class only keeps the state and the
``torch.Generator`` and converts tensors to NumPy. Auto-reset is gymnasium's ``SAME_STEP`` mode (rows that end
come back reset in the same ``step``); ``info["final_obs"]`` (an object array, ``None`` for rows that go on) and
its mask ``info["_final_obs"]`` carry the last observation of the rows that ended, as gymnasium's own vector envs
do in that mode.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from torch_distill.envs.core import EnvSpec, FunctionalEnv, step_with_final_obs
from torch_distill.keyed import where_rows

__all__ = ["FunctionalVectorEnv", "single_observation_space", "single_action_space"]


def _box_for(t: torch.Tensor) -> gym.spaces.Box:
    """A ``Box`` for one row of ``t [B, ...]``: full integer range for integer dtypes, unbounded floats."""
    dtype = torch.empty((), dtype=t.dtype).numpy().dtype
    shape = tuple(t.shape[1:])
    if t.dtype == torch.bool:
        return gym.spaces.Box(0, 1, shape, dtype=np.bool_)
    if t.dtype.is_floating_point:
        return gym.spaces.Box(-np.inf, np.inf, shape, dtype=dtype)
    info = np.iinfo(dtype)
    return gym.spaces.Box(info.min, info.max, shape, dtype=dtype)


def single_observation_space(obs: torch.Tensor | NamedTuple) -> gym.spaces.Space:
    """The per-env observation space of a batched observation: a ``Box`` for a tensor, a ``Dict`` of boxes
    (one per field) for a ``NamedTuple`` of tensors (e.g. MiniGrid's ``image``, ``direction``, ``mission``)."""
    if isinstance(obs, torch.Tensor):
        return _box_for(obs)
    return gym.spaces.Dict({k: _box_for(v) for k, v in obs._asdict().items()})


def single_action_space(spec: EnvSpec) -> gym.spaces.Space:
    """``Discrete(n_actions)`` or ``Box(action_low, action_high)`` from an :class:`EnvSpec`."""
    if spec.discrete:
        return gym.spaces.Discrete(spec.n_actions)
    return gym.spaces.Box(
        np.asarray(spec.action_low, dtype=np.float32), np.asarray(spec.action_high, dtype=np.float32), dtype=np.float32
    )


def _to_numpy(obs: torch.Tensor | NamedTuple) -> np.ndarray | dict[str, np.ndarray]:
    if isinstance(obs, torch.Tensor):
        return obs.detach().cpu().numpy()
    return {k: v.detach().cpu().numpy() for k, v in obs._asdict().items()}


def _rows(obs: np.ndarray | dict[str, np.ndarray], done: np.ndarray) -> np.ndarray:
    """An object array ``[N]``: row ``i`` of ``obs`` (an array or a dict of arrays) where ``done[i]``, else None."""
    out = np.full(done.shape[0], None, dtype=object)
    for i in np.flatnonzero(done):
        out[i] = {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]
    return out


class FunctionalVectorEnv(VectorEnv):
    """gymnasium ``VectorEnv`` of ``num_envs`` copies of a :class:`FunctionalEnv`, stepped as one batch.

    Args:
        env: the functional env (e.g. ``torch_distill.envs.minigrid.make(id)``, ``CLASSIC_CONTROL[id]()``).
        num_envs: batch size ``N``.
        device: where the env's tensors live (the generator is created there).
        params: env params (``None``: the env's defaults).
        seed: initial seed of the generator (``reset(seed=...)`` re-seeds it).

    ``reset(options={"reset_mask": mask})`` resets only the rows where ``mask [N]`` is True.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        env: FunctionalEnv,
        num_envs: int,
        device: torch.device | str = "cpu",
        params: NamedTuple | None = None,
        seed: int = 0,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.env = env
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.params = params if params is not None else env.default_params(self.device)
        self._gen = torch.Generator(device=self.device).manual_seed(seed)
        probe = torch.Generator(device=self.device).manual_seed(0)
        _, obs = env.reset(1, probe, self.params)
        self.single_observation_space = single_observation_space(obs)
        self.single_action_space = single_action_space(env.spec)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.spec_ = env.spec
        self._state: NamedTuple | None = None
        self._obs: Any = None

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Fresh episodes for all rows (or the rows of ``options["reset_mask"]``); ``seed`` re-seeds the
        generator (a list of seeds uses its first entry: the batch shares one generator)."""
        if seed is not None:
            self._gen.manual_seed(int(seed[0] if isinstance(seed, (list, tuple)) else seed))
        state, obs = self.env.reset(self.num_envs, self._gen, self.params)
        mask = None if options is None else options.get("reset_mask")
        if mask is not None and self._state is not None:
            m = torch.as_tensor(np.asarray(mask, dtype=bool), device=self.device)
            if m.shape != (self.num_envs,):
                raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {tuple(m.shape)}")
            state = where_rows(m, state, self._state)
            obs = where_rows(m, obs, self._obs)
        self._state, self._obs = state, obs
        return _to_numpy(obs), {}

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step all rows with ``actions`` (``[N]`` ints or ``[N, action_dim]`` floats)."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if self.env.spec.discrete:
            a = torch.as_tensor(np.asarray(actions), device=self.device).long().view(self.num_envs)
        else:
            a = torch.as_tensor(np.asarray(actions, dtype=np.float32), device=self.device)
            a = a.view(self.num_envs, self.env.spec.action_dim)
        out = step_with_final_obs(self.env, self._state, a, self._gen, self.params)
        self._state, self._obs = out.state, out.obs
        terminated, truncated = out.terminated.detach().cpu().numpy(), out.truncated.detach().cpu().numpy()
        done = terminated | truncated
        info: dict[str, Any] = {}
        if done.any():
            info = {"final_obs": _rows(_to_numpy(out.final_obs), done), "_final_obs": done}
        return _to_numpy(out.obs), out.reward.detach().cpu().numpy().astype(np.float32), terminated, truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        self._state = self._obs = None
