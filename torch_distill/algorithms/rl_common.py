"""Pieces shared by the population-vectorised RL agents (PPO, DQN): keyed randomness, flat MLPs, GAE,
HL-Gauss / two-hot value targets, schedules, per-member hyperparameters and greedy evaluation.

Layout conventions (every agent follows them):

* ``M`` = population members x rollouts trained at once. Network parameters are flat vectors ``[M, P]``;
  optimiser state, replay buffers and per-member hyperparameters carry the same leading ``[M]`` dim.
* The env batch is ``[M * n_envs]`` rows of a :class:`~torch_distill.envs.core.FunctionalEnv`, member-major
  (rows ``m * n_envs ... (m + 1) * n_envs - 1`` belong to member ``m``). ``env_params`` is whatever the env
  accepts for that batch: 0-dim fields (one env for everybody) or ``[M * n_envs]`` fields (a population of envs).
* Agent randomness (initialisation, action sampling, exploration, minibatch permutations, replay sampling) is a
  counter-based hash of per-member 32-bit ``keys [M]`` (as JAX keys, not a stateful generator). Member ``m``'s
  numbers depend only on ``keys[m]`` and the counters, never on ``M``: an ``M``-member run equals ``M``
  single-member runs with the same keys, and equal keys give common random numbers across members. The env's own
  randomness comes from its ``torch.Generator`` as in the env contract.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from torch_distill.envs.core import FunctionalEnv
from torch_distill.keyed import fold_in, gumbel, is_broadcast, make_keys, normal, permutation, randint, uniform
from torch_distill.nets import FlatMLP, orthogonal

__all__ = [
    "make_keys",
    "fold_in",
    "uniform",
    "normal",
    "gumbel",
    "randint",
    "permutation",
    "FlatMLP",
    "orthogonal",
    "member_tensor",
    "clip_grad_norm",
    "gae",
    "linear_schedule",
    "hl_gauss_support",
    "hl_gauss_target",
    "two_hot_target",
    "histogram_mean",
    "LogUniform",
    "Uniform",
    "sample_hparams",
    "with_hparams",
    "evaluate_greedy",
    "EpisodeTracker",
    "ReplayBuffer",
]

# ---------------------------------------------------------------------------------------------------- optimisation helpers
def check_ints(obj: Any, names: Sequence[str], prefix: str = "", minimum: int = 1, allow_none: bool = False) -> None:
    """Raise ``ValueError`` naming the first field of ``obj`` in ``names`` that is not an int ``>= minimum``
    (``minimum`` 1: "a positive int", 0: "a non-negative int"; ``allow_none`` lets None through)."""
    for name in names:
        v = getattr(obj, name)
        if v is None and allow_none:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            what = {1: "a positive int", 0: "a non-negative int"}.get(minimum, f"an int >= {minimum}")
            raise ValueError(f"{prefix}{name}={v!r}: expected {what}")


def member_tensor(value: float | Tensor, num_members: int, device: torch.device, name: str) -> Tensor:
    """A hyperparameter as a float32 ``[M]`` tensor: a Python number is broadcast, a tensor must be ``[]`` or ``[M]``."""
    t = torch.as_tensor(value, dtype=torch.float32, device=device)
    if t.dim() == 0:
        return t.expand(num_members).clone()
    if t.shape != (num_members,):
        raise ValueError(f"{name}: per-member tensor has shape {tuple(t.shape)}, expected ({num_members},) or a scalar")
    return t


def clip_grad_norm(grads: Tensor, max_norm: Tensor) -> Tensor:
    """Per-member global-norm clipping: ``grads [M, P]``, ``max_norm [M]`` (``<= 0`` disables it for that member)."""
    norm = torch.linalg.vector_norm(grads, dim=-1)
    scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    scale = torch.where(max_norm > 0, scale, torch.ones_like(scale))
    return grads * scale.unsqueeze(-1)


def gae(
    rewards: Tensor, values: Tensor, dones: Tensor, last_value: Tensor, gamma: Tensor, lam: Tensor
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016).

    ``delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t``; ``A_t = delta_t + gamma lam (1 - d_t) A_{t+1}``.

    Args:
        rewards, values, dones: ``[T, *B]`` (``dones[t]`` = the transition at ``t`` ended its episode).
        last_value: ``[*B]`` value of the observation after the last step.
        gamma, lam: broadcastable to ``[*B]`` (per-member ``[M, 1]`` for a ``[T, M, n]`` batch).

    Returns:
        ``(advantages, returns = advantages + values)``, both ``[T, *B]``.
    """
    not_done = 1.0 - dones.to(values.dtype)
    adv = torch.zeros_like(last_value)
    out = []
    next_value = last_value
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * not_done[t] * next_value - values[t]
        adv = delta + gamma * lam * not_done[t] * adv
        out.append(adv)
        next_value = values[t]
    advantages = torch.stack(out[::-1])
    return advantages, advantages + values


