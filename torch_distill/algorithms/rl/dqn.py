"""DQN / double DQN for a population: ``M`` independent agents trained at once in one vmapped computation.

DQN (Mnih et al. 2015) with the options used by the synthetic-environment papers: double Q-learning (van Hasselt
et al. 2016; the online network picks the bootstrap action, the target network evaluates it), a dueling head (Wang
et al. 2016; ``Q = V + A - mean_a A``, applied to logits when the head is distributional), target networks with
hard (``tau = 1`` every ``target_update_interval`` updates) or soft (Polyak ``tau`` every update) updates,
epsilon-greedy exploration with linear decay, and three losses: MSE, Huber, or the HL-Gauss classification loss
of Farebrother et al. 2024 ("Stop Regressing"): the network outputs ``num_bins`` logits per action over a support
``[v_min, v_max]`` chosen by the caller, ``Q(s, a) = sum_i softmax(logits)_i centre_i`` is used for acting and
bootstrapping, and the TD target is turned into a Gaussian histogram (``sigma = sigma_ratio * bin width``) trained
with cross-entropy.

The training loop is :func:`~torch_distill.algorithms.rl.off_policy.off_policy_train` (replay buffer tensors
``[M, capacity, ...]``, env batch ``[M * num_envs]`` rows, time limits bootstrapped from the observation before the
auto-reset); this module adds epsilon-greedy exploration and the TD update. Parameters ``[M, P]``; per-member
hyperparameters ``[M]``; replay indices and exploration drawn per member from its key.
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
    linear_schedule,
    member_setup,
)
from torch_distill.algorithms.rl.hparams import (
    REFERENCE_GAMMA,
    REFERENCE_LR,
    HParam,
    LogUniform,
    check_ints,
    member_hparams,
    member_tensor,
)
from torch_distill.algorithms.rl.off_policy import OffPolicyConfig, off_policy_train
from torch_distill.algorithms.rl.replay import ReplayBuffer
from torch_distill.algorithms.rl.returns import (
    histogram_mean,
    hl_gauss_support,
    hl_gauss_target,
)
from torch_distill.envs.core import EnvSpec, FunctionalEnv
from torch_distill.es.optim import adam_init, adam_update
from torch_distill.keyed import fold_in, randint, uniform
from torch_distill.nets import FlatMLP

__all__ = ["AGENT", "HPARAM_SPACE", "DQNConfig", "QNetwork", "dqn_act", "dqn_loss", "dqn_train", "ferreira_ddqn_config",
           "make_qnetwork"]

_LOSSES = ("mse", "huber", "hl_gauss")


@dataclass(frozen=True)
class DQNConfig(OffPolicyConfig):
    """DQN hyperparameters. Fields typed ``float | Tensor`` may be ``[M]`` tensors (one value per member).

    The loop settings (``total_timesteps`` -- default 50k --, ``num_envs``, ``buffer_size`` -- 10k --, ``batch_size``
    -- 128 --, ``learning_starts``, ``train_frequency``, ``gradient_steps``, ``metrics_interval``, ``log_interval``)
    are those of :class:`~torch_distill.algorithms.rl.off_policy.OffPolicyConfig`.

    Attributes:
        target_update_interval: gradient steps between target updates (1 with a small ``tau`` = soft updates).
        tau: target update ``target <- target + tau (online - target)`` (1 = hard copy; per member).
        lr: Adam learning rate (per member).
        gamma: discount (per member).
        eps_start, eps_end: epsilon-greedy range (per member).
        exploration_fraction: fraction of ``total_timesteps`` over which epsilon decays linearly (per member).
        double: double Q-learning (a bool, or a per-member ``[M]`` 0/1 tensor).
        dueling: dueling head.
        loss: ``"mse"``, ``"huber"`` or ``"hl_gauss"``.
        num_bins, v_min, v_max, sigma_ratio: HL-Gauss support (``m`` bins over ``[v_min, v_max]``) and
            ``sigma / bin width`` (0.75 in the paper). Choose the support from the env's return scale.
        hidden: hidden widths of the Q network.
        activation: hidden activation.
        max_grad_norm: per-member gradient-norm clip (``<= 0`` disables; per member).
        adam_eps: Adam epsilon.
    """

    total_timesteps: int = 50_000
    buffer_size: int = 10_000
    batch_size: int = 128
    target_update_interval: int = 500
    tau: HParam = 1.0
    lr: HParam = 2.5e-4
    gamma: HParam = 0.99
    eps_start: HParam = 1.0
    eps_end: HParam = 0.05
    exploration_fraction: HParam = 0.5
    double: bool | Tensor = True
    dueling: bool = False
    loss: str = "mse"
    num_bins: int = 51
    v_min: float = -10.0
    v_max: float = 10.0
    sigma_ratio: float = 0.75
    hidden: tuple[int, ...] = (120, 84)
    activation: str = "relu"
    max_grad_norm: HParam = 10.0
    adam_eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ints(self, ("target_update_interval",), "DQNConfig.")
        if self.loss not in _LOSSES:
            raise ValueError(f"DQNConfig.loss={self.loss!r}: expected one of {_LOSSES}")
        if self.loss == "hl_gauss" and not (self.v_max > self.v_min and self.num_bins >= 2 and self.sigma_ratio > 0):
            raise ValueError(
                f"DQNConfig HL-Gauss support [{self.v_min}, {self.v_max}] with {self.num_bins} bins and "
                f"sigma_ratio={self.sigma_ratio}: expected v_max > v_min, >= 2 bins, sigma_ratio > 0"
            )
        if self.dueling and len(self.hidden) == 0:
            raise ValueError("DQNConfig: a dueling head needs at least one hidden layer")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))


class QNetwork:
    """Q network in one flat vector: plain MLP ``[obs, *hidden, A * K]`` or dueling torso + value/advantage heads.

    ``K = num_bins`` logits per action for HL-Gauss, ``K = 1`` (a scalar Q) otherwise.
    """

    def __init__(self, spec: EnvSpec, hidden: tuple[int, ...] = (120, 84), activation: str = "relu",
                 dueling: bool = False, num_bins: int = 1, centres: Tensor | None = None) -> None:
        if not spec.discrete:
            raise ValueError(f"{spec.env_id}: DQN needs a discrete action space")
        self.spec = spec
        self.n_actions = spec.n_actions
        self.k = int(num_bins)
        self.dueling = dueling
        self.centres = centres
        a, k = self.n_actions, self.k
        if dueling:
            self.torso = FlatMLP([spec.obs_dim, *hidden], activation, out_gain=2 ** 0.5, final_activation=True)
            self.v_head = FlatMLP([hidden[-1], k], activation, out_gain=1.0)
            self.a_head = FlatMLP([hidden[-1], a * k], activation, out_gain=1.0)
            self.parts = [self.torso, self.v_head, self.a_head]
        else:
            self.parts = [FlatMLP([spec.obs_dim, *hidden, a * k], activation, out_gain=1.0)]
        self.num_params = sum(p.num_params for p in self.parts)

    def init(self, keys: Tensor) -> Tensor:
        """``[M, P]`` initial parameters from per-member ``keys [M]``."""
        return torch.cat([p.init(fold_in(keys, 21 + i)) for i, p in enumerate(self.parts)], dim=-1)

    def logits(self, flat: Tensor, obs: Tensor) -> Tensor:
        """``flat [*L, P]``, ``obs [*L, B, obs_dim]`` -> ``[*L, B, A, K]``."""
        if flat.shape[-1] != self.num_params:
            raise ValueError(f"flat parameters have {flat.shape[-1]} entries, expected {self.num_params}")
        chunks = torch.split(flat, [p.num_params for p in self.parts], dim=-1)
        if not self.dueling:
            out = self.parts[0](chunks[0], obs)
            return out.reshape(*out.shape[:-1], self.n_actions, self.k)
        h = self.torso(chunks[0], obs)
        v = self.v_head(chunks[1], h).unsqueeze(-2)  # [*L, B, 1, K]
        adv = self.a_head(chunks[2], h)
        adv = adv.reshape(*adv.shape[:-1], self.n_actions, self.k)
        return v + adv - adv.mean(-2, keepdim=True)

    def q_values(self, flat: Tensor, obs: Tensor) -> Tensor:
        """``[*L, B, A]`` expected Q values (HL-Gauss: decoded on the support centres)."""
        out = self.logits(flat, obs)
        if self.k == 1:
            return out.squeeze(-1)
        return histogram_mean(out, self.centres)


def make_qnetwork(spec: EnvSpec, config: DQNConfig, device: torch.device | str = "cpu") -> QNetwork:
    """The :class:`QNetwork` that :func:`dqn_train` builds for ``config`` (use it to act with trained params)."""
    centres = None
    k = 1
    if config.loss == "hl_gauss":
        _, centres = hl_gauss_support(config.v_min, config.v_max, config.num_bins, device)
        k = config.num_bins
    return QNetwork(spec, config.hidden, config.activation, config.dueling, k, centres)


def dqn_act(net: QNetwork, params: Tensor, obs: Tensor) -> Tensor:
    """Greedy actions ``[M, B]`` int64 for ``params [M, P]``, ``obs [M, B, obs_dim]``."""
    return net.q_values(params, obs).argmax(-1)


def dqn_loss(
    net: QNetwork, kind: str, edges: Tensor | None, sigma: float,
    flat: Tensor, obs: Tensor, action: Tensor, target: Tensor, weight: Tensor,
) -> tuple[Tensor, Tensor]:
    """TD loss of ONE member on ONE minibatch (vmap it over members).

    Args:
        kind: ``"mse"``, ``"huber"`` or ``"hl_gauss"``; edges/sigma: the HL-Gauss support and width.
        flat: ``[P]``; obs ``[b, obs_dim]``; action ``[b]`` int64; target ``[b]`` TD targets (no gradient);
        weight: ``[b]`` transition weights (0: not learned from).

    Returns:
        ``(loss, loss)``: the weighted mean loss (twice, the second as the aux output).
    """
    logits = net.logits(flat, obs)  # [b, A, K]
    idx = action.reshape(-1, 1, 1).expand(-1, 1, logits.shape[-1])
    la = torch.gather(logits, 1, idx).squeeze(1)  # [b, K]
    if kind == "hl_gauss":
        p = hl_gauss_target(target, edges, sigma)
        per = -(p * torch.log_softmax(la, dim=-1)).sum(-1)
    else:
        err = la.squeeze(-1) - target
        if kind == "mse":
            per = err.square()
        else:
            a = err.abs()
            per = torch.where(a < 1.0, 0.5 * err.square(), a - 0.5)
    loss = (per * weight).sum() / weight.sum().clamp_min(1.0)
    return loss, loss.detach()


class _DQNLearner:
    """DQN's part of the off-policy loop: epsilon-greedy exploration and the (double) TD update."""

    metric_names = ("loss", "epsilon")

    def __init__(self, config: DQNConfig, net: QNetwork, params: Tensor, device: torch.device) -> None:
        m = params.shape[0]
        self.config, self.net, self.params = config, net, params
        self.target_params = params.clone()
        self.hp = member_hparams(config, ("lr", "gamma", "tau", "eps_start", "eps_end", "exploration_fraction",
                                          "max_grad_norm"), m, device)
        self.double = member_tensor(config.double, m, device, "DQNConfig.double") > 0.5
        self.any_double = bool(self.double.any()) if isinstance(config.double, Tensor) else bool(config.double)
        self.decay_steps = self.hp["exploration_fraction"] * config.total_timesteps
        self.opt = adam_init(params)
        edges, sigma = None, 0.0
        if config.loss == "hl_gauss":
            edges, _ = hl_gauss_support(config.v_min, config.v_max, config.num_bins, device)
            sigma = config.sigma_ratio * (config.v_max - config.v_min) / config.num_bins
        self.grad_fn = torch.vmap(grad_and_value(lambda *a: dqn_loss(net, config.loss, edges, sigma, *a), has_aux=True))
        self.last_loss = torch.full((m,), float("nan"), device=device)
        self.eps = self.hp["eps_start"]
        self.updates = 0

    def explore(self, step: int, key: Tensor, obs: Tensor) -> Tensor:
        n = obs.shape[1]
        self.eps = linear_schedule(self.hp["eps_start"], self.hp["eps_end"], self.decay_steps, step)  # [M]
        with torch.no_grad():
            greedy = self.net.q_values(self.params, obs).argmax(-1)  # [M, n]
        explore = uniform(fold_in(key, 1), (n,)) < self.eps.unsqueeze(-1)
        return torch.where(explore, randint(fold_in(key, 2), self.net.n_actions, (n,)), greedy)

    def update(self, key: Tensor, index: int, buffer: ReplayBuffer) -> None:
        idx = randint(fold_in(key, 10 + index), buffer.size, (self.config.batch_size,))  # [M, b]
        s_obs, s_act, s_rew, s_next, s_term, s_w = buffer.sample(idx)
        with torch.no_grad():
            q_next_t = self.net.q_values(self.target_params, s_next)  # [M, b, A]
            a_star = q_next_t.argmax(-1)
            if self.any_double:
                online = self.net.q_values(self.params, s_next).argmax(-1)
                a_star = torch.where(self.double.unsqueeze(-1), online, a_star)
            q_next = torch.take_along_dim(q_next_t, a_star.unsqueeze(-1), dim=-1).squeeze(-1)
            target = s_rew + self.hp["gamma"].unsqueeze(-1) * (1.0 - s_term) * q_next
        grads, (_, loss) = self.grad_fn(self.params, s_obs, s_act, target, s_w)
        grads = clip_grad_norm(grads, self.hp["max_grad_norm"])
        delta, self.opt = adam_update(grads, self.opt, self.hp["lr"].unsqueeze(-1), eps=self.config.adam_eps)
        self.params = self.params - delta
        self.last_loss = loss
        self.updates += 1
        if self.updates % self.config.target_update_interval == 0:
            self.target_params = self.target_params + self.hp["tau"].unsqueeze(-1) * (self.params - self.target_params)

    def metrics(self) -> tuple[Tensor, ...]:
        return self.last_loss, self.eps

    def log(self) -> dict[str, float]:
        return {"loss": float(self.last_loss.nanmean()), "epsilon": float(self.eps.mean())}


