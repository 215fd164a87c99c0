"""The best-response learner of a synthetic contextual bandit: a cheap, noise-free inner loop for SCB searches.

An SCB (:class:`~torch_distill.envs.synthetic.SyntheticContextualBandit`) has episodes of length 1, so whatever an
RL algorithm trains on it converges, at best, to the policy ``pi(s) = argmax_a r(s, a)`` over the states the SCB
draws. :func:`bandit_train` computes that target directly and fits a fresh policy network to it:

1. draw contexts from the SCB's initial-state network (the same latents for every member: common random numbers);
2. score ``K`` candidate actions per context with the SCB's reward network (every discrete action; for continuous
   actions ``grid`` evenly spaced values per dimension, the full product grid up to 2 dimensions, else ``grid``
   random points of the box) and label each context with the best one. Each score is one synthetic step (an
   episode of length 1), so ``total_timesteps // K`` contexts spend the same synthetic-step budget as an RL
   learner's ``total_timesteps`` (10k: 243 contexts x 41 actions for Pendulum, 5000 x 2 for CartPole);
3. fit an MLP policy to the labels by minibatch Adam (cross-entropy for discrete actions; mean squared error of a
   ``tanh``-squashed, bound-scaled output for continuous ones).

``method="gradient"`` (inner algorithm ``dpg``, continuous actions) replaces steps 2-3 by what an actor-critic's actor
does with a perfect critic: a fresh policy climbs ``r(s, pi(s))`` by gradient ascent through the reward network
(deterministic policy gradient, minibatch Adam over ``total_timesteps`` contexts). Where the reward has several
maxima in the action it stops at the one its initial actions lead to, as TD3/DDPG actors do -- fitness with it
rewards SCBs whose best actions gradient-based learners find.

There is no exploration noise, replay or critic, so a generation costs a fraction of a PPO/TD3 inner loop and the
fitness ranking is not drowned in RL training noise. It is not one of the reference's inner algorithms (those are
RL agents, Liesen et al. 2024): use it to find a reward landscape worth refining, then check
(or keep training) with real RL learners, which see the SCB as held-out algorithms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from torch_distill.algorithms.rl.agent import Agent, InnerOptions
from torch_distill.algorithms.rl.common import (
    Callback,
    Logger,
    initial_params,
    member_setup,
)
from torch_distill.algorithms.rl.hparams import check_ints
from torch_distill.envs.core import EnvSpec
from torch_distill.es.optim import adam_init, adam_update
from torch_distill.keyed import fold_in, gumbel_from_uniform
from torch_distill.nets import FlatMLP

__all__ = ["AGENT", "BANDIT_METHODS", "CRITIC_AGENT", "DPG_AGENT", "BanditConfig", "BanditPolicy", "bandit_act",
           "bandit_networks", "bandit_sample", "bandit_train", "candidate_actions"]

BANDIT_METHODS = {"bandit": "argmax", "dpg": "gradient", "critic": "critic"}
"""Inner-algorithm name -> :attr:`BanditConfig.method` of the best-response learners of an SCB."""


@dataclass(frozen=True)
class BanditConfig:
    """Settings of :func:`bandit_train`.

    Attributes:
        total_timesteps: synthetic steps (reward queries) per member; ``total_timesteps // K`` contexts.
        num_states: contexts per member, overriding ``total_timesteps // K``.
        grid: candidate values per continuous action dimension (product grid for 1-2 dimensions, else this many
            random points of the action box).
        steps: Adam steps fitting the policy.
        batch_size: contexts per Adam step (the same minibatch indices for every member).
        lr: Adam learning rate.
        hidden: policy hidden widths.
        activation: policy hidden activation.
        num_envs: env rows per member the caller lays out (1: the learner draws its own contexts).
        method: ``"argmax"`` (label contexts with the best of ``K`` candidate actions, fit the policy to them) or
            ``"gradient"`` (continuous actions: gradient ascent of the policy on the reward; ``num_states`` defaults
            to ``total_timesteps`` contexts) or ``"critic"`` (a critic fitted to ``total_timesteps`` random-action
            samples stands in for the reward).
        critic_steps, critic_lr: Adam steps and learning rate of the ``"critic"`` method's critic.
        noise: exploration noise of the fitted policy's sampled actions (:func:`bandit_sample`; 0: greedy).
    """

    total_timesteps: int = 10_000
    num_states: int | None = None
    grid: int = 41
    steps: int = 200
    batch_size: int = 256
    lr: float = 3e-3
    hidden: tuple[int, ...] = field(default=(64, 64))
    activation: str = "relu"
    num_envs: int = 1
    method: str = "argmax"
    critic_steps: int = 1000
    critic_lr: float = 1e-3
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in ("argmax", "gradient", "critic"):
            raise ValueError(f"bandit method={self.method!r}: expected 'argmax', 'gradient' or 'critic'")
        check_ints(self, ("critic_steps",), "bandit ")
        check_ints(self, ("total_timesteps", "grid", "steps", "batch_size", "num_envs"), "bandit ")
        check_ints(self, ("num_states",), "bandit ", allow_none=True)
        if self.grid < 2:
            raise ValueError(f"bandit grid={self.grid}: expected >= 2 candidate values per action dimension")
        if not (isinstance(self.lr, (int, float, Tensor)) and float(torch.as_tensor(self.lr).max()) > 0):
            raise ValueError(f"bandit lr={self.lr!r}: expected a positive number")
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"bandit noise={self.noise!r}: expected a finite number >= 0")


class BanditPolicy:
    """The fitted policy: an MLP over observations; logits (discrete) or ``tanh`` scaled to the action box.
    ``noise`` is the default exploration noise of :func:`bandit_sample`."""

    def __init__(self, spec: EnvSpec, hidden: tuple[int, ...], activation: str, noise: float = 0.0) -> None:
        self.spec = spec
        self.noise = float(noise)
        self.net = FlatMLP([spec.obs_dim, *hidden, spec.act_dim], activation, out_gain=0.01)
        self.num_params = self.net.num_params
        if not spec.discrete:
            self.action_mid, self.action_half = spec.action_box()

    def output(self, params: Tensor, obs: Tensor) -> Tensor:
        """``params [M, P]``, ``obs [M, B, obs_dim]`` -> logits ``[M, B, n]`` or actions ``[M, B, A]`` in bounds."""
        out = self.net(params, obs.to(params.dtype))
        if self.spec.discrete:
            return out
        return self.action_mid.to(out.device) + self.action_half.to(out.device) * torch.tanh(out)


def bandit_act(policy: BanditPolicy, params: Tensor, obs: Tensor) -> Tensor:
    """Greedy actions: int64 ``[M, B]`` (discrete) or float ``[M, B, A]``."""
    out = policy.output(params, obs)
    return out.argmax(-1) if policy.spec.discrete else out


def bandit_sample(policy: BanditPolicy, params: Tensor, obs: Tensor, generator: torch.Generator,
                  noise: float | None = None) -> Tensor:
    """Exploratory actions: Gaussian noise of ``noise`` x the action half-range added to the greedy action, clipped
    to the box (continuous); Gumbel-max over logits scaled by ``1 / noise`` (discrete; ``noise`` is the
    temperature). One draw of shape ``[B, ...]`` shared by the ``M`` members (common random numbers). ``noise``
    defaults to the policy's; 0 gives the greedy action (nothing is drawn)."""
    noise = policy.noise if noise is None else float(noise)
    if noise == 0:
        return bandit_act(policy, params, obs)
    out = policy.output(params, obs)
    if policy.spec.discrete:
        u = torch.rand(out.shape[-2:], generator=generator, device=out.device).clamp_(1e-12, 1.0 - 1e-7)
        return (out / noise + gumbel_from_uniform(u)).argmax(-1)
    eps = torch.randn(out.shape[-2:], generator=generator, device=out.device)
    mid, half = policy.action_mid.to(out.device), policy.action_half.to(out.device)
    return torch.minimum(torch.maximum(out + noise * half * eps, mid - half), mid + half)


