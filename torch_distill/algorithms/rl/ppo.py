"""PPO for a population: ``M`` independent agents trained at once in one vmapped computation.

Proximal policy optimisation (Schulman et al. 2017) with the implementation details of Huang et al. 2022 ("The 37
implementation details of PPO"): GAE, clipped surrogate, optionally clipped value loss, entropy bonus, per-minibatch
advantage normalisation, global gradient-norm clipping, Adam with ``eps = 1e-5`` and linear learning-rate annealing,
orthogonal init (actor head gain 0.01, critic head 1). Discrete actions: categorical policy; continuous actions:
Gaussian with a state-independent learnable ``log_std``, sampled actions clipped to the action bounds only when sent
to the env (the log-probability is that of the unclipped sample).

Population layout (see :mod:`torch_distill.algorithms.rl.common`): parameters ``[M, P]``; env batch
``[M * n_envs]`` rows; per-member hyperparameters ``[M]``; minibatch permutations drawn per member from its key.
There is no Python loop over members and no host sync in the loop (except the optional logger).

Time limits: a truncated (not terminated) step is bootstrapped, ``r_t + gamma V(s_final)`` with ``s_final`` the
observation before the auto-reset (SB3's ``handle_timeout_termination``; Pardo et al. 2018, "Time Limits in
Reinforcement Learning"), and the GAE recursion is cut there. A terminated step ends the bootstrap. Envs without
``transition`` cannot return ``s_final``; their truncated steps are treated as terminal (no bootstrap).
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
    EnvStepper,
    EpisodeTracker,
    Logger,
    MetricsRecorder,
    clip_grad_norm,
    initial_params,
    member_setup,
)
from torch_distill.algorithms.rl.hparams import (
    REFERENCE_GAMMA,
    REFERENCE_LR,
    HParam,
    check_ints,
    member_hparams,
)
from torch_distill.algorithms.rl.returns import bootstrap_truncated, gae
from torch_distill.envs.core import EnvSpec, FunctionalEnv
from torch_distill.es.optim import adam_init, adam_update
from torch_distill.keyed import fold_in, gumbel, gumbel_from_uniform, normal, permutation
from torch_distill.nets import FlatMLP

__all__ = [
    "AGENT",
    "HPARAM_SPACE",
    "ActorCritic",
    "PPOConfig",
    "ppo_act",
    "ppo_loss",
    "ppo_networks",
    "ppo_sample",
    "ppo_train",
]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters. Fields typed ``float | Tensor`` may be ``[M]`` tensors (one value per member).

    Attributes:
        total_timesteps: env steps per member (``num_envs * num_steps * num_iterations``; rounded down).
        num_envs: envs per member.
        num_steps: rollout length per env per iteration.
        update_epochs: passes over each rollout.
        num_minibatches: minibatches per epoch (``num_envs * num_steps`` must be divisible by it).
        lr: Adam learning rate (per member).
        anneal_lr: decay the learning rate linearly to 0 over the iterations.
        gamma: discount (per member).
        gae_lambda: GAE lambda (per member).
        clip_eps: surrogate clipping range (per member); also the value clipping range if ``clip_vloss``.
        ent_coef: entropy bonus coefficient (per member).
        vf_coef: value loss coefficient (per member).
        max_grad_norm: per-member global gradient-norm clip (per member; ``<= 0`` disables).
        norm_adv: normalise advantages per minibatch.
        clip_vloss: clipped value loss (PPO2 style).
        hidden: hidden widths of the actor and of the critic (separate networks).
        activation: hidden activation (tanh, relu, elu, gelu).
        log_std_init: initial log std of the Gaussian policy (continuous actions).
        reward_scale: rewards are multiplied by it for learning (returns in metrics are unscaled).
        adam_eps: Adam epsilon.
        log_interval: call ``logger`` every this many iterations (0: never; each call syncs with the host).
    """

    total_timesteps: int = 100_000
    num_envs: int = 4
    num_steps: int = 128
    update_epochs: int = 4
    num_minibatches: int = 4
    lr: HParam = 2.5e-4
    anneal_lr: bool = True
    gamma: HParam = 0.99
    gae_lambda: HParam = 0.95
    clip_eps: HParam = 0.2
    ent_coef: HParam = 0.01
    vf_coef: HParam = 0.5
    max_grad_norm: HParam = 0.5
    norm_adv: bool = True
    clip_vloss: bool = True
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    log_std_init: float = 0.0
    reward_scale: float = 1.0
    adam_eps: float = 1e-5
    log_interval: int = 0

    def __post_init__(self) -> None:
        check_ints(self, ("num_envs", "num_steps", "update_epochs", "num_minibatches"), "PPOConfig.")
        batch = self.num_envs * self.num_steps
        if batch % self.num_minibatches:
            raise ValueError(
                f"PPOConfig: num_envs * num_steps = {batch} is not divisible by num_minibatches={self.num_minibatches}"
            )
        if self.total_timesteps < batch:
            raise ValueError(f"PPOConfig.total_timesteps={self.total_timesteps}: expected >= num_envs * num_steps = {batch}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    @property
    def num_iterations(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)


class ActorCritic:
    """Separate actor and critic MLPs packed in one flat vector ``[..., P]`` = ``[actor | critic | log_std]``."""

    def __init__(self, spec: EnvSpec, hidden: tuple[int, ...] = (64, 64), activation: str = "tanh", log_std_init: float = 0.0) -> None:
        self.spec = spec
        self.discrete = spec.discrete
        self.actor = FlatMLP([spec.obs_dim, *hidden, spec.act_dim], activation, out_gain=0.01)
        self.critic = FlatMLP([spec.obs_dim, *hidden, 1], activation, out_gain=1.0)
        self.n_log_std = 0 if spec.discrete else spec.action_dim
        self.log_std_init = float(log_std_init)
        self.num_params = self.actor.num_params + self.critic.num_params + self.n_log_std

    def split(self, flat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(actor [..., Pa], critic [..., Pc], log_std [..., A or 0])``."""
        if flat.shape[-1] != self.num_params:
            raise ValueError(f"flat parameters have {flat.shape[-1]} entries, expected {self.num_params}")
        return torch.split(flat, [self.actor.num_params, self.critic.num_params, self.n_log_std], dim=-1)

    def init(self, keys: Tensor) -> Tensor:
        """``[M, P]`` initial parameters from per-member ``keys [M]``."""
        a = self.actor.init(fold_in(keys, 11))
        c = self.critic.init(fold_in(keys, 12))
        ls = torch.full((keys.shape[0], self.n_log_std), self.log_std_init, device=keys.device)
        return torch.cat([a, c, ls], dim=-1)

    def policy(self, flat: Tensor, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``(logits or mean [*L, B, act_dim], log_std [*L, 1, A] (empty for discrete))``."""
        a, _, log_std = self.split(flat)
        return self.actor(a, obs), log_std.unsqueeze(-2)

    def value(self, flat: Tensor, obs: Tensor) -> Tensor:
        """``[*L, B]`` state values."""
        _, c, _ = self.split(flat)
        return self.critic(c, obs).squeeze(-1)

    def log_prob_entropy(self, out: Tensor, log_std: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """Log-probability ``[..., B]`` of ``action`` and entropy ``[..., B]`` of the policy distribution."""
        if self.discrete:
            logp_all = torch.log_softmax(out, dim=-1)
            logp = torch.gather(logp_all, -1, action.unsqueeze(-1)).squeeze(-1)
            ent = -(logp_all.exp() * logp_all).sum(-1)
            return logp, ent
        z = (action - out) * torch.exp(-log_std)
        logp = (-0.5 * z * z - log_std - 0.5 * _LOG_2PI).sum(-1)
        ent = (log_std + 0.5 * (1.0 + _LOG_2PI)).sum(-1).expand_as(logp)
        return logp, ent


def ppo_act(net: ActorCritic, params: Tensor, obs: Tensor) -> Tensor:
    """Deterministic actions: argmax of the logits / Gaussian mean clipped to the action bounds.

    ``params [M, P]``, ``obs [M, B, obs_dim]`` -> ``[M, B]`` int64 or ``[M, B, A]``.
    """
    out, _ = net.policy(params, obs)
    if net.discrete:
        return out.argmax(-1)
    low, high = _bounds(net.spec, obs.device)
    return torch.maximum(torch.minimum(out, high), low)


def ppo_sample(net: ActorCritic, params: Tensor, obs: Tensor, generator: torch.Generator) -> Tensor:
    """Actions sampled from the policy (Gumbel-max over the logits / Gaussian clipped to the action bounds) with
    noise from ``generator``. ``params [M, P]``, ``obs [M, B, obs_dim]``; one draw of shape ``[B, ...]`` per call,
    shared by the ``M`` members (common random numbers: a member's actions do not depend on ``M``)."""
    out, log_std = net.policy(params, obs)
    if net.discrete:
        u = torch.rand(out.shape[-2:], generator=generator, device=out.device).clamp_(1e-12, 1.0 - 1e-7)
        return (out + gumbel_from_uniform(u)).argmax(-1)
    noise = torch.randn(out.shape[-2:], generator=generator, device=out.device)
    low, high = _bounds(net.spec, obs.device)
    return torch.maximum(torch.minimum(out + torch.exp(log_std) * noise, high), low)


def _bounds(spec: EnvSpec, device: torch.device) -> tuple[Tensor, Tensor]:
    low = torch.tensor(spec.action_low or [-math.inf] * spec.action_dim, dtype=torch.float32, device=device)
    high = torch.tensor(spec.action_high or [math.inf] * spec.action_dim, dtype=torch.float32, device=device)
    return low, high


def ppo_loss(
    net: ActorCritic,
    norm_adv: bool,
    clip_vloss: bool,
    flat: Tensor,
    obs: Tensor,
    action: Tensor,
    old_logp: Tensor,
    adv: Tensor,
    ret: Tensor,
    old_value: Tensor,
    clip_eps: Tensor,
    vf_coef: Tensor,
    ent_coef: Tensor,
) -> tuple[Tensor, Tensor]:
    """PPO loss of ONE member on ONE minibatch (vmap it over members).

    Args:
        flat: ``[P]``; obs ``[b, obs_dim]``; action ``[b]`` / ``[b, A]``; old_logp, adv, ret, old_value ``[b]``;
        clip_eps, vf_coef, ent_coef: ``[]``.

    Returns:
        ``(loss, aux [4] = (policy loss, value loss, entropy, approx KL))``.
    """
    out, log_std = net.policy(flat, obs)
    logp, ent = net.log_prob_entropy(out, log_std, action)
    log_ratio = logp - old_logp
    ratio = log_ratio.exp()
    if norm_adv:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg = torch.maximum(-adv * ratio, -adv * ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps)).mean()
    v = net.value(flat, obs)
    if clip_vloss:
        v_clip = old_value + (v - old_value).clamp(-clip_eps, clip_eps)
        v_loss = 0.5 * torch.maximum((v - ret).square(), (v_clip - ret).square()).mean()
    else:
        v_loss = 0.5 * (v - ret).square().mean()
    entropy = ent.mean()
    loss = pg + vf_coef * v_loss - ent_coef * entropy
    approx_kl = ((ratio - 1.0) - log_ratio).mean()
    return loss, torch.stack([pg, v_loss, entropy, approx_kl]).detach()


def ppo_train(config: PPOConfig, env: FunctionalEnv, env_params: Any, generator: torch.Generator,
              num_members: int, keys: Tensor | None = None, init_params: Tensor | None = None,
              callback: Callback | None = None, logger: Logger | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Train ``M = num_members`` PPO agents at once on ``M * num_envs`` rows of ``env`` (discrete or continuous
    actions), as :class:`~torch_distill.algorithms.rl.agent.TrainFn` describes; one metrics record (and callback)
    per iteration.

    Returns:
        ``(params [M, P], metrics)`` with the :class:`ActorCritic` layout of :func:`ppo_networks`; metrics (no host
        sync): ``episode_return``/``episode_length`` ``[I, M]`` (mean over the training episodes completed in each
        iteration, NaN if none), ``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl`` ``[I, M]`` (last
        minibatch of each iteration), ``env_steps [I]`` (per member).
    """
    spec = env.spec
    net = ppo_networks(spec, config)
    M, dev, keys = member_setup(num_members, keys, generator)
    n, T = config.num_envs, config.num_steps
    params = initial_params(net.init, keys, init_params, net.num_params)
    hp = member_hparams(config, ("lr", "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef", "max_grad_norm"), M, dev)
    gamma, lam = hp["gamma"].unsqueeze(-1), hp["gae_lambda"].unsqueeze(-1)
    opt = adam_init(params)
    grad_fn = torch.vmap(grad_and_value(
        lambda *a: ppo_loss(net, config.norm_adv, config.clip_vloss, *a), has_aux=True))
    low, high = (None, None) if spec.discrete else _bounds(spec, dev)

    step_env = EnvStepper(env)
    state, obs = env.reset(M * n, generator, env_params)
    tracker = EpisodeTracker(M, n, dev)
    batch = n * T
    mb = batch // config.num_minibatches
    num_iter = config.num_iterations
    record = MetricsRecorder(("episode_return", "episode_length", "policy_loss", "value_loss", "entropy", "approx_kl"),
                             M, dev)

    for it in range(num_iter):
        it_keys = fold_in(keys, it)
        obs_buf, act_buf, logp_buf, val_buf, rew_buf, done_buf = [], [], [], [], [], []
        tracker.reset_window()
        with torch.no_grad():
            for t in range(T):
                k = fold_in(it_keys, 100 + t)
                o = obs.reshape(M, n, -1)
                out, log_std = net.policy(params, o)
                value = net.value(params, o)
                if spec.discrete:
                    action = (out + gumbel(k, (n, spec.n_actions))).argmax(-1)
                    env_action = action.reshape(M * n)
                else:
                    action = out + torch.exp(log_std) * normal(k, (n, spec.action_dim))
                    env_action = torch.maximum(torch.minimum(action, high), low).reshape(M * n, -1)
                logp, _ = net.log_prob_entropy(out, log_std, action)
                step = step_env(state, env_action, generator, env_params)
                state, obs = step.state, step.obs
                reward = step.reward.reshape(M, n)
                term, trunc = step.terminated.reshape(M, n), step.truncated.reshape(M, n)
                tracker.update(reward, term | trunc)
                learn_reward = reward * config.reward_scale
                if step_env.final_obs:  # bootstrap the time limit from V(s_final)
                    v_final = net.value(params, step.final_obs.reshape(M, n, -1))
                    learn_reward = bootstrap_truncated(learn_reward, v_final, gamma, term, trunc)
                obs_buf.append(o)
                act_buf.append(action)
                logp_buf.append(logp)
                val_buf.append(value)
                rew_buf.append(learn_reward)
                done_buf.append(term | trunc)
            last_value = net.value(params, obs.reshape(M, n, -1))
            values = torch.stack(val_buf)  # [T, M, n]
            adv, ret = gae(torch.stack(rew_buf), values, torch.stack(done_buf), last_value, gamma, lam)

        # flatten [T, M, n, ...] -> [M, T * n, ...]
        def flat_batch(x: Tensor) -> Tensor:
            return x.transpose(0, 1).reshape(M, batch, *x.shape[3:])

        b_obs, b_act = flat_batch(torch.stack(obs_buf)), flat_batch(torch.stack(act_buf))
        b_logp, b_adv, b_ret, b_val = flat_batch(torch.stack(logp_buf)), flat_batch(adv), flat_batch(ret), flat_batch(values)
        lr = hp["lr"] * (1.0 - it / num_iter) if config.anneal_lr else hp["lr"]
        for epoch in range(config.update_epochs):
            perm = permutation(fold_in(it_keys, 7 + epoch), batch)  # [M, batch]
            for j in range(config.num_minibatches):
                idx = perm[:, j * mb:(j + 1) * mb]

                def take(x: Tensor) -> Tensor:
                    ix = idx.reshape(M, mb, *([1] * (x.dim() - 2)))
                    return torch.take_along_dim(x, ix, dim=1)

                g, (_, aux) = grad_fn(params, take(b_obs), take(b_act), take(b_logp), take(b_adv), take(b_ret),
                                      take(b_val), hp["clip_eps"], hp["vf_coef"], hp["ent_coef"])
                g = clip_grad_norm(g, hp["max_grad_norm"])
                delta, opt = adam_update(g, opt, lr.unsqueeze(-1), eps=config.adam_eps)
                params = params - delta
        ep_ret, ep_len = tracker.window_mean()
        record.append((it + 1) * batch, (ep_ret, ep_len, *aux.unbind(-1)))
        if callback is not None:
            callback((it + 1) * batch, params)
        if logger is not None and config.log_interval > 0 and (it + 1) % config.log_interval == 0:
            logger({"iteration": it + 1, "env_steps": (it + 1) * batch,
                    "episode_return": float(ep_ret.nanmean()), "entropy": float(aux[:, 2].mean())})
    return params, record.result()


# ---------------------------------------------------------------------------------------------------- registry entry
HPARAM_SPACE: dict[str, list[float]] = {
    "lr": REFERENCE_LR, "gamma": REFERENCE_GAMMA, "gae_lambda": [1.0, 0.95, 0.9, 0.8, 0.5],
    "clip_eps": [0.1, 0.2, 0.3, 0.4, 0.5], "ent_coef": [0.0, 0.01, 0.05, 0.1, 0.5], "vf_coef": [0.0, 0.5, 1.0, 1.5, 2.0],
}
"""The SCB reference's PPO lists (continuous actions drop lr 1e-2, as the reference)."""


def ppo_networks(spec: EnvSpec, config: PPOConfig, device: torch.device | str = "cpu") -> ActorCritic:
    """The :class:`ActorCritic` that :func:`ppo_train` builds for ``config``."""
    return ActorCritic(spec, config.hidden, config.activation, config.log_std_init)


def _inner_config(spec: EnvSpec, inner_steps: int, hidden: tuple[int, ...], activation: str,
                  options: InnerOptions) -> PPOConfig:
    """The SCB reference's PPO: 5 envs x 100 steps (fewer for small budgets), ``ppo_epochs`` epochs,
    ``ppo_minibatches`` minibatches (reduced to divide the batch), no annealing, gradient clip 10."""
    num_steps = max(1, min(100, inner_steps // 5))
    return PPOConfig(total_timesteps=inner_steps, num_envs=5, num_steps=num_steps, update_epochs=options.ppo_epochs,
                     num_minibatches=math.gcd(options.ppo_minibatches, 5 * num_steps), anneal_lr=False,
                     max_grad_norm=10.0, hidden=hidden, activation=activation)


def _space(spec: EnvSpec, config: PPOConfig, options: InnerOptions) -> dict[str, list[float]]:
    space = dict(HPARAM_SPACE)
    if not spec.discrete:
        space["lr"] = [x for x in space["lr"] if x < 1e-2]
    return space


AGENT = Agent("ppo", "PPO", ("discrete", "continuous"), _inner_config, ppo_networks, ppo_train, ppo_act, ppo_sample,
              _space)
"""PPO's registry entry (:data:`torch_distill.algorithms.rl.AGENTS`)."""
