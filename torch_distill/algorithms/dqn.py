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

Population layout (see :mod:`torch_distill.algorithms.rl_common`): parameters ``[M, P]``; the replay buffer is
preallocated tensors ``[M, capacity, ...]`` written in place at the same slots for every member; env batch
``[M * num_envs]`` rows; per-member hyperparameters ``[M]``; replay indices and exploration drawn per member from
its key. No Python loop over members and no host sync in the loop (except the optional logger).

Truncation: the functional env auto-resets and does not return the pre-reset observation, so the stored
``next_obs`` of a truncated (and not terminated) step is a fresh initial observation. Such transitions are stored
with weight 0 (they are never learned from); terminated transitions are learned without bootstrap.
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
    histogram_mean,
    hl_gauss_support,
    hl_gauss_target,
    linear_schedule,
    make_keys,
    member_tensor,
    randint,
    uniform,
)
from torch_distill.envs.core import EnvSpec, FunctionalEnv
from torch_distill.es.optim import adam_init, adam_update

__all__ = ["DQNConfig", "QNetwork", "make_qnetwork", "dqn_loss", "dqn_train", "dqn_act"]

HParam = float | Tensor
_LOSSES = ("mse", "huber", "hl_gauss")


@dataclass(frozen=True)
class DQNConfig:
    """DQN hyperparameters. Fields typed ``float | Tensor`` may be ``[M]`` tensors (one value per member).

    One *iteration* is one step of the ``num_envs`` envs of every member (``num_envs`` transitions per member).

    Attributes:
        total_timesteps: env steps per member (rounded down to a multiple of ``num_envs``).
        num_envs: envs per member.
        buffer_size: replay capacity per member (rounded down to a multiple of ``num_envs``).
        batch_size: replay minibatch per member per gradient step.
        learning_starts: env steps per member before the first update.
        train_frequency: iterations between training phases.
        gradient_steps: gradient steps per training phase.
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
        metrics_interval: env steps per member between recorded metrics (episode returns, loss).
        log_interval: call ``logger`` every this many recorded metrics (0: never; each call syncs).
    """

    total_timesteps: int = 50_000
    num_envs: int = 1
    buffer_size: int = 10_000
    batch_size: int = 128
    learning_starts: int = 1_000
    train_frequency: int = 1
    gradient_steps: int = 1
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
    metrics_interval: int = 1_000
    log_interval: int = 0

    def __post_init__(self) -> None:
        check_ints(self, ("num_envs", "batch_size", "train_frequency", "gradient_steps", "target_update_interval",
                          "metrics_interval"), "DQNConfig.")
        if self.buffer_size < self.num_envs:
            raise ValueError(f"DQNConfig.buffer_size={self.buffer_size}: expected >= num_envs={self.num_envs}")
        if self.total_timesteps < self.num_envs:
            raise ValueError(f"DQNConfig.total_timesteps={self.total_timesteps}: expected >= num_envs={self.num_envs}")
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
        weight: ``[b]`` transition weights (0 for truncated transitions).

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


