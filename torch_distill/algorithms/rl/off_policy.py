"""The one training loop of the off-policy agents (DQN, SAC, TD3/DDPG): collect, store, warm up, train every
``train_frequency`` iterations, record metrics.

An agent plugs in as an :class:`OffPolicyLearner`: how it acts while collecting (:meth:`~OffPolicyLearner.explore`),
what one gradient step does (:meth:`~OffPolicyLearner.update`: replay sampling, TD target, optimiser and target
network steps) and which metrics it reports. The loop owns the env, the replay buffer and the bookkeeping:

* one iteration = one step of the ``num_envs`` envs of every member (``num_envs`` transitions per member), stored
  in a :class:`~torch_distill.algorithms.rl.replay.ReplayBuffer` of ``buffer_size`` (rounded down to a multiple of
  ``num_envs``) per member;
* once ``learning_starts`` env steps are stored, every ``train_frequency``-th iteration runs ``gradient_steps``
  updates;
* every ``metrics_interval`` env steps a row of metrics is recorded (training-episode return and length, then the
  learner's own), ``callback(env_steps, params)`` is called, and every ``log_interval`` rows ``logger``;
* time limits (:class:`~torch_distill.algorithms.rl.common.EnvStepper`): an ended row stores the observation
  before its auto-reset as ``next_obs``; the bootstrap mask is ``terminated`` only, so truncated transitions are
  learned from with weight 1 and bootstrap from ``Q(s_final)`` (SB3's ``handle_timeout_termination``). Envs
  without ``transition`` store the reset observation and give truncated transitions weight 0.

No Python loop over members and no host sync in the loop (except the optional logger).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from torch_distill.algorithms.rl.common import (
    Callback,
    EnvStepper,
    EpisodeTracker,
    Logger,
    MetricsRecorder,
)
from torch_distill.algorithms.rl.hparams import check_ints
from torch_distill.algorithms.rl.replay import ReplayBuffer
from torch_distill.envs.core import FunctionalEnv
from torch_distill.keyed import fold_in

__all__ = ["OffPolicyConfig", "OffPolicyLearner", "off_policy_train"]


@dataclass(frozen=True)
class OffPolicyConfig:
    """The loop settings of every off-policy agent config (the base of ``DQNConfig``, ``SACConfig``, ``TD3Config``).

    Attributes:
        total_timesteps: env steps per member (rounded down to a multiple of ``num_envs``).
        num_envs: envs per member (one iteration = one step of each).
        buffer_size: replay capacity per member (rounded down to a multiple of ``num_envs``).
        batch_size: replay minibatch per member per gradient step.
        learning_starts: env steps per member before the first update (SAC, TD3: with uniform random actions).
        train_frequency: iterations between training phases.
        gradient_steps: gradient steps per training phase.
        metrics_interval: env steps per member between recorded metrics.
        log_interval: call ``logger`` every this many metric records (0: never; each call syncs).
    """

    total_timesteps: int = 20_000
    num_envs: int = 1
    buffer_size: int = 100_000
    batch_size: int = 256
    learning_starts: int = 1_000
    train_frequency: int = 1
    gradient_steps: int = 1
    metrics_interval: int = 1_000
    log_interval: int = 0

    def __post_init__(self) -> None:
        name = type(self).__name__
        check_ints(self, ("num_envs", "batch_size", "train_frequency", "gradient_steps", "metrics_interval"),
                   f"{name}.")
        check_ints(self, ("total_timesteps", "buffer_size", "learning_starts", "log_interval"), f"{name}.", minimum=0)
        if self.buffer_size < self.num_envs or self.total_timesteps < self.num_envs:
            raise ValueError(f"{name}: buffer_size={self.buffer_size} and total_timesteps={self.total_timesteps} "
                             f"must be >= num_envs={self.num_envs}")


class OffPolicyLearner(Protocol):
    """An agent's part of :func:`off_policy_train` (all tensors with a leading member dim ``[M]``)."""

    metric_names: tuple[str, ...]
    """Names of the values :meth:`metrics` returns (recorded after ``episode_return``/``episode_length``)."""

    @property
    def params(self) -> Tensor:
        """The parameters :func:`off_policy_train` returns and passes to the callback ``[M, P]``."""
        ...

    def explore(self, step: int, key: Tensor, obs: Tensor) -> Tensor:
        """Actions ``[M, n]`` / ``[M, n, A]`` for ``obs [M, n, obs_dim]`` at env step ``step`` (per member) with
        per-member ``key [M]`` of the iteration."""
        ...

    def update(self, key: Tensor, index: int, buffer: ReplayBuffer) -> None:
        """Gradient step ``index`` of the iteration with key ``key [M]``."""
        ...

    def metrics(self) -> tuple[Tensor, ...]:
        """``[M]`` values of :attr:`metric_names` at a metrics record."""
        ...

    def log(self) -> dict[str, float]:
        """Host floats for the logger (syncs)."""
        ...


