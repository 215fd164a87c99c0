"""Soft actor-critic (SAC) for a population: ``M`` independent agents trained at once, discrete or continuous actions.

Continuous actions (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications"; CleanRL
``sac_continuous_action``): a squashed Gaussian actor ``a = centre + scale * tanh(u)``, ``u ~ N(mu(s), sigma(s)^2)``
with ``log sigma`` squashed into ``[-5, 2]``, log-probability with the change-of-variables correction
``log pi(a|s) = log N(u) - sum log(scale * (1 - tanh(u)^2))`` (computed as ``2 (log 2 - u - softplus(-2u))``);
twin critics ``Q_i(s, a)`` over ``[obs, action]`` with Polyak-averaged targets and the soft clipped double-Q target
``y = r + gamma (1 - terminated) (min_i Q'_i(s', a') - alpha log pi(a'|s'))``, ``a' ~ pi(.|s')``; the actor minimises
``E[alpha log pi(a|s) - min_i Q_i(s, a)]`` with reparameterised samples. Target entropy ``-action_dim``.

Discrete actions (Christodoulou 2019, "Soft Actor-Critic for Discrete Action Settings"; CleanRL ``sac_atari``): a
categorical actor, twin critics outputting one value per action, and exact expectations over the policy's
probabilities instead of samples: ``V(s') = sum_a pi(a|s') (min_i Q'_i(s', a) - alpha log pi(a|s'))`` in the target and
``sum_a pi(a|s) (alpha log pi(a|s) - min_i Q_i(s, a))`` as the actor loss. Target entropy
``target_entropy_scale * log(n_actions)`` (CleanRL's 0.89 of the maximum entropy).

Temperature (``autotune``): ``log alpha`` is learned with Adam on ``-log alpha (log pi + target_entropy)`` (SB3 /
softlearning; its gradient is ``H(pi) - target_entropy`` with ``H`` the batch entropy estimate), and kept in
``[-20, 10]`` as a guard against overflow with extreme learning rates.

One iteration = one step of the ``num_envs`` envs of every member followed (after ``learning_starts``) by
``gradient_steps`` updates, each: critic step, actor step with the updated critics, temperature step, and every
``target_update_interval`` updates a Polyak step ``target <- target + tau (online - target)`` (``tau`` is the step
towards the online net, this library's convention). Uniform random actions before ``learning_starts``; afterwards
actions are sampled from the policy. Greedy evaluation (:func:`sac_act`) uses ``argmax`` logits / ``tanh(mean)``.

The training loop is :func:`~torch_distill.algorithms.rl.off_policy.off_policy_train` (replay buffer tensors
``[M, capacity, ...]``, env batch ``[M * num_envs]`` rows member-major, time limits bootstrapped from the observation
before the auto-reset); this module adds the policy's exploration and the update. Actor ``[M, Pa]`` and twin critics
``[M, 2 Pc]`` flat parameters, ``log alpha [M]``, functional Adam, per-member hyperparameters ``[M]``, per-member
keys (an ``M``-member run equals ``M`` single-member runs with the same keys). No Python loop over members, no host
sync in the loop.
"""

from __future__ import annotations

import math
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
    member_tensor,
)
from torch_distill.algorithms.rl.off_policy import OffPolicyConfig, off_policy_train
from torch_distill.algorithms.rl.replay import ReplayBuffer
from torch_distill.envs.core import EnvSpec, FunctionalEnv
from torch_distill.es.optim import adam_init, adam_update
from torch_distill.keyed import fold_in, gumbel, gumbel_from_uniform, normal, randint, uniform
from torch_distill.nets import FlatMLP

__all__ = ["AGENT", "SACConfig", "SACNets", "sac_act", "sac_networks", "sac_sample", "sac_train"]


LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
"""Range of the Gaussian actor's ``log sigma`` (CleanRL / SpinningUp squash it with ``tanh`` into this range)."""
LOG_ALPHA_MIN, LOG_ALPHA_MAX = -20.0, 10.0
"""Range of the learned ``log alpha`` (an overflow guard; not reached in normal training)."""


