"""Evolution strategies with an evosax-style functional ``init / ask / tell`` API over flat ``[P, D]`` populations.

::

    es = make_strategy("open_es", num_dims=D, popsize=256)
    state = es.init(torch.zeros(D, device=device))
    gen = torch.Generator(device=device).manual_seed(0)
    for _ in range(generations):
        population = es.ask(state, gen)                  # [P, D]
        fitness = evaluate(population)                   # [P], larger is better (maximize=True)
        state, metrics = es.tell(state, population, fitness)

* The state is an :class:`ESState` (a ``NamedTuple`` of tensors): checkpoint it with
  ``torch.save(state._asdict(), path)`` and restore with ``ESState(**torch.load(path))``.
* Randomness only comes from the ``generator`` passed to ``ask``; ``tell`` is deterministic.
* Everything stays on the device of ``state.mean``; ``ask``/``tell`` never synchronise with the host.
* The objective sense is explicit (``maximize``; evosax minimises by default, a frequent source of bugs).
  Non-finite fitness values are replaced by the worst finite value of the generation
  (:func:`~torch_distill.es.shaping.sanitize`).

Both strategies reproduce the outer loops of HaDES (Lupu et al., ICLR 2024; FLAIROx/behaviour-distillation with
evosax <= 0.1.4), as run for the paper:

* :class:`OpenES` (Brax and MNIST runs): antithetic sampling, raw fitness (no shaping),
  ``grad = noise^T @ fitness / (P * sigma)``, Adam with ``beta1 = 0.99``, multiplicative sigma / lr decay
  with floors.
* :class:`SNES` (MinAtar runs): per-dimension sigma, temperature-20 softmax rank weights,
  ``lrate_sigma = (3 + ln d) / (5 sqrt d)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Protocol, Union

import torch
from torch import Tensor

from .optim import AdamState, adam_init, adam_update
from .shaping import SHAPING, sanitize, snes_weights

__all__ = [
    "ESState",
    "OpenESConfig",
    "SNESConfig",
    "OpenES",
    "SNES",
    "Strategy",
    "STRATEGIES",
    "make_strategy",
]


class ESState(NamedTuple):
    """State of an evolution strategy; a ``NamedTuple`` of tensors on one device.

    Attributes:
        mean: ``[D]`` float32 search-distribution mean (the current solution).
        sigma: ``[]`` (OpenES) or ``[D]`` (SNES) float32 standard deviation(s).
        lr: ``[]`` float32 learning rate (OpenES Adam rate, decayed per generation; SNES ``lrate_mean``).
        opt: :class:`~torch_distill.es.optim.AdamState` (OpenES); SNES carries zero placeholders shaped ``[D]``.
        generation: ``[]`` int64 number of ``tell`` calls so far.
    """

    mean: Tensor
    sigma: Tensor
    lr: Tensor
    opt: AdamState
    generation: Tensor


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


@dataclass
class OpenESConfig:
    """Hyperparameters of :class:`OpenES` (defaults: the HaDES Brax runs, except the population size 2048)."""

    popsize: int = 256
    """Population size P (even when ``antithetic``)."""
    sigma_init: float = 0.03
    """Initial perturbation standard deviation (> 0)."""
    sigma_decay: float = 1.0
    """Multiplicative sigma decay per generation (HaDES MNIST: 0.999)."""
    sigma_limit: float = 0.0
    """Floor of sigma (HaDES MNIST: 0.001)."""
    lr: float = 0.05
    """Adam learning rate (> 0)."""
    lr_decay: float = 1.0
    """Multiplicative learning-rate decay per generation."""
    lr_limit: float = 0.0
    """Floor of the learning rate."""
    beta1: float = 0.99
    """Adam beta1; the HaDES reference (evosax <= 0.1.4) uses 0.99, not the usual 0.9."""
    beta2: float = 0.999
    """Adam beta2."""
    eps: float = 1e-8
    """Adam epsilon."""
    antithetic: bool = True
    """Mirrored sampling: member ``i + P/2`` uses the negated noise of member ``i``."""
    shaping: str = "none"
    """Fitness shaping: "none" (raw fitness, as the reference), "centered_rank" or "z_score"."""
    weight_decay: float = 0.0
    """L2 coefficient on the mean added to the (minimisation) gradient; 0 = off."""
    maximize: bool = True
    """True if larger fitness is better (returns); False for losses."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field, its value and what is expected."""
        _check_field(self, "popsize", lambda v: _is_int(v) and v >= 2, "an int >= 2")
        _require(
            not self.antithetic or self.popsize % 2 == 0,
            f"OpenESConfig.popsize must be even with antithetic=True, got popsize={self.popsize!r}",
        )
        _check_field(self, "sigma_init", lambda v: _finite(v) and v > 0, "> 0")
        _check_field(self, "sigma_decay", lambda v: _finite(v) and v > 0, "> 0")
        _check_field(self, "sigma_limit", lambda v: _finite(v) and v >= 0, ">= 0")
        _check_field(self, "lr", lambda v: _finite(v) and v > 0, "> 0")
        _check_field(self, "lr_decay", lambda v: _finite(v) and v > 0, "> 0")
        _check_field(self, "lr_limit", lambda v: _finite(v) and v >= 0, ">= 0")
        _check_field(self, "beta1", lambda v: _finite(v) and 0 <= v < 1, "in [0, 1)")
        _check_field(self, "beta2", lambda v: _finite(v) and 0 <= v < 1, "in [0, 1)")
        _check_field(self, "eps", lambda v: _finite(v) and v > 0, "> 0")
        _check_field(self, "shaping", lambda v: v in SHAPING, f"one of {sorted(SHAPING)}")
        _check_field(self, "weight_decay", lambda v: _finite(v) and v >= 0, ">= 0 (0 = off)")


