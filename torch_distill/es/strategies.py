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

Further strategies people use (not part of the HaDES reference):

* :class:`CMAES` (``"cma_es"``): full-covariance CMA-ES with the defaults of Hansen's tutorial (2016), active
  (negative) weights, eigendecomposition by ``torch.linalg.eigh`` (optionally lazy), termination criteria
  (:meth:`CMAES.stop_reasons`); for genomes up to a few thousand dimensions (``C`` is ``[D, D]``).
* :class:`SepCMAES` (``"sep_cma_es"``): diagonal covariance, ``c_1``/``c_mu`` scaled by ``(D + 2) / 3``
  (Ros & Hansen, 2008); ``O(P D)`` per generation.
* :class:`PGPE` (``"pgpe"``): PGPE (Sehnke et al., 2010) with the ClipUp optimiser (Toklu et al., 2020) as
  EvoTorch runs it: symmetric sampling, centred ranks, per-dimension stdev with a bounded relative change.
* :class:`CEM` (``"cem"``): the cross-entropy method, a diagonal Gaussian refitted to the elite.
* :class:`IPOP`: IPOP restarts (Auger & Hansen, 2005) of CMA-ES / Sep-CMA-ES with a growing population. The
  population size is a tensor shape, so a restart builds a new strategy: ``IPOP`` is a host-level driver around
  ``ask``/``tell`` that reads the termination criteria once every ``check_every`` generations (its only host
  sync); it is not a registry entry.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Protocol, Union

import torch
from torch import Tensor

from .optim import AdamState, ClipUpState, adam_init, adam_update, clipup_update
from .shaping import SHAPING, best_first_order, sanitize, snes_weights

__all__ = [
    "ESState",
    "OpenESConfig",
    "SNESConfig",
    "OpenES",
    "SNES",
    "CMAESConfig",
    "SepCMAESConfig",
    "PGPEConfig",
    "CEMConfig",
    "CMAES",
    "SepCMAES",
    "PGPE",
    "CEM",
    "IPOPConfig",
    "IPOP",
    "Strategy",
    "STRATEGIES",
    "make_strategy",
]


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
        _check_population(self)
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
        _check_population(self)
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

    config: Union[OpenESConfig, SNESConfig, "CMAESConfig", "SepCMAESConfig", "PGPEConfig", "CEMConfig"]
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


# ---------------------------------------------------------------------------------------- CMA-ES family


def _opt_unit(v: object) -> bool:
    return v is None or (_finite(v) and 0 < v <= 1)


def _opt_rate(v: object) -> bool:
    return v is None or (_finite(v) and 0 <= v < 1)


@dataclass
class _CMACommonConfig:
    """Fields shared by :class:`CMAESConfig` and :class:`SepCMAESConfig` (see there)."""

    popsize: int | None = None
    """Population size lambda (>= 2); None -> ``4 + floor(3 ln D)`` (Hansen 2016, eq. 48)."""
    sigma_init: float = 0.5
    """Initial step size sigma (> 0); a quarter to a half of the search range is the usual choice."""
    lrate_mean: float = 1.0
    """Learning rate of the mean ``c_m`` (Hansen 2016, eq. 54: 1)."""
    c_sigma: float | None = None
    """Cumulation rate of the step-size path in (0, 1]; None -> ``(mu_eff + 2) / (D + mu_eff + 5)`` (eq. 55)."""
    d_sigma: float | None = None
    """Step-size damping (> 0); None -> ``1 + 2 max(0, sqrt((mu_eff - 1) / (D + 1)) - 1) + c_sigma`` (eq. 55)."""
    c_c: float | None = None
    """Cumulation rate of the rank-one path in (0, 1]; None -> ``(4 + mu_eff / D) / (D + 4 + 2 mu_eff / D)``."""
    c_1: float | None = None
    """Rank-one learning rate in [0, 1); None -> ``2 / ((D + 1.3)^2 + mu_eff)`` (eq. 57)."""
    c_mu: float | None = None
    """Rank-mu learning rate in [0, 1); None -> ``min(1 - c_1, 2 (mu_eff - 2 + 1/mu_eff) / ((D + 2)^2 + mu_eff))``."""
    antithetic: bool = False
    """Mirrored sampling (``z[i + P/2] = -z[i]``; Brockhoff et al., 2010); off in the tutorial."""
    tol_fun: float = 1e-12
    """TolFun: stop when the best and worst fitness of the last ``10 + ceil(30 D / lambda)`` generations span less."""
    tol_x: float = 1e-12
    """TolX, relative to ``sigma_init``: stop when every ``sigma sqrt(C_ii)`` and ``sigma |p_c,i|`` is smaller."""
    tol_up_sigma: float = 1e20
    """TolUpSigma: stop when ``sigma / sigma_init > tol_up_sigma * sqrt(largest eigenvalue of C)``."""
    tol_condition: float = 1e14
    """ConditionCov: stop when the condition number of ``C`` exceeds it."""
    maximize: bool = True
    """True if larger fitness is better (returns); False for losses."""

    def _validate_common(self) -> None:
        _check_population(self, optional=True)
        _check_field(self, "lrate_mean", lambda v: _finite(v) and v > 0, "> 0")
        _check_field(self, "c_sigma", _opt_unit, "None or in (0, 1]")
        _check_field(self, "d_sigma", lambda v: v is None or (_finite(v) and v > 0), "None or > 0")
        _check_field(self, "c_c", _opt_unit, "None or in (0, 1]")
        _check_field(self, "c_1", _opt_rate, "None or in [0, 1)")
        _check_field(self, "c_mu", _opt_rate, "None or in [0, 1)")
        for f in ("tol_fun", "tol_x", "tol_up_sigma", "tol_condition"):
            _check_field(self, f, lambda v: _finite(v) and v > 0, "> 0")


@dataclass
class CMAESConfig(_CMACommonConfig):
    """Hyperparameters of :class:`CMAES`; None takes the default of Hansen (2016), "The CMA Evolution Strategy:
    A Tutorial", Table 1 / eqs. (48)-(58), computed from ``D`` and lambda."""

    active: bool = True
    """Active CMA: the worse half gets negative recombination weights in the rank-mu update (tutorial default,
    eq. 53); False -> weights 0 there (the classic ``(mu/mu_w, lambda)`` update)."""
    eigen_interval: int | None = 1
    """Eigendecomposition of ``C`` every k-th generation (1: every one, as the tutorial's pseudo-code and the
    ``cmaes`` package); None -> ``max(1, floor(1 / (10 D (c_1 + c_mu))))`` (tutorial, B.2). Between two
    decompositions sampling and the step-size path use the last eigenbasis. The schedule lives in a tensor
    *shape* (``extra["eigen_age"]``), so it needs no host sync."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field, its value and what is expected."""
        self._validate_common()
        _check_field(self, "eigen_interval", lambda v: v is None or (_is_int(v) and v >= 1), "None or an int >= 1")


