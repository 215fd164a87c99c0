"""TD3 and DDPG for a population: ``M`` independent continuous-control agents trained at once.

TD3 (Fujimoto et al. 2018): deterministic actor, twin critics with the clipped double-Q target
``y = r + gamma (1 - terminated) min_i Q'_i(s', clip(pi'(s') + clip(eps, -c, c), low, high))``, target policy
smoothing noise ``eps ~ N(0, policy_noise^2)``, delayed actor and target updates (every ``policy_delay`` critic
updates), Polyak target averaging with ``tau``, Gaussian exploration noise, uniform random actions for the first
``learning_starts`` steps. DDPG (Lillicrap et al. 2016) is the special case ``twin=False, policy_noise=0,
policy_delay=1`` (:func:`ddpg_config`). Noise scales are fractions of the action half-range.

The training loop is :func:`~torch_distill.algorithms.rl.off_policy.off_policy_train` (replay buffer tensors
``[M, capacity, ...]``, time limits bootstrapped from the observation before the auto-reset); this module adds the
exploration and the update. Actor ``[M, Pa]`` and twin critics ``[M, 2 Pc]`` flat parameters, functional Adam,
per-member hyperparameters ``[M]``, per-member keys; no Python loop over members, no host sync in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.func import grad_and_value

from torch_distill.algorithms.rl.agent import Agent, InnerOptions
from torch_distill.algorithms.rl.common import (
    Callback,
    Logger,
    clip_grad_norm,
    initial_params,
    member_setup,
)
from torch_distill.algorithms.rl.hparams import (
    REFERENCE_GAMMA,
    REFERENCE_LR,
    REFERENCE_TAU,
    HParam,
    check_ints,
    member_hparams,
)
from torch_distill.algorithms.rl.off_policy import OffPolicyConfig, off_policy_train
from torch_distill.algorithms.rl.replay import ReplayBuffer
from torch_distill.envs.core import EnvSpec, FunctionalEnv
from torch_distill.es.optim import adam_init, adam_update
from torch_distill.keyed import fold_in, normal, uniform
from torch_distill.nets import FlatMLP

__all__ = ["AGENT", "DDPG_AGENT", "TD3Config", "TD3Nets", "ddpg_config", "td3_act", "td3_networks", "td3_train"]



@dataclass(frozen=True)
class TD3Config(OffPolicyConfig):
    """TD3 hyperparameters. Fields typed ``float | Tensor`` may be ``[M]`` tensors (one value per member).

    The loop settings (``total_timesteps``, ``num_envs``, ``buffer_size``, ``batch_size``, ``learning_starts``,
    ``train_frequency``, ``gradient_steps`` -- critic updates per training phase --, ``metrics_interval``,
    ``log_interval``) are those of :class:`~torch_distill.algorithms.rl.off_policy.OffPolicyConfig`.

    Attributes:
        policy_delay: critic updates per actor + target update.
        lr_actor, lr_critic: Adam learning rates (per member).
        gamma: discount (per member).
        tau: Polyak target averaging (per member).
        exploration_noise: std of the Gaussian exploration noise, fraction of the action half-range (per member).
        policy_noise: std of the target smoothing noise, fraction of the half-range (per member).
        noise_clip: clip of the smoothing noise, fraction of the half-range (per member).
        twin: clipped double-Q with two critics (False: one critic, DDPG).
        hidden: hidden widths of actor and critics.
        activation: hidden activation.
        max_grad_norm: per-member gradient-norm clip (``<= 0`` disables).
        adam_eps: Adam epsilon.
    """

    policy_delay: int = 2
    lr_actor: HParam = 1e-3
    lr_critic: HParam = 1e-3
    gamma: HParam = 0.99
    tau: HParam = 0.005
    exploration_noise: HParam = 0.1
    policy_noise: HParam = 0.2
    noise_clip: HParam = 0.5
    twin: bool = True
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    max_grad_norm: HParam = 0.0
    adam_eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ints(self, ("policy_delay",), "TD3Config.")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))


def ddpg_config(**kwargs: Any) -> TD3Config:
    """A :class:`TD3Config` for DDPG: one critic, no target smoothing, actor updated with every critic update."""
    return TD3Config(**{"twin": False, "policy_noise": 0.0, "noise_clip": 0.0, "policy_delay": 1, **kwargs})


class TD3Nets:
    """Deterministic tanh actor ``[obs, *hidden, A]`` scaled to the action box, and 1 or 2 critics over ``[obs, a]``."""

    def __init__(self, spec: EnvSpec, hidden: tuple[int, ...] = (256, 256), activation: str = "relu", twin: bool = True,
                 device: torch.device | str = "cpu") -> None:
        if spec.discrete:
            raise ValueError(f"{spec.env_id}: TD3/DDPG need a continuous action space")
        if not spec.action_low or not spec.action_high:
            raise ValueError(f"{spec.env_id}: TD3/DDPG need finite action bounds")
        self.spec = spec
        self.actor = FlatMLP([spec.obs_dim, *hidden, spec.action_dim], activation, out_gain=0.01)
        self.critic = FlatMLP([spec.obs_dim + spec.action_dim, *hidden, 1], activation, out_gain=1.0)
        self.n_critics = 2 if twin else 1
        self.low, self.high = spec.action_bounds(device)
        self.scale = (self.high - self.low) / 2
        self.centre = (self.high + self.low) / 2

    def init(self, keys: Tensor) -> tuple[Tensor, Tensor]:
        """``(actor [M, Pa], critics [M, n_critics * Pc])``."""
        a = self.actor.init(fold_in(keys, 31))
        c = torch.cat([self.critic.init(fold_in(keys, 32 + i)) for i in range(self.n_critics)], dim=-1)
        return a, c

    def act(self, actor: Tensor, obs: Tensor) -> Tensor:
        """Deterministic actions ``[*L, B, A]`` inside the action box."""
        return self.centre + self.scale * torch.tanh(self.actor(actor, obs))

    def q(self, critics: Tensor, obs: Tensor, action: Tensor) -> Tensor:
        """``[n_critics, *L, B]`` Q values."""
        x = torch.cat([obs, action], dim=-1)
        return torch.stack([self.critic(c, x).squeeze(-1) for c in torch.chunk(critics, self.n_critics, dim=-1)])


def td3_act(nets: TD3Nets, actor: Tensor, obs: Tensor) -> Tensor:
    """Deterministic actions ``[M, B, A]`` for ``actor [M, Pa]``, ``obs [M, B, obs_dim]``."""
    return nets.act(actor, obs)


def _critic_loss(nets: TD3Nets, critics: Tensor, obs: Tensor, action: Tensor, target: Tensor, weight: Tensor):
    q = nets.q(critics, obs, action)  # [n, b]
    per = (q - target).square().sum(0)
    loss = (per * weight).sum() / weight.sum().clamp_min(1.0)
    return loss, loss.detach()


def _actor_loss(nets: TD3Nets, actor: Tensor, critics: Tensor, obs: Tensor):
    q = nets.q(critics, obs, nets.act(actor, obs))[0]
    loss = -q.mean()
    return loss, loss.detach()


class _TD3Learner:
    """TD3's part of the off-policy loop: uniform random actions during warm-up, then the actor plus Gaussian
    noise; one update = a critic step on the clipped double-Q target, and every ``policy_delay`` updates an actor
    step and Polyak steps of both targets."""

    metric_names = ("critic_loss",)

    def __init__(self, config: TD3Config, nets: TD3Nets, actor: Tensor, critics: Tensor, device: torch.device) -> None:
        m = actor.shape[0]
        self.config, self.nets, self.actor, self.critics = config, nets, actor, critics
        self.actor_t, self.critics_t = actor.clone(), critics.clone()
        self.hp = member_hparams(config, ("lr_actor", "lr_critic", "gamma", "tau", "exploration_noise", "policy_noise",
                                          "noise_clip", "max_grad_norm"), m, device)
        self.col = {k: v.reshape(m, 1, 1) for k, v in self.hp.items()}
        self.opt_a, self.opt_c = adam_init(actor), adam_init(critics)
        self.critic_grad = torch.vmap(grad_and_value(lambda *a: _critic_loss(nets, *a), has_aux=True))
        self.actor_grad = torch.vmap(grad_and_value(lambda *a: _actor_loss(nets, *a), has_aux=True))
        self.last_loss = torch.full((m,), float("nan"), device=device)
        self.updates = 0

    @property
    def params(self) -> Tensor:
        return self.actor

    def explore(self, step: int, key: Tensor, obs: Tensor) -> Tensor:
        nets, n, a = self.nets, obs.shape[1], self.nets.spec.action_dim
        if step < self.config.learning_starts:
            return nets.low + (nets.high - nets.low) * uniform(fold_in(key, 1), (n, a))
        with torch.no_grad():
            noise = self.col["exploration_noise"] * nets.scale * normal(fold_in(key, 2), (n, a))
            action = nets.act(self.actor, obs) + noise
        return torch.maximum(torch.minimum(action, nets.high), nets.low)

    def update(self, key: Tensor, index: int, buffer: ReplayBuffer) -> None:
        nets, hp, col, cfg = self.nets, self.hp, self.col, self.config
        b, a = cfg.batch_size, nets.spec.action_dim
        kg = fold_in(key, 10 + index)
        idx = (uniform(fold_in(kg, 1), (b,)) * buffer.size).long().clamp_max(buffer.size - 1)
        s_obs, s_act, s_rew, s_next, s_term, s_w = buffer.sample(idx)
        with torch.no_grad():
            eps = normal(fold_in(kg, 2), (b, a)) * col["policy_noise"]
            eps = torch.maximum(torch.minimum(eps, col["noise_clip"]), -col["noise_clip"]) * nets.scale
            a_next = torch.maximum(torch.minimum(nets.act(self.actor_t, s_next) + eps, nets.high), nets.low)
            q_next = nets.q(self.critics_t, s_next, a_next).min(0).values  # [M, b]
            target = s_rew + hp["gamma"].unsqueeze(-1) * (1.0 - s_term) * q_next
        gc, (_, loss) = self.critic_grad(self.critics, s_obs, s_act, target, s_w)
        gc = clip_grad_norm(gc, hp["max_grad_norm"])
        delta, self.opt_c = adam_update(gc, self.opt_c, hp["lr_critic"].unsqueeze(-1), eps=cfg.adam_eps)
        self.critics = self.critics - delta
        self.last_loss = loss
        self.updates += 1
        if self.updates % cfg.policy_delay == 0:
            ga, _ = self.actor_grad(self.actor, self.critics, s_obs)
            ga = clip_grad_norm(ga, hp["max_grad_norm"])
            delta, self.opt_a = adam_update(ga, self.opt_a, hp["lr_actor"].unsqueeze(-1), eps=cfg.adam_eps)
            self.actor = self.actor - delta
            tau = hp["tau"].unsqueeze(-1)
            self.actor_t = self.actor_t + tau * (self.actor - self.actor_t)
            self.critics_t = self.critics_t + tau * (self.critics - self.critics_t)

    def metrics(self) -> tuple[Tensor, ...]:
        return (self.last_loss,)

    def log(self) -> dict[str, float]:
        return {"critic_loss": float(self.last_loss.nanmean())}


def td3_train(config: TD3Config, env: FunctionalEnv, env_params: Any, generator: torch.Generator,
              num_members: int, keys: Tensor | None = None, init_params: Tensor | None = None,
              callback: Callback | None = None, logger: Logger | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Train ``M = num_members`` TD3 (or DDPG) agents at once on ``M * num_envs`` rows of ``env`` (bounded
    continuous actions), as :class:`~torch_distill.algorithms.rl.agent.TrainFn` describes; the parameters (returned,
    passed to the callback, ``init_params``) are the actor's ``[M, Pa]``, the critics start from ``keys``.

    Returns:
        ``(actor params [M, Pa], metrics)``; act with :func:`td3_act` on :func:`td3_networks`. Metrics ``[R, M]``
        every ``metrics_interval`` env steps: ``episode_return``, ``episode_length``, ``critic_loss``;
        ``env_steps [R]``.
    """
    nets = td3_networks(env.spec, config, generator.device)
    _, dev, keys = member_setup(num_members, keys, generator)
    actor, critics = nets.init(keys)
    actor = initial_params(lambda _: actor, keys, init_params, nets.actor.num_params)
    learner = _TD3Learner(config, nets, actor, critics, dev)
    metrics = off_policy_train(config, learner, env, env_params, generator, keys, (env.spec.action_dim,),
                               torch.float32, callback, logger)
    return learner.actor, metrics


