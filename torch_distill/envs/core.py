"""The environment contracts of torch_distill.

Two layers, following gymnax (functional envs) and gymnasium/envpool (stateful vector envs):

1. ``FunctionalEnv`` -- a natively batched env written in torch. Pure functions of explicit inputs::

       state, obs = env.reset(batch_size, generator, params)
       state, obs, reward, terminated, truncated = env.step(state, action, generator, params)

   * every tensor carries a leading batch dim ``[B, ...]``; there is no Python loop over envs;
   * randomness comes only from the ``generator`` argument (a ``torch.Generator`` on the env's device),
     never from the global RNG, so a call is deterministic given its inputs;
   * ``state`` and ``params`` are ``NamedTuple``s of tensors (params may be broadcastable ``[]`` or ``[B]``);
   * ``step`` auto-resets: rows that ended (terminated or truncated) come back as freshly reset states, and
     the returned ``obs`` of those rows is the reset observation (``reward``/``terminated``/``truncated``
     belong to the step that ended). Nothing in ``step`` syncs with the host.
   * ``step`` is, by contract, ``transition`` (one step, no auto-reset: its ``obs`` is the final observation of
     rows that ended) followed by ``reset_done`` on ``terminated | truncated``, with the same random draws in the
     same order. :func:`step_with_final_obs` runs the two and returns both observations (:class:`EnvStep`), which
     learners need to bootstrap through time limits (gymnasium's ``final_obs``, torchrl's ``next``).

2. ``VecEnv`` -- a stateful batch of ``num_envs`` environments with torch tensors in and out on ``device``
   (native envs, envpool, gymnasium vector envs all present this face to the evaluator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch

__all__ = ["EnvSpec", "FunctionalEnv", "VecEnv", "SubsetVecEnv", "StepOut", "EnvStep", "step_with_final_obs"]


@dataclass(frozen=True)
class EnvSpec:
    """Static description of an environment shared by every backend.

    Attributes:
        env_id: registry id, e.g. ``"CartPole-v1"``.
        obs_shape: shape of one observation (``(obs_dim,)`` for vector observations).
        discrete: True for a ``Discrete(n_actions)`` action space.
        n_actions: number of discrete actions (0 for continuous spaces).
        action_dim: dimension of a continuous action (0 for discrete spaces).
        action_low: lower bound of continuous actions (length ``action_dim``), empty for discrete.
        action_high: upper bound of continuous actions, empty for discrete.
        max_episode_steps: time limit after which an episode is truncated.
    """

    env_id: str
    obs_shape: tuple[int, ...]
    discrete: bool
    n_actions: int = 0
    action_dim: int = 0
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    max_episode_steps: int = 1000

    @property
    def obs_dim(self) -> int:
        n = 1
        for s in self.obs_shape:
            n *= s
        return n

    @property
    def act_dim(self) -> int:
        """Width of the policy head: ``n_actions`` (logits) or ``action_dim`` (Gaussian mean)."""
        return self.n_actions if self.discrete else self.action_dim

    def action_bounds(self, device: torch.device | str = "cpu", unbounded: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low, high)`` float32 ``[action_dim]`` of a continuous action space; with ``unbounded``, infinite (or
        NaN) bounds become ``-unbounded`` / ``+unbounded``."""
        if self.discrete:
            raise ValueError(f"{self.env_id}: a discrete action space has no action box")
        low = torch.tensor(self.action_low, dtype=torch.float32, device=device)
        high = torch.tensor(self.action_high, dtype=torch.float32, device=device)
        if unbounded is not None:
            u = float(unbounded)
            low, high = low.nan_to_num(-u, -u, -u), high.nan_to_num(u, u, u)
        return low, high

    def action_box(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(centre, half_width)`` float32 ``[action_dim]`` of a bounded continuous action space."""
        low, high = self.action_bounds(device)
        return (high + low) / 2, (high - low) / 2

    def to_json(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "obs_shape": list(self.obs_shape),
            "discrete": self.discrete,
            "n_actions": self.n_actions,
            "action_dim": self.action_dim,
            "action_low": list(self.action_low),
            "action_high": list(self.action_high),
            "max_episode_steps": self.max_episode_steps,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "EnvSpec":
        return cls(
            env_id=str(d["env_id"]),
            obs_shape=tuple(int(x) for x in d["obs_shape"]),
            discrete=bool(d["discrete"]),
            n_actions=int(d.get("n_actions", 0)),
            action_dim=int(d.get("action_dim", 0)),
            action_low=tuple(float(x) for x in d.get("action_low", ())),
            action_high=tuple(float(x) for x in d.get("action_high", ())),
            max_episode_steps=int(d.get("max_episode_steps", 1000)),
        )


class StepOut(NamedTuple):
    """What a ``VecEnv.step`` returns; all tensors ``[N, ...]`` on the env's device."""

    obs: torch.Tensor  # [N, *obs_shape] float32 (after auto-reset for rows that ended)
    reward: torch.Tensor  # [N] float32
    terminated: torch.Tensor  # [N] bool
    truncated: torch.Tensor  # [N] bool
    final_obs: torch.Tensor | None = None  # [N, *obs_shape]: the last observation of rows that ended (else obs)


class EnvStep(NamedTuple):
    """One ``FunctionalEnv`` step with both observations of ended rows (:func:`step_with_final_obs`)."""

    state: Any  # after auto-reset
    obs: torch.Tensor  # [B, *obs_shape] after auto-reset (the reset observation of rows that ended)
    reward: torch.Tensor  # [B] float32
    terminated: torch.Tensor  # [B] bool
    truncated: torch.Tensor  # [B] bool
    final_obs: torch.Tensor  # [B, *obs_shape] before auto-reset: the last observation of rows that ended


@runtime_checkable
class FunctionalEnv(Protocol):
    """A natively batched torch env with gymnax-style pure functions (see module docstring)."""

    spec: EnvSpec

    def default_params(self, device: torch.device | str = "cpu") -> NamedTuple: ...

    def reset(
        self, batch_size: int, generator: torch.Generator, params: NamedTuple | None = None
    ) -> tuple[NamedTuple, torch.Tensor]: ...

    def step(
        self,
        state: NamedTuple,
        action: torch.Tensor,
        generator: torch.Generator,
        params: NamedTuple | None = None,
    ) -> tuple[NamedTuple, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]: ...

    def transition(
        self,
        state: NamedTuple,
        action: torch.Tensor,
        generator: torch.Generator,
        params: NamedTuple | None = None,
    ) -> tuple[NamedTuple, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``step`` without the auto-reset: ``(state, obs, reward, terminated, truncated)`` where the state and
        ``obs`` of rows that ended are their last ones (not reset)."""
        ...

    def reset_done(
        self,
        done: torch.Tensor,
        state: NamedTuple,
        obs: torch.Tensor,
        generator: torch.Generator,
        params: NamedTuple | None = None,
    ) -> tuple[NamedTuple, torch.Tensor]:
        """Replace the rows where ``done [B]`` by freshly reset ones: ``(state, obs)``."""
        ...


def step_with_final_obs(
    env: FunctionalEnv, state: Any, action: torch.Tensor, generator: torch.Generator, params: Any = None
) -> EnvStep:
    """``env.step`` that also returns the final observation of the rows that ended (the same random draws, so the
    returned state and obs equal ``env.step``'s)."""
    nxt, final_obs, reward, terminated, truncated = env.transition(state, action, generator, params)
    state, obs = env.reset_done(terminated | truncated, nxt, final_obs, generator, params)
    return EnvStep(state, obs, reward, terminated, truncated, final_obs)


class VecEnv(Protocol):
    """A stateful batch of environments with torch tensors in and out (see module docstring).

    ``reset(seed, group_size)``: the ``num_envs`` envs are laid out as ``[num_envs // group_size, group_size]``;
    where the backend allows it (native torch envs, gymnasium), env ``j`` of every group starts from the same
    initial state (common random numbers across population members). Returns ``obs [N, *obs_shape]``.

    Optional capability (:class:`SubsetVecEnv`): a backend with ``steps_subsets = True`` also has
    ``step_subset(action [K, ...], env_ids [K]) -> StepOut`` (rows in ``env_ids`` order) that steps only those envs
    and leaves the others untouched. Host backends (envpool, gymnasium) have it, so that the evaluator steps only the
    envs whose first episode is running; native envs do not (their masked full step stays on the device).
    """

    spec: EnvSpec
    num_envs: int
    device: torch.device
    supports_common_random_numbers: bool

    def reset(self, seed: int, group_size: int | None = None) -> torch.Tensor: ...

    def step(self, action: torch.Tensor) -> StepOut: ...

    def close(self) -> None: ...


class SubsetVecEnv(VecEnv, Protocol):
    """A :class:`VecEnv` that can step a subset of its envs (``steps_subsets = True``)."""

    steps_subsets: bool

    def step_subset(self, action: torch.Tensor, env_ids: torch.Tensor) -> StepOut:
        """Step only the envs ``env_ids [K]`` (distinct int64, on the CPU) with ``action [K, ...]``; returns ``[K]``
        rows in ``env_ids`` order, with the backend's usual auto-reset for an env stepped after its end."""
        ...