def dqn_train(
    config: DQNConfig,
    env: FunctionalEnv,
    env_params: Any,
    generator: torch.Generator,
    num_members: int,
    keys: Tensor | None = None,
    init_params: Tensor | None = None,
    logger: Callable[[dict[str, float]], None] | None = None,
    callback: Callable[[int, Tensor], None] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Train ``M = num_members`` DQN agents at once on ``M * num_envs`` rows of ``env`` (discrete actions).

    Args:
        config: :class:`DQNConfig` (per-member hyperparameters as ``[M]`` tensors).
        env: a functional env with a discrete action space and vector observations.
        env_params: env params for ``M * num_envs`` rows (``None``: the env's defaults).
        generator: the env's randomness (and the agents' keys when ``keys`` is None).
        num_members: ``M``.
        keys: ``[M]`` int64 per-member keys; member ``m``'s init, exploration and replay sampling depend only on it.
        init_params: optional ``[M, P]`` initial online parameters (the target starts as a copy).
        logger: called with host floats every ``config.log_interval`` metric records.
        callback: called as ``callback(env_steps_per_member, params [M, P])`` at every metrics record (e.g. to
            evaluate the agents on another env during training: learning curves, steps to solve).

    Returns:
        ``(params [M, P], metrics)``; build the network with :func:`make_qnetwork` to act
        (:func:`dqn_act`). Metrics, one row per ``metrics_interval`` env steps (no host sync):
        ``episode_return``/``episode_length`` ``[R, M]`` (mean of the episodes completed in the window, NaN if
        none), ``loss [R, M]`` (last update, NaN before learning starts), ``epsilon [R, M]``, ``env_steps [R]``.
    """
    spec = env.spec
    dev = generator.device
    M, n = int(num_members), config.num_envs
    if M < 1:
        raise ValueError(f"num_members={num_members!r}: expected a positive int")
    net = make_qnetwork(spec, config, dev)
    edges = None
    sigma = 0.0
    if config.loss == "hl_gauss":
        edges, _ = hl_gauss_support(config.v_min, config.v_max, config.num_bins, dev)
        sigma = config.sigma_ratio * (config.v_max - config.v_min) / config.num_bins
    if keys is None:
        keys = make_keys(torch.randint(0, 2**31 - 1, (), generator=generator, device=dev), M, dev)
    if keys.shape != (M,):
        raise ValueError(f"keys shape {tuple(keys.shape)}: expected ({M},)")
    params = net.init(keys) if init_params is None else init_params.clone()
    if params.shape != (M, net.num_params):
        raise ValueError(f"init_params shape {tuple(params.shape)}: expected ({M}, {net.num_params})")
    target_params = params.clone()
    hp = {k: member_tensor(getattr(config, k), M, dev, f"DQNConfig.{k}") for k in
          ("lr", "gamma", "tau", "eps_start", "eps_end", "exploration_fraction", "max_grad_norm")}
    double = member_tensor(config.double, M, dev, "DQNConfig.double") > 0.5
    any_double = bool(double.any()) if isinstance(config.double, Tensor) else bool(config.double)
    decay_steps = hp["exploration_fraction"] * config.total_timesteps
    opt = adam_init(params)
    grad_fn = torch.vmap(grad_and_value(lambda *a: dqn_loss(net, config.loss, edges, sigma, *a), has_aux=True))

    # replay buffer [M, C, ...], written at the same slots for every member
    cap = (config.buffer_size // n) * n
    d = spec.obs_dim
    buf = ReplayBuffer(M, cap, d, (), torch.int64, dev)

    state, obs = env.reset(M * n, generator, env_params)
    tracker = EpisodeTracker(M, n, dev)
    num_iter = config.total_timesteps // n
    rec_every = max(1, config.metrics_interval // n)
    hist: dict[str, list[Tensor]] = {k: [] for k in ("episode_return", "episode_length", "loss", "epsilon")}
    steps_rec: list[int] = []
    last_loss = torch.full((M,), float("nan"), device=dev)
    updates = 0
    gamma = hp["gamma"].unsqueeze(-1)

    for it in range(num_iter):
        step = it * n
        k = fold_in(keys, it)
        eps = linear_schedule(hp["eps_start"], hp["eps_end"], decay_steps, step)  # [M]
        o = obs.reshape(M, n, d)
        with torch.no_grad():
            greedy = net.q_values(params, o).argmax(-1)  # [M, n]
        explore = uniform(fold_in(k, 1), (n,)) < eps.unsqueeze(-1)
        action = torch.where(explore, randint(fold_in(k, 2), spec.n_actions, (n,)), greedy)
        state, obs, reward, term, trunc = env.step(state, action.reshape(M * n), generator, env_params)
        reward, term, trunc = reward.reshape(M, n), term.reshape(M, n), trunc.reshape(M, n)
        tracker.update(reward, term | trunc)
        buf.add(o, obs.reshape(M, n, d), action, reward, term, trunc)

        if step + n > config.learning_starts and it % config.train_frequency == 0:
            for g in range(config.gradient_steps):
                idx = randint(fold_in(k, 10 + g), buf.size, (config.batch_size,))  # [M, b]
                s_obs, s_act, s_rew, s_next, s_term, s_w = buf.sample(idx)
                with torch.no_grad():
                    q_next_t = net.q_values(target_params, s_next)  # [M, b, A]
                    a_star = q_next_t.argmax(-1)
                    if any_double:
                        a_star = torch.where(double.unsqueeze(-1), net.q_values(params, s_next).argmax(-1), a_star)
                    q_next = torch.take_along_dim(q_next_t, a_star.unsqueeze(-1), dim=-1).squeeze(-1)
                    target = s_rew + gamma * (1.0 - s_term) * q_next
                grads, (_, loss) = grad_fn(params, s_obs, s_act, target, s_w)
                grads = clip_grad_norm(grads, hp["max_grad_norm"])
                delta, opt = adam_update(grads, opt, hp["lr"].unsqueeze(-1), eps=config.adam_eps)
                params = params - delta
                last_loss = loss
                updates += 1
                if updates % config.target_update_interval == 0:
                    target_params = target_params + hp["tau"].unsqueeze(-1) * (params - target_params)

        if (it + 1) % rec_every == 0:
            ep_ret, ep_len = tracker.window_mean()
            tracker.reset_window()
            for name, v in zip(("episode_return", "episode_length", "loss", "epsilon"), (ep_ret, ep_len, last_loss, eps)):
                hist[name].append(v)
            steps_rec.append((it + 1) * n)
            if callback is not None:
                callback((it + 1) * n, params)
            if logger is not None and config.log_interval > 0 and len(steps_rec) % config.log_interval == 0:
                logger({"env_steps": (it + 1) * n, "episode_return": float(ep_ret.nanmean()),
                        "loss": float(last_loss.nanmean()), "epsilon": float(eps.mean())})
    metrics = {k: (torch.stack(v) if v else torch.zeros(0, M, device=dev)) for k, v in hist.items()}
    metrics["env_steps"] = torch.tensor(steps_rec, dtype=torch.int64, device=dev)
    return params, metrics