def off_policy_train(
    config: OffPolicyConfig,
    learner: OffPolicyLearner,
    env: FunctionalEnv,
    env_params: Any,
    generator: torch.Generator,
    keys: Tensor,
    action_shape: tuple[int, ...],
    action_dtype: torch.dtype,
    callback: Callback | None = None,
    logger: Logger | None = None,
) -> dict[str, Tensor]:
    """Run the off-policy loop (module docstring) for ``M = keys.shape[0]`` members on ``M * num_envs`` rows of
    ``env``; the learner holds the trained parameters afterwards.

    Args:
        config: an off-policy agent config (its :class:`OffPolicyConfig` fields drive the loop).
        learner: the agent's :class:`OffPolicyLearner`.
        env, env_params, generator: the env, its params for ``M * num_envs`` rows and its randomness.
        keys: ``[M]`` per-member keys; iteration ``i`` hands ``fold_in(keys, i)`` to the learner.
        action_shape, action_dtype: one stored action (``()`` int64 discrete, ``(A,)`` float32 continuous).

    Returns:
        ``{"episode_return", "episode_length", *learner.metric_names: [R, M], "env_steps": [R]}``: one row per
        ``metrics_interval`` env steps (episode means over the window, NaN if no episode ended in it).
    """
    m, n, dev = keys.shape[0], config.num_envs, generator.device
    d = env.spec.obs_dim
    buf = ReplayBuffer(m, (config.buffer_size // n) * n, d, action_shape, action_dtype, dev)
    step_env = EnvStepper(env)
    state, obs = env.reset(m * n, generator, env_params)
    tracker = EpisodeTracker(m, n, dev)
    record = MetricsRecorder(("episode_return", "episode_length", *learner.metric_names), m, dev)
    rec_every = max(1, config.metrics_interval // n)
    for it in range(config.total_timesteps // n):
        step = it * n
        k = fold_in(keys, it)
        o = obs.reshape(m, n, d)
        action = learner.explore(step, k, o)
        out = step_env(state, action.reshape(m * n, *action.shape[2:]), generator, env_params)
        state, obs = out.state, out.obs
        reward, term, trunc = out.reward.reshape(m, n), out.terminated.reshape(m, n), out.truncated.reshape(m, n)
        tracker.update(reward, term | trunc)
        if step_env.final_obs:
            buf.add(o, out.final_obs.reshape(m, n, d), action, reward, term, torch.ones_like(reward))
        else:
            buf.add(o, obs.reshape(m, n, d), action, reward, term, (term | ~trunc).float())

        if step + n > config.learning_starts and it % config.train_frequency == 0:
            for g in range(config.gradient_steps):
                learner.update(k, g, buf)

        if (it + 1) % rec_every == 0:
            ep_ret, ep_len = tracker.window_mean()
            tracker.reset_window()
            record.append((it + 1) * n, (ep_ret, ep_len, *learner.metrics()))
            if callback is not None:
                callback((it + 1) * n, learner.params)
            if logger is not None and config.log_interval > 0 and len(record) % config.log_interval == 0:
                logger({"env_steps": (it + 1) * n, "episode_return": float(ep_ret.nanmean()), **learner.log()})
    return record.result()
