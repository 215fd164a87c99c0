"""Keyed randomness and small helpers for trees of tensors (NamedTuples of tensors).

Keyed randomness: a counter-based hash of per-member 32-bit ``keys [M]`` int64 (as JAX keys, not a stateful
generator). Member ``m``'s numbers depend only on ``keys[m]`` and the counters, never on ``M``: an ``M``-member
computation equals ``M`` single-member ones with the same keys, and equal keys give common random numbers across
members. Envs keep drawing from their ``torch.Generator`` (the env contract); learners and network inits use keys.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor

__all__ = [
    "make_keys",
    "fold_in",
    "uniform",
    "normal",
    "gumbel",
    "gumbel_from_uniform",
    "randint",
    "permutation",
    "tile_rows",
    "is_broadcast",
    "where_rows",
]

_M32 = 0xFFFFFFFF


def _mix32(x: Tensor) -> Tensor:
    """A 32-bit integer hash (Wellons' "lowbias32") on int64 tensors holding values in ``[0, 2^32)``.

    Products may wrap around int64; only their low 32 bits are kept, which two's-complement wrap preserves.
    """
    x = ((x ^ (x >> 16)) * 0x7FEB352D) & _M32
    x = ((x ^ (x >> 15)) * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def make_keys(seed: int | Tensor, num_members: int, device: torch.device | str = "cpu") -> Tensor:
    """Per-member keys ``[M]`` int64 from a seed: member ``m`` gets ``hash(seed, m)``.

    ``seed`` may be an int or an int tensor; ``make_keys(s, M)[m] == make_keys(s, m + 1)[m]``.
    """
    if isinstance(seed, Tensor):
        s = seed.to(device=device, dtype=torch.int64).reshape(())
    else:
        s = torch.tensor(int(seed), dtype=torch.int64, device=device)
    s = _mix32((s & _M32) ^ 0x3C6EF372)
    idx = torch.arange(num_members, dtype=torch.int64, device=device)
    return _mix32(s ^ _mix32(idx + 0x9E3779B9))


def fold_in(keys: Tensor, data: int | Tensor) -> Tensor:
    """Derive new keys ``[...]`` from ``keys`` and an integer (a step counter or a stream id)."""
    d = data & _M32 if isinstance(data, Tensor) else int(data) & _M32
    return _mix32(keys ^ _mix32(torch.as_tensor(d, dtype=torch.int64, device=keys.device) * 0x9E3779B9 & _M32))


def _bits(keys: Tensor, shape: Sequence[int]) -> Tensor:
    """32 random bits per element: ``keys [M]`` -> int64 ``[M, *shape]`` in ``[0, 2^32)``."""
    n = math.prod(shape)
    ctr = torch.arange(n, dtype=torch.int64, device=keys.device).reshape(*shape)
    k = keys.reshape(*keys.shape, *([1] * len(shape)))
    k2 = _mix32(k ^ 0x85EBCA6B)
    return _mix32(_mix32((ctr * 0x9E3779B9 + k) & _M32) ^ k2)


def uniform(keys: Tensor, shape: Sequence[int]) -> Tensor:
    """Uniform float32 in the open interval ``(0, 1)``: ``keys [M]`` -> ``[M, *shape]`` (24-bit resolution)."""
    return ((_bits(keys, shape) >> 8).to(torch.float32) + 0.5) * (1.0 / 16777216.0)


def normal(keys: Tensor, shape: Sequence[int]) -> Tensor:
    """Standard normal ``[M, *shape]`` (Box-Muller on two keyed uniform streams)."""
    u1 = uniform(fold_in(keys, 1), shape)
    u2 = uniform(fold_in(keys, 2), shape)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)


def gumbel_from_uniform(u: Tensor) -> Tensor:
    """Standard Gumbel noise from uniforms in ``(0, 1)``: ``-log(-log(u))`` (the Gumbel-max trick: ``argmax(logits
    + g)`` samples ``Categorical(logits)``)."""
    return -torch.log(-torch.log(u))


def gumbel(keys: Tensor, shape: Sequence[int]) -> Tensor:
    """Standard Gumbel ``[M, *shape]`` from keys: ``argmax(logits + gumbel)`` samples ``Categorical(logits)``."""
    return gumbel_from_uniform(uniform(keys, shape))


def randint(keys: Tensor, high: int | Tensor, shape: Sequence[int]) -> Tensor:
    """Integers uniform in ``[0, high)`` ``[M, *shape]`` int64 (``high`` an int or a broadcastable tensor)."""
    return (uniform(keys, shape) * high).floor().long().clamp_max(torch.as_tensor(high, device=keys.device) - 1)


def permutation(keys: Tensor, n: int) -> Tensor:
    """One random permutation of ``range(n)`` per member: ``[M, n]`` int64."""
    return torch.argsort(_bits(keys, (n,)), dim=-1)


# ---------------------------------------------------------------------------------------------------- tensor trees
T = TypeVar("T", bound=NamedTuple)


def tile_rows(tree: T, times: int) -> T:
    """Repeat every field of a NamedTuple of ``[B, ...]`` tensors ``times`` times along the batch dim:
    ``[times * B, ...]`` (row ``i * B + j`` is row ``j``)."""
    return type(tree)(*(f.repeat(times, *([1] * (f.dim() - 1))) for f in tree))


def where_rows(mask: Tensor, a: Any, b: Any) -> Any:
    """Row-wise ``where(mask, a, b)`` of two ``[B, ...]`` tensors or two NamedTuples of them (``mask [B]`` bool)."""
    if isinstance(a, Tensor):
        return torch.where(mask.reshape(-1, *([1] * (a.dim() - 1))), a, b)
    return type(a)(*(where_rows(mask, x, y) for x, y in zip(a, b)))


def is_broadcast(params: Any) -> bool:
    """True when every field of ``params`` is a 0-dim tensor (one env for every row of a batch)."""
    return all(isinstance(f, Tensor) and f.dim() == 0 for f in params)