def dqn_train(config: DQNConfig, env: FunctionalEnv, env_params: Any, generator: torch.Generator,
              num_members: int, keys: Tensor | None = None, init_params: Tensor | None = None,
              callback: Callback | None = None, logger: Logger | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Train ``M = num_members`` DQN agents at once on ``M * num_envs`` rows of ``env`` (discrete actions), as
    :class:`~torch_distill.algorithms.rl.agent.TrainFn` describes; ``init_params`` are the online network's (the
    target starts as a copy).

    Returns:
        ``(params [M, P], metrics)``; build the network with :func:`make_qnetwork` to act
        (:func:`dqn_act`). Metrics, one row per ``metrics_interval`` env steps (no host sync):
        ``episode_return``/``episode_length`` ``[R, M]`` (mean of the episodes completed in the window, NaN if
        none), ``loss [R, M]`` (last update, NaN before learning starts), ``epsilon [R, M]``, ``env_steps [R]``.
    """
    net = make_qnetwork(env.spec, config, generator.device)
    _, dev, keys = member_setup(num_members, keys, generator)
    learner = _DQNLearner(config, net, initial_params(net.init, keys, init_params, net.num_params), dev)
    metrics = off_policy_train(config, learner, env, env_params, generator, keys, (), torch.int64, callback, logger)
    return learner.params, metrics


# ---------------------------------------------------------------------------------------------------- registry entry
HPARAM_SPACE: dict[str, list[float]] = {"lr": REFERENCE_LR, "gamma": REFERENCE_GAMMA, "eps_end": [0.01, 0.05, 0.1, 0.2],
                                        "double": [1.0, 0.0]}
"""The SCB reference's DQN lists (``double``: double Q-learning on or off)."""


