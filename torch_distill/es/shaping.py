"""Fitness shaping: small pure functions ``fitness [P] -> [P]`` (float32, on the input's device).

Conventions shared by every function here (following evosax's ``FitnessShaper`` and Wierstra et al., 2014):

* the input is a 1-D tensor ``[P]`` of *utilities* in which LARGER IS BETTER (strategies turn a minimisation
  objective into utilities by negation before calling these); :func:`sanitize` is the only function that
  takes an explicit objective sense;
* rank-based transforms break ties by population index, deterministically: among equal fitness values the
  member with the LOWER index counts as the better one (a stable sort, as ``argsort`` of the minimised
  fitness in evosax <= 0.1.4, which HaDES used);
* nothing here synchronises with the host (no ``.item()``, no Python branching on tensor values), so the
  functions run unchanged on CPU and CUDA and under ``torch.func.vmap``/``torch.compile``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

__all__ = [
    "sanitize",
    "centered_ranks",
    "z_score",
    "nes_utilities",
    "snes_weights",
    "identity",
    "best_first_order",
    "SHAPING",
]


def _check_1d(fitness: Tensor, name: str) -> Tensor:
    if not isinstance(fitness, Tensor):
        raise TypeError(f"{name}: expected fitness as a torch.Tensor of shape [P], got {type(fitness).__name__}")
    if fitness.dim() != 1 or fitness.shape[0] < 1:
        raise ValueError(f"{name}: expected fitness of shape [P] with P >= 1, got shape {tuple(fitness.shape)}")
    return fitness.to(torch.float32)


def sanitize(fitness: Tensor, maximize: bool) -> Tensor:
    """Replace non-finite fitness values (NaN, +inf, -inf) by the worst finite value of the batch.

    The objective sense is kept: the worst value is the minimum finite value when ``maximize`` and the maximum
    finite value otherwise. A batch without any finite value becomes all zeros (so an update driven by it is
    a no-op for gradient strategies). evosax treats NaN as the worst fitness in the same spirit.

    Args:
        fitness: ``[P]`` raw fitness.
        maximize: True if larger fitness is better.

    Returns:
        ``[P]`` float32 fitness, all finite, same device.
    """
    f = _check_1d(fitness, "sanitize")
    finite = torch.isfinite(f)
    if maximize:
        worst = torch.where(finite, f, torch.full_like(f, math.inf)).amin()
    else:
        worst = torch.where(finite, f, torch.full_like(f, -math.inf)).amax()
    worst = torch.where(finite.any(), worst, torch.zeros_like(worst))
    return torch.where(finite, f, worst)


def _best_first_order(fitness: Tensor) -> Tensor:
    """Indices sorting ``fitness`` from best (largest) to worst; ties: lower index first. ``[P]`` int64."""
    return torch.argsort(fitness, descending=True, stable=True)


def best_first_order(fitness: Tensor) -> Tensor:
    """Indices sorting utilities ``fitness [P]`` (larger is better) from best to worst. ``[P]`` int64.

    Ties are broken by index (the lower index first), as every rank-based function here; the selection of
    CMA-ES, Sep-CMA-ES and CEM uses it.
    """
    return _best_first_order(_check_1d(fitness, "best_first_order"))


def _ranks_best_first(fitness: Tensor) -> Tensor:
    """Rank of every member, 0 for the best, ``P - 1`` for the worst (ties by index). ``[P]`` float32."""
    order = _best_first_order(fitness)
    positions = torch.arange(fitness.shape[0], device=fitness.device, dtype=torch.float32)
    return torch.empty_like(positions).scatter_(0, order, positions)


def identity(fitness: Tensor) -> Tensor:
    """No shaping (the raw fitness, as the HaDES reference OpenES runs). ``[P] -> [P]`` float32."""
    return _check_1d(fitness, "identity")


def centered_ranks(fitness: Tensor) -> Tensor:
    """Centred ranks in ``[-0.5, 0.5]``: the best member gets 0.5, the worst -0.5 (Salimans et al., 2017).

    Ties are broken by index (the lower index ranks higher). ``P == 1`` gives ``[0.]``.

    Example: ``centered_ranks([3., 1., 2.]) == [0.5, -0.5, 0.0]``; ``centered_ranks([1., 1., 0.]) ==
    [0.5, 0.0, -0.5]``.
    """
    f = _check_1d(fitness, "centered_ranks")
    p = f.shape[0]
    if p == 1:
        return torch.zeros_like(f)
    ranks = _ranks_best_first(f)  # 0 = best
    return (p - 1 - ranks) / (p - 1) - 0.5


def z_score(fitness: Tensor, eps: float = 1e-8) -> Tensor:
    """``(f - mean(f)) / (std(f) + eps)`` with the population standard deviation (ddof 0, as evosax)."""
    f = _check_1d(fitness, "z_score")
    mean = f.mean()
    std = (f - mean).square().mean().sqrt()
    return (f - mean) / (std + eps)


def nes_utilities(fitness: Tensor) -> Tensor:
    """NES rank utilities with baseline (Wierstra et al., 2014, JMLR 15, eq. in Sec. 3.1).

    ``u_k = max(0, ln(P/2 + 1) - ln k) / sum_j max(0, ln(P/2 + 1) - ln j) - 1/P`` where ``k = 1`` is the best
    member; the utilities sum to zero and the best member gets the largest value. Ties are broken by index.
    This is evosax's ``get_recombination_weights(use_baseline=True)``, used by SNES when ``temperature == 0``.

    Returns:
        ``[P]`` float32 utilities in the input's order.
    """
    f = _check_1d(fitness, "nes_utilities")
    p = f.shape[0]
    k = _ranks_best_first(f) + 1.0
    raw = torch.clamp(math.log(p / 2 + 1) - torch.log(k), min=0.0)
    return raw / raw.sum() - 1.0 / p


def snes_weights(fitness: Tensor, temperature: float) -> Tensor:
    """SNES recombination weights of the HaDES reference (evosax 0.1.4 ``SNES``, ``get_temp_weights``).

    With ``rank = 0`` for the best member and ``P - 1`` for the worst (ties by index):
    ``w = softmax(-temperature * (rank / (P - 1) - 0.5))`` -- positive weights summing to one, the best member
    largest. HaDES ran SNES with ``temperature = 20`` on MinAtar. ``temperature == 0`` selects the plain NES
    "rank weights with baseline", :func:`nes_utilities` (which sum to zero, not one).

    Note: evosax 0.1.6 and later changed this to DES-style weights
    ``softmax(-20 * sigmoid(temperature * centred_rank))``; we follow the version HaDES used (<= 0.1.4).

    Args:
        fitness: ``[P]`` utilities, larger is better.
        temperature: ``>= 0`` (a Python float: it selects the formula, not a tensor value).

    Returns:
        ``[P]`` float32 weights in the input's order.
    """
    f = _check_1d(fitness, "snes_weights")
    temperature = float(temperature)
    if not math.isfinite(temperature) or temperature < 0.0:
        raise ValueError(f"snes_weights: temperature must be a finite float >= 0, got {temperature!r}")
    if temperature == 0.0:
        return nes_utilities(f)
    p = f.shape[0]
    centred = _ranks_best_first(f) / max(p - 1, 1) - 0.5
    return torch.softmax(-temperature * centred, dim=0)


SHAPING: dict[str, Callable[[Tensor], Tensor]] = {
    "none": identity,
    "centered_rank": centered_ranks,
    "z_score": z_score,
}
"""Fitness shaping applied by :class:`~torch_distill.es.strategies.OpenES` (``OpenESConfig.shaping``)."""
