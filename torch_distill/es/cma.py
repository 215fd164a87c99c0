"""CMA-ES (full covariance, active weights; Hansen 2016) and Sep-CMA-ES (diagonal; Ros & Hansen 2008)."""

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
    _is_int,
    _require,
    _sample_noise,
    _utilities,
)
from .optim import adam_init
from .shaping import best_first_order

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


