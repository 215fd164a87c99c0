"""What every strategy shares: the state (:class:`ESState`), the config checks, input validation, noise,
utilities and metrics, and the :class:`Strategy` protocol."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, Union

import torch
from torch import Tensor

from .optim import AdamState
from .shaping import sanitize


class _ESStateFields(NamedTuple):
    mean: Tensor
    sigma: Tensor
    lr: Tensor
    opt: AdamState
    generation: Tensor
    extra: Union[dict[str, Tensor], None] = None


class ESState(_ESStateFields):
    """State of an evolution strategy; a ``NamedTuple`` of tensors on one device.

    Attributes:
        mean: ``[D]`` float32 search-distribution mean (the current solution).
        sigma: ``[]`` (OpenES, CMA-ES and Sep-CMA-ES step size) or ``[D]`` (SNES, PGPE, CEM) float32 standard
            deviation(s).
        lr: ``[]`` float32 learning rate (OpenES Adam rate, decayed per generation; SNES ``lrate_mean``; CMA-ES
            ``c_m``; PGPE centre learning rate; CEM refit weight ``1 - smoothing``).
        opt: :class:`~torch_distill.es.optim.AdamState` (OpenES, PGPE with ``optimizer="adam"``); the other
            strategies carry zero placeholders shaped ``[D]``.
        generation: ``[]`` int64 number of ``tell`` calls so far.
        extra: the strategy's further tensors, a ``dict[str, Tensor]`` (CMA-ES: covariance, eigenbasis, evolution
            paths, termination histories; PGPE: ClipUp velocity; see each strategy's ``init``), or None (OpenES,
            SNES, CEM).

    ``_asdict()`` leaves ``extra`` out when it is None, so ``ESState(**state._asdict())`` round-trips for every
    strategy (``extra`` defaults to None) while OpenES / SNES states and checkpoints keep exactly the five
    entries they had before ``extra`` existed (an older reader loads them; older checkpoints load here).
    Checkpoint with ``torch.save(state._asdict(), path)``; ``ESState(**torch.load(path))`` (``weights_only=True``,
    the default) restores it.
    """

    __slots__ = ()

    def _asdict(self) -> dict[str, Any]:  # type: ignore[override]
        d = super()._asdict()
        if d["extra"] is None:
            del d["extra"]
        return d


# --------------------------------------------------------------------------------------------- configs


def _require(ok: bool, msg: str) -> None:
    if not ok:
        raise ValueError(msg)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_field(config: object, name: str, ok: Callable[[Any], bool], expected: str) -> None:
    value = getattr(config, name)
    if not ok(value):
        raise ValueError(f"{type(config).__name__}.{name} must be {expected}, got {value!r}")


def _check_population(config: Any, optional: bool = False) -> None:
    """The checks every config shares: ``popsize`` an int >= 2 (or None where ``optional``: the strategy's
    default), even under mirrored sampling, and ``sigma_init`` > 0."""
    if optional:
        _check_field(config, "popsize", lambda v: v is None or (_is_int(v) and v >= 2), "None or an int >= 2")
    else:
        _check_field(config, "popsize", lambda v: _is_int(v) and v >= 2, "an int >= 2")
    _require(
        not config.antithetic or config.popsize is None or config.popsize % 2 == 0,
        f"{type(config).__name__}.popsize must be even with antithetic=True, got popsize={config.popsize!r}",
    )
    _check_field(config, "sigma_init", lambda v: _finite(v) and v > 0, "> 0")


# ------------------------------------------------------------------------------------------ shared code


def _check_num_dims(name: str, num_dims: int) -> int:
    _require(_is_int(num_dims) and num_dims >= 1, f"{name}: num_dims must be an int >= 1, got {num_dims!r}")
    return num_dims


def _check_mean(name: str, mean: Tensor, num_dims: int) -> Tensor:
    if not isinstance(mean, Tensor):
        raise TypeError(
            f"{name}.init: expected mean as a torch.Tensor of shape [{num_dims}], got {type(mean).__name__}"
        )
    _require(
        tuple(mean.shape) == (num_dims,),
        f"{name}.init: expected mean of shape [{num_dims}] (num_dims), got shape {tuple(mean.shape)}",
    )
    _require(mean.is_floating_point(), f"{name}.init: expected a floating-point mean, got dtype {mean.dtype}")
    return mean.detach().to(torch.float32).clone()


def _check_tell_inputs(name: str, popsize: int, num_dims: int, population: Tensor, fitness: Tensor) -> Tensor:
    _require(
        isinstance(population, Tensor) and tuple(population.shape) == (popsize, num_dims),
        f"{name}.tell: expected population of shape [P, D] = [{popsize}, {num_dims}], got "
        f"{tuple(population.shape) if isinstance(population, Tensor) else type(population).__name__}",
    )
    _require(
        isinstance(fitness, Tensor) and tuple(fitness.shape) == (popsize,),
        f"{name}.tell: expected fitness of shape [P] = [{popsize}], got "
        f"{tuple(fitness.shape) if isinstance(fitness, Tensor) else type(fitness).__name__}",
    )
    return population.to(torch.float32)


def _sample_noise(
    popsize: int, num_dims: int, antithetic: bool, generator: torch.Generator, like: Tensor
) -> Tensor:
    """Standard normal noise ``[P, D]``; antithetic: rows ``i`` and ``i + P/2`` are negatives of each other."""
    rows = popsize // 2 if antithetic else popsize
    z = torch.randn(rows, num_dims, generator=generator, device=like.device, dtype=torch.float32)
    return torch.cat([z, -z], dim=0) if antithetic else z


def _utilities(fitness: Tensor, maximize: bool) -> tuple[Tensor, Tensor]:
    """Sanitised fitness (original sense) and utilities (larger is better) ``[P]``."""
    clean = sanitize(fitness, maximize)
    return clean, (clean if maximize else -clean)


def _fitness_metrics(fitness: Tensor, clean: Tensor, maximize: bool) -> dict[str, Tensor]:
    return {
        "fitness_mean": clean.mean(),
        "fitness_best": clean.amax() if maximize else clean.amin(),
        "num_nonfinite": (~torch.isfinite(fitness)).sum(),
    }


class Strategy(Protocol):
    """What every strategy of :data:`STRATEGIES` provides."""

    config: Any
    num_dims: int
    popsize: int

    def init(self, mean: Tensor) -> ESState: ...

    def ask(self, state: ESState, generator: torch.Generator) -> Tensor: ...

    def tell(self, state: ESState, population: Tensor, fitness: Tensor) -> tuple[ESState, dict[str, Tensor]]: ...