def _check_range(name: str, value: HParam, low: float, high: float, low_open: bool = False) -> None:
    """Raise if ``value`` (a number or a tensor, checked elementwise; NaN fails) is outside ``[low, high]``."""
    t = torch.as_tensor(value, dtype=torch.float32)
    ok = (t > low) if low_open else (t >= low)
    ok = ok & (t <= high)
    if not bool(torch.all(ok)):
        lo = "(" if low_open else "["
        shown = value if not isinstance(value, Tensor) else value.tolist()
        raise ValueError(f"SACConfig.{name}={shown!r}: expected values in {lo}{low}, {high}]")


@dataclass(frozen=True)
class SACConfig(OffPolicyConfig):
    """SAC hyperparameters. Fields typed ``float | Tensor`` may be ``[M]`` tensors (one value per member).

    The loop settings (``total_timesteps``, ``num_envs``, ``buffer_size``, ``batch_size``, ``learning_starts``,
    ``train_frequency``, ``gradient_steps`` -- updates of critic, actor and temperature per training phase --,
    ``metrics_interval``, ``log_interval``) are those of :class:`~torch_distill.algorithms.rl.off_policy.OffPolicyConfig`.

    Attributes:
        target_update_interval: updates between Polyak target steps (1: every update, as CleanRL's continuous SAC).
        lr_actor, lr_critic, lr_alpha: Adam learning rates (per member).
        gamma: discount (per member).
        tau: Polyak target step towards the online critics (per member; 1 = hard copy).
        alpha: entropy temperature: the initial value when ``autotune``, else fixed (per member, >= 0).
        autotune: learn ``log alpha`` towards the target entropy.
        target_entropy_scale: discrete actions: target entropy = ``scale * log(n_actions)`` (per member; CleanRL's
            discrete SAC uses 0.89). Not used for continuous actions.
        target_entropy: explicit target entropy overriding the default (``-action_dim`` for continuous actions,
            ``target_entropy_scale * log(n_actions)`` for discrete ones); ``None``: the default.
        hidden: hidden widths of actor and critics.
        activation: hidden activation.
        max_grad_norm: per-member gradient-norm clip of actor and critic gradients (``<= 0`` disables). The default
            10 keeps extreme settings (``lr = 1e-2``, ``gamma = 1``) finite.
        adam_eps: Adam epsilon (CleanRL's discrete SAC uses 1e-4).
    """

    target_update_interval: int = 1
    lr_actor: HParam = 3e-4
    lr_critic: HParam = 1e-3
    lr_alpha: HParam = 1e-3
    gamma: HParam = 0.99
    tau: HParam = 0.005
    alpha: HParam = 0.2
    autotune: bool = True
    target_entropy_scale: HParam = 0.89
    target_entropy: HParam | None = None
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    max_grad_norm: HParam = 10.0
    adam_eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ints(self, ("target_update_interval",), "SACConfig.")
        for name in ("lr_actor", "lr_critic", "lr_alpha"):
            _check_range(name, getattr(self, name), 0.0, math.inf)
        _check_range("gamma", self.gamma, 0.0, 1.0)
        _check_range("tau", self.tau, 0.0, 1.0)
        _check_range("alpha", self.alpha, 0.0, math.inf, low_open=self.autotune)
        _check_range("target_entropy_scale", self.target_entropy_scale, 0.0, 1.0)
        if self.target_entropy is not None:
            _check_range("target_entropy", self.target_entropy, -math.inf, math.inf)
        _check_range("max_grad_norm", self.max_grad_norm, -math.inf, math.inf)
        if not self.adam_eps > 0:
            raise ValueError(f"SACConfig.adam_eps={self.adam_eps!r}: expected a positive float")
        hidden = tuple(self.hidden)
        if any(isinstance(h, bool) or int(h) != h or h < 1 for h in hidden):
            raise ValueError(f"SACConfig.hidden={self.hidden!r}: expected positive int widths")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))


