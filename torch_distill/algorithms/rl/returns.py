"""Pure tensor math of value targets: GAE and the classification targets of "Stop Regressing" (HL-Gauss, two-hot).

No modules and no state (the torchrl layering): the agents call these on ``[T, M, n]`` / ``[M, b]`` tensors.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["bootstrap_truncated", "gae", "histogram_mean", "hl_gauss_support", "hl_gauss_target", "two_hot_target"]


def bootstrap_truncated(reward: Tensor, final_value: Tensor, gamma: Tensor, terminated: Tensor,
                        truncated: Tensor) -> Tensor:
    """``r + gamma V(s_final)`` where a step was truncated and not terminated, else ``r`` (Pardo et al. 2018, "Time
    Limits in Reinforcement Learning"; SB3's ``handle_timeout_termination``): a time limit is not a terminal state,
    so its return continues from the final observation. All ``[*B]`` (``gamma`` broadcastable)."""
    return torch.where(truncated & ~terminated, reward + gamma * final_value, reward)


def gae(
    rewards: Tensor, values: Tensor, dones: Tensor, last_value: Tensor, gamma: Tensor, lam: Tensor
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016).

    ``delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t``; ``A_t = delta_t + gamma lam (1 - d_t) A_{t+1}``.

    Args:
        rewards, values, dones: ``[T, *B]`` (``dones[t]`` = the transition at ``t`` ended its episode). A time
            limit is bootstrapped by the caller: ``rewards[t]`` of a truncated step already holds
            ``r_t + gamma V(s_final)``, and ``dones[t]`` cuts the recursion there.
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