def linear_schedule(start: Tensor, end: Tensor, duration: Tensor | float, t: int | float) -> Tensor:
    """``start + (end - start) * min(t / duration, 1)`` elementwise (a zero duration gives ``end``)."""
    duration = torch.as_tensor(duration, dtype=torch.float32, device=start.device)
    frac = torch.where(duration > 0, torch.clamp(t / duration.clamp_min(1e-12), max=1.0), torch.ones_like(duration))
    return start + (end - start) * frac


# ---------------------------------------------------------------------------------------------------- classification value targets
def hl_gauss_support(v_min: float, v_max: float, num_bins: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """``(edges [m + 1], centres [m])`` of ``m`` equal bins over ``[v_min, v_max]``."""
    if not v_max > v_min or num_bins < 2:
        raise ValueError(f"support [{v_min}, {v_max}] with {num_bins} bins: expected v_max > v_min and >= 2 bins")
    edges = torch.linspace(v_min, v_max, num_bins + 1, device=device)
    return edges, 0.5 * (edges[:-1] + edges[1:])


def hl_gauss_target(target: Tensor, edges: Tensor, sigma: float) -> Tensor:
    """HL-Gauss histogram of scalar targets (Farebrother et al. 2024, "Stop Regressing").

    ``p_i = (F(e_{i+1}) - F(e_i)) / (F(e_m) - F(e_0))`` with ``F`` the CDF of ``N(t, sigma^2)``, i.e.
    ``cdf = erf((edges - t) / (sqrt(2) sigma))``. Targets are first clamped into ``[e_0, e_m]`` (a target far
    outside the support would otherwise have no mass on it).

    Args:
        target: ``[...]`` scalar targets.
        edges: ``[m + 1]`` bin edges (:func:`hl_gauss_support`).
        sigma: standard deviation (the paper uses ``0.75 *`` bin width).

    Returns:
        ``[..., m]`` probabilities summing to 1.
    """
    t = target.clamp(edges[0], edges[-1]).unsqueeze(-1)
    cdf = torch.erf((edges - t) / (math.sqrt(2.0) * sigma))
    z = cdf[..., -1:] - cdf[..., :1]
    return (cdf[..., 1:] - cdf[..., :-1]) / z


def two_hot_target(target: Tensor, centres: Tensor) -> Tensor:
    """Two-hot encoding on bin ``centres [m]`` (mass split linearly between the two nearest centres; clamped)."""
    m = centres.shape[0]
    t = target.clamp(centres[0], centres[-1])
    width = (centres[-1] - centres[0]) / (m - 1)
    pos = (t - centres[0]) / width
    lo = pos.floor().clamp(0, m - 2)
    w_hi = (pos - lo).unsqueeze(-1)
    idx = torch.arange(m, device=centres.device)
    lo_i = lo.long().unsqueeze(-1)
    return (idx == lo_i).float() * (1 - w_hi) + (idx == lo_i + 1).float() * w_hi


def histogram_mean(logits: Tensor, centres: Tensor) -> Tensor:
    """Decode ``[..., m]`` logits into the expected value ``sum_i softmax(logits)_i centre_i`` ``[...]``."""
    return (torch.softmax(logits, dim=-1) * centres).sum(-1)


# ---------------------------------------------------------------------------------------------------- hyperparameter sampling
@dataclass(frozen=True)
class LogUniform:
    """``exp(U(log low, log high))``."""

    low: float
    high: float


@dataclass(frozen=True)
class Uniform:
    """``U(low, high)``."""

    low: float
    high: float


def sample_hparams(
    space: Mapping[str, Sequence[float] | LogUniform | Uniform],
    num_members: int,
    generator: torch.Generator,
    shared: bool = False,
) -> dict[str, Tensor]:
    """Draw per-member hyperparameters ``{name: [M] float32}`` (lists: uniform choice; ranges: as named).

    ``shared=True`` draws one value per name and gives it to every member (common random numbers, as the SCB
    reference samples one set of hyperparameters per inner loop). Use :func:`with_hparams` to put them into a
    config. Structural hyperparameters (network widths, batch sizes) must be equal across members and are not
    sampled here.
    """
    dev = generator.device
    n = 1 if shared else num_members
    out: dict[str, Tensor] = {}
    for name, dist in space.items():
        if isinstance(dist, (LogUniform, Uniform)):
            if not (dist.high >= dist.low and (dist.low > 0 or isinstance(dist, Uniform))):
                raise ValueError(f"hyperparameter {name!r}: bad range {dist}")
            u = torch.rand(n, generator=generator, device=dev)
            if isinstance(dist, LogUniform):
                v = torch.exp(math.log(dist.low) + u * (math.log(dist.high) - math.log(dist.low)))
            else:
                v = dist.low + u * (dist.high - dist.low)
        else:
            values = torch.as_tensor([float(x) for x in dist], dtype=torch.float32, device=dev)
            if values.numel() == 0:
                raise ValueError(f"hyperparameter {name!r}: empty list of values")
            v = values[torch.randint(values.numel(), (n,), generator=generator, device=dev)]
        out[name] = v.float().expand(num_members).clone()
    return out


def with_hparams(config: Any, hparams: Mapping[str, Tensor]) -> Any:
    """``dataclasses.replace(config, **hparams)`` with a clear error for names the config does not have."""
    names = {f.name for f in dataclasses.fields(config)}
    bad = sorted(set(hparams) - names)
    if bad:
        raise ValueError(f"hyperparameters {bad} are not fields of {type(config).__name__} ({sorted(names)})")
    return dataclasses.replace(config, **hparams)


# ---------------------------------------------------------------------------------------------------- episodes and evaluation
class EpisodeTracker:
    """Running returns of ``[M, n]`` envs; accumulates the sum and count of completed episode returns per member."""

    def __init__(self, num_members: int, n_envs: int, device: torch.device) -> None:
        self.ret = torch.zeros(num_members, n_envs, device=device)
        self.length = torch.zeros(num_members, n_envs, device=device)
        self.reset_window()

    def reset_window(self) -> None:
        self.sum = torch.zeros(self.ret.shape[0], device=self.ret.device)
        self.len_sum = torch.zeros_like(self.sum)
        self.count = torch.zeros_like(self.sum)

    def update(self, reward: Tensor, done: Tensor) -> None:
        """``reward``/``done`` ``[M, n]``."""
        self.ret = self.ret + reward
        self.length = self.length + 1
        d = done.to(self.ret.dtype)
        self.sum = self.sum + (self.ret * d).sum(-1)
        self.len_sum = self.len_sum + (self.length * d).sum(-1)
        self.count = self.count + d.sum(-1)
        self.ret = self.ret * (1 - d)
        self.length = self.length * (1 - d)

    def window_mean(self) -> tuple[Tensor, Tensor]:
        """Mean return and length ``[M]`` of the episodes completed since :meth:`reset_window` (NaN if none)."""
        nan = torch.full_like(self.sum, float("nan"))
        c = self.count.clamp_min(1)
        return torch.where(self.count > 0, self.sum / c, nan), torch.where(self.count > 0, self.len_sum / c, nan)


@torch.no_grad()
def evaluate_greedy(
    act: Callable[[Tensor, Tensor], Tensor],
    params: Tensor,
    env: FunctionalEnv,
    num_episodes: int,
    generator: torch.Generator,
    env_params: Any = None,
    max_steps: int | None = None,
) -> Tensor:
    """Greedy returns ``[M, E]`` of ``M`` agents, one episode in each of ``E`` envs per agent (batched).

    Args:
        act: deterministic action function ``act(params [M, P], obs [M, E, obs_dim]) -> [M, E] / [M, E, A]``
            (e.g. :func:`torch_distill.algorithms.ppo.ppo_act` or ``dqn_act`` bound with ``functools.partial``).
        params: ``[M, P]`` trained agents.
        env: the evaluation env, run with ``M * E`` rows (member-major).
        num_episodes: ``E``.
        generator: env randomness (initial states). Common random numbers: with shared (0-dim) env params, env
            ``e`` of every member starts from the same initial state (``E`` states drawn once and tiled).
        env_params: ``None``, 0-dim fields (one env for all), or ``[M * E]`` fields (then no CRN of start states).
        max_steps: step budget per episode, default ``env.spec.max_episode_steps``. Rewards after an env's first
            ``terminated``/``truncated`` are masked; there is no host sync (the loop runs ``max_steps`` steps).
    """
    m = params.shape[0]
    e = int(num_episodes)
    if env_params is None or is_broadcast(env_params):
        state, obs = env.reset(e, generator, env_params)
        state = type(state)(*(f.repeat(m, *([1] * (f.dim() - 1))) for f in state))
        obs = obs.repeat(m, *([1] * (obs.dim() - 1)))
    else:  # per-row env params (a population of envs): each row starts from its own env's distribution
        state, obs = env.reset(m * e, generator, env_params)
    returns = torch.zeros(m * e, device=params.device)
    done = torch.zeros(m * e, dtype=torch.bool, device=params.device)
    for _ in range(int(max_steps or env.spec.max_episode_steps)):
        a = act(params, obs.reshape(m, e, -1).to(params.device))
        a = a.reshape(m * e, *a.shape[2:])
        state, obs, reward, term, trunc = env.step(state, a, generator, env_params)
        returns = returns + reward * (~done)
        done = done | term | trunc
    return returns.reshape(m, e)


class ReplayBuffer:
    """Per-member replay buffers as preallocated tensors ``[M, capacity, ...]``.

    Every member writes the same slots (``n`` transitions per call, ring order), so ``add`` is one slice assignment
    per field and ``sample`` one ``take_along_dim`` with per-member indices ``[M, b]``. ``weight`` is 0 for
    transitions that were truncated without terminating: their stored next observation is the auto-reset one.
    """

    def __init__(self, members: int, capacity: int, obs_dim: int, action_shape: tuple[int, ...],
                 action_dtype: torch.dtype, device: torch.device) -> None:
        self.capacity = capacity
        self.obs = torch.zeros(members, capacity, obs_dim, device=device)
        self.next_obs = torch.zeros(members, capacity, obs_dim, device=device)
        self.action = torch.zeros(members, capacity, *action_shape, dtype=action_dtype, device=device)
        self.reward = torch.zeros(members, capacity, device=device)
        self.terminated = torch.zeros(members, capacity, device=device)
        self.weight = torch.zeros(members, capacity, device=device)
        self.pos = 0
        self.size = 0

    def add(self, obs: Tensor, next_obs: Tensor, action: Tensor, reward: Tensor, terminated: Tensor,
            truncated: Tensor) -> None:
        """Store ``n`` transitions per member (all ``[M, n, ...]``); ``capacity`` must be a multiple of ``n``."""
        n = obs.shape[1]
        sl = slice(self.pos, self.pos + n)
        self.obs[:, sl] = obs
        self.next_obs[:, sl] = next_obs
        self.action[:, sl] = action
        self.reward[:, sl] = reward
        self.terminated[:, sl] = terminated.float()
        self.weight[:, sl] = (terminated | ~truncated).float()
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, idx: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Transitions at per-member indices ``idx [M, b]``: (obs, action, reward, next_obs, terminated, weight)."""

        def take(x: Tensor) -> Tensor:
            i = idx.reshape(*idx.shape, *([1] * (x.dim() - 2)))
            return torch.take_along_dim(x, i, dim=1)

        return (take(self.obs), take(self.action), take(self.reward), take(self.next_obs), take(self.terminated),
                take(self.weight))