@dataclass
class SNESConfig:
    """Hyperparameters of :class:`SNES` (defaults: the HaDES MinAtar runs, except the population size 2048)."""

    popsize: int = 256
    """Population size P (even when ``antithetic``)."""
    sigma_init: float = 0.5
    """Initial per-dimension standard deviation (> 0)."""
    temperature: float = 20.0
    """Rank-weight temperature (HaDES: 20); 0 selects NES rank utilities with baseline."""
    lrate_mean: float = 1.0
    """Learning rate of the mean (> 0)."""
    lrate_sigma: float | None = None
    """Learning rate of log-sigma; None -> (3 + ln d) / (5 sqrt d) (Wierstra et al., 2014)."""
    antithetic: bool = False
    """Mirrored sampling (the reference SNES does not use it)."""
    maximize: bool = True
    """True if larger fitness is better (returns); False for losses."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field, its value and what is expected."""
        _check_field(self, "popsize", lambda v: _is_int(v) and v >= 2, "an int >= 2")
        _require(
            not self.antithetic or self.popsize % 2 == 0,
            f"SNESConfig.popsize must be even with antithetic=True, got popsize={self.popsize!r}",
        )
        _check_field(self, "sigma_init", lambda v: _finite(v) and v > 0, "> 0")
        _check_field(self, "temperature", lambda v: _finite(v) and v >= 0, ">= 0 (0 = NES utilities)")
        _check_field(self, "lrate_mean", lambda v: _finite(v) and v > 0, "> 0")
        _check_field(self, "lrate_sigma", lambda v: v is None or (_finite(v) and v > 0), "None or > 0")


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

    config: Union[OpenESConfig, SNESConfig]
    num_dims: int
    popsize: int

    def init(self, mean: Tensor) -> ESState: ...

    def ask(self, state: ESState, generator: torch.Generator) -> Tensor: ...

    def tell(self, state: ESState, population: Tensor, fitness: Tensor) -> tuple[ESState, dict[str, Tensor]]: ...


# ----------------------------------------------------------------------------------------------- OpenES