def ferreira_ddqn_config(total_timesteps: int = 30_000, **overrides: Any) -> DQNConfig:
    """DDQN with the CartPole hyperparameters of Ferreira et al. 2022 (their tuned ``DDQN`` config): batch 199,
    gamma 0.988, lr 3.04e-4, soft target updates with tau 0.00848 after every gradient step, hidden 57 tanh,
    replay 1e5, MSE loss. Their epsilon decays 0.809 -> 0.037 by a factor 0.961 per episode (~77 episodes); here
    it decays linearly over the first 3000 steps, about the steps of those episodes on CartPole."""
    kw: dict[str, Any] = dict(
        total_timesteps=total_timesteps, num_envs=1, buffer_size=100_000, batch_size=199, learning_starts=200,
        train_frequency=1, gradient_steps=1, target_update_interval=1, tau=0.00848, lr=3.04e-4, gamma=0.988,
        eps_start=0.809, eps_end=0.037, exploration_fraction=min(1.0, 3000 / total_timesteps), double=True,
        dueling=False, loss="mse", hidden=(57,), activation="tanh", max_grad_norm=10.0,
    )
    kw.update(overrides)
    return DQNConfig(**kw)


def _inner_config(spec: EnvSpec, inner_steps: int, hidden: tuple[int, ...], activation: str,
                  options: InnerOptions) -> DQNConfig:
    """``kind="scb"``: the SCB reference's dueling DQN (10 envs, buffer 2000, batch 100, 1000 warm-up steps or a
    tenth of the budget, hard target update every 50 updates, gradient clip 10). MDP/reward envs: DDQN with
    Ferreira et al.'s CartPole hyperparameters (:func:`ferreira_ddqn_config`; its own hidden width 57 tanh,
    ``hidden``/``activation`` do not apply)."""
    if options.kind != "scb":
        return ferreira_ddqn_config(inner_steps, metrics_interval=max(1, inner_steps))
    return DQNConfig(total_timesteps=inner_steps, num_envs=10, buffer_size=2000, batch_size=100,
                     learning_starts=min(1000, inner_steps // 10), target_update_interval=50, tau=1.0, dueling=True,
                     train_frequency=options.dqn_train_frequency, exploration_fraction=0.5, max_grad_norm=10.0,
                     hidden=hidden, activation=activation, metrics_interval=max(10, inner_steps))


def _space(spec: EnvSpec, config: DQNConfig, options: InnerOptions) -> dict[str, Any]:
    """SCB: :data:`HPARAM_SPACE`; MDP/reward: Ferreira et al.'s "varied hyperparameters", lr log-uniform in
    ``[x / 3, 3 x]``."""
    if options.kind != "scb":
        return {"lr": LogUniform(config.lr / 3, config.lr * 3)}
    return dict(HPARAM_SPACE)


def _structural(config: DQNConfig, options: InnerOptions) -> dict[str, LogUniform] | None:
    """MDP/reward: batch size and every hidden width log-uniform in ``[x / 3, 3 x]`` (Ferreira et al.)."""
    if options.kind == "scb":
        return None
    return {"batch_size": LogUniform(config.batch_size / 3, config.batch_size * 3),
            "hidden_scale": LogUniform(1 / 3, 3.0)}


AGENT = Agent("dqn", "DQN / double DQN", ("discrete",), _inner_config, make_qnetwork, dqn_train, dqn_act, None, _space,
              _structural)
"""DQN's registry entry (:data:`torch_distill.algorithms.rl.AGENTS`); its greedy policy is deterministic."""
