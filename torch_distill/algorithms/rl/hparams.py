"""Per-member hyperparameters of the population-vectorised agents: checks, ``[M]`` tensors, sampling.

Every numeric hyperparameter of an agent config may be a Python number (one value for every member) or an ``[M]``
tensor (one value per member); :func:`member_tensor` turns either into ``[M]``. Synthetic-env searches re-sample
them every inner loop from a space of lists and ranges (:func:`sample_hparams`, :func:`with_hparams`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "REFERENCE_GAMMA",
    "REFERENCE_LR",
    "REFERENCE_TAU",
    "HParam",
    "LogUniform",
    "Uniform",
    "check_ints",
    "member_hparams",
    "member_tensor",
    "sample_hparams",
    "with_hparams",
]

HParam = float | Tensor
"""A hyperparameter: one number for every member, or an ``[M]`` tensor."""

REFERENCE_LR = [1e-2, 5e-3, 1e-3, 5e-4, 1e-4]
"""Learning rates sampled by the SCB reference's inner loops (synthetic-gymnax configs)."""
REFERENCE_GAMMA = [1.0, 0.99, 0.95, 0.9, 0.8]
"""Discounts sampled by the SCB reference's inner loops."""
REFERENCE_TAU = [0.01, 0.05, 0.1, 0.3, 0.2]
"""Target-network steps of the SCB reference's off-policy inner loops, as ``target <- target + tau (online -
target)`` (the reference lists the Polyak keep-rate ``1 - tau``)."""


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


def member_hparams(config: Any, names: Sequence[str], num_members: int, device: torch.device) -> dict[str, Tensor]:
    """``{name: [M] float32}`` for the fields ``names`` of ``config`` (:func:`member_tensor`; errors name the field
    as ``ConfigClass.name``)."""
    prefix = type(config).__name__
    return {k: member_tensor(getattr(config, k), num_members, device, f"{prefix}.{k}") for k in names}


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
