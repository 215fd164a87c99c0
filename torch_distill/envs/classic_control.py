"""Natively batched classic-control environments in torch (gymnax-style pure functions).

Each env follows the :class:`~torch_distill.envs.core.FunctionalEnv` contract::

    env = CartPole()                                  # or CLASSIC_CONTROL["CartPole-v1"](dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    state, obs = env.reset(batch_size, gen)           # obs [B, obs_dim] float32
    state, obs, reward, terminated, truncated = env.step(state, action, gen)

and reproduces gymnasium 1.x (``gymnasium/envs/classic_control/*.py``) step for step: the same dynamics,
integrators, clipping, reward, termination and reset distributions, with the ``TimeLimit`` wrapper's truncation
(``truncated = elapsed_steps >= max_episode_steps``, reported alongside ``terminated`` when both happen).
``step`` is ``transition`` (one step without auto-reset: the state and ``obs`` of rows that ended are their last
ones, gymnasium's final observation) followed by ``reset_done`` on ``terminated | truncated``, with the same
random draws; ``observation(state)`` is the observation of any state.

* State: a ``NamedTuple`` of ``[B]`` tensors in the env's ``dtype`` plus ``time`` (``[B]`` int64, steps taken in
  the current episode).
* Params: a ``NamedTuple`` of float tensors with the physical constants (0-dim by default; ``[B]`` tensors
  broadcast, so a population of envs with different physics is one batch of params).
* Randomness comes only from the ``generator`` argument. ``step`` draws one batch of fresh initial states per
  call (a single ``torch.rand`` call) and selects them with ``torch.where`` for the rows that ended, so it never
  branches on tensor values and never syncs with the host: it runs unchanged on CUDA (generator, state and
  params on the same device).
* ``dtype`` (float32 by default) is the precision of state and dynamics; ``torch.float64`` matches gymnasium's
  Python-float/NumPy float64 arithmetic to round-off. Observations are always float32, rewards float32,
  ``terminated``/``truncated`` bool.

Discrete actions are integer ``[B]`` tensors (values are not range-checked, which would need a host sync; they
follow gymnasium's formulas: CartPole pushes right iff ``action == 1``, Acrobot/MountainCar use
``action - 1``). Continuous actions are float ``[B, action_dim]`` and are clipped inside ``step`` exactly where
gymnasium clips them.

References: Barto, Sutton & Anderson (1983) cart-pole; Sutton (1996) and Sutton & Barto (2018) acrobot ("book"
dynamics, RK4 with ``dt = 0.2``); Moore (1990) mountain car; gymnax (Lange, 2022) for the functional layout.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, ClassVar, NamedTuple, Sequence

import torch

from torch_distill.envs.core import EnvSpec, FunctionalEnv

__all__ = [
    "CartPole",
    "CartPoleState",
    "CartPoleParams",
    "Acrobot",
    "AcrobotState",
    "AcrobotParams",
    "MountainCar",
    "MountainCarState",
    "MountainCarParams",
    "MountainCarContinuous",
    "MountainCarContinuousParams",
    "Pendulum",
    "PendulumState",
    "PendulumParams",
    "CLASSIC_CONTROL",
    "make_classic_control",
    "state_from_gymnasium",
]

StepResult = tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


# ---------------------------------------------------------------------------------------------------- base class
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


# ---------------------------------------------------------------------------------------------------- CartPole
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


# ---------------------------------------------------------------------------------------------------- Acrobot
class AcrobotState(NamedTuple):
    """Acrobot state, every field ``[B]`` (angles in ``[-pi, pi]``)."""

    theta1: torch.Tensor
    theta2: torch.Tensor
    dtheta1: torch.Tensor
    dtheta2: torch.Tensor
    time: torch.Tensor  # int64


class AcrobotParams(NamedTuple):
    """gymnasium ``AcrobotEnv`` class constants (0-dim or ``[B]``).

    ``LINK_LENGTH_2`` only affects rendering in gymnasium and is omitted; ``torque_noise_max`` is 0 in
    gymnasium and not implemented.
    """

    link_length_1: torch.Tensor
    link_mass_1: torch.Tensor
    link_mass_2: torch.Tensor
    link_com_pos_1: torch.Tensor
    link_com_pos_2: torch.Tensor
    link_moi: torch.Tensor  # moment of inertia of both links
    max_vel_1: torch.Tensor
    max_vel_2: torch.Tensor
    gravity: torch.Tensor
    dt: torch.Tensor


class Acrobot(_ClassicControlEnv):
    """Acrobot (Sutton 1996; Sutton & Barto 2018 "book" dynamics) as gymnasium's ``AcrobotEnv``.

    Actions ``{0, 1, 2}`` apply torque ``action - 1`` to the middle joint; one step is a single RK4 step of
    ``dt = 0.2`` (gymnasium's ``rk4`` over ``t = [0, dt]``), then angles are wrapped to ``[-pi, pi]`` and
    velocities clipped to ``4 pi`` / ``9 pi``. Reward -1 per step, 0 on the terminating step; terminates when
    ``-cos(theta1) - cos(theta1 + theta2) > 1``. Initial state ``U(-0.1, 0.1)^4``. Observation
    ``[cos t1, sin t1, cos t2, sin t2, dt1, dt2]``.
    """

    State = AcrobotState
    Params = AcrobotParams
    _default_values = dict(
        link_length_1=1.0,
        link_mass_1=1.0,
        link_mass_2=1.0,
        link_com_pos_1=0.5,
        link_com_pos_2=0.5,
        link_moi=1.0,
        max_vel_1=4 * math.pi,
        max_vel_2=9 * math.pi,
        gravity=9.8,
        dt=0.2,
    )
    _max_steps = {"Acrobot-v1": 500}

    def _make_spec(self, env_id: str, max_episode_steps: int) -> EnvSpec:
        return EnvSpec(env_id, (6,), True, n_actions=3, max_episode_steps=max_episode_steps)

    def _sample(self, n: int, generator: torch.Generator, params: AcrobotParams) -> AcrobotState:
        t1, t2, d1, d2 = self._uniform(n, generator, [-0.1] * 4, [0.1] * 4)
        return AcrobotState(t1, t2, d1, d2, torch.zeros(n, dtype=torch.int64, device=generator.device))

    def _dynamics(self, s: AcrobotState, action: torch.Tensor, p: AcrobotParams):  # type: ignore[override]
        m1, m2, l1 = p.link_mass_1, p.link_mass_2, p.link_length_1
        lc1, lc2, inertia, g = p.link_com_pos_1, p.link_com_pos_2, p.link_moi, p.gravity
        # Param-only subexpressions of gymnasium's ``_dsdt``, hoisted with the same left-to-right association
        # (a + b + c == (a + b) + c), so the float64 result is the same as gymnasium's.
        c_d1a = m1 * lc1**2
        c_d1b = l1**2 + lc2**2
        c_d1c = 2 * l1 * lc2
        c_d2a = lc2**2
        c_d2b = l1 * lc2
        c_phi2 = m2 * lc2 * g
        c_phi1a = -m2 * l1 * lc2
        c_phi1b = 2 * m2 * l1 * lc2
        c_phi1c = (m1 * lc1 + m2 * l1) * g
        c_dd2 = m2 * l1 * lc2
        c_den = m2 * lc2**2 + inertia
        half_pi = math.pi / 2.0
        a = (action - 1).to(self.dtype)

        def dsdt(theta1: torch.Tensor, theta2: torch.Tensor, dtheta1: torch.Tensor, dtheta2: torch.Tensor):
            cos2, sin2 = torch.cos(theta2), torch.sin(theta2)
            d1 = c_d1a + m2 * (c_d1b + c_d1c * cos2) + inertia + inertia
            d2 = m2 * (c_d2a + c_d2b * cos2) + inertia
            phi2 = c_phi2 * torch.cos(theta1 + theta2 - half_pi)
            phi1 = (
                c_phi1a * dtheta2**2 * sin2
                - c_phi1b * dtheta2 * dtheta1 * sin2
                + c_phi1c * torch.cos(theta1 - half_pi)
                + phi2
            )
            ddtheta2 = (a + d2 / d1 * phi1 - c_dd2 * dtheta1**2 * sin2 - phi2) / (c_den - d2**2 / d1)
            ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
            return dtheta1, dtheta2, ddtheta1, ddtheta2

        # gymnasium's rk4(derivs, y0, [0, dt]): one classical Runge-Kutta step.
        y0 = (s.theta1, s.theta2, s.dtheta1, s.dtheta2)
        dt = p.dt
        dt2 = dt / 2.0
        k1 = dsdt(*y0)
        k2 = dsdt(*(y + dt2 * k for y, k in zip(y0, k1)))
        k3 = dsdt(*(y + dt2 * k for y, k in zip(y0, k2)))
        k4 = dsdt(*(y + dt * k for y, k in zip(y0, k3)))
        dt6 = dt / 6.0
        t1, t2, d1, d2 = (y + dt6 * (a1 + 2 * a2 + 2 * a3 + a4) for y, a1, a2, a3, a4 in zip(y0, k1, k2, k3, k4))
        t1, t2 = _wrap_pi(t1), _wrap_pi(t2)
        d1 = torch.minimum(torch.maximum(d1, -p.max_vel_1), p.max_vel_1)
        d2 = torch.minimum(torch.maximum(d2, -p.max_vel_2), p.max_vel_2)
        terminated = -torch.cos(t1) - torch.cos(t2 + t1) > 1.0
        reward = terminated.to(self.dtype) - 1.0
        return (t1, t2, d1, d2), reward, terminated

    def observation(self, s: AcrobotState) -> torch.Tensor:
        return torch.stack(
            (torch.cos(s.theta1), torch.sin(s.theta1), torch.cos(s.theta2), torch.sin(s.theta2), s.dtheta1, s.dtheta2),
            dim=-1,
        ).to(torch.float32)


def _wrap_pi(x: torch.Tensor) -> torch.Tensor:
    """gymnasium's ``wrap(x, -pi, pi)`` (repeated subtraction/addition of ``2 pi``), without host branching.

    Two exact rounds cover every reachable Acrobot state (an angle moves by < 4 pi in one 0.2 s step); anything
    still outside (never seen) falls back to a remainder.
    """
    lo, hi = -math.pi, math.pi
    diff = hi - lo
    for _ in range(2):
        x = torch.where(x > hi, x - diff, torch.where(x < lo, x + diff, x))
    return torch.where((x > hi) | (x < lo), torch.remainder(x - lo, diff) + lo, x)


# ---------------------------------------------------------------------------------------------------- MountainCar
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


# ---------------------------------------------------------------------------------------------------- Pendulum
class PendulumState(NamedTuple):
    """Pendulum state, every field ``[B]`` (``theta`` is not wrapped, as in gymnasium)."""

    theta: torch.Tensor
    theta_dot: torch.Tensor
    time: torch.Tensor  # int64


class PendulumParams(NamedTuple):
    """gymnasium ``PendulumEnv`` attributes ``max_speed, max_torque, dt, g, m, l`` (0-dim or ``[B]``)."""

    max_speed: torch.Tensor
    max_torque: torch.Tensor
    dt: torch.Tensor
    gravity: torch.Tensor  # gymnasium's ``g`` (make kwarg ``g=10.0``)
    mass: torch.Tensor  # ``m``
    length: torch.Tensor  # ``l``


class Pendulum(_ClassicControlEnv):
    """Inverted pendulum swing-up as gymnasium's ``PendulumEnv`` (semi-implicit Euler, ``dt = 0.05``).

    Action ``[B, 1]`` torque clipped to ``[-2, 2]``; reward ``-(angle_normalize(th)^2 + 0.1 thdot^2 +
    0.001 u^2)`` with the clipped ``u``; angular velocity clipped to ``+-8``. Never terminates (truncated at 200
    steps). Initial ``th ~ U(-pi, pi)``, ``thdot ~ U(-1, 1)``. Observation ``[cos th, sin th, thdot]``.
    """

    State = PendulumState
    Params = PendulumParams
    _default_values = dict(max_speed=8.0, max_torque=2.0, dt=0.05, gravity=10.0, mass=1.0, length=1.0)
    _max_steps = {"Pendulum-v1": 200}

    def _make_spec(self, env_id: str, max_episode_steps: int) -> EnvSpec:
        return EnvSpec(
            env_id, (3,), False, action_dim=1, action_low=(-2.0,), action_high=(2.0,), max_episode_steps=max_episode_steps
        )

    def _sample(self, n: int, generator: torch.Generator, params: Any) -> PendulumState:
        theta, theta_dot = self._uniform(n, generator, [-math.pi, -1.0], [math.pi, 1.0])
        return PendulumState(theta, theta_dot, torch.zeros(n, dtype=torch.int64, device=generator.device))

    def _dynamics(self, s: PendulumState, action: torch.Tensor, p: PendulumParams):  # type: ignore[override]
        th, thdot = s.theta, s.theta_dot
        u = torch.minimum(torch.maximum(action[:, 0], -p.max_torque), p.max_torque)
        th_norm = torch.remainder(th + math.pi, 2 * math.pi) - math.pi
        costs = th_norm.square() + 0.1 * thdot.square() + 0.001 * u.square()
        newthdot = thdot + (3 * p.gravity / (2 * p.length) * torch.sin(th) + 3.0 / (p.mass * p.length**2) * u) * p.dt
        newthdot = torch.minimum(torch.maximum(newthdot, -p.max_speed), p.max_speed)
        newth = th + newthdot * p.dt
        terminated = torch.zeros_like(th, dtype=torch.bool)
        return (newth, newthdot), -costs, terminated

    def observation(self, s: PendulumState) -> torch.Tensor:
        return torch.stack((torch.cos(s.theta), torch.sin(s.theta), s.theta_dot), dim=-1).to(torch.float32)


# ---------------------------------------------------------------------------------------------------- registry
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