# ---------------------------------------------------------------------------------------------------- registry entries
_NOISE = [0.1, 0.3, 0.5, 0.7, 0.9]
HPARAM_SPACE: dict[str, list[float]] = {"lr_actor": REFERENCE_LR, "gamma": REFERENCE_GAMMA, "tau": REFERENCE_TAU,
                                        "exploration_noise": _NOISE, "policy_noise": _NOISE,
                                        "noise_clip": [0.1, 0.4, 0.7, 1.0, 1.3]}
"""The SCB reference's TD3 lists (``tau`` is the step towards the online net, the reference lists the keep-rate
``1 - tau``; noise scales are fractions of the action half-range)."""
DDPG_HPARAM_SPACE: dict[str, list[float]] = {"lr_actor": REFERENCE_LR, "gamma": REFERENCE_GAMMA, "tau": REFERENCE_TAU,
                                             "exploration_noise": _NOISE}
"""The SCB reference's DDPG lists."""


def td3_networks(spec: EnvSpec, config: TD3Config, device: torch.device | str = "cpu") -> TD3Nets:
    """The :class:`TD3Nets` that :func:`td3_train` builds for ``config``."""
    return TD3Nets(spec, config.hidden, config.activation, config.twin, device)


def _inner_kwargs(inner_steps: int, hidden: tuple[int, ...], activation: str) -> dict[str, Any]:
    """TD3/DDPG for SCB searches: 1 env, batch 100, 1000 warm-up steps (or a tenth of the budget), gradient clip 10."""
    return dict(total_timesteps=inner_steps, num_envs=1, batch_size=100, learning_starts=min(1000, inner_steps // 10),
                max_grad_norm=10.0, hidden=hidden, activation=activation, metrics_interval=max(1, inner_steps))


def _td3_inner_config(spec: EnvSpec, inner_steps: int, hidden: tuple[int, ...], activation: str,
                      options: InnerOptions) -> TD3Config:
    return TD3Config(buffer_size=10_000, **_inner_kwargs(inner_steps, hidden, activation))


def _ddpg_inner_config(spec: EnvSpec, inner_steps: int, hidden: tuple[int, ...], activation: str,
                       options: InnerOptions) -> TD3Config:
    return ddpg_config(buffer_size=2000, **_inner_kwargs(inner_steps, hidden, activation))


AGENT = Agent("td3", "TD3", ("continuous",), _td3_inner_config, td3_networks, td3_train, td3_act, None,
              lambda spec, config, options: dict(HPARAM_SPACE))
"""TD3's registry entry (:data:`torch_distill.algorithms.rl.AGENTS`); its actor is deterministic."""
DDPG_AGENT = Agent("ddpg", "DDPG", ("continuous",), _ddpg_inner_config, td3_networks, td3_train, td3_act, None,
                   lambda spec, config, options: dict(DDPG_HPARAM_SPACE))
"""DDPG's registry entry: TD3 with one critic, no target smoothing and no policy delay (:func:`ddpg_config`)."""
