"""TD3 and DDPG for a population: ``M`` independent continuous-control agents trained at once.

TD3 (Fujimoto et al. 2018): deterministic actor, twin critics with the clipped double-Q target
``y = r + gamma (1 - terminated) min_i Q'_i(s', clip(pi'(s') + clip(eps, -c, c), low, high))``, target policy
smoothing noise ``eps ~ N(0, policy_noise^2)``, delayed actor and target updates (every ``policy_delay`` critic
updates), Polyak target averaging with ``tau``, Gaussian exploration noise, uniform random actions for the first
``learning_starts`` steps. DDPG (Lillicrap et al. 2016) is the special case ``twin=False, policy_noise=0,
policy_delay=1`` (:func:`ddpg_config`). Noise scales are fractions of the action half-range.

Population layout as in :mod:`torch_distill.algorithms.rl_common`: actor ``[M, Pa]`` and twin critics
``[M, 2 Pc]`` flat parameters, functional Adam, replay buffer tensors ``[M, capacity, ...]``, per-member
hyperparameters ``[M]``, per-member keys; no Python loop over members, no host sync in the loop.

Truncation: the functional env does not return the pre-reset observation, so truncated-but-not-terminated
transitions are stored with weight 0 (never learned from), as in :mod:`torch_distill.algorithms.dqn`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.func import grad_and_value

from torch_distill.algorithms.rl_common import (
    EpisodeTracker,
    FlatMLP,
    ReplayBuffer,
    check_ints,
    clip_grad_norm,
    fold_in,
    make_keys,
    member_tensor,
    normal,
    uniform,
)
from torch_distill.envs.core import EnvSpec, FunctionalEnv
from torch_distill.es.optim import adam_init, adam_update

__all__ = ["TD3Config", "ddpg_config", "TD3Nets", "td3_train", "td3_act"]

HParam = float | Tensor


@dataclass(frozen=True)
class TD3Config:
    """TD3 hyperparameters. Fields typed ``float | Tensor`` may be ``[M]`` tensors (one value per member).

    Attributes:
        total_timesteps: env steps per member (rounded down to a multiple of ``num_envs``).
        num_envs: envs per member (one iteration = one step of each).
        buffer_size: replay capacity per member.
        batch_size: replay minibatch per gradient step.
        learning_starts: env steps per member with uniform random actions before learning.
        gradient_steps: critic updates per iteration.
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
        metrics_interval: env steps per member between recorded metrics.
        log_interval: call ``logger`` every this many metric records (0: never).
    """

    total_timesteps: int = 20_000
    num_envs: int = 1
    buffer_size: int = 100_000
    batch_size: int = 256
    learning_starts: int = 1_000
    gradient_steps: int = 1
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
    metrics_interval: int = 1_000
    log_interval: int = 0

    def __post_init__(self) -> None:
        check_ints(self, ("num_envs", "batch_size", "gradient_steps", "policy_delay", "metrics_interval"), "TD3Config.")
        if self.buffer_size < self.num_envs or self.total_timesteps < self.num_envs:
            raise ValueError(f"TD3Config: buffer_size={self.buffer_size} and total_timesteps={self.total_timesteps} "
                             f"must be >= num_envs={self.num_envs}")
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
        self.low = torch.tensor(spec.action_low, dtype=torch.float32, device=device)
        self.high = torch.tensor(spec.action_high, dtype=torch.float32, device=device)
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


def td3_train(
    config: TD3Config,
    env: FunctionalEnv,
    env_params: Any,
    generator: torch.Generator,
    num_members: int,
    keys: Tensor | None = None,
    logger: Callable[[dict[str, float]], None] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Train ``M = num_members`` TD3 (or DDPG) agents at once on ``M * num_envs`` rows of ``env``.

    Returns:
        ``(actor params [M, Pa], metrics)``; act with ``td3_act(TD3Nets(env.spec, config.hidden,
        config.activation, config.twin), params, obs)``. Metrics ``[R, M]`` every ``metrics_interval`` env steps:
        ``episode_return``, ``episode_length``, ``critic_loss``; ``env_steps [R]``.
    """
    spec = env.spec
    dev = generator.device
    M, n = int(num_members), config.num_envs
    if M < 1:
        raise ValueError(f"num_members={num_members!r}: expected a positive int")
    nets = TD3Nets(spec, config.hidden, config.activation, config.twin, dev)
    if keys is None:
        keys = make_keys(torch.randint(0, 2**31 - 1, (), generator=generator, device=dev), M, dev)
    if keys.shape != (M,):
        raise ValueError(f"keys shape {tuple(keys.shape)}: expected ({M},)")
    actor, critics = nets.init(keys)
    actor_t, critics_t = actor.clone(), critics.clone()
    hp = {k: member_tensor(getattr(config, k), M, dev, f"TD3Config.{k}") for k in
          ("lr_actor", "lr_critic", "gamma", "tau", "exploration_noise", "policy_noise", "noise_clip", "max_grad_norm")}
    col = {k: v.reshape(M, 1, 1) for k, v in hp.items()}
    opt_a, opt_c = adam_init(actor), adam_init(critics)
    critic_grad = torch.vmap(grad_and_value(lambda *a: _critic_loss(nets, *a), has_aux=True))
    actor_grad = torch.vmap(grad_and_value(lambda *a: _actor_loss(nets, *a), has_aux=True))

    cap = (config.buffer_size // n) * n
    d, A = spec.obs_dim, spec.action_dim
    buf = ReplayBuffer(M, cap, d, (A,), torch.float32, dev)

    state, obs = env.reset(M * n, generator, env_params)
    tracker = EpisodeTracker(M, n, dev)
    num_iter = config.total_timesteps // n
    rec_every = max(1, config.metrics_interval // n)
    hist: dict[str, list[Tensor]] = {k: [] for k in ("episode_return", "episode_length", "critic_loss")}
    steps_rec: list[int] = []
    last_loss = torch.full((M,), float("nan"), device=dev)
    updates = 0
    gamma, tau = hp["gamma"].unsqueeze(-1), hp["tau"].unsqueeze(-1)

    for it in range(num_iter):
        step = it * n
        k = fold_in(keys, it)
        o = obs.reshape(M, n, d)
        if step < config.learning_starts:
            action = nets.low + (nets.high - nets.low) * uniform(fold_in(k, 1), (n, A))
        else:
            with torch.no_grad():
                action = nets.act(actor, o) + col["exploration_noise"] * nets.scale * normal(fold_in(k, 2), (n, A))
            action = torch.maximum(torch.minimum(action, nets.high), nets.low)
        state, obs, reward, term, trunc = env.step(state, action.reshape(M * n, A), generator, env_params)
        reward, term, trunc = reward.reshape(M, n), term.reshape(M, n), trunc.reshape(M, n)
        tracker.update(reward, term | trunc)
        buf.add(o, obs.reshape(M, n, d), action, reward, term, trunc)

        if step + n > config.learning_starts:
            for g in range(config.gradient_steps):
                kg = fold_in(k, 10 + g)
                idx = (uniform(fold_in(kg, 1), (config.batch_size,)) * buf.size).long().clamp_max(buf.size - 1)
                s_obs, s_act, s_rew, s_next, s_term, s_w = buf.sample(idx)
                with torch.no_grad():
                    eps = normal(fold_in(kg, 2), (config.batch_size, A)) * col["policy_noise"]
                    eps = torch.maximum(torch.minimum(eps, col["noise_clip"]), -col["noise_clip"]) * nets.scale
                    a_next = torch.maximum(torch.minimum(nets.act(actor_t, s_next) + eps, nets.high), nets.low)
                    q_next = nets.q(critics_t, s_next, a_next).min(0).values  # [M, b]
                    target = s_rew + gamma * (1.0 - s_term) * q_next
                gc, (_, loss) = critic_grad(critics, s_obs, s_act, target, s_w)
                gc = clip_grad_norm(gc, hp["max_grad_norm"])
                delta, opt_c = adam_update(gc, opt_c, hp["lr_critic"].unsqueeze(-1))
                critics = critics - delta
                last_loss = loss
                updates += 1
                if updates % config.policy_delay == 0:
                    ga, _ = actor_grad(actor, critics, s_obs)
                    ga = clip_grad_norm(ga, hp["max_grad_norm"])
                    delta, opt_a = adam_update(ga, opt_a, hp["lr_actor"].unsqueeze(-1))
                    actor = actor - delta
                    actor_t = actor_t + tau * (actor - actor_t)
                    critics_t = critics_t + tau * (critics - critics_t)

        if (it + 1) % rec_every == 0:
            ep_ret, ep_len = tracker.window_mean()
            tracker.reset_window()
            for name, v in zip(("episode_return", "episode_length", "critic_loss"), (ep_ret, ep_len, last_loss)):
                hist[name].append(v)
            steps_rec.append((it + 1) * n)
            if logger is not None and config.log_interval > 0 and len(steps_rec) % config.log_interval == 0:
                logger({"env_steps": (it + 1) * n, "episode_return": float(ep_ret.nanmean()),
                        "critic_loss": float(last_loss.nanmean())})
    metrics = {k: (torch.stack(v) if v else torch.zeros(0, M, device=dev)) for k, v in hist.items()}
    metrics["env_steps"] = torch.tensor(steps_rec, dtype=torch.int64, device=dev)
    return actor, metrics
