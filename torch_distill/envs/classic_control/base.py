"""Shared machinery of the classic-control envs: ``_ClassicControlEnv`` (params, time limit, ``transition``,
``reset_done``, ``observation``, ``step``, action checks, batched uniform draws, gymnasium state import)."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import torch

from torch_distill.envs.core import EnvSpec

StepResult = tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class _ClassicControlEnv:
    """Shared machinery: params handling, time limit, auto-reset, checks, gymnasium import.

    Subclasses define ``spec`` (built in ``__init__``), ``State``/``Params`` types, ``_default_values`` and
    the three pure pieces ``_sample(n, generator, params)`` (initial states), ``_dynamics(state, action, params)``
    (next state fields, reward, terminated) and the public :meth:`observation`.
    """

    State: ClassVar[type]
    Params: ClassVar[type]
    _default_values: ClassVar[dict[str, float]]
    _max_steps: ClassVar[dict[str, int]]

    def __init__(self, dtype: torch.dtype = torch.float32, *, env_id: str | None = None, max_episode_steps: int | None = None) -> None:
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype={dtype!r}: expected a floating torch dtype (torch.float32 or torch.float64)")
        env_id = env_id if env_id is not None else next(iter(self._max_steps))
        if env_id not in self._max_steps:
            raise ValueError(f"env_id={env_id!r}: {type(self).__name__} implements {sorted(self._max_steps)}")
        steps = self._max_steps[env_id] if max_episode_steps is None else int(max_episode_steps)
        if steps < 1:
            raise ValueError(f"max_episode_steps={max_episode_steps!r}: expected a positive int")
        self.dtype = dtype
        self.spec = self._make_spec(env_id, steps)
        self._params_cache: dict[torch.device, Any] = {}
        self._bounds_cache: dict[Any, tuple[torch.Tensor, torch.Tensor]] = {}

    def _make_spec(self, env_id: str, max_episode_steps: int) -> EnvSpec:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.env_id}, dtype={self.dtype}, max_episode_steps={self.spec.max_episode_steps})"

    # ------------------------------------------------------------------------------------------------ params
    def default_params(self, device: torch.device | str = "cpu") -> Any:
        """The gymnasium constants as 0-dim tensors of ``self.dtype`` on ``device``."""
        dev = torch.device(device)
        return self.Params(**{k: torch.tensor(v, dtype=self.dtype, device=dev) for k, v in self._default_values.items()})

    def _params(self, params: Any, device: torch.device) -> Any:
        if params is not None:
            return params
        p = self._params_cache.get(device)
        if p is None:
            p = self._params_cache[device] = self.default_params(device)
        return p

    # ------------------------------------------------------------------------------------------------ contract
    def reset(self, batch_size: int, generator: torch.Generator, params: Any = None) -> tuple[Any, torch.Tensor]:
        """Draw ``batch_size`` initial states with ``generator`` (on the env's device).

        Returns ``(state, obs)`` with state fields ``[B]`` (``time`` zeros) and ``obs [B, obs_dim]`` float32.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive int")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator={generator!r}: expected a torch.Generator")
        p = self._params(params, generator.device)
        state = self._sample(batch_size, generator, p)
        return state, self.observation(state)

    def step(self, state: Any, action: torch.Tensor, generator: torch.Generator, params: Any = None) -> StepResult:
        """One step of every env, with auto-reset of the rows that ended: :meth:`transition` followed by
        :meth:`reset_done` on ``terminated | truncated`` (the same draws; the final observations are not computed).

        Args:
            state: state ``NamedTuple`` with ``[B]`` fields.
            action: ``[B]`` integer (discrete) or ``[B, action_dim]`` float (continuous).
            generator: source of the fresh initial states of rows that end (one draw for the whole batch).
            params: physical constants (0-dim or ``[B]``), default :meth:`default_params`.

        Returns:
            ``(state, obs [B, obs_dim] float32, reward [B] float32, terminated [B] bool, truncated [B] bool)``;
            ``state``/``obs`` of rows that ended are fresh initial ones, reward and flags are those of the step.
        """
        p = self._params(params, state.time.device)
        nxt, reward, terminated, truncated = self._advance(state, action, p)
        merged, obs = self._reset_rows(terminated | truncated, nxt, generator, p)
        return merged, obs, reward, terminated, truncated

    def transition(self, state: Any, action: torch.Tensor, generator: torch.Generator, params: Any = None) -> StepResult:
        """One step of every env WITHOUT auto-reset (no random draw; ``generator`` is unused).

        Returns ``(state, obs [B, obs_dim] float32, reward [B] float32, terminated [B] bool, truncated [B] bool)``
        where ``state`` (``time`` counted up) and ``obs`` of the rows that ended are their last ones, as
        gymnasium's step returns them before the vector env resets (its ``final_obs``).
        """
        p = self._params(params, state.time.device)
        nxt, reward, terminated, truncated = self._advance(state, action, p)
        return nxt, self.observation(nxt), reward, terminated, truncated

    def reset_done(self, done: torch.Tensor, state: Any, obs: torch.Tensor | None, generator: torch.Generator,
                   params: Any = None) -> tuple[Any, torch.Tensor]:
        """Replace the rows where ``done [B]`` (bool) by fresh initial states: ``(state, obs [B, obs_dim])``.

        One batch of initial states is drawn (one ``torch.rand`` call) whatever ``done`` holds, so the random
        stream never depends on tensor values; ``obs`` is recomputed from the merged state (the given ``obs`` is
        not needed, it equals the result in the rows that did not end).
        """
        batch = state.time.shape[0]
        if not isinstance(done, torch.Tensor) or done.shape != (batch,) or done.dtype != torch.bool:
            shape = tuple(done.shape) if isinstance(done, torch.Tensor) else type(done).__name__
            raise ValueError(f"{self.spec.env_id}: done has shape {shape}, expected a ({batch},) bool tensor")
        return self._reset_rows(done, state, generator, self._params(params, state.time.device))

    def observation(self, state: Any) -> torch.Tensor:
        """The observation ``[B, obs_dim]`` float32 of ``state`` (what ``reset``/``step`` return for it)."""
        raise NotImplementedError

    def _advance(self, state: Any, action: torch.Tensor, p: Any) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(next state with time + 1, reward [B] float32, terminated [B], truncated [B])``, no reset."""
        time = state.time
        action = self._check_action(action, time.shape[0])
        fields, reward, terminated = self._dynamics(state, action, p)
        time = time + 1
        truncated = time >= self.spec.max_episode_steps
        return self.State(*fields, time), reward.to(torch.float32), terminated, truncated

    def _reset_rows(self, done: torch.Tensor, state: Any, generator: torch.Generator, p: Any) -> tuple[Any, torch.Tensor]:
        fresh = self._sample(done.shape[0], generator, p)
        merged = self.State(*(torch.where(done, f, s) for f, s in zip(fresh, state)))
        return merged, self.observation(merged)

    def _check_action(self, action: torch.Tensor, batch: int) -> torch.Tensor:
        if not isinstance(action, torch.Tensor):
            raise TypeError(f"action must be a torch.Tensor, got {type(action).__name__}")
        spec = self.spec
        if spec.discrete:
            if action.shape != (batch,):
                raise ValueError(f"{spec.env_id}: action shape {tuple(action.shape)}, expected ({batch},) integer actions")
            if action.dtype.is_floating_point or action.dtype.is_complex or action.dtype == torch.bool:
                raise TypeError(f"{spec.env_id}: action dtype {action.dtype}, expected an integer dtype (int64)")
            return action
        if action.shape != (batch, spec.action_dim):
            raise ValueError(f"{spec.env_id}: action shape {tuple(action.shape)}, expected ({batch}, {spec.action_dim})")
        if not action.dtype.is_floating_point:
            raise TypeError(f"{spec.env_id}: action dtype {action.dtype}, expected a floating dtype")
        return action.to(self.dtype)

    # ------------------------------------------------------------------------------------------------ pieces
    def _uniform(self, n: int, generator: torch.Generator, low: Sequence[float], high: Sequence[float]) -> list[torch.Tensor]:
        """``len(low)`` rows of ``U[low, high)`` of length ``n`` from ONE ``torch.rand`` call (numpy's formula)."""
        dev = generator.device
        key = (dev, tuple(low), tuple(high))
        bounds = self._bounds_cache.get(key)
        if bounds is None:
            lo = torch.tensor(low, dtype=self.dtype, device=dev).unsqueeze(1)
            bounds = self._bounds_cache[key] = (lo, torch.tensor(high, dtype=self.dtype, device=dev).unsqueeze(1) - lo)
        u = torch.rand((len(low), n), generator=generator, dtype=self.dtype, device=dev)
        return list((bounds[0] + bounds[1] * u).unbind(0))

    def _sample(self, n: int, generator: torch.Generator, params: Any) -> Any:
        raise NotImplementedError

    def _dynamics(self, state: Any, action: torch.Tensor, params: Any) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
        """``(next state fields without time, reward [B], terminated [B])`` of a checked ``action``."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------------ interop
    def _gym_state(self, env: Any) -> list[float]:
        return [float(x) for x in env.unwrapped.state]

    def state_from_gymnasium(self, envs: Sequence[Any], device: torch.device | str = "cpu") -> Any:
        """Batch the current states of gymnasium envs (``env.unwrapped.state``, ``TimeLimit`` elapsed steps).

        Use after ``env.reset(seed=...)`` (or any step) to replay the same actions in both implementations.
        """
        if len(envs) == 0:
            raise ValueError("state_from_gymnasium: expected a non-empty list of gymnasium envs")
        rows, times = [], []
        for i, env in enumerate(envs):
            gid = getattr(getattr(env, "spec", None), "id", None)
            if gid is not None and gid.split("-")[0] != self.spec.env_id.split("-")[0]:
                raise ValueError(f"envs[{i}] is {gid!r}, expected {self.spec.env_id!r}")
            if getattr(env.unwrapped, "state", None) is None:
                raise ValueError(f"envs[{i}] ({gid}) has no state: call env.reset() first")
            rows.append(self._gym_state(env))
            times.append(_elapsed_steps(env))
        dev = torch.device(device)
        cols = torch.tensor(rows, dtype=torch.float64).to(dev, self.dtype).unbind(1)
        return self.State(*cols, torch.tensor(times, dtype=torch.int64, device=dev))


def _elapsed_steps(env: Any) -> int:
    """Steps counted by the first ``TimeLimit`` wrapper around ``env`` (0 if it has none or was not reset)."""
    from gymnasium.wrappers import TimeLimit

    w = env
    while w is not None:
        if isinstance(w, TimeLimit):
            return int(w._elapsed_steps or 0)
        w = getattr(w, "env", None)
    return 0