class OpenES:
    """OpenAI-ES (Salimans et al., 2017) with Adam, as the HaDES reference runs it (evosax 0.1.4 ``OpenES``).

    * ``ask``: ``x = mean + sigma * z``, ``z ~ N(0, I)`` (antithetic: ``z[i + P/2] = -z[i]``).
    * ``tell``: ``z = (x - mean) / sigma``; non-finite fitness -> worst finite; utilities ``u`` = fitness if
      ``maximize`` else ``-fitness``, optionally shaped; ascent gradient ``g = z^T @ u / (P * sigma)``;
      Adam on the minimisation gradient ``-g + weight_decay * mean`` with the CURRENT lr;
      then ``sigma = max(sigma * sigma_decay, sigma_limit)``, ``lr = max(lr * lr_decay, lr_limit)``.

    With ``shaping="none"`` and ``maximize=True`` this is exactly the reference's update
    ``grad = noise^T @ (-fitness) / (N * sigma)`` minimised by Adam (beta1 0.99, beta2 0.999, eps 1e-8).
    """

    def __init__(self, config: OpenESConfig, num_dims: int) -> None:
        if not isinstance(config, OpenESConfig):
            raise TypeError(f"OpenES: expected an OpenESConfig, got {type(config).__name__}")
        config.validate()
        self.config = config
        self.num_dims = _check_num_dims("OpenES", num_dims)
        self.popsize = config.popsize
        self._shape = SHAPING[config.shaping]

    def init(self, mean: Tensor) -> ESState:
        """Initial state around ``mean [D]`` (float32 on ``mean``'s device; HaDES starts from zeros)."""
        mean = _check_mean("OpenES", mean, self.num_dims)
        c = self.config
        return ESState(
            mean=mean,
            sigma=torch.tensor(c.sigma_init, dtype=torch.float32, device=mean.device),
            lr=torch.tensor(c.lr, dtype=torch.float32, device=mean.device),
            opt=adam_init(mean),
            generation=torch.zeros((), dtype=torch.int64, device=mean.device),
        )

    def ask(self, state: ESState, generator: torch.Generator) -> Tensor:
        """Population ``[P, D]`` float32 on ``state.mean.device``; noise drawn from ``generator`` only."""
        z = _sample_noise(self.popsize, self.num_dims, self.config.antithetic, generator, state.mean)
        return state.mean + state.sigma * z

    def tell(self, state: ESState, population: Tensor, fitness: Tensor) -> tuple[ESState, dict[str, Tensor]]:
        """Update from ``population [P, D]`` (as returned by ``ask``) and its ``fitness [P]``.

        Returns the new state and a dict of ``[]`` tensors: ``grad_norm``, ``update_norm``, ``sigma_mean``,
        ``lr``, ``fitness_mean``, ``fitness_best`` (sanitised, original sense), ``num_nonfinite``.
        """
        c = self.config
        x = _check_tell_inputs("OpenES", self.popsize, self.num_dims, population, fitness)
        clean, util = _utilities(fitness, c.maximize)
        shaped = self._shape(util)
        noise = (x - state.mean) / state.sigma  # [P, D]
        grad_ascent = noise.T @ shaped / (self.popsize * state.sigma)  # [D]
        grad = -grad_ascent
        if c.weight_decay > 0.0:
            grad = grad + c.weight_decay * state.mean
        opt = state.opt if isinstance(state.opt, AdamState) else AdamState(*state.opt)
        delta, opt = adam_update(grad, opt, state.lr, c.beta1, c.beta2, c.eps)
        new_state = ESState(
            mean=state.mean - delta,
            sigma=torch.clamp(state.sigma * c.sigma_decay, min=c.sigma_limit),
            lr=torch.clamp(state.lr * c.lr_decay, min=c.lr_limit),
            opt=opt,
            generation=state.generation + 1,
        )
        metrics = {
            "grad_norm": torch.linalg.vector_norm(grad),
            "update_norm": torch.linalg.vector_norm(delta),
            "sigma_mean": state.sigma.mean(),
            "lr": state.lr,
            **_fitness_metrics(fitness, clean, c.maximize),
        }
        return new_state, metrics


# ------------------------------------------------------------------------------------------------- SNES


