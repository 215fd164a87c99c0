"""Direct tests of the ES outer loop ``torch_distill.runner`` with a tiny hand-written Problem.

Fitness is ``-sum(x^2)`` (cheap), the step counters are synthetic, so budgets, checkpoints and resume can be
checked exactly.
"""

from __future__ import annotations

import io
import time

import pytest
import torch

import torch_distill.runner as runner
from torch_distill.distributed import DistInfo
from torch_distill.es import make_strategy
from torch_distill.io import load_checkpoint
from torch_distill.runner import RunnerConfig, Streams, derive_seed, run_es

D = 4
P = 8
ENV_STEPS_PER_MEMBER = 10  # "env_steps" counter per member per generation
EPISODE_STEPS_PER_MEMBER = 5  # "episode_steps" counter (the one max_env_steps budgets)
TIMING_KEYS = {"wall_time", "gens_per_s", "env_steps_per_s"}


class CrashAt(RuntimeError):
    pass


class SphereProblem:
    """fitness = -sum(x^2) + 1e-3 * calls: it depends on the problem's own state, so a resume that forgot
    ``load_state_dict`` would not match an uninterrupted run."""

    def __init__(self, crash_at: int | None = None, sleep_s: float = 0.0, peak_at: int | None = None) -> None:
        self.num_dims = D
        self.calls = 0
        self.generations_seen: list[int] = []
        self.eval_generations: list[int] = []
        self.crash_at = crash_at
        self.sleep_s = sleep_s
        self.loaded: dict | None = None
        self.peak_at = peak_at  # evaluate_mean peaks at this generation (the best then predates later checkpoints)

    def initial_mean(self) -> torch.Tensor:
        return torch.linspace(0.5, 1.5, D)

    def fitness(self, genomes: torch.Tensor, generation: int):
        if self.crash_at is not None and generation == self.crash_at:
            raise CrashAt(generation)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        self.generations_seen.append(generation)
        fit = -(genomes * genomes).sum(1) + 1e-3 * self.calls
        self.calls += 1
        n = genomes.shape[0]
        return fit, {
            "env_steps": torch.tensor(float(n * ENV_STEPS_PER_MEMBER)),
            "episode_steps": torch.tensor(float(n * EPISODE_STEPS_PER_MEMBER)),
        }

    def evaluate_mean(self, mean: torch.Tensor, generation: int) -> dict[str, float]:
        self.eval_generations.append(generation)
        if self.peak_at is not None:
            return {"return_mean": -abs(generation - self.peak_at) + float(mean.sum()) * 1e-6, "norm": 0.0}
        return {"return_mean": float(-(mean * mean).sum()), "norm": float(mean.norm())}

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state) -> None:
        self.loaded = dict(state)
        self.calls = int(state["calls"])


@pytest.fixture
def printed(monkeypatch):
    """What the runner prints. RunLogger binds ``sys.stdout`` as a default argument at import time, so capsys
    does not see it; inject a StringIO stream instead."""
    buf = io.StringIO()
    real = runner.RunLogger
    monkeypatch.setattr(runner, "RunLogger", lambda *a, **kw: real(*a, **{**kw, "stream": buf}))
    return buf


def _strategy():
    return make_strategy("open_es", D, popsize=P, sigma_init=0.1, lr=0.05)


