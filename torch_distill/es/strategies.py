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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .base import (
    ESState,
    Strategy,
    _check_field,
    _check_mean,
    _check_num_dims,
    _check_population,
    _check_tell_inputs,
    _finite,
    _fitness_metrics,
    _is_int,
    _require,
    _sample_noise,
    _utilities,
)
from .cma import CMAES, CMAESConfig, SepCMAES, SepCMAESConfig
from .gaussian import CEM, PGPE, CEMConfig, PGPEConfig
from .optim import AdamState, adam_init, adam_update
from .shaping import SHAPING, sanitize, snes_weights

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
