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

Population layout as in :mod:`torch_distill.algorithms.rl_common`: actor ``[M, Pa]`` and twin critics ``[M, 2 Pc]``
flat parameters, ``log alpha [M]``, functional Adam, replay buffer tensors ``[M, capacity, ...]``, per-member
hyperparameters ``[M]``, per-member keys (an ``M``-member run equals ``M`` single-member runs with the same keys);
the env batch is ``[M * num_envs]`` rows, member-major. No Python loop over members, no host sync in the loop.

Truncation: the functional env does not return the pre-reset observation, so truncated-but-not-terminated
transitions are stored with weight 0 (never learned from by the critics), as in :mod:`torch_distill.algorithms.td3`.
"""

from __future__ import annotations

import math
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
    gumbel,
    make_keys,
    member_tensor,
    normal,
    randint,
    uniform,
)
from torch_distill.envs.core import EnvSpec, FunctionalEnv
from torch_distill.es.optim import adam_init, adam_update

__all__ = ["SACConfig", "SACNets", "sac_train", "sac_act", "sac_sample"]

HParam = float | Tensor

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
class SACConfig:
    """SAC hyperparameters. Fields typed ``float | Tensor`` may be ``[M]`` tensors (one value per member).

    Attributes:
        total_timesteps: env steps per member (rounded down to a multiple of ``num_envs``).
        num_envs: envs per member (one iteration = one step of each).
        buffer_size: replay capacity per member (rounded down to a multiple of ``num_envs``).
        batch_size: replay minibatch per member per gradient step.
        learning_starts: env steps per member with uniform random actions before learning.
        gradient_steps: updates (critic + actor + temperature) per iteration.
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
        metrics_interval: env steps per member between recorded metrics.
        log_interval: call ``logger`` every this many metric records (0: never).
    """

    total_timesteps: int = 20_000
    num_envs: int = 1
    buffer_size: int = 100_000
    batch_size: int = 256
    learning_starts: int = 1_000
    gradient_steps: int = 1
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
    metrics_interval: int = 1_000
    log_interval: int = 0

    def __post_init__(self) -> None:
        check_ints(self, ("num_envs", "batch_size", "gradient_steps", "target_update_interval", "metrics_interval"),
                   "SACConfig.")
        check_ints(self, ("total_timesteps", "buffer_size", "learning_starts", "log_interval"), "SACConfig.", minimum=0)
        if self.buffer_size < self.num_envs or self.total_timesteps < self.num_envs:
            raise ValueError(f"SACConfig: buffer_size={self.buffer_size} and total_timesteps={self.total_timesteps} "
                             f"must be >= num_envs={self.num_envs}")
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
    """SAC actor and twin critics as :class:`~torch_distill.algorithms.rl_common.FlatMLP` s.

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
            self.low = torch.tensor(spec.action_low, dtype=torch.float32, device=device)
            self.high = torch.tensor(spec.action_high, dtype=torch.float32, device=device)
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
        return (logits - torch.log(-torch.log(u))).argmax(-1)
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
def sac_train(
    config: SACConfig,
    env: FunctionalEnv,
    env_params: Any,
    generator: torch.Generator,
    num_members: int,
    keys: Tensor | None = None,
    logger: Callable[[dict[str, float]], None] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Train ``M = num_members`` SAC agents at once on ``M * num_envs`` rows of ``env`` (discrete or continuous).

    Args:
        config: :class:`SACConfig` (per-member hyperparameters as ``[M]`` tensors).
        env: a functional env with vector observations.
        env_params: env params for ``M * num_envs`` member-major rows: 0-dim fields (one env for everybody),
            ``[M * num_envs]`` fields (a population of envs) or ``None`` (the env's defaults).
        generator: the env's randomness (and the agents' keys when ``keys`` is None).
        num_members: ``M``.
        keys: ``[M]`` int64 per-member keys; member ``m``'s init, actions and replay sampling depend only on it.
        logger: called with host floats every ``config.log_interval`` metric records.

    Returns:
        ``(actor params [M, Pa], metrics)``; act with ``sac_act(SACNets(env.spec, config.hidden,
        config.activation), params, obs)``. Metrics ``[R, M]`` every ``metrics_interval`` env steps (no host sync):
        ``episode_return``, ``episode_length`` (mean of the episodes completed in the window, NaN if none),
        ``critic_loss``, ``actor_loss``, ``entropy`` (last update, NaN before learning starts), ``alpha``;
        ``env_steps [R]``.
    """
    spec = env.spec
    dev = generator.device
    M, n = int(num_members), config.num_envs
    if M < 1:
        raise ValueError(f"num_members={num_members!r}: expected a positive int")
    nets = SACNets(spec, config.hidden, config.activation, dev)
    if keys is None:
        keys = make_keys(torch.randint(0, 2**31 - 1, (), generator=generator, device=dev), M, dev)
    if keys.shape != (M,):
        raise ValueError(f"keys shape {tuple(keys.shape)}: expected ({M},)")
    actor, critics = nets.init(keys)
    critics_t = critics.clone()
    hp = {k: member_tensor(getattr(config, k), M, dev, f"SACConfig.{k}") for k in
          ("lr_actor", "lr_critic", "lr_alpha", "gamma", "tau", "alpha", "target_entropy_scale", "max_grad_norm")}
    if config.target_entropy is not None:
        target_entropy = member_tensor(config.target_entropy, M, dev, "SACConfig.target_entropy")
    elif nets.discrete:
        target_entropy = hp["target_entropy_scale"] * math.log(spec.n_actions)
    else:
        target_entropy = torch.full((M,), -float(spec.action_dim), device=dev)
    log_alpha = torch.log(hp["alpha"])
    if config.autotune:
        log_alpha = log_alpha.clamp(LOG_ALPHA_MIN, LOG_ALPHA_MAX)
    opt_a, opt_c, opt_al = adam_init(actor), adam_init(critics), adam_init(log_alpha)
    critic_grad = torch.vmap(grad_and_value(lambda *a: _critic_loss(nets, *a), has_aux=True))
    actor_grad = torch.vmap(grad_and_value(lambda *a: _actor_loss(nets, *a), has_aux=True))

    cap = (config.buffer_size // n) * n
    d = spec.obs_dim
    A = 0 if nets.discrete else spec.action_dim
    if nets.discrete:
        buf = ReplayBuffer(M, cap, d, (), torch.int64, dev)
    else:
        buf = ReplayBuffer(M, cap, d, (A,), torch.float32, dev)
    b = config.batch_size
    no_noise = torch.zeros(M, b, 1, device=dev)  # the discrete actor loss takes no noise

    state, obs = env.reset(M * n, generator, env_params)
    tracker = EpisodeTracker(M, n, dev)
    num_iter = config.total_timesteps // n
    rec_every = max(1, config.metrics_interval // n)
    names = ("episode_return", "episode_length", "critic_loss", "actor_loss", "entropy", "alpha")
    hist: dict[str, list[Tensor]] = {k: [] for k in names}
    steps_rec: list[int] = []
    last_closs = torch.full((M,), float("nan"), device=dev)
    last_aloss, last_entropy = last_closs.clone(), last_closs.clone()
    updates = 0
    gamma, tau = hp["gamma"].unsqueeze(-1), hp["tau"].unsqueeze(-1)
    lr_a, lr_c, lr_al = hp["lr_actor"].unsqueeze(-1), hp["lr_critic"].unsqueeze(-1), hp["lr_alpha"]

    for it in range(num_iter):
        step = it * n
        k = fold_in(keys, it)
        o = obs.reshape(M, n, d)
        if step < config.learning_starts:
            if nets.discrete:
                action = randint(fold_in(k, 1), spec.n_actions, (n,))
            else:
                action = nets.low + (nets.high - nets.low) * uniform(fold_in(k, 1), (n, A))
        else:
            with torch.no_grad():
                if nets.discrete:
                    logits = nets.actor(actor, o)
                    action = (logits + gumbel(fold_in(k, 2), (n, spec.n_actions))).argmax(-1)
                else:
                    action, _ = nets.sample(actor, o, normal(fold_in(k, 2), (n, A)))
        flat_action = action.reshape(M * n) if nets.discrete else action.reshape(M * n, A)
        state, obs, reward, term, trunc = env.step(state, flat_action, generator, env_params)
        reward, term, trunc = reward.reshape(M, n), term.reshape(M, n), trunc.reshape(M, n)
        tracker.update(reward, term | trunc)
        buf.add(o, obs.reshape(M, n, d), action, reward, term, trunc)

        if step + n > config.learning_starts:
            for g in range(config.gradient_steps):
                kg = fold_in(k, 10 + g)
                idx = randint(fold_in(kg, 1), buf.size, (b,))  # [M, b]
                s_obs, s_act, s_rew, s_next, s_term, s_w = buf.sample(idx)
                alpha = log_alpha.exp()  # [M]
                with torch.no_grad():
                    if nets.discrete:
                        logp_next = nets.log_probs(actor, s_next)  # [M, b, n]
                        q_next = nets.q(critics_t, s_next).min(0).values
                        v_next = (logp_next.exp() * (q_next - alpha.reshape(M, 1, 1) * logp_next)).sum(-1)
                    else:
                        a_next, logp_next = nets.sample(actor, s_next, normal(fold_in(kg, 2), (b, A)))
                        v_next = nets.q(critics_t, s_next, a_next).min(0).values - alpha.unsqueeze(-1) * logp_next
                    target = s_rew + gamma * (1.0 - s_term) * v_next  # [M, b]
                gc, (_, closs) = critic_grad(critics, s_obs, s_act, target, s_w)
                gc = clip_grad_norm(gc, hp["max_grad_norm"])
                delta, opt_c = adam_update(gc, opt_c, lr_c, eps=config.adam_eps)
                critics = critics - delta

                noise = no_noise if nets.discrete else normal(fold_in(kg, 3), (b, A))
                ga, (_, (aloss, entropy)) = actor_grad(actor, critics, s_obs, noise, alpha)
                ga = clip_grad_norm(ga, hp["max_grad_norm"])
                delta, opt_a = adam_update(ga, opt_a, lr_a, eps=config.adam_eps)
                actor = actor - delta

                if config.autotune:  # d/dlog_alpha of -log_alpha (log pi + H_target) = H(pi) - H_target
                    delta, opt_al = adam_update(entropy - target_entropy, opt_al, lr_al, eps=config.adam_eps)
                    log_alpha = (log_alpha - delta).clamp(LOG_ALPHA_MIN, LOG_ALPHA_MAX)

                updates += 1
                if updates % config.target_update_interval == 0:
                    critics_t = critics_t + tau * (critics - critics_t)
                last_closs, last_aloss, last_entropy = closs, aloss, entropy

        if (it + 1) % rec_every == 0:
            ep_ret, ep_len = tracker.window_mean()
            tracker.reset_window()
            values = (ep_ret, ep_len, last_closs, last_aloss, last_entropy, log_alpha.exp())
            for name, v in zip(names, values):
                hist[name].append(v)
            steps_rec.append((it + 1) * n)
            if logger is not None and config.log_interval > 0 and len(steps_rec) % config.log_interval == 0:
                logger({"env_steps": (it + 1) * n, "episode_return": float(ep_ret.nanmean()),
                        "critic_loss": float(last_closs.nanmean()), "actor_loss": float(last_aloss.nanmean()),
                        "entropy": float(last_entropy.nanmean()), "alpha": float(log_alpha.exp().mean())})
    metrics = {k: (torch.stack(v) if v else torch.zeros(0, M, device=dev)) for k, v in hist.items()}
    metrics["env_steps"] = torch.tensor(steps_rec, dtype=torch.int64, device=dev)
    return actor, metrics