def _run(tmp_path, name, problem=None, resume=False, **cfg):
    cfg.setdefault("generations", 10)
    cfg.setdefault("seed", 3)
    cfg.setdefault("eval_every", 4)
    cfg.setdefault("checkpoint_every", 100)
    problem = problem or SphereProblem()
    state, rows, best = run_es(problem, _strategy(), RunnerConfig(**cfg), tmp_path / name, DistInfo(), resume=resume)
    return problem, state, rows, best


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def _assert_states_equal(a, b):
    for name in ("mean", "sigma", "lr", "generation"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for x, y in zip(a.opt, b.opt):
        assert torch.equal(torch.as_tensor(x), torch.as_tensor(y))


# --------------------------------------------------------------------------------------------- derive_seed
def test_derive_seed_deterministic_distinct_and_in_range():
    assert derive_seed(5, 3, Streams.ASK) == derive_seed(5, 3, Streams.ASK)
    seeds = {(s, g, k): derive_seed(s, g, k) for s in (0, 1, 12345) for g in range(-1, 40) for k in range(1, 8)}
    assert len(set(seeds.values())) == len(seeds)  # differs by seed, generation and stream
    assert derive_seed(0, 0, Streams.ASK) != derive_seed(0, 1, Streams.ASK)
    assert derive_seed(0, 0, Streams.ASK) != derive_seed(0, 0, Streams.INIT)
    assert all(isinstance(v, int) and 0 <= v < 2**63 for v in seeds.values())
    torch.Generator().manual_seed(max(seeds.values()))  # usable as a torch seed


# ----------------------------------------------------------------------------------------------- budgets
def test_generation_budget_rows_evals_and_population_seeding(tmp_path):
    problem, state, rows, best = _run(tmp_path, "g", generations=7, eval_every=3)
    assert [r["generation"] for r in rows] == list(range(1, 8))
    assert problem.generations_seen == list(range(7))
    assert int(state.generation) == 7
    # ES-mean evaluations every eval_every generations and at the last one
    assert problem.eval_generations == [3, 6, 7]
    assert [r["generation"] for r in rows if "es_mean_return" in r] == [3, 6, 7]
    assert all("es_mean_norm" in r for r in rows if "es_mean_return" in r)
    evals = {r["generation"]: r["es_mean_return"] for r in rows if "es_mean_return" in r}
    g_best = max(evals, key=evals.get)
    assert best["generation"] == g_best and best["return_mean"] == evals[g_best]
    # counters accumulate the problem's step counts
    assert [r["env_steps"] for r in rows] == [float(g * P * ENV_STEPS_PER_MEMBER) for g in range(1, 8)]
    assert [r["episode_steps"] for r in rows] == [float(g * P * EPISODE_STEPS_PER_MEMBER) for g in range(1, 8)]
    # generation 0's population is drawn from derive_seed(seed, 0, ASK): recompute its fitness
    es = _strategy()
    s0 = es.init(SphereProblem().initial_mean())
    pop = es.ask(s0, torch.Generator().manual_seed(derive_seed(3, 0, Streams.ASK)))
    fit = -(pop * pop).sum(1)
    assert rows[0]["fitness_mean"] == pytest.approx(float(fit.mean()), rel=1e-6)
    assert rows[0]["fitness_max"] == pytest.approx(float(fit.max()), rel=1e-6)
    assert rows[0]["fitness_min"] == pytest.approx(float(fit.min()), rel=1e-6)
    assert rows[0]["nonfinite"] == 0
    # the sphere is being optimised
    assert float(state.mean.norm()) < float(SphereProblem().initial_mean().norm())
    # outputs: metrics file (= returned rows), final checkpoint, curves
    assert len((tmp_path / "g" / "metrics.jsonl").read_text().splitlines()) == 7
    assert load_checkpoint(tmp_path / "g" / "checkpoint.pt")["generation"] == 7
    assert (tmp_path / "g" / "curves.png").stat().st_size > 0


@pytest.mark.parametrize("budget, stop_gen", [(100, 3), (120, 3), (121, 4), (40, 1)])
def test_max_env_steps_budget_stops_at_right_generation(tmp_path, budget, stop_gen, printed):
    # 40 episode steps per generation (80 env steps): the budget is on episode steps, inclusive (>=)
    problem, state, rows, _ = _run(tmp_path, "s", generations=50, max_env_steps=budget)
    assert [r["generation"] for r in rows] == list(range(1, stop_gen + 1))
    assert int(state.generation) == stop_gen
    assert rows[-1]["episode_steps"] >= budget > (rows[-2]["episode_steps"] if stop_gen > 1 else 0)
    ckpt = load_checkpoint(tmp_path / "s" / "checkpoint.pt")  # checkpoint written at the stop
    assert ckpt["generation"] == stop_gen
    assert torch.equal(ckpt["es_state"]["mean"], state.mean)
    assert f"env-step budget of {budget} reached after generation {stop_gen}" in printed.getvalue()


def test_wall_clock_budget_stops_early(tmp_path, printed):
    limit_s = 0.25
    problem = SphereProblem(sleep_s=0.1)
    _, state, rows, _ = _run(tmp_path, "t", problem=problem, generations=200, max_minutes=limit_s / 60)
    n = len(rows)
    assert 1 <= n <= 3  # each generation sleeps 0.1 s: the wall time exceeds 0.25 s by generation 3
    assert int(state.generation) == n
    # it stops at the first generation whose wall time exceeds the budget, not before
    assert rows[-1]["wall_time"] > limit_s
    assert all(r["wall_time"] <= limit_s for r in rows[:-1])
    assert load_checkpoint(tmp_path / "t" / "checkpoint.pt")["generation"] == n
    assert f"reached after generation {n}" in printed.getvalue()


def test_tiny_wall_clock_budget_stops_after_first_generation(tmp_path):
    _, state, rows, _ = _run(tmp_path, "t0", generations=100, max_minutes=1e-9)
    assert len(rows) == 1 and int(state.generation) == 1


# ------------------------------------------------------------------------------------------- checkpoints
def test_checkpoints_written_every_checkpoint_every(tmp_path, monkeypatch):
    saved: list[int] = []
    real = runner.save_checkpoint

    def spy(path, payload):
        saved.append(int(payload["generation"]))
        real(path, payload)

    monkeypatch.setattr(runner, "save_checkpoint", spy)
    problem, state, rows, best = _run(tmp_path, "c", generations=10, checkpoint_every=3, eval_every=5)
    assert saved == [3, 6, 9, 10]
    ckpt = load_checkpoint(tmp_path / "c" / "checkpoint.pt")
    assert ckpt["generation"] == 10
    assert torch.equal(ckpt["es_state"]["mean"], state.mean)
    assert torch.equal(ckpt["es_state"]["sigma"], state.sigma)
    assert ckpt["problem"] == {"calls": 10}
    assert ckpt["counters"]["env_steps"] == rows[-1]["env_steps"]
    assert ckpt["counters"]["episode_steps"] == rows[-1]["episode_steps"]
    assert ckpt["best"]["generation"] == best["generation"]
    assert torch.equal(ckpt["best"]["mean"], best["mean"])


# ------------------------------------------------------------------------------------------------ resume
@pytest.mark.parametrize("peak_at", [None, 4])
def test_resume_after_crash_is_bitwise_equal_and_drops_rows_after_checkpoint(tmp_path, peak_at):
    cfg = dict(generations=10, checkpoint_every=3, eval_every=2)
    _, ref_state, ref_rows, ref_best = _run(tmp_path, "full", problem=SphereProblem(peak_at=peak_at), **cfg)
    if peak_at is not None:
        assert ref_best["generation"] == 4  # found before the checkpoint: a resume must restore it

    # crash while computing generation index 7 (done_gen 8): last checkpoint is generation 6, rows 1..7 on disk
    with pytest.raises(CrashAt):
        _run(tmp_path, "cut", problem=SphereProblem(crash_at=7, peak_at=peak_at), **cfg)
    on_disk = [r["generation"] for r in runner.RunLogger(tmp_path / "cut").read_metrics()]
    assert on_disk == list(range(1, 8))
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["generation"] == 6

    fresh = SphereProblem(peak_at=peak_at)
    problem, state, rows, best = _run(tmp_path, "cut", problem=fresh, resume=True, **cfg)
    assert problem.loaded == {"calls": 6}
    assert problem.generations_seen == [6, 7, 8, 9]  # restarts after the checkpoint generation
    assert [r["generation"] for r in rows] == list(range(1, 11))  # row 7 dropped and recomputed, no duplicate
    _assert_states_equal(state, ref_state)
    assert _strip(rows) == _strip(ref_rows)
    assert best["generation"] == ref_best["generation"] and best["return_mean"] == ref_best["return_mean"]
    assert torch.equal(best["mean"], ref_best["mean"])
    # wall time continues from the checkpoint's
    ck_wall = [r for r in rows if r["generation"] == 6][0]["wall_time"]
    assert all(r["wall_time"] >= ck_wall for r in rows[6:])


def test_resume_after_budget_stop_matches_uninterrupted_run(tmp_path):
    _, ref_state, ref_rows, ref_best = _run(tmp_path, "full", generations=9, eval_every=4)
    # stopped by the env-step budget after 3 generations (120 episode steps), then resumed without the budget
    _, s3, rows3, _ = _run(tmp_path, "cut", generations=9, eval_every=4, max_env_steps=120)
    assert len(rows3) == 3
    problem, state, rows, best = _run(tmp_path, "cut", resume=True, generations=9, eval_every=4)
    assert problem.generations_seen == list(range(3, 9))
    _assert_states_equal(state, ref_state)
    assert _strip(rows) == _strip(ref_rows)
    assert best["generation"] == ref_best["generation"] and torch.equal(best["mean"], ref_best["mean"])


def test_resume_without_checkpoint_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        _run(tmp_path, "none", resume=True)