def candidate_actions(spec: EnvSpec, grid: int, generator: torch.Generator) -> Tensor:
    """The actions scored per state: int64 ``[n]`` (discrete) or float ``[K, A]`` inside the action box."""
    dev = generator.device
    if spec.discrete:
        return torch.arange(spec.n_actions, device=dev)
    low, high = spec.action_bounds(dev)
    a = spec.action_dim
    if a <= 2:
        axes = [torch.linspace(float(low[i]), float(high[i]), grid, device=dev) for i in range(a)]
        return torch.cartesian_prod(*axes).reshape(-1, a)
    return low + (high - low) * torch.rand(grid, a, generator=generator, device=dev)


def bandit_train(config: BanditConfig, env: Any, env_params: Any, generator: torch.Generator, num_members: int,
                 keys: Tensor | None = None, init_params: Tensor | None = None, callback: Callback | None = None,
                 logger: Logger | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Fit ``M`` policies to the best responses of ``M`` SCBs (module docstring).

    Args:
        config: :class:`BanditConfig`.
        env: a :class:`~torch_distill.envs.synthetic.SyntheticContextualBandit`.
        env_params: ``SyntheticEnvParams`` with genome ``[M * num_envs, G]`` (member-major) or ``[G]`` (one SCB).
        generator: draws the contexts (shared by every member) and, with more than 2 action dimensions, the
            candidate actions.
        num_members: ``M``.
        keys: per-member keys ``[M]`` for the policy initialisation (default: drawn from ``generator``).
        init_params: optional ``[M, P]`` initial policy parameters (default: orthogonal init from ``keys``).
        callback: called once, as ``callback(config.total_timesteps, params [M, P])``, with the fitted policies.
        logger: not used (the learner records no training curve).

    Returns:
        ``(params [M, P], metrics)`` with the final fit loss ``loss [M]`` and the SCB's mean best reward
        ``best_reward [M]``.
    """
    from torch_distill.envs.synthetic import SyntheticContextualBandit

    if not isinstance(env, SyntheticContextualBandit):
        raise TypeError(f"bandit_train needs a SyntheticContextualBandit (episode length 1), got {type(env).__name__}")
    m = int(num_members)
    spec = env.real_spec
    genome = env_params.genome
    if genome.dim() == 1:
        genome = genome.expand(m, -1)
    elif genome.shape[0] == m * config.num_envs:
        genome = genome[:: config.num_envs]
    else:
        raise ValueError(f"env_params.genome has {genome.shape[0]} rows, expected {m * config.num_envs} "
                         f"({m} members x {config.num_envs} envs) or a single genome")
    m, _, keys = member_setup(m, keys, generator)
    init_p, reward_p = env.split(genome)
    policy = bandit_networks(spec, config)
    params = initial_params(lambda k: policy.net.init(fold_in(k, 7)), keys, init_params, policy.num_params)
    learn = {"argmax": _argmax_train, "gradient": _gradient_train, "critic": _critic_train}[config.method]
    params, metrics = learn(config, env, policy, params, init_p, reward_p, generator, keys)
    if callback is not None:
        callback(config.total_timesteps, params)
    return params, metrics


def _argmax_train(config: BanditConfig, env: Any, policy: BanditPolicy, params: Tensor, init_p: Tensor,
                  reward_p: Tensor, generator: torch.Generator, keys: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """``method="argmax"``: label contexts with the best of ``K`` candidate actions, fit the policy to them."""
    spec, dev = policy.spec, generator.device
    cand = candidate_actions(spec, config.grid, generator)
    k = cand.shape[0]
    n = config.num_states or max(1, config.total_timesteps // k)
    z = torch.randn(1, n, env.latent_dim, generator=generator, device=dev)
    states = env.scale_out(env.init_net(init_p, z))  # [M, N, obs]
    rewards = env.scores(reward_p, states, env.action_input(cand))  # [M, N, K]
    best_r, best = rewards.max(-1)
    labels = cand[best]  # [M, N] int or [M, N, A]

    params, loss = _fit_labels(config, policy, params, states.detach(), labels, generator)
    return params, {"loss": loss, "best_reward": best_r.mean(-1)}


def _fit_labels(config: BanditConfig, policy: BanditPolicy, params: Tensor, states: Tensor, labels: Tensor,
                generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Minibatch Adam fitting the policy to action ``labels`` at ``states [M, N, obs]`` (cross-entropy for discrete
    actions, squared error of the bounded output for continuous ones); returns ``(params, last loss [M])``."""
    m, n = states.shape[0], states.shape[1]
    opt = adam_init(params)
    loss = torch.zeros(m, device=states.device)
    b = min(config.batch_size, n)
    for _ in range(config.steps):
        p = params.detach().requires_grad_(True)
        if b < n:
            idx = torch.randint(n, (b,), generator=generator, device=states.device)
            s_b, y_b = states[:, idx], labels[:, idx]
        else:
            s_b, y_b = states, labels
        out = policy.output(p, s_b)
        if policy.spec.discrete:
            per = torch.nn.functional.cross_entropy(out.reshape(m * b, -1), y_b.reshape(-1), reduction="none")
            loss = per.reshape(m, b).mean(-1)
        else:
            loss = ((out - y_b) ** 2).sum(-1).mean(-1)
        (g,) = torch.autograd.grad(loss.sum(), p)
        delta, opt = adam_update(g, opt, config.lr)
        params = params - delta
    return params.detach(), loss.detach()


def _contexts(env: Any, init_p: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """``n`` contexts per member ``[M, N, obs_dim]`` from shared latents (common random numbers), detached."""
    z = torch.randn(1, n, env.latent_dim, generator=generator, device=generator.device)
    return env.scale_out(env.init_net(init_p, z)).detach()


def _ascend(config: BanditConfig, policy: BanditPolicy, params: Tensor, states: Tensor,
            score: Callable[[Tensor, Tensor], Tensor], generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Minibatch Adam on ``params`` maximising ``score(s, pi(s))`` (``[M, B]``) over ``states [M, N, obs]``;
    returns ``(params, mean score of the last minibatch [M])``."""
    m, n = states.shape[0], states.shape[1]
    opt = adam_init(params)
    b = min(config.batch_size, n)
    value = torch.zeros(m, device=states.device)
    for _ in range(config.steps):
        p = params.detach().requires_grad_(True)
        s_b = states[:, torch.randint(n, (b,), generator=generator, device=states.device)] if b < n else states
        value = score(s_b, policy.output(p, s_b)).mean(-1)
        (g,) = torch.autograd.grad(-value.sum(), p)
        delta, opt = adam_update(g, opt, config.lr)
        params = params - delta
    return params.detach(), value.detach()


def _gradient_train(config: BanditConfig, env: Any, policy: BanditPolicy, params: Tensor, init_p: Tensor,
                    reward_p: Tensor, generator: torch.Generator, keys: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """``method="gradient"``: a fresh policy per member climbs the SCB's reward ``r(s, pi(s))`` by minibatch Adam
    (the deterministic policy gradient with the exact reward as critic)."""
    if policy.spec.discrete:
        raise ValueError(f"{policy.spec.env_id}: bandit method='gradient' (dpg) needs continuous actions")
    states = _contexts(env, init_p, config.num_states or config.total_timesteps, generator)
    reward_p = reward_p.detach()
    params, reward = _ascend(config, policy, params, states, lambda s, a: env.scores_at(reward_p, s, a), generator)
    return params, {"loss": -reward, "best_reward": reward}


def _critic_train(config: BanditConfig, env: Any, policy: BanditPolicy, params: Tensor, init_p: Tensor,
                  reward_p: Tensor, generator: torch.Generator, keys: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """``method="critic"``: ``total_timesteps`` samples (context, uniformly random action, reward) -- exactly the
    synthetic-step budget --, a fresh critic ``Q(s, a)`` fitted to them by minibatch Adam (mean squared error, raw
    observations as the RL agents see them), then a fresh policy climbing ``Q(s, pi(s))`` (continuous actions) or
    fitted to ``argmax_a Q(s, a)`` (discrete) at the sampled contexts."""
    spec, dev, m = policy.spec, generator.device, keys.shape[0]
    n = config.num_states or config.total_timesteps
    states = _contexts(env, init_p, n, generator)
    if spec.discrete:
        actions = torch.randint(spec.n_actions, (1, n), generator=generator, device=dev).expand(m, n)
    else:
        low, high = policy.action_mid - policy.action_half, policy.action_mid + policy.action_half
        u = torch.rand(1, n, spec.act_dim, generator=generator, device=dev)
        actions = (low.to(dev) + (high - low).to(dev) * u).expand(m, n, -1)
    with torch.no_grad():
        rewards = env.scores_at(reward_p, states, actions)  # [M, N]
    act_in = env.action_input(actions.reshape(m * n, *actions.shape[2:])).reshape(m, n, -1)
    critic = FlatMLP([spec.obs_dim + act_in.shape[-1], *config.hidden, 1], config.activation)
    q = critic.init(fold_in(keys, 11))
    opt = adam_init(q)
    b = min(config.batch_size, n)
    loss = torch.zeros(m, device=dev)
    for _ in range(config.critic_steps):
        p = q.detach().requires_grad_(True)
        idx = torch.randint(n, (b,), generator=generator, device=dev)
        pred = critic(p, torch.cat([states[:, idx], act_in[:, idx]], dim=-1)).squeeze(-1)
        loss = ((pred - rewards[:, idx]) ** 2).mean(-1)
        (g,) = torch.autograd.grad(loss.sum(), p)
        delta, opt = adam_update(g, opt, config.critic_lr)
        q = q - delta
    q = q.detach()
    if spec.discrete:
        one_hot = torch.eye(spec.n_actions, device=dev)  # [K, K]
        k = spec.n_actions
        x = torch.cat([states.unsqueeze(2).expand(m, n, k, -1), one_hot.expand(m, n, k, k)], dim=-1)
        labels = critic(q, x.reshape(m, n * k, -1)).reshape(m, n, k).argmax(-1)
        params, fit = _fit_labels(config, policy, params, states, labels, generator)
        return params, {"loss": fit, "critic_loss": loss.detach()}
    params, value = _ascend(config, policy, params, states,
                            lambda s, a: critic(q, torch.cat([s, env.action_input(a)], dim=-1)).squeeze(-1),
                            generator)
    return params, {"loss": -value, "critic_loss": loss.detach()}


# ---------------------------------------------------------------------------------------------------- registry entries
def bandit_networks(spec: EnvSpec, config: BanditConfig, device: torch.device | str = "cpu") -> BanditPolicy:
    """The :class:`BanditPolicy` that :func:`bandit_train` fits for ``config`` (with its exploration noise)."""
    return BanditPolicy(spec, tuple(config.hidden), config.activation, config.noise)


def _inner_config(name: str) -> Callable[[EnvSpec, int, tuple[int, ...], str, InnerOptions], BanditConfig]:
    def make(spec: EnvSpec, inner_steps: int, hidden: tuple[int, ...], activation: str,
             options: InnerOptions) -> BanditConfig:
        if options.kind != "scb":
            raise ValueError(f"algos: {name} (a best-response learner of a contextual bandit) needs kind='scb', "
                             f"got kind={options.kind!r}")
        return BanditConfig(total_timesteps=inner_steps, hidden=hidden, activation=activation,
                            method=BANDIT_METHODS[name], noise=options.bandit_noise)

    return make


AGENT = Agent("bandit", "best response to the SCB's reward", ("discrete", "continuous"), _inner_config("bandit"),
              bandit_networks, bandit_train, bandit_act, bandit_sample, lambda spec, config, options: {})
"""The argmax best-response learner's registry entry (greedy unless ``bandit_noise > 0``)."""
DPG_AGENT = replace(AGENT, name="dpg", title="gradient ascent on the SCB's reward", action_spaces=("continuous",),
                    make_config=_inner_config("dpg"))
"""The gradient-ascent best-response learner (continuous actions)."""
CRITIC_AGENT = replace(AGENT, name="critic", title="best response to a critic of the SCB's reward",
                       make_config=_inner_config("critic"))
"""The best-response learner through a critic fitted to the synthetic-step budget."""
