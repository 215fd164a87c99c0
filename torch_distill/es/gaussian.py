"""PGPE with ClipUp (Sehnke et al. 2010; Toklu et al. 2020, as EvoTorch runs it) and the cross-entropy method."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import (
    ESState,
    _check_field,
    _check_mean,
    _check_num_dims,
    _check_population,
    _check_tell_inputs,
    _finite,
    _fitness_metrics,
    _require,
    _sample_noise,
    _utilities,
)
from .optim import AdamState, ClipUpState, adam_init, adam_update, clipup_update
from .shaping import SHAPING, best_first_order

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


