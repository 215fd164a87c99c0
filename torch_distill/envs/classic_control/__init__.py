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

Modules: :mod:`~torch_distill.envs.classic_control.base` (the shared ``_ClassicControlEnv`` machinery),
:mod:`~torch_distill.envs.classic_control.cartpole`, :mod:`~torch_distill.envs.classic_control.acrobot`,
:mod:`~torch_distill.envs.classic_control.mountain_car` (discrete and continuous),
:mod:`~torch_distill.envs.classic_control.pendulum` and :mod:`~torch_distill.envs.classic_control.registry`
(``CLASSIC_CONTROL``, ``make_classic_control``, ``state_from_gymnasium``).
"""

from torch_distill.envs.classic_control.acrobot import (
    Acrobot,
    AcrobotParams,
    AcrobotState,
)
from torch_distill.envs.classic_control.acrobot import _wrap_pi as _wrap_pi
from torch_distill.envs.classic_control.base import StepResult as StepResult
from torch_distill.envs.classic_control.base import (
    _ClassicControlEnv as _ClassicControlEnv,
)
from torch_distill.envs.classic_control.base import _elapsed_steps as _elapsed_steps
from torch_distill.envs.classic_control.cartpole import (
    CartPole,
    CartPoleParams,
    CartPoleState,
)
from torch_distill.envs.classic_control.mountain_car import (
    MountainCar,
    MountainCarContinuous,
    MountainCarContinuousParams,
    MountainCarParams,
    MountainCarState,
)
from torch_distill.envs.classic_control.pendulum import (
    Pendulum,
    PendulumParams,
    PendulumState,
)
from torch_distill.envs.classic_control.registry import (
    CLASSIC_CONTROL,
    make_classic_control,
    state_from_gymnasium,
)

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