class SACNets:
    """SAC actor and twin critics as :class:`~torch_distill.nets.FlatMLP` s.

    Continuous actions: actor ``[obs, *hidden, 2 A]`` (Gaussian mean and pre-squash ``log sigma``), critics
    ``[obs + A, *hidden, 1]``. Discrete actions: actor ``[obs, *hidden, n]`` logits, critics ``[obs, *hidden, n]``
    (one Q value per action). Orthogonal init; the actor's last layer has gain 0.01 (near-uniform initial policy).
    """

    n_critics = 2

    def __init__(self, spec: EnvSpec, hidden: tuple[int, ...] = (256, 256), activation: str = "relu",
                 device: torch.device | str = "cpu") -> None:
        if len(spec.obs_shape) != 1:
            raise ValueError(f"{spec.env_id}: SAC needs vector observations, got obs_shape {spec.obs_shape}")
        self.spec = spec
        self.discrete = bool(spec.discrete)
        d = spec.obs_dim
        if self.discrete:
            if spec.n_actions < 2:
                raise ValueError(f"{spec.env_id}: discrete SAC needs >= 2 actions, got n_actions={spec.n_actions}")
            self.actor = FlatMLP([d, *hidden, spec.n_actions], activation, out_gain=0.01)
            self.critic = FlatMLP([d, *hidden, spec.n_actions], activation, out_gain=1.0)
        else:
            if spec.action_dim < 1 or len(spec.action_low) != spec.action_dim or len(spec.action_high) != spec.action_dim:
                raise ValueError(f"{spec.env_id}: continuous SAC needs finite action bounds of length action_dim="
                                 f"{spec.action_dim}, got low={spec.action_low} high={spec.action_high}")
            if not all(math.isfinite(lo) and math.isfinite(hi) and hi > lo
                       for lo, hi in zip(spec.action_low, spec.action_high)):
                raise ValueError(f"{spec.env_id}: continuous SAC needs finite bounds with high > low, got "
                                 f"low={spec.action_low} high={spec.action_high}")
            a = spec.action_dim
            self.actor = FlatMLP([d, *hidden, 2 * a], activation, out_gain=0.01)
            self.critic = FlatMLP([d + a, *hidden, 1], activation, out_gain=1.0)
            self.low, self.high = spec.action_bounds(device)
            self.scale = (self.high - self.low) / 2
            self.centre = (self.high + self.low) / 2
            self.log_scale_sum = float(torch.log(self.scale).sum())

    def init(self, keys: Tensor) -> tuple[Tensor, Tensor]:
        """``(actor [M, Pa], critics [M, 2 Pc])`` from per-member ``keys [M]``."""
        a = self.actor.init(fold_in(keys, 41))
        c = torch.cat([self.critic.init(fold_in(keys, 42 + i)) for i in range(self.n_critics)], dim=-1)
        return a, c

    # ------------------------------------------------------------------ actor
    def gaussian(self, actor: Tensor, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Continuous: ``(mean, log_std)``, both ``[*L, B, A]`` (``log_std`` in ``[-5, 2]``)."""
        out = self.actor(actor, obs)
        mean, pre = torch.chunk(out, 2, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(pre) + 1.0)
        return mean, log_std

    def sample(self, actor: Tensor, obs: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        """Continuous: reparameterised ``(action [*L, B, A] in the box, log pi(action|obs) [*L, B])``, ``noise ~ N(0, I)``."""
        mean, log_std = self.gaussian(actor, obs)
        u = mean + torch.exp(log_std) * noise
        action = self.centre + self.scale * torch.tanh(u)
        log_n = (-0.5 * noise.square() - log_std).sum(-1) - 0.5 * math.log(2 * math.pi) * noise.shape[-1]
        # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|
        log_det = (2.0 * (math.log(2.0) - u - torch.nn.functional.softplus(-2.0 * u))).sum(-1) + self.log_scale_sum
        return action, log_n - log_det

    def log_probs(self, actor: Tensor, obs: Tensor) -> Tensor:
        """Discrete: ``log pi(.|obs)`` ``[*L, B, n]``."""
        return torch.log_softmax(self.actor(actor, obs), dim=-1)

    def act(self, actor: Tensor, obs: Tensor) -> Tensor:
        """Deterministic actions: ``argmax`` logits ``[*L, B]`` int64, or ``centre + scale tanh(mean)`` ``[*L, B, A]``."""
        if self.discrete:
            return self.actor(actor, obs).argmax(-1)
        mean, _ = self.gaussian(actor, obs)
        return self.centre + self.scale * torch.tanh(mean)

    # ------------------------------------------------------------------ critics
    def q(self, critics: Tensor, obs: Tensor, action: Tensor | None = None) -> Tensor:
        """Continuous: ``Q_i(obs, action)`` ``[2, *L, B]``; discrete (``action=None``): ``Q_i(obs, .)`` ``[2, *L, B, n]``."""
        x = obs if self.discrete else torch.cat([obs, action], dim=-1)
        outs = [self.critic(c, x) for c in torch.chunk(critics, self.n_critics, dim=-1)]
        return torch.stack(outs if self.discrete else [o.squeeze(-1) for o in outs])


def sac_act(nets: SACNets, actor: Tensor, obs: Tensor) -> Tensor:
    """Deterministic actions for greedy evaluation: ``actor [M, Pa]``, ``obs [M, B, obs_dim]`` -> ``[M, B]`` int64
    (discrete, ``argmax`` of the logits) or ``[M, B, A]`` (continuous, ``tanh(mean)`` rescaled to the action box)."""
    return nets.act(actor, obs)


def sac_sample(nets: SACNets, actor: Tensor, obs: Tensor, generator: torch.Generator) -> Tensor:
    """Actions sampled from the policy with noise from ``generator`` (one ``[B, ...]`` draw per call shared by the
    ``M`` members: common random numbers). ``actor [M, Pa]``, ``obs [M, B, obs_dim]``."""
    if nets.discrete:
        logits = nets.actor(actor, obs)
        u = torch.rand(logits.shape[-2:], generator=generator, device=logits.device).clamp_(1e-12, 1.0 - 1e-7)
        return (logits + gumbel_from_uniform(u)).argmax(-1)
    noise = torch.randn((obs.shape[-2], nets.spec.action_dim), generator=generator, device=obs.device)
    return nets.sample(actor, obs, noise.expand(*obs.shape[:-1], -1))[0]


# ---------------------------------------------------------------------------------------------------- losses (one member; vmapped)
def _critic_loss(nets: SACNets, critics: Tensor, obs: Tensor, action: Tensor, target: Tensor, weight: Tensor):
    """Sum over the twin critics of the weighted mean squared TD error (``obs [b, d]``, ``target``/``weight [b]``)."""
    if nets.discrete:
        q = nets.q(critics, obs)  # [2, b, n]
        q = torch.take_along_dim(q, action.reshape(1, -1, 1), dim=-1).squeeze(-1)
    else:
        q = nets.q(critics, obs, action)  # [2, b]
    per = (q - target).square().sum(0)
    loss = (per * weight).sum() / weight.sum().clamp_min(1.0)
    return loss, loss.detach()


def _actor_loss(nets: SACNets, actor: Tensor, critics: Tensor, obs: Tensor, noise: Tensor, alpha: Tensor):
    """``E[alpha log pi - min_i Q_i]`` (discrete: exact expectation over ``pi``); aux ``(loss, entropy estimate)``."""
    if nets.discrete:
        logp = nets.log_probs(actor, obs)  # [b, n]
        p = logp.exp()
        q = nets.q(critics, obs).min(0).values  # [b, n]
        loss = (p * (alpha * logp - q)).sum(-1).mean()
        entropy = -(p * logp).sum(-1).mean()
    else:
        action, logp = nets.sample(actor, obs, noise)
        q = nets.q(critics, obs, action).min(0).values  # [b]
        loss = (alpha * logp - q).mean()
        entropy = -logp.mean()
    return loss, (loss.detach(), entropy.detach())


# ---------------------------------------------------------------------------------------------------- training
class _SACLearner:
    """SAC's part of the off-policy loop: uniform random actions during warm-up, then policy samples; one update =
    critic step, actor step with the updated critics, temperature step, Polyak target step every
    ``target_update_interval`` updates."""

    metric_names = ("critic_loss", "actor_loss", "entropy", "alpha")

    def __init__(self, config: SACConfig, nets: SACNets, actor: Tensor, critics: Tensor, device: torch.device) -> None:
        m, spec = actor.shape[0], nets.spec
        self.config, self.nets, self.actor, self.critics = config, nets, actor, critics
        self.critics_t = critics.clone()
        hp = member_hparams(config, ("lr_actor", "lr_critic", "lr_alpha", "gamma", "tau", "alpha",
                                     "target_entropy_scale", "max_grad_norm"), m, device)
        self.hp = hp
        if config.target_entropy is not None:
            self.target_entropy = member_tensor(config.target_entropy, m, device, "SACConfig.target_entropy")
        elif nets.discrete:
            self.target_entropy = hp["target_entropy_scale"] * math.log(spec.n_actions)
        else:
            self.target_entropy = torch.full((m,), -float(spec.action_dim), device=device)
        self.log_alpha = torch.log(hp["alpha"])
        if config.autotune:
            self.log_alpha = self.log_alpha.clamp(LOG_ALPHA_MIN, LOG_ALPHA_MAX)
        self.opt_a, self.opt_c, self.opt_al = adam_init(actor), adam_init(critics), adam_init(self.log_alpha)
        self.critic_grad = torch.vmap(grad_and_value(lambda *a: _critic_loss(nets, *a), has_aux=True))
        self.actor_grad = torch.vmap(grad_and_value(lambda *a: _actor_loss(nets, *a), has_aux=True))
        self.action_dim = 0 if nets.discrete else spec.action_dim
        self.no_noise = torch.zeros(m, config.batch_size, 1, device=device)  # the discrete actor loss takes no noise
        self.last_closs = torch.full((m,), float("nan"), device=device)
        self.last_aloss, self.last_entropy = self.last_closs.clone(), self.last_closs.clone()
        self.updates = 0

    @property
    def params(self) -> Tensor:
        return self.actor

    def explore(self, step: int, key: Tensor, obs: Tensor) -> Tensor:
        nets, n, a = self.nets, obs.shape[1], self.action_dim
        if step < self.config.learning_starts:
            if nets.discrete:
                return randint(fold_in(key, 1), nets.spec.n_actions, (n,))
            return nets.low + (nets.high - nets.low) * uniform(fold_in(key, 1), (n, a))
        with torch.no_grad():
            if nets.discrete:
                logits = nets.actor(self.actor, obs)
                return (logits + gumbel(fold_in(key, 2), (n, nets.spec.n_actions))).argmax(-1)
            return nets.sample(self.actor, obs, normal(fold_in(key, 2), (n, a)))[0]

    def update(self, key: Tensor, index: int, buffer: ReplayBuffer) -> None:
        nets, hp, cfg, b, a = self.nets, self.hp, self.config, self.config.batch_size, self.action_dim
        m = self.actor.shape[0]
        kg = fold_in(key, 10 + index)
        idx = randint(fold_in(kg, 1), buffer.size, (b,))  # [M, b]
        s_obs, s_act, s_rew, s_next, s_term, s_w = buffer.sample(idx)
        alpha = self.log_alpha.exp()  # [M]
        with torch.no_grad():
            if nets.discrete:
                logp_next = nets.log_probs(self.actor, s_next)  # [M, b, n]
                q_next = nets.q(self.critics_t, s_next).min(0).values
                v_next = (logp_next.exp() * (q_next - alpha.reshape(m, 1, 1) * logp_next)).sum(-1)
            else:
                a_next, logp_next = nets.sample(self.actor, s_next, normal(fold_in(kg, 2), (b, a)))
                v_next = nets.q(self.critics_t, s_next, a_next).min(0).values - alpha.unsqueeze(-1) * logp_next
            target = s_rew + hp["gamma"].unsqueeze(-1) * (1.0 - s_term) * v_next  # [M, b]
        gc, (_, closs) = self.critic_grad(self.critics, s_obs, s_act, target, s_w)
        gc = clip_grad_norm(gc, hp["max_grad_norm"])
        delta, self.opt_c = adam_update(gc, self.opt_c, hp["lr_critic"].unsqueeze(-1), eps=cfg.adam_eps)
        self.critics = self.critics - delta

        noise = self.no_noise if nets.discrete else normal(fold_in(kg, 3), (b, a))
        ga, (_, (aloss, entropy)) = self.actor_grad(self.actor, self.critics, s_obs, noise, alpha)
        ga = clip_grad_norm(ga, hp["max_grad_norm"])
        delta, self.opt_a = adam_update(ga, self.opt_a, hp["lr_actor"].unsqueeze(-1), eps=cfg.adam_eps)
        self.actor = self.actor - delta

        if cfg.autotune:  # d/dlog_alpha of -log_alpha (log pi + H_target) = H(pi) - H_target
            grad_alpha = entropy - self.target_entropy
            delta, self.opt_al = adam_update(grad_alpha, self.opt_al, hp["lr_alpha"], eps=cfg.adam_eps)
            self.log_alpha = (self.log_alpha - delta).clamp(LOG_ALPHA_MIN, LOG_ALPHA_MAX)

        self.updates += 1
        if self.updates % cfg.target_update_interval == 0:
            self.critics_t = self.critics_t + hp["tau"].unsqueeze(-1) * (self.critics - self.critics_t)
        self.last_closs, self.last_aloss, self.last_entropy = closs, aloss, entropy

    def metrics(self) -> tuple[Tensor, ...]:
        return self.last_closs, self.last_aloss, self.last_entropy, self.log_alpha.exp()

    def log(self) -> dict[str, float]:
        return {"critic_loss": float(self.last_closs.nanmean()), "actor_loss": float(self.last_aloss.nanmean()),
                "entropy": float(self.last_entropy.nanmean()), "alpha": float(self.log_alpha.exp().mean())}


def sac_train(config: SACConfig, env: FunctionalEnv, env_params: Any, generator: torch.Generator,
              num_members: int, keys: Tensor | None = None, init_params: Tensor | None = None,
              callback: Callback | None = None, logger: Logger | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Train ``M = num_members`` SAC agents at once on ``M * num_envs`` rows of ``env`` (discrete or continuous
    actions), as :class:`~torch_distill.algorithms.rl.agent.TrainFn` describes; the parameters (returned, passed to
    the callback, ``init_params``) are the actor's ``[M, Pa]``, the critics start from ``keys``.

    Returns:
        ``(actor params [M, Pa], metrics)``; act with :func:`sac_act` on :func:`sac_networks`. Metrics ``[R, M]``
        every ``metrics_interval`` env steps (no host sync): ``episode_return``, ``episode_length`` (mean of the
        episodes completed in the window, NaN if none), ``critic_loss``, ``actor_loss``, ``entropy`` (last update,
        NaN before learning starts), ``alpha``; ``env_steps [R]``.
    """
    nets = sac_networks(env.spec, config, generator.device)
    _, dev, keys = member_setup(num_members, keys, generator)
    actor, critics = nets.init(keys)
    actor = initial_params(lambda _: actor, keys, init_params, nets.actor.num_params)
    learner = _SACLearner(config, nets, actor, critics, dev)
    action_shape, dtype = ((), torch.int64) if nets.discrete else ((env.spec.action_dim,), torch.float32)
    metrics = off_policy_train(config, learner, env, env_params, generator, keys, action_shape, dtype, callback, logger)
    return learner.actor, metrics


# ---------------------------------------------------------------------------------------------------- registry entry
HPARAM_SPACE: dict[str, list[float]] = {"lr_actor": REFERENCE_LR, "gamma": REFERENCE_GAMMA, "tau": REFERENCE_TAU}
"""The SCB reference's SAC lists (one sampled learning rate for actor, critics and temperature)."""
HPARAM_SPACE_DISCRETE: dict[str, list[float]] = {**HPARAM_SPACE, "target_entropy_scale": [0.1, 0.3, 0.5, 0.7, 0.9]}
"""Discrete SAC also samples the target-entropy ratio (its target is ``ratio * log n_actions``)."""


def sac_networks(spec: EnvSpec, config: SACConfig, device: torch.device | str = "cpu") -> SACNets:
    """The :class:`SACNets` that :func:`sac_train` builds for ``config``."""
    return SACNets(spec, config.hidden, config.activation, device)


def _inner_config(spec: EnvSpec, inner_steps: int, hidden: tuple[int, ...], activation: str,
                  options: InnerOptions) -> SACConfig:
    """SAC for SCB searches: 5 envs, buffer 2000, batch 256, 1000 warm-up steps (or a tenth of the budget), 2
    updates per iteration, gradient clip 10."""
    return SACConfig(total_timesteps=inner_steps, num_envs=5, buffer_size=2000, batch_size=256,
                     learning_starts=min(1000, inner_steps // 10), gradient_steps=2, max_grad_norm=10.0,
                     hidden=hidden, activation=activation, metrics_interval=max(5, inner_steps))


def _space(spec: EnvSpec, config: SACConfig, options: InnerOptions) -> dict[str, list[float]]:
    return dict(HPARAM_SPACE_DISCRETE if spec.discrete else HPARAM_SPACE)


AGENT = Agent("sac", "soft actor-critic", ("discrete", "continuous"), _inner_config, sac_networks, sac_train, sac_act,
              sac_sample, _space)
"""SAC's registry entry (:data:`torch_distill.algorithms.rl.AGENTS`)."""
