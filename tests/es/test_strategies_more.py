"""Registry-wide tests of every strategy in ``STRATEGIES`` (OpenES, SNES, CMA-ES, Sep-CMA-ES, PGPE, CEM), the
IPOP restart driver, CMA-ES / Sep-CMA-ES against the ``cmaes`` package, checkpoints through the runner, and a
smoke run of ``scripts/bench_strategies.py``.

Learning tolerances (D = 10, start ``3 * ones`` -- Rosenbrock from 0 -- one fixed seed in the test; the bounds
were set from 5 seeds with margin, worst seed in brackets; f(x0): sphere 90, ellipsoid ~1.9e3, Rosenbrock 9,
Rastrigin 90):

| strategy   | sphere 300 g    | rot. ellipsoid cond 1e2, 300 g | Rosenbrock               | Rastrigin 300 g (loose)     |
|------------|-----------------|--------------------------------|--------------------------|-----------------------------|
| open_es    | 1e-5  [4e-8]    | 1e-5 [8e-7]                    | 0.5 [0.14], 500 g        | 2  [1.0], P=128 sigma 1     |
| snes       | 1e-10 [1e-21]   | 1e-4 [1.4e-5]                  | 5 [3.5], 500 g           | 5  [3.0], P=256 sigma 3     |
| cma_es     | 1e-12 [9e-18]   | 1e-10 [4e-14]                  | 1e-8 [6e-12], P=20, 500 g | 2 [0.99], P=200 sigma 3    |
| sep_cma_es | 1e-12 [7e-22]   | 0.1 [1.2e-2] (diagonal model)  | 2 [0.69], 1000 g         | 2  [0.99], P=200 sigma 3    |
| pgpe       | 0.03 [7.7e-3]   | 1 [0.28]                       | 2 [0.95], 500 g          | 70 [51], P=256, 400 g       |
| cem        | 1e-10 [5e-38]   | 10 [5.4], P=128                | 6 [5.0], 500 g           | 1e-3 [0.0], P=256 sigma 3   |

PGPE + ClipUp takes steps of a bounded *length* (``max_speed = 2 * lr``) whatever the gradient's size, so without
a learning-rate schedule it hovers around the optimum at a distance ~ lr; on Rastrigin (period 1) that jitter
lands at random phases, hence the loose bound (its mean does reach the centre: ||mean|| ~ 1 from 9.5). CEM needs
``smoothing`` (0.5 here) against the premature collapse of the plain refit; a diagonal CEM cannot follow
Rosenbrock's curved valley (it stalls near f = 5) nor rotate onto the ellipsoid's axes.

cmaes oracle (``cmaes`` 0.13.1, same population sizes, start ``3 * ones``, sigma 2, seeds 0-2): evaluations until
the best member of a generation has f < 1e-8; ours must be within 1.5x of cmaes's, averaged over the seeds
(measured ratios 0.96-1.07).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from torch_distill.es import (
    IPOP,
    STRATEGIES,
    ClipUpState,
    ESState,
    IPOPConfig,
    clipup_init,
    clipup_update,
    make_strategy,
)

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
NAMES = sorted(STRATEGIES)
D = 10


# --------------------------------------------------------------------------------------------- helpers


def sphere(x: torch.Tensor) -> torch.Tensor:
    return x.square().sum(-1)


def rastrigin(x: torch.Tensor) -> torch.Tensor:
    return 10.0 * x.shape[-1] + (x.square() - 10.0 * torch.cos(2.0 * math.pi * x)).sum(-1)


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (100.0 * (x[..., 1:] - x[..., :-1].square()).square() + (1.0 - x[..., :-1]).square()).sum(-1)


def rotated_ellipsoid(d: int, condition: float, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """``f(x) = sum_i condition^(i / (d - 1)) (Q x)_i^2``, ``Q`` a seeded random rotation (float64 inside)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    q = q.double()
    scales = condition ** (torch.arange(d, dtype=torch.float64) / (d - 1))
    return lambda x: ((x.double() @ q.T).square() * scales).sum(-1).to(x.dtype)