@dataclass
class SepCMAESConfig(_CMACommonConfig):
    """Hyperparameters of :class:`SepCMAES`: those of CMA-ES (Hansen 2016) with positive weights only, and
    ``c_1``, ``c_mu`` (when None) multiplied by ``(D + 2) / 3`` (Ros & Hansen, 2008), ``c_mu <= 1 - c_1``."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field, its value and what is expected."""
        self._validate_common()


_EIG_FLOOR = 1e-20
"""Smallest eigenvalue of ``C`` kept by the eigendecomposition (float32; ``cmaes`` uses 1e-8 on its sqrt)."""


def _push(hist: Tensor, generation: Tensor, values: Tensor) -> Tensor:
    """Ring buffer ``[K, H]``: column ``generation % H`` <- ``values [K]`` (no host sync)."""
    h = hist.shape[-1]
    mask = torch.arange(h, device=hist.device) == torch.remainder(generation, h)
    return torch.where(mask, values[:, None], hist)


class _CMABase:
    """Parameters, selection and termination criteria shared by :class:`CMAES` and :class:`SepCMAES`."""

    _name = "CMAES"
    _separable = False

    def _setup(self, config: _CMACommonConfig, num_dims: int) -> None:
        config.validate()
        self.config = config
        n = self.num_dims = _check_num_dims(self._name, num_dims)
        lam = self.popsize = config.popsize if config.popsize is not None else 4 + int(math.floor(3 * math.log(n)))
        _require(
            not config.antithetic or lam % 2 == 0,
            f"{type(config).__name__}.popsize must be even with antithetic=True, got the default popsize={lam} "
            f"(4 + floor(3 ln {n})); set popsize",
        )
        mu = self.mu = lam // 2
        wp = [math.log((lam + 1) / 2) - math.log(i) for i in range(1, lam + 1)]  # eq. 49
        pos, neg = wp[:mu], wp[mu:]
        mu_eff = self.mu_eff = sum(pos) ** 2 / sum(x * x for x in pos)
        neg_sq = sum(x * x for x in neg)
        mu_eff_minus = sum(neg) ** 2 / neg_sq if neg_sq > 0 else 0.0
        c1 = 2.0 / ((n + 1.3) ** 2 + mu_eff)  # eq. 57, alpha_cov = 2
        cmu = min(1.0 - c1, 2.0 * (mu_eff - 2.0 + 1.0 / mu_eff) / ((n + 2) ** 2 + 2.0 * mu_eff / 2.0))  # eq. 58
        if self._separable:  # Ros & Hansen (2008): the diagonal model learns (D + 2) / 3 times faster
            c1 = c1 * (n + 2) / 3.0
            cmu = min(1.0 - c1, cmu * (n + 2) / 3.0)
        self.c_1 = float(config.c_1) if config.c_1 is not None else c1
        self.c_mu = float(config.c_mu) if config.c_mu is not None else cmu
        _require(
            self.c_1 + self.c_mu <= 1.0,
            f"{type(config).__name__}: c_1 + c_mu must be <= 1, got c_1={self.c_1!r}, c_mu={self.c_mu!r}",
        )
        self.c_sigma = float(config.c_sigma) if config.c_sigma is not None else (mu_eff + 2) / (n + mu_eff + 5)
        self.d_sigma = (
            float(config.d_sigma)
            if config.d_sigma is not None
            else 1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (n + 1)) - 1) + self.c_sigma
        )
        self.c_c = float(config.c_c) if config.c_c is not None else (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n)
        self.chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))  # E||N(0, I)||
        # recombination weights, best first (eq. 53): positive part sums to 1; active: negative part scaled
        weights = [x / sum(pos) for x in pos]
        if getattr(config, "active", False) and neg_sq > 0:
            alphas = [1 + 2 * mu_eff_minus / (mu_eff + 2)]  # eq. 51
            if self.c_mu > 0:
                alphas += [1 + self.c_1 / self.c_mu, (1 - self.c_1 - self.c_mu) / (n * self.c_mu)]  # eqs. 50, 52
            neg_abs = sum(abs(x) for x in neg)
            weights += [min(alphas) * x / neg_abs for x in neg]
        else:
            weights += [0.0] * len(neg)
        self.weights = weights
        self.weights_sum = sum(weights)
        self.hist_len = 10 + math.ceil(30 * n / lam)  # TolFun history
        self.stag_len = 120 + math.ceil(30 * n / lam)  # stagnation history (the tutorial's minimum length)
        self._weights_cache: dict[torch.device, Tensor] = {}

    def _weights_on(self, like: Tensor) -> Tensor:
        w = self._weights_cache.get(like.device)
        if w is None:
            w = self._weights_cache[like.device] = torch.tensor(self.weights, dtype=torch.float32, device=like.device)
        return w

    def _common_extra(self, mean: Tensor) -> dict[str, Tensor]:
        n = self.num_dims
        return {
            "p_sigma": torch.zeros(n, dtype=torch.float32, device=mean.device),
            "p_c": torch.zeros(n, dtype=torch.float32, device=mean.device),
            "fun_hist": torch.zeros(2, self.hist_len, dtype=torch.float32, device=mean.device),
            "stag_hist": torch.zeros(2, self.stag_len, dtype=torch.float32, device=mean.device),
        }

    def _base_state(self, mean: Tensor, extra: dict[str, Tensor]) -> ESState:
        c = self.config
        return ESState(
            mean=mean,
            sigma=torch.tensor(c.sigma_init, dtype=torch.float32, device=mean.device),
            lr=torch.tensor(c.lrate_mean, dtype=torch.float32, device=mean.device),
            opt=adam_init(mean),  # unused placeholder, keeps one state layout for every strategy
            generation=torch.zeros((), dtype=torch.int64, device=mean.device),
            extra=extra,
        )

    def _select(self, state: ESState, population: Tensor, fitness: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Sanitised fitness, utilities, ``y = (x - m) / sigma`` sorted best first ``[P, D]`` and ``<y>_w [D]``."""
        x = _check_tell_inputs(self._name, self.popsize, self.num_dims, population, fitness)
        clean, util = _utilities(fitness, self.config.maximize)
        order = best_first_order(util)
        y = (x.index_select(0, order) - state.mean) / state.sigma
        w = self._weights_on(state.mean)
        y_w = w[: self.mu] @ y[: self.mu]  # eq. 41
        return clean, util, y, y_w

    def _paths(self, state: ESState, y_w: Tensor, inv_sqrt_y_w: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``p_sigma``, new ``sigma``, ``h_sigma`` (0/1 float) and ``p_c`` (eqs. 43-45, h_sigma of p. 28)."""
        ex = state.extra
        assert ex is not None
        cs, cc = self.c_sigma, self.c_c
        p_sigma = (1 - cs) * ex["p_sigma"] + math.sqrt(cs * (2 - cs) * self.mu_eff) * inv_sqrt_y_w
        ps_norm = torch.linalg.vector_norm(p_sigma)
        sigma = state.sigma * torch.exp((cs / self.d_sigma) * (ps_norm / self.chi_n - 1))
        g1 = (state.generation + 1).to(torch.float32)
        h_sigma = (
            ps_norm / torch.sqrt(1 - torch.pow(1 - cs, 2 * g1)) < (1.4 + 2 / (self.num_dims + 1)) * self.chi_n
        ).to(torch.float32)
        p_c = (1 - cc) * ex["p_c"] + h_sigma * math.sqrt(cc * (2 - cc) * self.mu_eff) * y_w
        return p_sigma, sigma, h_sigma, p_c

    def _histories(self, state: ESState, util: Tensor) -> dict[str, Tensor]:
        ex = state.extra
        assert ex is not None
        best = util.amax()
        return {
            "fun_hist": _push(ex["fun_hist"], state.generation, torch.stack([best, util.amin()])),
            "stag_hist": _push(ex["stag_hist"], state.generation, torch.stack([best, util.median()])),
        }

    def _axes(self, state: ESState) -> tuple[Tensor, Tensor, Tensor]:
        """Per-coordinate std ``sqrt(C_ii) [D]``, sqrt eigenvalues ``[D]``, principal axis ``g % D`` scaled ``[D]``."""
        raise NotImplementedError

    def stop_reasons(self, state: ESState) -> dict[str, Tensor]:
        """Termination criteria of Hansen's tutorial (2016, B.3) as ``[]`` bool tensors on the state's device.

        ``tol_fun`` (fitness range of the last ``10 + ceil(30 D / lambda)`` generations), ``tol_x``,
        ``tol_up_sigma``, ``condition_cov``, ``no_effect_axis`` (axis ``g mod D``, as pycma), ``no_effect_coord``
        and ``stagnation`` (over the last ``120 + ceil(30 D / lambda)`` generations: the medians of the most
        recent 30% of both the best and the median fitness are no better than those of the oldest 30%).
        No host sync: :class:`IPOP` reads them once every ``check_every`` generations.
        """
        c, ex = self.config, state.extra
        assert ex is not None
        g, sigma, m = state.generation, state.sigma, state.mean
        std, eig_sqrt, axis = self._axes(state)
        fun = ex["fun_hist"]
        s_len = self.stag_len
        chron = torch.remainder(g + torch.arange(s_len, device=m.device), s_len)  # oldest first once full
        stag = ex["stag_hist"].index_select(1, chron)
        k = math.ceil(0.3 * s_len)
        first, last = stag[:, :k].median(dim=1).values, stag[:, -k:].median(dim=1).values
        tol_x = c.tol_x * c.sigma_init
        return {
            "tol_fun": (g >= self.hist_len) & (fun.amax() - fun.amin() < c.tol_fun),
            "tol_x": (sigma * std < tol_x).all() & (sigma * ex["p_c"].abs() < tol_x).all(),
            "tol_up_sigma": sigma / c.sigma_init > c.tol_up_sigma * eig_sqrt.amax(),
            "condition_cov": (eig_sqrt.amax() / eig_sqrt.amin()).square() > c.tol_condition,
            "no_effect_axis": (m == m + 0.1 * sigma * axis).all(),
            "no_effect_coord": (m == m + 0.2 * sigma * std).any(),
            "stagnation": (g >= s_len) & (last <= first).all(),
        }

    def should_stop(self, state: ESState) -> Tensor:
        """``[]`` bool: any of :meth:`stop_reasons` (no host sync)."""
        return torch.stack(list(self.stop_reasons(state).values())).any()

    def _metrics(
        self, state: ESState, y_w: Tensor, step: Tensor, std: Tensor, eig_sqrt: Tensor, fitness: Tensor, clean: Tensor
    ) -> dict[str, Tensor]:
        return {
            "grad_norm": torch.linalg.vector_norm(y_w),
            "update_norm": torch.linalg.vector_norm(step),
            "sigma_mean": state.sigma * std.mean(),
            "step_size": state.sigma,
            "axis_ratio": eig_sqrt.amax() / eig_sqrt.amin(),
            "lr": state.lr,
            **_fitness_metrics(fitness, clean, self.config.maximize),
        }


class CMAES(_CMABase):
    """CMA-ES with full covariance (Hansen, 2016, "The CMA Evolution Strategy: A Tutorial", Appendix A).

    * ``ask``: ``z ~ N(0, I)`` (antithetic optional), ``y = B diag(D) z``, ``x = m + sigma y`` with
      ``C = B diag(D^2) B^T``.
    * ``tell``: non-finite fitness -> worst finite; ``y_i = (x_i:lambda - m) / sigma`` sorted best first
      (ties by index); ``<y>_w = sum_{i <= mu} w_i y_i``; ``m += c_m sigma <y>_w``;
      ``p_sigma = (1 - c_s) p_sigma + sqrt(c_s (2 - c_s) mu_eff) C^{-1/2} <y>_w``;
      ``sigma *= exp(c_s / d_s (||p_sigma|| / E||N(0, I)|| - 1))``; ``h_sigma`` stalls ``p_c`` when
      ``||p_sigma|| / sqrt(1 - (1 - c_s)^(2 (g + 1))) >= (1.4 + 2 / (D + 1)) E||N(0, I)||``;
      ``p_c = (1 - c_c) p_c + h_sigma sqrt(c_c (2 - c_c) mu_eff) <y>_w``;
      ``C = (1 + c_1 delta(h_sigma) - c_1 - c_mu sum_j w_j) C + c_1 p_c p_c^T + c_mu sum_i w_i^o y_i y_i^T`` with
      ``w_i^o = w_i`` for ``w_i >= 0`` and ``w_i D / ||C^{-1/2} y_i||^2`` otherwise (active CMA);
      then (every ``eigen_interval`` generations) ``C`` is symmetrised and decomposed by ``torch.linalg.eigh``,
      eigenvalues floored at 1e-20 and ``C`` rebuilt from them (as the ``cmaes`` package does).

    The state's ``sigma`` is the step size ``[]``; ``lr`` is ``c_m``; ``extra`` holds ``C``, ``B`` ``[D, D]``,
    ``D`` (sqrt eigenvalues), ``p_sigma``, ``p_c`` ``[D]``, ``eigen_age`` (a ``[a]`` zero tensor whose length is
    the number of generations since the last decomposition), ``fun_hist [2, 10 + ceil(30 D / lambda)]`` and
    ``stag_hist [2, 120 + ceil(30 D / lambda)]`` (utilities, for :meth:`stop_reasons`). Memory and time:
    ``O(D^2)`` state, ``O(P D^2)`` per ``tell`` plus one ``O(D^3)`` eigendecomposition per ``eigen_interval``.
    """

    _name = "CMAES"
    _separable = False

    def __init__(self, config: CMAESConfig, num_dims: int) -> None:
        if not isinstance(config, CMAESConfig):
            raise TypeError(f"CMAES: expected a CMAESConfig, got {type(config).__name__}")
        self._setup(config, num_dims)
        self.eigen_interval = (
            config.eigen_interval
            if config.eigen_interval is not None
            else max(1, int(1.0 / (10 * self.num_dims * (self.c_1 + self.c_mu))))
        )

    def init(self, mean: Tensor) -> ESState:
        """Initial state around ``mean [D]``: ``C = B = I``, ``D = 1``, zero paths, step size ``sigma_init``."""
        mean = _check_mean(self._name, mean, self.num_dims)
        eye = torch.eye(self.num_dims, dtype=torch.float32, device=mean.device)
        extra = {
            "C": eye,
            "B": eye.clone(),
            "D": torch.ones(self.num_dims, dtype=torch.float32, device=mean.device),
            "eigen_age": torch.zeros(0, dtype=torch.float32, device=mean.device),
            **self._common_extra(mean),
        }
        return self._base_state(mean, extra)

    def ask(self, state: ESState, generator: torch.Generator) -> Tensor:
        """Population ``[P, D]`` float32 on ``state.mean.device``; noise drawn from ``generator`` only."""
        ex = state.extra
        assert ex is not None, "CMAES.ask: expected a CMA-ES state (from CMAES.init), got extra=None"
        z = _sample_noise(self.popsize, self.num_dims, self.config.antithetic, generator, state.mean)
        return state.mean + state.sigma * ((z * ex["D"]) @ ex["B"].T)

    def _axes(self, state: ESState) -> tuple[Tensor, Tensor, Tensor]:
        ex = state.extra
        assert ex is not None
        i = torch.remainder(state.generation, self.num_dims).reshape(1)
        axis = ex["B"].index_select(1, i).squeeze(1) * ex["D"].index_select(0, i)
        return torch.diagonal(ex["C"]).clamp(min=0).sqrt(), ex["D"], axis

    def tell(self, state: ESState, population: Tensor, fitness: Tensor) -> tuple[ESState, dict[str, Tensor]]:
        """Update from ``population [P, D]`` and ``fitness [P]``.

        Returns the new state and a dict of ``[]`` tensors: ``grad_norm`` (``||<y>_w||``), ``update_norm``,
        ``sigma_mean`` (mean ``sigma sqrt(C_ii)``), ``step_size``, ``axis_ratio`` (``sqrt`` of the condition
        number), ``lr``, ``fitness_mean``, ``fitness_best``, ``num_nonfinite``.
        """
        ex = state.extra
        assert ex is not None, "CMAES.tell: expected a CMA-ES state (from CMAES.init), got extra=None"
        clean, util, y, y_w = self._select(state, population, fitness)
        n, B, Dv = self.num_dims, ex["B"], ex["D"]

        def inv_sqrt(v: Tensor) -> Tensor:  # C^{-1/2} v for rows v [..., D]
            return ((v @ B) / Dv) @ B.T

        step = state.lr * state.sigma * y_w
        p_sigma, sigma, h_sigma, p_c = self._paths(state, y_w, inv_sqrt(y_w))
        w = self._weights_on(state.mean)
        if self.config.active:
            norm2 = inv_sqrt(y).square().sum(-1)  # [P]
            w_o = torch.where(w >= 0, w, w * n / (norm2 + 1e-8))
        else:
            w_o = w
        cc = self.c_c
        delta_h = (1 - h_sigma) * cc * (2 - cc)
        cov = (
            (1 + self.c_1 * delta_h - self.c_1 - self.c_mu * self.weights_sum) * ex["C"]
            + self.c_1 * torch.outer(p_c, p_c)
            + self.c_mu * (y.T * w_o) @ y
        )
        new_B, new_D = B, Dv
        age = ex["eigen_age"].shape[0] + 1
        if age >= self.eigen_interval:  # a Python int (a tensor shape): no host sync
            cov = 0.5 * (cov + cov.T)
            evals, new_B = torch.linalg.eigh(cov)
            evals = evals.clamp(min=_EIG_FLOOR)
            new_D = evals.sqrt()
            cov = (new_B * evals) @ new_B.T
            age = 0
        std, eig_sqrt, _ = self._axes(state)
        new_extra = {
            "C": cov,
            "B": new_B,
            "D": new_D,
            "eigen_age": torch.zeros(age, dtype=torch.float32, device=state.mean.device),
            "p_sigma": p_sigma,
            "p_c": p_c,
            **self._histories(state, util),
        }
        new_state = ESState(
            mean=state.mean + step,
            sigma=sigma,
            lr=state.lr,
            opt=state.opt,
            generation=state.generation + 1,
            extra=new_extra,
        )
        return new_state, self._metrics(state, y_w, step, std, eig_sqrt, fitness, clean)


class SepCMAES(_CMABase):
    """Sep-CMA-ES (Ros & Hansen, 2008, "A Simple Modification in CMA-ES Achieving Linear Time and Space
    Complexity"): CMA-ES restricted to a diagonal covariance ``C = diag(c)``.

    The update is :class:`CMAES`'s with positive weights only, ``C^{-1/2} = diag(1 / sqrt(c))``, the rank-mu
    term ``sum_i w_i y_i^2`` and ``c_1``, ``c_mu`` multiplied by ``(D + 2) / 3``; no eigendecomposition.
    ``O(P D)`` per generation. ``extra`` holds ``diag_C``, ``p_sigma``, ``p_c`` ``[D]`` and the histories of
    :meth:`stop_reasons`.
    """

    _name = "SepCMAES"
    _separable = True

    def __init__(self, config: SepCMAESConfig, num_dims: int) -> None:
        if not isinstance(config, SepCMAESConfig):
            raise TypeError(f"SepCMAES: expected a SepCMAESConfig, got {type(config).__name__}")
        self._setup(config, num_dims)

    def init(self, mean: Tensor) -> ESState:
        """Initial state around ``mean [D]``: ``c = 1``, zero paths, step size ``sigma_init``."""
        mean = _check_mean(self._name, mean, self.num_dims)
        extra = {"diag_C": torch.ones(self.num_dims, dtype=torch.float32, device=mean.device), **self._common_extra(mean)}
        return self._base_state(mean, extra)

    def ask(self, state: ESState, generator: torch.Generator) -> Tensor:
        """Population ``[P, D]`` float32 on ``state.mean.device``; noise drawn from ``generator`` only."""
        ex = state.extra
        assert ex is not None, "SepCMAES.ask: expected a Sep-CMA-ES state (from SepCMAES.init), got extra=None"
        z = _sample_noise(self.popsize, self.num_dims, self.config.antithetic, generator, state.mean)
        return state.mean + state.sigma * (z * ex["diag_C"].sqrt())

    def _axes(self, state: ESState) -> tuple[Tensor, Tensor, Tensor]:
        ex = state.extra
        assert ex is not None
        std = ex["diag_C"].sqrt()
        onehot = torch.arange(self.num_dims, device=std.device) == torch.remainder(state.generation, self.num_dims)
        return std, std, torch.where(onehot, std, torch.zeros_like(std))

    def tell(self, state: ESState, population: Tensor, fitness: Tensor) -> tuple[ESState, dict[str, Tensor]]:
        """Update from ``population [P, D]`` and ``fitness [P]``; the metrics of :meth:`CMAES.tell`."""
        ex = state.extra
        assert ex is not None, "SepCMAES.tell: expected a Sep-CMA-ES state (from SepCMAES.init), got extra=None"
        clean, util, y, y_w = self._select(state, population, fitness)
        std = ex["diag_C"].sqrt()
        step = state.lr * state.sigma * y_w
        p_sigma, sigma, h_sigma, p_c = self._paths(state, y_w, y_w / std)
        w = self._weights_on(state.mean)
        cc = self.c_c
        delta_h = (1 - h_sigma) * cc * (2 - cc)
        diag_c = (
            (1 + self.c_1 * delta_h - self.c_1 - self.c_mu * self.weights_sum) * ex["diag_C"]
            + self.c_1 * p_c.square()
            + self.c_mu * (w @ y.square())
        ).clamp(min=_EIG_FLOOR)
        new_state = ESState(
            mean=state.mean + step,
            sigma=sigma,
            lr=state.lr,
            opt=state.opt,
            generation=state.generation + 1,
            extra={"diag_C": diag_c, "p_sigma": p_sigma, "p_c": p_c, **self._histories(state, util)},
        )
        return new_state, self._metrics(state, y_w, step, std, std, fitness, clean)


# ------------------------------------------------------------------------------------------------- PGPE

_PGPE_OPTIMIZERS = ("clipup", "adam")


@dataclass
class PGPEConfig:
    """Hyperparameters of :class:`PGPE` (EvoTorch's ``PGPE`` defaults where it has them)."""

    popsize: int = 256
    """Population size P (even when ``antithetic``: P/2 directions)."""
    sigma_init: float = 0.1
    """Initial per-dimension standard deviation (EvoTorch ``stdev_init``; > 0)."""
    center_learning_rate: float = 0.05
    """Step size of the centre: ClipUp's ``lr`` (Adam's lr with ``optimizer="adam"``; > 0). EvoTorch has no
    default; ClipUp's paper pairs it with ``max_speed = 2 * center_learning_rate``."""
    stdev_learning_rate: float = 0.1
    """Learning rate of the standard deviation (EvoTorch / Toklu et al.: 0.1; > 0)."""
    max_speed: float | None = None
    """ClipUp's largest velocity norm; None -> ``2 * center_learning_rate`` (EvoTorch's default)."""
    momentum: float = 0.9
    """ClipUp momentum in [0, 1)."""
    stdev_max_change: float | None = 0.2
    """Largest relative change of each stdev per generation, in (0, 1) (EvoTorch: 0.2); None = unbounded."""
    sigma_limit: float = 0.0
    """Floor of every stdev (>= 0; > 0 when ``stdev_max_change`` is None, so the stdev stays positive)."""
    optimizer: str = "clipup"
    """Optimiser of the centre: "clipup" or "adam" (beta1 0.9, beta2 0.999, eps 1e-8)."""
    shaping: str = "centered_rank"
    """Fitness shaping: "centered_rank" (EvoTorch's "centered"), "z_score" or "none" (then mean-centred)."""
    antithetic: bool = True
    """Symmetric sampling (EvoTorch ``symmetric=True``): member ``i + P/2`` uses the negated noise of ``i``."""
    maximize: bool = True
    """True if larger fitness is better (returns); False for losses."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field, its value and what is expected."""
        _check_population(self)
        _check_field(self, "center_learning_rate", lambda v: _finite(v) and v > 0, "> 0")
        _check_field(self, "stdev_learning_rate", lambda v: _finite(v) and v >= 0, ">= 0")
        _check_field(self, "max_speed", lambda v: v is None or (_finite(v) and v > 0), "None or > 0")
        _check_field(self, "momentum", lambda v: _finite(v) and 0 <= v < 1, "in [0, 1)")
        _check_field(self, "stdev_max_change", lambda v: v is None or (_finite(v) and 0 < v < 1), "None or in (0, 1)")
        _check_field(self, "sigma_limit", lambda v: _finite(v) and v >= 0, ">= 0")
        _require(
            self.stdev_max_change is not None or self.sigma_limit > 0,
            f"PGPEConfig.sigma_limit must be > 0 when stdev_max_change is None (else the stdev can reach 0), "
            f"got sigma_limit={self.sigma_limit!r}",
        )
        _check_field(self, "optimizer", lambda v: v in _PGPE_OPTIMIZERS, f"one of {list(_PGPE_OPTIMIZERS)}")
        _check_field(self, "shaping", lambda v: v in SHAPING, f"one of {sorted(SHAPING)}")


class PGPE:
    """PGPE (Sehnke et al., 2010) with ClipUp (Toklu et al., 2020), following EvoTorch's ``PGPE``.

    * ``ask``: ``x = mean + sigma * z`` with per-dimension ``sigma [D]``; symmetric: ``z[i + P/2] = -z[i]``.
    * ``tell``: non-finite fitness -> worst finite; utilities ``u`` shaped (centred ranks by default; ``"none"``
      is mean-centred). Symmetric, with ``e_i = x_i - mean`` for the ``K = P/2`` directions and ``u+``, ``u-`` the
      utilities of their two ends: ``g_mean = sum_i (u+_i - u-_i) / 2 e_i / K``,
      ``g_sigma = sum_i (u+_i + u-_i) / 2 (e_i^2 - sigma^2) / sigma / K``; otherwise
      ``g_mean = sum_i u_i e_i / P``, ``g_sigma = sum_i u_i (e_i^2 - sigma^2) / sigma / P`` (EvoTorch's
      ``SymmetricSeparableGaussian`` / ``SeparableGaussian`` with its PGPE denominators). The centre climbs
      ``g_mean`` with ClipUp (:func:`~torch_distill.es.optim.clipup_update`; or Adam); ``sigma += stdev_lr *
      g_sigma``, each entry kept within ``[(1 - max_change) sigma, (1 + max_change) sigma]`` and above
      ``sigma_limit``.

    The state's ``lr`` is the centre learning rate; ``opt`` the Adam state (``optimizer="adam"``, else zero
    placeholders); ``extra["velocity"] [D]`` ClipUp's velocity (minimisation sense).
    """

    def __init__(self, config: PGPEConfig, num_dims: int) -> None:
        if not isinstance(config, PGPEConfig):
            raise TypeError(f"PGPE: expected a PGPEConfig, got {type(config).__name__}")
        config.validate()
        self.config = config
        self.num_dims = _check_num_dims("PGPE", num_dims)
        self.popsize = config.popsize
        self.max_speed = (
            float(config.max_speed) if config.max_speed is not None else 2.0 * config.center_learning_rate
        )
        self._shape = SHAPING[config.shaping]

    def init(self, mean: Tensor) -> ESState:
        """Initial state around ``mean [D]``; ``sigma = sigma_init`` in every dimension, zero velocity."""
        mean = _check_mean("PGPE", mean, self.num_dims)
        c = self.config
        return ESState(
            mean=mean,
            sigma=torch.full_like(mean, c.sigma_init),
            lr=torch.tensor(c.center_learning_rate, dtype=torch.float32, device=mean.device),
            opt=adam_init(mean),
            generation=torch.zeros((), dtype=torch.int64, device=mean.device),
            extra={"velocity": torch.zeros_like(mean)},
        )

    def ask(self, state: ESState, generator: torch.Generator) -> Tensor:
        """Population ``[P, D]`` float32 on ``state.mean.device``; noise drawn from ``generator`` only."""
        z = _sample_noise(self.popsize, self.num_dims, self.config.antithetic, generator, state.mean)
        return state.mean + state.sigma * z

    def tell(self, state: ESState, population: Tensor, fitness: Tensor) -> tuple[ESState, dict[str, Tensor]]:
        """Update from ``population [P, D]`` and ``fitness [P]``.

        Returns the new state and a dict of ``[]`` tensors: ``grad_norm`` (of ``g_mean``), ``update_norm``,
        ``sigma_mean``, ``lr``, ``fitness_mean``, ``fitness_best``, ``num_nonfinite``.
        """
        c = self.config
        ex = state.extra
        assert ex is not None, "PGPE.tell: expected a PGPE state (from PGPE.init), got extra=None"
        x = _check_tell_inputs("PGPE", self.popsize, self.num_dims, population, fitness)
        clean, util = _utilities(fitness, c.maximize)
        u = self._shape(util)
        if c.shaping == "none":
            u = u - u.mean()
        sigma = state.sigma
        if c.antithetic:
            k = self.popsize // 2
            e = x[:k] - state.mean  # [K, D]
            u_plus, u_minus = u[:k], u[k:]
            grad_mean = (0.5 * (u_plus - u_minus)) @ e / k
            grad_sigma = (0.5 * (u_plus + u_minus)) @ ((e.square() - sigma.square()) / sigma) / k
        else:
            e = x - state.mean  # [P, D]
            grad_mean = u @ e / self.popsize
            grad_sigma = u @ ((e.square() - sigma.square()) / sigma) / self.popsize
        opt, velocity = state.opt, ex["velocity"]
        if c.optimizer == "clipup":
            delta, clip = clipup_update(-grad_mean, ClipUpState(velocity), state.lr, self.max_speed, c.momentum)
            velocity = clip.velocity  # type: ignore[assignment]
        else:
            opt = opt if isinstance(opt, AdamState) else AdamState(*opt)
            delta, opt = adam_update(-grad_mean, opt, state.lr)
        new_sigma = sigma + c.stdev_learning_rate * grad_sigma
        if c.stdev_max_change is not None:
            new_sigma = torch.minimum(
                torch.maximum(new_sigma, sigma * (1 - c.stdev_max_change)), sigma * (1 + c.stdev_max_change)
            )
        new_sigma = torch.clamp(new_sigma, min=c.sigma_limit)
        new_state = ESState(
            mean=state.mean - delta,  # type: ignore[operator]
            sigma=new_sigma,
            lr=state.lr,
            opt=opt,
            generation=state.generation + 1,
            extra={"velocity": velocity},  # type: ignore[dict-item]
        )
        metrics = {
            "grad_norm": torch.linalg.vector_norm(grad_mean),
            "update_norm": torch.linalg.vector_norm(delta),  # type: ignore[arg-type]
            "sigma_mean": sigma.mean(),
            "lr": state.lr,
            **_fitness_metrics(fitness, clean, c.maximize),
        }
        return new_state, metrics


# -------------------------------------------------------------------------------------------------- CEM


@dataclass
class CEMConfig:
    """Hyperparameters of :class:`CEM` (the cross-entropy method, Rubinstein 1999; de Boer et al., 2005)."""

    popsize: int = 256
    """Population size P (even when ``antithetic``)."""
    sigma_init: float = 0.5
    """Initial per-dimension standard deviation (> 0)."""
    elite_ratio: float = 0.2
    """Fraction of the population refitted to, in (0, 1]: ``max(2, floor(elite_ratio * P))`` members (at least two:
    the variance of a one-member elite is 0, which would end the search in one generation)."""
    smoothing: float = 0.5
    """Weight of the previous distribution in the refit, in [0, 1): ``mean = s mean + (1 - s) elite_mean``,
    ``sigma^2 = s sigma^2 + (1 - s) elite_var`` (0 = the plain refit, whose variance collapses within a few tens of
    generations; 0.5 keeps it searching, cf. the smoothed CEM of de Boer et al., 2005)."""
    sigma_limit: float = 0.0
    """Noise floor: every standard deviation stays >= it (against premature collapse; Szita & Lorincz, 2006)."""
    antithetic: bool = False
    """Mirrored sampling: member ``i + P/2`` uses the negated noise of member ``i``."""
    maximize: bool = True
    """True if larger fitness is better (returns); False for losses."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field, its value and what is expected."""
        _check_population(self)
        _check_field(self, "elite_ratio", lambda v: _finite(v) and 0 < v <= 1, "in (0, 1]")
        _check_field(self, "smoothing", lambda v: _finite(v) and 0 <= v < 1, "in [0, 1)")
        _check_field(self, "sigma_limit", lambda v: _finite(v) and v >= 0, ">= 0")


class CEM:
    """Cross-entropy method with a diagonal Gaussian.

    * ``ask``: ``x = mean + sigma * z`` with per-dimension ``sigma [D]``.
    * ``tell``: non-finite fitness -> worst finite; the ``E = max(2, floor(elite_ratio P))`` best members (ties
      by index) give ``elite_mean`` and the per-dimension ``elite_var`` (ddof 0, around ``elite_mean``);
      ``mean = s mean + (1 - s) elite_mean``, ``sigma = max(sqrt(s sigma^2 + (1 - s) elite_var), sigma_limit)``.

    The state's ``lr`` is the refit weight ``1 - smoothing``; ``opt`` zero placeholders; ``extra`` None.
    """

    def __init__(self, config: CEMConfig, num_dims: int) -> None:
        if not isinstance(config, CEMConfig):
            raise TypeError(f"CEM: expected a CEMConfig, got {type(config).__name__}")
        config.validate()
        self.config = config
        self.num_dims = _check_num_dims("CEM", num_dims)
        self.popsize = config.popsize
        self.num_elite = max(2, int(math.floor(config.elite_ratio * config.popsize)))

    def init(self, mean: Tensor) -> ESState:
        """Initial state around ``mean [D]``; ``sigma = sigma_init`` in every dimension."""
        mean = _check_mean("CEM", mean, self.num_dims)
        c = self.config
        return ESState(
            mean=mean,
            sigma=torch.full_like(mean, c.sigma_init),
            lr=torch.tensor(1.0 - c.smoothing, dtype=torch.float32, device=mean.device),
            opt=adam_init(mean),  # unused placeholder, keeps one state layout for every strategy
            generation=torch.zeros((), dtype=torch.int64, device=mean.device),
        )

    def ask(self, state: ESState, generator: torch.Generator) -> Tensor:
        """Population ``[P, D]`` float32 on ``state.mean.device``; noise drawn from ``generator`` only."""
        z = _sample_noise(self.popsize, self.num_dims, self.config.antithetic, generator, state.mean)
        return state.mean + state.sigma * z

    def tell(self, state: ESState, population: Tensor, fitness: Tensor) -> tuple[ESState, dict[str, Tensor]]:
        """Update from ``population [P, D]`` and ``fitness [P]``.

        Returns the new state and a dict of ``[]`` tensors: ``grad_norm`` (``||elite_mean - mean||``),
        ``update_norm``, ``sigma_mean``, ``lr``, ``fitness_mean``, ``fitness_best``, ``num_nonfinite``.
        """
        c = self.config
        x = _check_tell_inputs("CEM", self.popsize, self.num_dims, population, fitness)
        clean, util = _utilities(fitness, c.maximize)
        elite = x.index_select(0, best_first_order(util)[: self.num_elite])  # [E, D]
        elite_mean = elite.mean(0)
        elite_var = (elite - elite_mean).square().mean(0)
        s = c.smoothing
        mean = s * state.mean + (1 - s) * elite_mean
        sigma = torch.sqrt(s * state.sigma.square() + (1 - s) * elite_var).clamp(min=c.sigma_limit)
        new_state = ESState(
            mean=mean, sigma=sigma, lr=state.lr, opt=state.opt, generation=state.generation + 1, extra=None
        )
        metrics = {
            "grad_norm": torch.linalg.vector_norm(elite_mean - state.mean),
            "update_norm": torch.linalg.vector_norm(mean - state.mean),
            "sigma_mean": state.sigma.mean(),
            "lr": state.lr,
            **_fitness_metrics(fitness, clean, c.maximize),
        }
        return new_state, metrics


# ------------------------------------------------------------------------------------------------- IPOP


@dataclass
class IPOPConfig:
    """Settings of :class:`IPOP` restarts (Auger & Hansen, 2005, "A Restart CMA Evolution Strategy With
    Increasing Population Size")."""

    check_every: int = 10
    """Generations between two host reads of the termination criteria (the only host syncs of IPOP)."""
    popsize_factor: int = 2
    """Population growth per restart (the paper: 2)."""
    max_restarts: int = 9
    """Restarts at most (the paper: 9); afterwards the criteria are still checked but only set ``stopped``."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field, its value and what is expected."""
        _check_field(self, "check_every", lambda v: _is_int(v) and v >= 1, "an int >= 1")
        _check_field(self, "popsize_factor", lambda v: _is_int(v) and v >= 2, "an int >= 2")
        _check_field(self, "max_restarts", lambda v: _is_int(v) and v >= 0, "an int >= 0")


class IPOP:
    """IPOP restarts of CMA-ES or Sep-CMA-ES: a host-level driver around ``ask``/``tell``.

    ::

        ipop = IPOP("cma_es", D, IPOPConfig(check_every=10), sigma_init=2.0, maximize=False)
        state = ipop.init(x0)
        for _ in range(generations):
            population = ipop.ask(state, gen)          # [ipop.popsize, D]: P doubles at every restart
            state, metrics = ipop.tell(state, population, f(population))
        ipop.best_x, ipop.best_f                       # best evaluated point over all restarts (device tensors)

    Design: the population size is a tensor shape and a Python int of the strategy, so a restart cannot happen
    inside a pure ``tell``. ``IPOP`` holds the current strategy (``self.strategy``) and counts its ``tell`` calls
    on the host; every ``check_every``-th call it reads :meth:`CMAES.stop_reasons` (one ``[7]`` bool transfer, the
    only host sync) and, when any holds and fewer than ``max_restarts`` restarts were made, replaces the strategy
    by one with ``popsize_factor`` times the population (from the initial ``popsize``, the default ``4 + floor(3
    ln D)`` when None) and returns a fresh state at the mean given to :meth:`init` (or ``restart_mean(k)`` for the
    ``k``-th restart, when given). ``tell`` itself stays free of host syncs otherwise. Checkpoint the ESState
    together with :meth:`state_dict`. It is not a registry entry: the ES runner shards a fixed population.
    """

    def __init__(
        self,
        name: str,
        num_dims: int,
        config: IPOPConfig | None = None,
        restart_mean: Callable[[int], Tensor] | None = None,
        **overrides: object,
    ) -> None:
        _require(name in ("cma_es", "sep_cma_es"), f"IPOP: expected name 'cma_es' or 'sep_cma_es', got {name!r}")
        self.ipop = config if config is not None else IPOPConfig()
        if not isinstance(self.ipop, IPOPConfig):
            raise TypeError(f"IPOP: expected an IPOPConfig, got {type(self.ipop).__name__}")
        self.ipop.validate()
        self.name = name
        self.restart_mean = restart_mean
        self._base = make_strategy(name, num_dims, **overrides)
        self.num_dims = num_dims
        self.base_popsize = self._base.popsize
        self.strategy: Any = self._base
        self.restarts = 0
        self.tells = 0
        self.evaluations = 0
        self.stopped = False
        self.last_reasons: list[str] = []
        self._x0: Tensor | None = None
        self.best_x: Tensor | None = None
        self.best_f: Tensor | None = None

    @property
    def popsize(self) -> int:
        """Population size of the current run."""
        return self.strategy.popsize

    @property
    def config(self) -> Any:
        """Config of the current run's strategy."""
        return self.strategy.config

    def _strategy_for(self, restarts: int) -> Any:
        cls = type(self._base)
        popsize = self.base_popsize * self.ipop.popsize_factor**restarts
        return cls(dataclasses.replace(self._base.config, popsize=popsize), self.num_dims)

    def init(self, mean: Tensor) -> ESState:
        """First run's state around ``mean [D]`` (also the restart mean unless ``restart_mean`` is given)."""
        self.strategy, self.restarts, self.tells, self.evaluations, self.stopped = self._base, 0, 0, 0, False
        state = self.strategy.init(mean)
        self._x0 = state.mean.clone()
        self.best_x = state.mean.clone()
        worst = -math.inf if self._base.config.maximize else math.inf
        self.best_f = torch.full((), worst, dtype=torch.float32, device=state.mean.device)
        return state

    def ask(self, state: ESState, generator: torch.Generator) -> Tensor:
        """Population ``[self.popsize, D]`` of the current run."""
        return self.strategy.ask(state, generator)

    def tell(self, state: ESState, population: Tensor, fitness: Tensor) -> tuple[ESState, dict[str, Tensor]]:
        """The current strategy's ``tell``, the best point so far, and every ``check_every`` calls the restart check.

        Metrics: the strategy's plus ``restarts`` and ``popsize`` (``[]`` float32).
        """
        _require(self.best_f is not None, "IPOP.tell: call IPOP.init first")
        new_state, metrics = self.strategy.tell(state, population, fitness)
        maximize = self._base.config.maximize
        clean = sanitize(fitness, maximize)
        i = torch.argmax(clean if maximize else -clean)
        f_i = clean[i]
        better = f_i > self.best_f if maximize else f_i < self.best_f  # type: ignore[operator]
        self.best_f = torch.where(better, f_i, self.best_f)  # type: ignore[arg-type]
        self.best_x = torch.where(better, population[i].to(torch.float32), self.best_x)  # type: ignore[arg-type]
        self.tells += 1
        self.evaluations += self.strategy.popsize
        dev = state.mean.device
        metrics = {
            **metrics,
            "restarts": torch.tensor(float(self.restarts), device=dev),
            "popsize": torch.tensor(float(self.strategy.popsize), device=dev),
        }
        if self.tells % self.ipop.check_every == 0 and not self.stopped:
            reasons = self.strategy.stop_reasons(new_state)
            flags = torch.stack(list(reasons.values())).tolist()  # the host sync, once per check_every
            hit = [k for k, flag in zip(reasons, flags) if flag]
            if hit:
                self.last_reasons = hit
                if self.restarts < self.ipop.max_restarts:
                    new_state = self.restart()
                else:
                    self.stopped = True
        return new_state, metrics

    def restart(self) -> ESState:
        """Start the next run now: ``popsize_factor`` times the population, a fresh state at the restart mean."""
        _require(self._x0 is not None, "IPOP.restart: call IPOP.init first")
        self.restarts += 1
        self.strategy = self._strategy_for(self.restarts)
        mean = self.restart_mean(self.restarts) if self.restart_mean is not None else self._x0
        return self.strategy.init(mean)

    def state_dict(self) -> dict[str, Any]:
        """Host bookkeeping to checkpoint next to the ESState (``torch.save``-able, ``weights_only``-safe)."""
        return {
            "restarts": self.restarts,
            "tells": self.tells,
            "evaluations": self.evaluations,
            "stopped": self.stopped,
            "x0": self._x0,
            "best_x": self.best_x,
            "best_f": self.best_f,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (then continue with the saved ESState)."""
        self.restarts, self.tells, self.evaluations = int(d["restarts"]), int(d["tells"]), int(d["evaluations"])
        self.stopped = bool(d["stopped"])
        self._x0, self.best_x, self.best_f = d["x0"], d["best_x"], d["best_f"]
        self.strategy = self._strategy_for(self.restarts) if self.restarts else self._base


# --------------------------------------------------------------------------------------------- registry

STRATEGIES: dict[str, tuple[type, type]] = {
    "open_es": (OpenES, OpenESConfig),
    "snes": (SNES, SNESConfig),
    "cma_es": (CMAES, CMAESConfig),
    "sep_cma_es": (SepCMAES, SepCMAESConfig),
    "pgpe": (PGPE, PGPEConfig),
    "cem": (CEM, CEMConfig),
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