class SNES:
    """Separable NES (Schaul et al., 2011; Wierstra et al., 2014) as in evosax 0.1.4, used by HaDES on MinAtar.

    * ``ask``: ``x = mean + sigma * s``, ``s ~ N(0, I)`` with per-dimension ``sigma [D]``.
    * ``tell``: ``s = (x - mean) / sigma``; non-finite fitness -> worst finite; weights
      ``w = snes_weights(utilities, temperature)`` (``softmax(-T (rank / (P - 1) - 0.5))``, rank 0 = best;
      sum to one); ``mean += lrate_mean * sigma * sum_i w_i s_i``;
      ``sigma *= exp(lrate_sigma / 2 * sum_i w_i (s_i^2 - 1))``.
    """

    def __init__(self, config: SNESConfig, num_dims: int) -> None:
        if not isinstance(config, SNESConfig):
            raise TypeError(f"SNES: expected an SNESConfig, got {type(config).__name__}")
        config.validate()
        self.config = config
        self.num_dims = _check_num_dims("SNES", num_dims)
        self.popsize = config.popsize
        d = self.num_dims
        self.lrate_sigma = (
            float(config.lrate_sigma)
            if config.lrate_sigma is not None
            else (3.0 + math.log(d)) / (5.0 * math.sqrt(d))
        )

    def init(self, mean: Tensor) -> ESState:
        """Initial state around ``mean [D]``; ``sigma = sigma_init`` in every dimension."""
        mean = _check_mean("SNES", mean, self.num_dims)
        c = self.config
        return ESState(
            mean=mean,
            sigma=torch.full_like(mean, c.sigma_init),
            lr=torch.tensor(c.lrate_mean, dtype=torch.float32, device=mean.device),
            opt=adam_init(mean),  # unused placeholder, keeps one state layout for every strategy
            generation=torch.zeros((), dtype=torch.int64, device=mean.device),
        )

    def ask(self, state: ESState, generator: torch.Generator) -> Tensor:
        """Population ``[P, D]`` float32 on ``state.mean.device``; noise drawn from ``generator`` only."""
        s = _sample_noise(self.popsize, self.num_dims, self.config.antithetic, generator, state.mean)
        return state.mean + state.sigma * s

    def tell(self, state: ESState, population: Tensor, fitness: Tensor) -> tuple[ESState, dict[str, Tensor]]:
        """Update from ``population [P, D]`` and ``fitness [P]``.

        Returns the new state and a dict of ``[]`` tensors: ``grad_norm`` (of ``sum_i w_i s_i``),
        ``update_norm``, ``sigma_mean``, ``lr``, ``fitness_mean``, ``fitness_best``, ``num_nonfinite``.
        """
        c = self.config
        x = _check_tell_inputs("SNES", self.popsize, self.num_dims, population, fitness)
        clean, util = _utilities(fitness, c.maximize)
        w = snes_weights(util, c.temperature)  # [P]
        s = (x - state.mean) / state.sigma  # [P, D]
        grad_mean = w @ s  # [D]
        grad_sigma = w @ (s.square() - 1.0)  # [D]
        step = state.lr * state.sigma * grad_mean
        new_state = ESState(
            mean=state.mean + step,
            sigma=state.sigma * torch.exp(0.5 * self.lrate_sigma * grad_sigma),
            lr=state.lr,
            opt=state.opt,
            generation=state.generation + 1,
        )
        metrics = {
            "grad_norm": torch.linalg.vector_norm(grad_mean),
            "update_norm": torch.linalg.vector_norm(step),
            "sigma_mean": state.sigma.mean(),
            "lr": state.lr,
            **_fitness_metrics(fitness, clean, c.maximize),
        }
        return new_state, metrics


# --------------------------------------------------------------------------------------------- registry

STRATEGIES: dict[str, tuple[type, type]] = {
    "open_es": (OpenES, OpenESConfig),
    "snes": (SNES, SNESConfig),
}
"""Registry: name -> (strategy class, config dataclass)."""


def make_strategy(name: str, num_dims: int, **overrides: object) -> Strategy:
    """Build a registered strategy, e.g. ``make_strategy("snes", 64, popsize=512, maximize=True)``.

    Raises:
        ValueError: unknown ``name``, unknown override field, or an invalid config value.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {sorted(STRATEGIES)}")
    cls, cfg_cls = STRATEGIES[name]
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"unknown {cfg_cls.__name__} field(s) {unknown} for strategy {name!r}; expected some of {sorted(fields)}"
        )
    return cls(cfg_cls(**overrides), num_dims)
