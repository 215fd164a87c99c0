"""Pieces every population-vectorised agent uses: member set-up, env stepping with time limits, episode and
metric bookkeeping, gradient clipping, schedules and greedy evaluation.

Layout conventions (every agent follows them):

* ``M`` = population members x rollouts trained at once. Network parameters are flat vectors ``[M, P]``;
  optimiser state, replay buffers and per-member hyperparameters carry the same leading ``[M]`` dim.
* The env batch is ``[M * n_envs]`` rows of a :class:`~torch_distill.envs.core.FunctionalEnv`, member-major
  (rows ``m * n_envs ... (m + 1) * n_envs - 1`` belong to member ``m``). ``env_params`` is whatever the env
  accepts for that batch: 0-dim fields (one env for everybody) or ``[M * n_envs]`` fields (a population of envs).
* Agent randomness (initialisation, action sampling, exploration, minibatch permutations, replay sampling) is a
  counter-based hash of per-member keys ``[M]`` (:mod:`torch_distill.keyed`): member ``m``'s numbers depend only
  on ``keys[m]`` and the counters, never on ``M``, so an ``M``-member run equals ``M`` single-member runs with the
  same keys. The env's own randomness comes from its ``torch.Generator`` as in the env contract.
* Time limits: :class:`EnvStepper` returns the observation before the auto-reset of rows that ended, so learners
  bootstrap truncated (not terminated) steps from ``V(s_final)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from torch_distill.envs.core import EnvStep, FunctionalEnv, step_with_final_obs
from torch_distill.keyed import make_keys

__all__ = [
    "Callback",
    "EnvStepper",
    "EpisodeTracker",
    "Logger",
    "MetricsRecorder",
    "clip_grad_norm",
    "initial_params",
    "linear_schedule",
    "member_setup",
]

Callback = Callable[[int, Tensor], None]
"""``callback(env_steps_per_member, params [M, P])``, called at every metrics record of a training run."""
Logger = Callable[[dict[str, float]], None]
"""Called with host floats every ``log_interval`` metrics records (each call syncs with the host)."""


# ---------------------------------------------------------------------------------------------------- set-up
def member_setup(num_members: int, keys: Tensor | None, generator: torch.Generator) -> tuple[int, torch.device, Tensor]:
    """``(M, device, keys [M])`` of a training run: ``keys`` checked, or drawn from ``generator`` when None."""
    dev = generator.device
    m = int(num_members)
    if m < 1:
        raise ValueError(f"num_members={num_members!r}: expected a positive int")
    if keys is None:
        keys = make_keys(torch.randint(0, 2**31 - 1, (), generator=generator, device=dev), m, dev)
    if keys.shape != (m,):
        raise ValueError(f"keys shape {tuple(keys.shape)}: expected ({m},)")
    return m, dev, keys


def initial_params(init: Callable[[Tensor], Tensor], keys: Tensor, init_params: Tensor | None,
                   num_params: int) -> Tensor:
    """``init(keys)`` or a copy of ``init_params``, checked to be ``[M, num_params]``."""
    params = init(keys) if init_params is None else init_params.clone()
    if params.shape != (keys.shape[0], num_params):
        raise ValueError(f"init_params shape {tuple(params.shape)}: expected ({keys.shape[0]}, {num_params})")
    return params


# ---------------------------------------------------------------------------------------------------- env steps
class EnvStepper:
    """``env.step`` that also returns the final observation of the rows that ended (:class:`EnvStep`).

    Envs with ``transition``/``reset_done`` (the :class:`~torch_distill.envs.core.FunctionalEnv` contract) go
    through :func:`~torch_distill.envs.core.step_with_final_obs`: :attr:`final_obs` is True and learners bootstrap
    time limits. Other envs fall back to ``env.step``: ``final_obs`` is the (reset) ``obs`` and :attr:`final_obs`
    is False, so learners treat truncation as an end without bootstrap (PPO) or never learn from truncated
    transitions (replay weight 0). This class is the only place that fallback is written.
    """

    def __init__(self, env: FunctionalEnv) -> None:
        self.env = env
        self.final_obs = callable(getattr(env, "transition", None)) and callable(getattr(env, "reset_done", None))

    def __call__(self, state: Any, action: Tensor, generator: torch.Generator, params: Any = None) -> EnvStep:
        if self.final_obs:
            return step_with_final_obs(self.env, state, action, generator, params)
        state, obs, reward, terminated, truncated = self.env.step(state, action, generator, params)
        return EnvStep(state, obs, reward, terminated, truncated, obs)


# ---------------------------------------------------------------------------------------------------- optimisation
def clip_grad_norm(grads: Tensor, max_norm: Tensor) -> Tensor:
    """Per-member global-norm clipping: ``grads [M, P]``, ``max_norm [M]`` (``<= 0`` disables it for that member)."""
    norm = torch.linalg.vector_norm(grads, dim=-1)
    scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    scale = torch.where(max_norm > 0, scale, torch.ones_like(scale))
    return grads * scale.unsqueeze(-1)


def linear_schedule(start: Tensor, end: Tensor, duration: Tensor | float, t: float) -> Tensor:
    """``start + (end - start) * min(t / duration, 1)`` elementwise (a zero duration gives ``end``)."""
    duration = torch.as_tensor(duration, dtype=torch.float32, device=start.device)
    frac = torch.where(duration > 0, torch.clamp(t / duration.clamp_min(1e-12), max=1.0), torch.ones_like(duration))
    return start + (end - start) * frac


# ---------------------------------------------------------------------------------------------------- bookkeeping
class EpisodeTracker:
    """Running returns of ``[M, n]`` envs; accumulates the sum and count of completed episode returns per member."""

    def __init__(self, num_members: int, n_envs: int, device: torch.device) -> None:
        self.ret = torch.zeros(num_members, n_envs, device=device)
        self.length = torch.zeros(num_members, n_envs, device=device)
        self.reset_window()

    def reset_window(self) -> None:
        self.sum = torch.zeros(self.ret.shape[0], device=self.ret.device)
        self.len_sum = torch.zeros_like(self.sum)
        self.count = torch.zeros_like(self.sum)

    def update(self, reward: Tensor, done: Tensor) -> None:
        """``reward``/``done`` ``[M, n]``."""
        self.ret = self.ret + reward
        self.length = self.length + 1
        d = done.to(self.ret.dtype)
        self.sum = self.sum + (self.ret * d).sum(-1)
        self.len_sum = self.len_sum + (self.length * d).sum(-1)
        self.count = self.count + d.sum(-1)
        self.ret = self.ret * (1 - d)
        self.length = self.length * (1 - d)

    def window_mean(self) -> tuple[Tensor, Tensor]:
        """Mean return and length ``[M]`` of the episodes completed since :meth:`reset_window` (NaN if none)."""
        nan = torch.full_like(self.sum, float("nan"))
        c = self.count.clamp_min(1)
        return torch.where(self.count > 0, self.sum / c, nan), torch.where(self.count > 0, self.len_sum / c, nan)


class MetricsRecorder:
    """Rows of per-member metrics ``{name: [M]}`` with their env steps; :meth:`result` stacks them into
    ``{name: [R, M]}`` plus ``env_steps [R]`` int64 (no host sync)."""

    def __init__(self, names: Sequence[str], num_members: int, device: torch.device) -> None:
        self.names = tuple(names)
        self.rows: dict[str, list[Tensor]] = {k: [] for k in self.names}
        self.steps: list[int] = []
        self.num_members = num_members
        self.device = device

    def __len__(self) -> int:
        return len(self.steps)

    def append(self, env_steps: int, values: Sequence[Tensor]) -> None:
        """One row: ``values`` in the order of ``names``, each ``[M]``."""
        for name, v in zip(self.names, values, strict=True):
            self.rows[name].append(v)
        self.steps.append(env_steps)

    def result(self) -> dict[str, Tensor]:
        out = {k: (torch.stack(v) if v else torch.zeros(0, self.num_members, device=self.device))
               for k, v in self.rows.items()}
        out["env_steps"] = torch.tensor(self.steps, dtype=torch.int64, device=self.device)
        return out