def axis_ellipsoid(d: int, condition: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The separable ellipsoid ``sum_i condition^(i / (d - 1)) x_i^2`` (float64 inside)."""
    scales = condition ** (torch.arange(d, dtype=torch.float64) / (d - 1))
    return lambda x: (x.double().square() * scales).sum(-1).to(x.dtype)


def run(es: Any, state: ESState, f: Callable, gens: int, gen: torch.Generator, sign: float = 1.0) -> ESState:
    for _ in range(gens):
        pop = es.ask(state, gen)
        state, _ = es.tell(state, pop, sign * f(pop))
    return state


def leaves(state: ESState) -> dict[str, torch.Tensor]:
    """Every tensor of a state, ``extra`` included, by a flat name."""
    out = {k: v for k, v in state._asdict().items() if isinstance(v, torch.Tensor)}
    out.update({f"opt.{k}": v for k, v in state.opt._asdict().items()})
    out.update({f"extra.{k}": v for k, v in (state.extra or {}).items()})
    return out


def assert_states_equal(a: ESState, b: ESState) -> None:
    la, lb = leaves(a), leaves(b)
    assert la.keys() == lb.keys()
    for k in la:
        assert_close(la[k], lb[k], rtol=0.0, atol=0.0, msg=lambda m, k=k: f"{k}: {m}")


def small(name: str, popsize: int = 8, **kw: Any) -> Any:
    return make_strategy(name, 5, popsize=popsize, **kw)


# -------------------------------------------------------------------------------------------- learning

OPENES_FAST = dict(popsize=64, sigma_init=0.1, sigma_decay=0.99, sigma_limit=1e-3, lr=0.1, lr_decay=0.98,
                   lr_limit=1e-4, beta1=0.9, shaping="centered_rank")
CEM_SMOOTH = dict(popsize=64, sigma_init=4.0, elite_ratio=0.25, smoothing=0.5)
# (strategy, problem) -> (config overrides, generations, tolerance on f(mean))
LEARNING: dict[tuple[str, str], tuple[dict[str, Any], int, float]] = {
    ("open_es", "sphere"): (OPENES_FAST, 300, 1e-5),
    ("open_es", "ellipsoid"): (OPENES_FAST, 300, 1e-5),
    ("open_es", "rosenbrock"): ({**OPENES_FAST, "sigma_decay": 0.995, "lr_decay": 0.995}, 500, 0.5),
    ("open_es", "rastrigin"): ({**OPENES_FAST, "popsize": 128, "sigma_init": 1.0, "sigma_decay": 0.985,
                                "lr_decay": 0.99, "shaping": "z_score"}, 300, 2.0),
    ("snes", "sphere"): (dict(popsize=32, sigma_init=1.0), 300, 1e-10),
    ("snes", "ellipsoid"): (dict(popsize=32, sigma_init=1.0), 300, 1e-4),
    ("snes", "rosenbrock"): (dict(popsize=32, sigma_init=0.5), 500, 5.0),
    ("snes", "rastrigin"): (dict(popsize=256, sigma_init=3.0), 300, 5.0),
    ("cma_es", "sphere"): (dict(sigma_init=1.0), 300, 1e-12),
    ("cma_es", "ellipsoid"): (dict(sigma_init=1.0), 300, 1e-10),
    ("cma_es", "rosenbrock"): (dict(popsize=20, sigma_init=0.5), 500, 1e-8),
    ("cma_es", "rastrigin"): (dict(popsize=200, sigma_init=3.0), 300, 2.0),
    ("sep_cma_es", "sphere"): (dict(sigma_init=1.0), 300, 1e-12),
    ("sep_cma_es", "ellipsoid"): (dict(sigma_init=1.0), 300, 0.1),
    ("sep_cma_es", "rosenbrock"): (dict(sigma_init=0.5), 1000, 2.0),
    ("sep_cma_es", "rastrigin"): (dict(popsize=200, sigma_init=3.0), 300, 2.0),
    ("pgpe", "sphere"): (dict(popsize=64, sigma_init=1.0, center_learning_rate=0.05), 300, 0.03),
    ("pgpe", "ellipsoid"): (dict(popsize=64, sigma_init=1.0, center_learning_rate=0.05), 300, 1.0),
    ("pgpe", "rosenbrock"): (dict(popsize=64, sigma_init=0.5, center_learning_rate=0.02), 500, 2.0),
    ("pgpe", "rastrigin"): (dict(popsize=256, sigma_init=3.0, center_learning_rate=0.02), 400, 70.0),
    ("cem", "sphere"): (CEM_SMOOTH, 300, 1e-10),
    ("cem", "ellipsoid"): ({**CEM_SMOOTH, "popsize": 128, "smoothing": 0.8}, 300, 10.0),
    ("cem", "rosenbrock"): ({**CEM_SMOOTH, "sigma_init": 2.0, "sigma_limit": 0.02}, 500, 6.0),
    ("cem", "rastrigin"): (dict(popsize=256, sigma_init=3.0, elite_ratio=0.1, smoothing=0.5), 300, 1e-3),
}
PROBLEMS = ["sphere", "ellipsoid", "rosenbrock", "rastrigin"]


def test_learning_table_covers_the_registry() -> None:
    assert {k[0] for k in LEARNING} == set(STRATEGIES)
    assert all((n, p) in LEARNING for n in STRATEGIES for p in PROBLEMS)


def objective(problem: str) -> Callable[[torch.Tensor], torch.Tensor]:
    return {"sphere": sphere, "ellipsoid": rotated_ellipsoid(D, 1e2), "rosenbrock": rosenbrock,
            "rastrigin": rastrigin}[problem]


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("name", NAMES)
def test_minimises_benchmark(name: str, problem: str) -> None:
    overrides, gens, tol = LEARNING[(name, problem)]
    f = objective(problem)
    es = make_strategy(name, D, maximize=False, **overrides)
    x0 = torch.zeros(D) if problem == "rosenbrock" else torch.full((D,), 3.0)
    state = run(es, es.init(x0), f, gens, torch.Generator().manual_seed(0))
    final = f(state.mean).item()
    assert final < tol, f"{name} on {problem} (D={D}): f(mean) = {final:.3e} after {gens} gens, want < {tol:g}"
    assert final < f(x0).item()
    assert int(state.generation) == gens
    assert all(torch.isfinite(v).all() for v in leaves(state).values())


# ------------------------------------------------------------------------------ state layout and shapes


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("popsize,num_dims", [(2, 1), (8, 5), (64, 33)])
@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_devices(name: str, device: str, popsize: int, num_dims: int) -> None:
    es = make_strategy(name, num_dims, popsize=popsize)
    assert es.popsize == popsize and es.num_dims == num_dims
    state = es.init(torch.zeros(num_dims, dtype=torch.float64, device=device))
    per_dim = name in ("snes", "pgpe", "cem")
    assert state.sigma.shape == ((num_dims,) if per_dim else ())
    assert state.mean.shape == (num_dims,) and state.lr.shape == () and state.generation.shape == ()
    assert (state.extra is None) == (name in ("open_es", "snes", "cem"))
    if state.extra is None:
        assert "extra" not in state._asdict()  # OpenES / SNES / CEM states: the five entries of old checkpoints
    pop = es.ask(state, torch.Generator(device=device).manual_seed(0))
    assert pop.shape == (popsize, num_dims) and pop.dtype == torch.float32 and pop.device.type == device
    assert torch.isfinite(pop).all()
    new_state, metrics = es.tell(state, pop, sphere(pop))
    before, after = leaves(state), leaves(new_state)
    assert before.keys() == after.keys()
    for key, leaf in after.items():
        assert leaf.device.type == device, key
        assert leaf.dtype == (torch.int64 if key == "generation" else torch.float32), key
        if not key.startswith("extra.eigen_age"):  # its length counts generations since the decomposition
            assert leaf.shape == before[key].shape, key
    assert {"grad_norm", "update_norm", "sigma_mean", "lr", "fitness_mean", "fitness_best",
            "num_nonfinite"} <= set(metrics)
    for key, value in metrics.items():
        assert isinstance(value, torch.Tensor) and value.shape == () and value.device.type == device, key


def test_cma_default_popsize_and_weights() -> None:
    """Hansen (2016) Table 1: lambda = 4 + floor(3 ln D), mu = lambda // 2, positive weights sum to 1, active
    negative weights sum to -min(alpha's) (eq. 53); Sep-CMA-ES keeps positive weights and scales c_1, c_mu."""
    for d in (2, 10, 40):
        es = make_strategy("cma_es", d)
        assert es.popsize == 4 + int(math.floor(3 * math.log(d))) and es.mu == es.popsize // 2
        w = torch.tensor(es.weights, dtype=torch.float64)
        assert float(w[: es.mu].sum()) == pytest.approx(1.0) and (w[: es.mu].diff() <= 0).all()
        assert (w[es.mu:] <= 0).all() and float(w[es.mu:].sum()) < 0
        sep = make_strategy("sep_cma_es", d)
        assert all(x >= 0 for x in sep.weights)
        assert sep.c_1 == pytest.approx(es.c_1 * (d + 2) / 3)
        assert es.c_1 + es.c_mu <= 1 and sep.c_1 + sep.c_mu <= 1
    assert make_strategy("cma_es", 10, active=False).weights[-1] == 0.0


# --------------------------------------------------------------------------- determinism and symmetry


@pytest.mark.parametrize("name", NAMES)
def test_determinism(name: str) -> None:
    f = rotated_ellipsoid(5, 10.0)

    def trace(seed: int) -> tuple[list[torch.Tensor], ESState]:
        es = small(name, popsize=12)
        state, gen, pops = es.init(torch.ones(5)), torch.Generator().manual_seed(seed), []
        for _ in range(6):
            pops.append(es.ask(state, gen))
            state, _ = es.tell(state, pops[-1], f(pops[-1]))
        return pops, state

    pops_a, state_a = trace(0)
    pops_b, state_b = trace(0)
    pops_c, state_c = trace(1)
    for a, b in zip(pops_a, pops_b):
        assert torch.equal(a, b)
    assert_states_equal(state_a, state_b)
    assert not torch.equal(pops_a[0], pops_c[0])
    assert not torch.equal(state_a.mean, state_c.mean)


@pytest.mark.parametrize("name", NAMES)
def test_maximize_negated_equals_minimize(name: str) -> None:
    """``maximize=True`` on ``-f`` follows bit for bit the trajectory of ``maximize=False`` on ``f``."""
    f = rotated_ellipsoid(6, 10.0, seed=1)
    states = []
    for maximize, sign in [(False, 1.0), (True, -1.0)]:
        es = make_strategy(name, 6, popsize=16, maximize=maximize)
        states.append(run(es, es.init(torch.ones(6)), f, 15, torch.Generator().manual_seed(3), sign=sign))
    assert_states_equal(states[0], states[1])
    assert f(states[0].mean) < f(torch.ones(6))


@pytest.mark.parametrize("name", NAMES)
def test_maximize_climbs(name: str) -> None:
    """With ``maximize=True`` a strategy climbs ``-sphere`` (and does not climb ``sphere``'s way)."""
    es = make_strategy(name, 4, popsize=16, maximize=True, sigma_init=0.5)
    state = run(es, es.init(torch.full((4,), 2.0)), lambda x: -sphere(x), 40, torch.Generator().manual_seed(0))
    assert sphere(state.mean) < sphere(torch.full((4,), 2.0))


@pytest.mark.parametrize("name", NAMES)
def test_tell_has_no_host_sync(name: str) -> None:
    """``tell`` (and the CMA termination criteria) run on the meta device, where ``.item()`` or branching on
    tensor values would raise."""
    variants: list[dict[str, Any]] = [{}]
    if name == "cma_es":
        variants = [{}, {"active": False, "eigen_interval": 3, "antithetic": True}]
    if name == "pgpe":
        variants = [{}, {"optimizer": "adam", "antithetic": False, "shaping": "none", "stdev_max_change": None,
                         "sigma_limit": 1e-3}]
    if name == "cem":
        variants = [{}, {"smoothing": 0.5, "antithetic": True}]
    for extra in variants:
        es = make_strategy(name, 6, popsize=8, **extra)
        state = es.init(torch.zeros(6, device="meta"))
        for _ in range(4):  # CMA-ES with eigen_interval 3 decomposes on the third tell only
            state, metrics = es.tell(state, torch.empty(8, 6, device="meta"), torch.empty(8, device="meta"))
        assert state.mean.device.type == "meta" and state.mean.shape == (6,)
        assert all(v.device.type == "meta" for v in metrics.values())
        if hasattr(es, "stop_reasons"):
            assert all(v.device.type == "meta" for v in es.stop_reasons(state).values())


# ------------------------------------------------------------------------------------------ bad fitness


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_fitness_treated_as_worst(name: str) -> None:
    p = 8
    for maximize in (True, False):
        es = small(name, popsize=p, maximize=maximize)
        state = run(es, es.init(torch.ones(5)), sphere, 2, torch.Generator().manual_seed(1))
        pop = es.ask(state, torch.Generator().manual_seed(0))
        fit = sphere(pop) * (1.0 if maximize else -1.0)
        bad = fit.clone()
        bad[[1, 4, 6]] = torch.tensor([math.nan, math.inf, -math.inf])
        good = fit[[0, 2, 3, 5, 7]]
        fixed = bad.clone()
        fixed[[1, 4, 6]] = good.min() if maximize else good.max()
        new_bad, metrics = es.tell(state, pop, bad)
        new_fixed, _ = es.tell(state, pop, fixed)
        assert_states_equal(new_bad, new_fixed)
        assert int(metrics["num_nonfinite"]) == 3
        assert torch.isfinite(torch.stack(list(metrics.values())).float()).all()


@pytest.mark.parametrize("name", NAMES)
def test_nan_fitness_does_not_poison_the_state(name: str) -> None:
    """All-NaN generations keep every tensor finite; a run where a quarter of the fitness values are NaN (or
    +-inf) still makes progress on the sphere."""
    es = small(name, popsize=16, maximize=False, sigma_init=0.5)
    state = es.init(torch.full((5,), 2.0))
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        state, metrics = es.tell(state, es.ask(state, gen), torch.full((16,), math.nan))
        assert int(metrics["num_nonfinite"]) == 16
        assert all(torch.isfinite(v).all() for v in leaves(state).values())
    mask_gen = torch.Generator().manual_seed(1)
    for _ in range(60):
        pop = es.ask(state, gen)
        fit = sphere(pop)
        hit = torch.rand(16, generator=mask_gen) < 0.25
        bad = torch.tensor([math.nan, math.inf, -math.inf])[torch.randint(0, 3, (16,), generator=mask_gen)]
        state, _ = es.tell(state, pop, torch.where(hit, bad, fit))
    assert all(torch.isfinite(v).all() for v in leaves(state).values())
    assert sphere(state.mean) < 0.5 * sphere(torch.full((5,), 2.0))


# ------------------------------------------------------------------------------------- invalid configs

INVALID = [
    ("cma_es", {"popsize": 1}, "popsize", "1"),
    ("cma_es", {"sigma_init": -1.0}, "sigma_init", "-1.0"),
    ("cma_es", {"c_sigma": 1.5}, "c_sigma", "1.5"),
    ("cma_es", {"c_1": 1.0}, "c_1", "1.0"),
    ("cma_es", {"c_1": 0.6, "c_mu": 0.6}, "c_mu", "0.6"),
    ("cma_es", {"d_sigma": 0.0}, "d_sigma", "0.0"),
    ("cma_es", {"eigen_interval": 0}, "eigen_interval", "0"),
    ("cma_es", {"popsize": 7, "antithetic": True}, "popsize", "7"),
    ("cma_es", {"tol_fun": math.nan}, "tol_fun", "nan"),
    ("sep_cma_es", {"lrate_mean": 0.0}, "lrate_mean", "0.0"),
    ("sep_cma_es", {"c_c": 0.0}, "c_c", "0.0"),
    ("sep_cma_es", {"antithetic": True}, "popsize", "11"),  # D = 14: the default lambda 4 + floor(3 ln 14) = 11
    ("pgpe", {"popsize": 7}, "popsize", "7"),
    ("pgpe", {"center_learning_rate": 0.0}, "center_learning_rate", "0.0"),
    ("pgpe", {"momentum": 1.0}, "momentum", "1.0"),
    ("pgpe", {"stdev_max_change": 1.0}, "stdev_max_change", "1.0"),
    ("pgpe", {"stdev_max_change": None}, "sigma_limit", "0.0"),
    ("pgpe", {"optimizer": "sgd"}, "optimizer", "'sgd'"),
    ("pgpe", {"shaping": "rank"}, "shaping", "'rank'"),
    ("pgpe", {"max_speed": -1.0}, "max_speed", "-1.0"),
    ("cem", {"elite_ratio": 0.0}, "elite_ratio", "0.0"),
    ("cem", {"elite_ratio": 1.5}, "elite_ratio", "1.5"),
    ("cem", {"smoothing": 1.0}, "smoothing", "1.0"),
    ("cem", {"sigma_limit": -1.0}, "sigma_limit", "-1.0"),
    ("cem", {"popsize": 5, "antithetic": True}, "popsize", "5"),
    ("open_es", {"sigma_decay": 0.0}, "sigma_decay", "0.0"),
    ("snes", {"lrate_mean": -1.0}, "lrate_mean", "-1.0"),
]


@pytest.mark.parametrize("name,overrides,field,value", INVALID)
def test_invalid_configs_name_field_and_value(name: str, overrides: dict[str, Any], field: str, value: str) -> None:
    d = 14 if overrides == {"antithetic": True} else 4
    with pytest.raises(ValueError) as err:
        make_strategy(name, d, **overrides)
    msg = str(err.value)
    assert field in msg and value in msg, msg


def test_registry_errors() -> None:
    with pytest.raises(ValueError, match=r"'cma'.*cem.*cma_es.*open_es.*pgpe.*sep_cma_es.*snes"):
        make_strategy("cma", 3)
    with pytest.raises(ValueError, match="popsz"):
        make_strategy("pgpe", 3, popsz=8)
    for name, (cls, cfg_cls) in STRATEGIES.items():
        with pytest.raises(TypeError):
            cls(object(), 3)
        with pytest.raises(ValueError, match="num_dims"):
            make_strategy(name, 0)
        es = make_strategy(name, 3)
        assert isinstance(es, cls) and isinstance(es.config, cfg_cls)


@pytest.mark.parametrize("name", NAMES)
def test_invalid_shapes_raise(name: str) -> None:
    es = make_strategy(name, 4, popsize=6)
    with pytest.raises(ValueError, match=r"\(5,\)"):
        es.init(torch.zeros(5))
    state = es.init(torch.zeros(4))
    pop = es.ask(state, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"\[6, 4\].*\(6, 5\)"):
        es.tell(state, torch.zeros(6, 5), torch.zeros(6))
    with pytest.raises(ValueError, match=r"\[6\].*\(7,\)"):
        es.tell(state, pop, torch.zeros(7))


# ------------------------------------------------------------------------------- reference update formulas


def test_pgpe_update_matches_formula() -> None:
    """EvoTorch's symmetric PGPE: centred ranks, g_mean = sum (u+ - u-)/2 e / K, g_sigma = sum (u+ + u-)/2
    (e^2 - s^2)/s / K; ClipUp on the centre; stdev change bounded to +-20%."""
    d, p = 3, 6
    es = make_strategy("pgpe", d, popsize=p, sigma_init=0.5, center_learning_rate=0.1, stdev_learning_rate=0.3)
    state = es.init(torch.tensor([1.0, -1.0, 0.5]))
    pop = es.ask(state, torch.Generator().manual_seed(0))
    fit = torch.tensor([3.0, -1.0, 0.5, 2.0, 1.0, -2.0])
    new, _ = es.tell(state, pop, fit)
    ranks = torch.argsort(torch.argsort(fit)).double()  # 0 = worst
    u = ranks / (p - 1) - 0.5
    e = (pop[:3] - state.mean).double()
    s = torch.full((d,), 0.5, dtype=torch.float64)
    g_mean = ((u[:3] - u[3:]) / 2) @ e / 3
    g_sigma = ((u[:3] + u[3:]) / 2) @ ((e.square() - s.square()) / s) / 3
    v = 0.1 * g_mean / g_mean.norm()  # first ClipUp step from zero velocity: lr * g_hat (under max_speed 0.2)
    assert_close(new.mean.double(), state.mean.double() + v, rtol=1e-5, atol=1e-6)
    assert_close(new.sigma.double(), (s + 0.3 * g_sigma).clamp(0.4, 0.6), rtol=1e-5, atol=1e-6)
    assert_close(new.extra["velocity"].double(), -v, rtol=1e-5, atol=1e-6)


def test_clipup_bounds_the_speed() -> None:
    state = clipup_init(torch.zeros(4))
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        delta, state = clipup_update(100.0 * torch.randn(4, generator=g) + 50.0, state, 0.1, 0.2, momentum=0.9)
        assert float(delta.norm()) <= 0.2 + 1e-6
    assert isinstance(state, ClipUpState) and float(state.velocity.norm()) == pytest.approx(0.2, rel=1e-4)
    zero, st = clipup_update(torch.zeros(4), clipup_init(torch.zeros(4)), 0.1, 0.2)
    assert torch.equal(zero, torch.zeros(4)) and torch.isfinite(st.velocity).all()
    dd, _ = clipup_update({"a": torch.ones(2), "b": torch.ones(2)}, clipup_init({"a": torch.zeros(2),
                                                                                 "b": torch.zeros(2)}), 0.1, 0.2)
    assert_close(torch.cat([dd["a"], dd["b"]]), torch.full((4,), 0.05))  # global norm over the dict


def test_cem_update_matches_formula() -> None:
    es = make_strategy("cem", 2, popsize=10, elite_ratio=0.3, smoothing=0.25, sigma_limit=0.01)
    state = es.init(torch.zeros(2))
    pop = es.ask(state, torch.Generator().manual_seed(0))
    fit = -sphere(pop - 1.0)
    new, _ = es.tell(state, pop, fit)
    elite = pop[torch.argsort(fit, descending=True)[:3]]
    mean = 0.25 * state.mean + 0.75 * elite.mean(0)
    var = 0.25 * state.sigma.square() + 0.75 * elite.var(0, unbiased=False)
    assert_close(new.mean, mean)
    assert_close(new.sigma, var.sqrt().clamp(min=0.01))


def test_cma_eigen_interval_lazy_update() -> None:
    """With ``eigen_interval = 3`` the eigenbasis changes only on every third tell; C changes on every one."""
    es = make_strategy("cma_es", 6, eigen_interval=3, sigma_init=0.5)
    f = rotated_ellipsoid(6, 1e3)
    state, gen = es.init(torch.ones(6)), torch.Generator().manual_seed(0)
    for g in range(1, 7):
        pop = es.ask(state, gen)
        new, _ = es.tell(state, pop, -f(pop))
        assert not torch.equal(new.extra["C"], state.extra["C"])
        assert torch.equal(new.extra["B"], state.extra["B"]) == (g % 3 != 0), g
        assert new.extra["eigen_age"].shape == (g % 3,)
        state = new


# ------------------------------------------------------------------------------------ cmaes oracle

cmaes = pytest.importorskip("cmaes")


def _evals_ours(name: str, f: Callable, popsize: int, seed: int, target: float, max_gens: int) -> float:
    es = make_strategy(name, D, popsize=popsize, sigma_init=2.0, maximize=False)
    state, gen = es.init(torch.full((D,), 3.0)), torch.Generator().manual_seed(seed)
    for g in range(max_gens):
        pop = es.ask(state, gen)
        fit = f(pop)
        if float(fit.min()) < target:
            return (g + 1) * popsize
        state, _ = es.tell(state, pop, fit)
    return math.inf


def _evals_cmaes(cls: type, f: Callable, popsize: int, seed: int, target: float, max_gens: int) -> float:
    opt = cls(mean=np.full(D, 3.0), sigma=2.0, population_size=popsize, seed=seed)
    for g in range(max_gens):
        xs = [opt.ask() for _ in range(popsize)]
        fit = f(torch.tensor(np.stack(xs), dtype=torch.float64)).tolist()
        if min(fit) < target:
            return (g + 1) * popsize
        opt.tell(list(zip(xs, fit)))
    return math.inf


ORACLE = [  # (ours, cmaes class, problem, objective)
    ("cma_es", "CMA", "sphere", sphere),
    ("cma_es", "CMA", "rotated ellipsoid 1e6", rotated_ellipsoid(D, 1e6)),
    ("cma_es", "CMA", "rosenbrock", rosenbrock),
    ("sep_cma_es", "SepCMA", "sphere", sphere),
    ("sep_cma_es", "SepCMA", "axis ellipsoid 1e6", axis_ellipsoid(D, 1e6)),
]


@pytest.mark.parametrize("name,ref,problem,f", ORACLE, ids=[f"{o[0]}-{o[2]}" for o in ORACLE])
def test_evaluations_to_target_match_cmaes(name: str, ref: str, problem: str, f: Callable) -> None:
    """Evaluations until f < 1e-8 (D = 10, lambda = 10 = 4 + floor(3 ln 10), start 3 * ones, sigma 2), mean over
    seeds 0-2: ours within 1.5x of the ``cmaes`` package's (and every run of both reaches the target)."""
    seeds, target, max_gens = range(3), 1e-8, 1500
    ours = [_evals_ours(name, f, 10, s, target, max_gens) for s in seeds]
    theirs = [_evals_cmaes(getattr(cmaes, ref), f, 10, s, target, max_gens) for s in seeds]
    assert all(math.isfinite(x) for x in ours + theirs), (ours, theirs)
    ratio = float(np.mean(ours)) / float(np.mean(theirs))
    print(f"{name} {problem}: ours {np.mean(ours):.0f} cmaes {np.mean(theirs):.0f} evaluations (x{ratio:.2f})")
    assert ratio < 1.5, (problem, ours, theirs)


# --------------------------------------------------------------------------------------------- IPOP


def test_ipop_restarts_double_the_population_and_solve_rastrigin() -> None:
    """IPOP-CMA-ES on Rastrigin D = 10 from 3 * ones (sigma 2): the first run (lambda 10) stops in a local minimum
    (f >= 1); restarts with lambda 20, 40, 80, ... reach the global minimum (f < 1e-6) within 1.5e5 evaluations
    (seed 0 needs ~1e5)."""
    ipop = IPOP("cma_es", D, IPOPConfig(check_every=10), sigma_init=2.0, maximize=False)
    state = ipop.init(torch.full((D,), 3.0))
    gen = torch.Generator().manual_seed(0)
    popsizes, best_at_restart = [ipop.popsize], []
    while ipop.evaluations < 150_000 and float(ipop.best_f) >= 1e-6:
        before = ipop.restarts
        pop = ipop.ask(state, gen)
        assert pop.shape == (ipop.popsize, D)
        state, metrics = ipop.tell(state, pop, rastrigin(pop))
        assert int(metrics["popsize"]) == pop.shape[0]
        if ipop.restarts != before:
            popsizes.append(ipop.popsize)
            best_at_restart.append(float(ipop.best_f))
            assert int(state.generation) == 0 and torch.equal(state.mean, torch.full((D,), 3.0))
            assert ipop.last_reasons
    assert popsizes == [10 * 2**k for k in range(len(popsizes))] and len(popsizes) >= 3
    assert best_at_restart[0] >= 1.0  # the default population only finds a local minimum
    assert float(ipop.best_f) < 1e-6, (best_at_restart, float(ipop.best_f))
    assert float(rastrigin(ipop.best_x)) == pytest.approx(float(ipop.best_f), abs=1e-5)


def test_ipop_checkpoint_and_validation(tmp_path: Path) -> None:
    def drive(ipop: IPOP, state: ESState, gen: torch.Generator, n: int) -> ESState:
        for _ in range(n):
            pop = ipop.ask(state, gen)
            state, _ = ipop.tell(state, pop, rastrigin(pop))
        return state

    make = lambda: IPOP("sep_cma_es", 4, IPOPConfig(check_every=1, max_restarts=2), sigma_init=0.3,  # noqa: E731
                        maximize=False, tol_fun=1e-3)
    a, gen = make(), torch.Generator().manual_seed(0)
    state = drive(a, a.init(torch.full((4,), 2.0)), gen, 60)
    assert a.restarts >= 1
    torch.save({"es": state._asdict(), "ipop": a.state_dict(), "rng": gen.get_state()}, tmp_path / "c.pt")
    ck = torch.load(tmp_path / "c.pt", weights_only=True)
    b = make()
    b.init(torch.full((4,), 2.0))
    b.load_state_dict(ck["ipop"])
    gen_b = torch.Generator()
    gen_b.set_state(ck["rng"])
    assert b.popsize == a.popsize
    assert_states_equal(drive(a, state, gen, 40), drive(b, ESState(**ck["es"]), gen_b, 40))
    assert a.restarts == b.restarts <= 2 and a.evaluations == b.evaluations
    with pytest.raises(ValueError, match="'pgpe'"):
        IPOP("pgpe", 4)
    with pytest.raises(ValueError, match="popsize_factor.*1"):
        IPOP("cma_es", 4, IPOPConfig(popsize_factor=1))


# ---------------------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    """``torch.save(state._asdict())`` / ``ESState(**torch.load(weights_only=True))`` and the runner's checkpoint
    functions (``io.save_checkpoint``, ``runner._state_from_dict``) restore every tensor, ``extra`` included, and
    the continued runs are identical."""
    from torch_distill.io import load_checkpoint, save_checkpoint
    from torch_distill.runner import _state_from_dict

    f = rotated_ellipsoid(6, 10.0)
    es = make_strategy(name, 6, popsize=10, **({"eigen_interval": 2} if name == "cma_es" else {}))
    gen = torch.Generator().manual_seed(0)
    state = run(es, es.init(torch.ones(6)), f, 3, gen)  # odd count: CMA's eigen_age is non-empty
    rng = gen.get_state()
    torch.save(state._asdict(), tmp_path / "plain.pt")
    plain = ESState(**torch.load(tmp_path / "plain.pt", weights_only=True))
    save_checkpoint(tmp_path / "ckpt.pt", {"es_state": state._asdict()})
    runner = _state_from_dict(load_checkpoint(tmp_path / "ckpt.pt")["es_state"], torch.device("cpu"))
    cont = run(es, state, f, 3, gen)
    for restored in (plain, runner):
        assert_states_equal(state, restored)
        g2 = torch.Generator()
        g2.set_state(rng)
        assert_states_equal(cont, run(es, restored, f, 3, g2))


class _Sphere:
    """A toy :class:`~torch_distill.runner.Problem`: maximise ``-|x - 1|^2`` in 4 dimensions."""

    num_dims = 4

    def initial_mean(self) -> torch.Tensor:
        return torch.zeros(4)

    def fitness(self, genomes: torch.Tensor, generation: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        zero = torch.zeros(())
        return -(genomes - 1.0).square().sum(-1), {"env_steps": zero, "episode_steps": zero}

    def evaluate_mean(self, mean: torch.Tensor, generation: int) -> dict[str, float]:
        return {"return_mean": float(-(mean - 1.0).square().sum())}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@pytest.mark.parametrize("name", ["cma_es", "pgpe", "sep_cma_es"])
def test_runner_resume_equals_uninterrupted(name: str, tmp_path: Path) -> None:
    """``run_es`` checkpoints a new strategy's state (``extra`` included) and a resumed run ends bit for bit where
    the uninterrupted one does."""
    from torch_distill.distributed import DistInfo
    from torch_distill.runner import RunnerConfig, run_es

    es = lambda: make_strategy(name, 4, popsize=8, sigma_init=0.3)  # noqa: E731
    cfg = dict(seed=3, eval_every=2, checkpoint_every=2, log_every=100)
    full, _, _ = run_es(_Sphere(), es(), RunnerConfig(6, **cfg), tmp_path / "full", DistInfo())
    run_es(_Sphere(), es(), RunnerConfig(4, **cfg), tmp_path / "part", DistInfo())
    ck = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)
    assert ck["generation"] == 4 and set(ck["es_state"]["extra"]) == set(full.extra)
    resumed, _, _ = run_es(_Sphere(), es(), RunnerConfig(6, **cfg), tmp_path / "part", DistInfo(), resume=True)
    assert_states_equal(full, resumed)
    assert float(-(full.mean - 1.0).square().sum()) > -4.0  # it moved towards the optimum


# --------------------------------------------------------------------------------------- bench smoke


def test_bench_strategies_smoke(tmp_path: Path) -> None:
    """``scripts/bench_strategies.py`` at tiny sizes: a table on stdout and the JSON via ``--out``."""
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_strategies.py"), "--strategies", "cma_es,pgpe",
         "--methods", "direct-es", "--popsize", "4", "--generations", "2", "--episodes", "1", "--max-steps", "20",
         "--eval-episodes", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "cma_es" in r.stdout and "pgpe" in r.stdout and "solved" in r.stdout
    rec = json.loads(out.read_text())
    assert {(x["method"], x["strategy"]) for x in rec["results"]} == {("direct-es", "cma_es"), ("direct-es", "pgpe")}
    for x in rec["results"]:
        assert x["generations_run"] == 2 and x["solved"] is False and x["env_steps"] > 0
    assert rec["threads"] == 1
