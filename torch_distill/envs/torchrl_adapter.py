"""A torchrl ``EnvBase`` over any natively batched ``FunctionalEnv`` (batch_size ``[N]``, on the env's device).

    from torch_distill.envs.minigrid import make
    env = TorchRLEnv(make("MiniGrid-DoorKey-8x8-v0"), num_envs=1024)
    td = env.rollout(100)                       # keys: image, direction, mission, action, next/...

The functional state is kept inside this object (torchrl's ``EnvBase`` is stateful). Observations are one key
per observation tensor: ``"observation"`` for a tensor observation (classic control), the field names of a
``NamedTuple`` observation (MiniGrid: ``"image"``, ``"direction"``, ``"mission"``). ``reward``, ``done``,
``terminated`` and ``truncated`` have shape ``[N, 1]``.

Resets follow torchrl: ``_step`` is the functional env's ``transition`` (no auto-reset), so ``("next", obs)`` of a
final transition is the episode's last observation (what value bootstrapping through time limits needs); a
``_reset`` with a ``"_reset"`` mask (what torchrl's rollouts and collectors send for done rows) restarts those
rows with the env's ``reset_done``; a reset without a mask restarts every row.

Requires ``torchrl`` and ``tensordict`` (optional dependencies).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from torch_distill.envs.core import FunctionalEnv

__all__ = ["TorchRLEnv"]


def _obs_items(obs: torch.Tensor | NamedTuple) -> dict[str, torch.Tensor]:
    if isinstance(obs, torch.Tensor):
        return {"observation": obs}
    return dict(obs._asdict())


def _spec_for(t: torch.Tensor, n: int, device: torch.device) -> Any:
    shape = torch.Size([n, *t.shape[1:]])
    if t.dtype.is_floating_point:
        return Unbounded(shape=shape, dtype=t.dtype, device=device)
    if t.dtype == torch.bool:
        return Categorical(2, shape=shape, dtype=torch.bool, device=device)
    info = torch.iinfo(t.dtype)
    return Bounded(low=info.min, high=info.max, shape=shape, dtype=t.dtype, device=device)


class TorchRLEnv(EnvBase):
    """torchrl ``EnvBase`` of ``num_envs`` rows of a :class:`FunctionalEnv` (one batched call per step).

    Args:
        env: the functional env.
        num_envs: batch size ``N`` (``batch_size = [N]``).
        device: device of the env's tensors and specs.
        params: env params (``None``: the env's defaults).
        seed: initial seed of the ``torch.Generator`` (``set_seed`` re-seeds it).
    """

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
        device = torch.device(device)
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.fenv = env
        self.num_envs = num_envs
        self.params = params if params is not None else env.default_params(device)
        self._gen = torch.Generator(device=device).manual_seed(seed)
        self._state: NamedTuple | None = None
        self._obs: Any = None
        _, probe = env.reset(1, torch.Generator(device=device).manual_seed(0), self.params)
        n = num_envs
        self.observation_spec = Composite(
            {k: _spec_for(v, n, device) for k, v in _obs_items(probe).items()}, shape=torch.Size([n])
        )
        spec = env.spec
        if spec.discrete:
            self.action_spec = Categorical(spec.n_actions, shape=torch.Size([n]), dtype=torch.int64, device=device)
        else:
            low, high = spec.action_bounds(device)
            self.action_spec = Bounded(
                low=low.expand(n, spec.action_dim),
                high=high.expand(n, spec.action_dim),
                shape=torch.Size([n, spec.action_dim]),
                dtype=torch.float32,
                device=device,
            )
        self.reward_spec = Unbounded(shape=torch.Size([n, 1]), dtype=torch.float32, device=device)
        self.done_spec = Composite(
            {
                k: Categorical(2, shape=torch.Size([n, 1]), dtype=torch.bool, device=device)
                for k in ("done", "terminated", "truncated")
            },
            shape=torch.Size([n]),
        )

    def _out(self, obs: Any, terminated: torch.Tensor, truncated: torch.Tensor) -> TensorDict:
        items: dict[str, torch.Tensor] = dict(_obs_items(obs))
        items["terminated"] = terminated.view(self.num_envs, 1)
        items["truncated"] = truncated.view(self.num_envs, 1)
        items["done"] = (terminated | truncated).view(self.num_envs, 1)
        return TensorDict(items, batch_size=self.batch_size, device=self.device)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDict:
        mask = None if tensordict is None else tensordict.get("_reset", None)
        if mask is not None and self._state is not None:
            state, obs = self.fenv.reset_done(mask.view(self.num_envs).to(self.device), self._state, self._obs,
                                              self._gen, self.params)
        else:
            state, obs = self.fenv.reset(self.num_envs, self._gen, self.params)
        self._state, self._obs = state, obs
        false = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return self._out(obs, false, false)

    def _step(self, tensordict: TensorDictBase) -> TensorDict:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        action = tensordict.get("action")
        if self.fenv.spec.discrete:
            action = action.view(self.num_envs).long()
        state, obs, reward, terminated, truncated = self.fenv.transition(self._state, action, self._gen, self.params)
        self._state, self._obs = state, obs
        out = self._out(obs, terminated, truncated)
        out.set("reward", reward.view(self.num_envs, 1).to(torch.float32))
        return out

    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self._gen.manual_seed(int(seed))
