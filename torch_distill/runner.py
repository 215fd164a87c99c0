"""The ES outer loop shared by HaDES, the direct-ES baseline and the synthetic-environment search.

A :class:`Problem` turns genomes into fitness; :func:`run_es` does the rest: ask / evaluate this rank's slice /
gather fitness / tell, periodic evaluation of the ES mean, progress lines, metrics, checkpoints and resume.
Every random draw of generation ``g`` comes from ``derive_seed(seed, g, stream)``: a resumed run repeats exactly
what an uninterrupted run would have done, and every rank can regenerate the whole population without any
parameter broadcast.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from torch_distill.distributed import (DistInfo, RankFailure, gather_fitness_and_counts, shard,
                                      sigterm_as_rank_failure, stop_together)
from torch_distill.es.strategies import ESState
from torch_distill.io import CheckpointFileError, load_checkpoint, save_checkpoint
from torch_distill.log import RunLogger, plot_curves

__all__ = ["derive_seed", "Problem", "RunnerConfig", "run_es", "Streams", "TEST_RANK_FAILURE_ENV"]

TEST_RANK_FAILURE_ENV = "TORCH_DISTILL_TEST_RANK_FAILURE"
"""Test-only hook (``tests/core/test_rank_failure.py``): ``"RANK:GENERATION:exit"`` makes rank ``RANK`` die with
``os._exit(1)`` when it starts generation ``GENERATION`` (0-based), ``"RANK:GENERATION:hang"`` makes it sleep
there instead, so the other ranks' collective times out. Unset in normal use; read once per run."""


def _test_rank_failure(info: DistInfo) -> tuple[int, str] | None:
    """The generation and mode of :data:`TEST_RANK_FAILURE_ENV` for this rank, or None."""
    raw = os.environ.get(TEST_RANK_FAILURE_ENV)
    if not raw:
        return None
    rank, gen, mode = raw.split(":")
    return (int(gen), mode) if int(rank) == info.rank else None


class Streams:
    """Stream ids for :func:`derive_seed`."""

    ASK = 1
    INIT = 2
    ENV = 3
    MEAN_EVAL = 4
    MEAN_INIT = 5
    NORM = 6
    FINAL = 7
    LEARNER = 8


def derive_seed(seed: int, generation: int, stream: int) -> int:
    """A well-mixed 63-bit seed from ``(seed, generation, stream)`` (numpy ``SeedSequence``; host-side only)."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(generation) + 1, int(stream)])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


class Problem(Protocol):
    """What :func:`run_es` optimises. Fitness is maximised."""

    num_dims: int

    def initial_mean(self) -> Tensor: ...

    def fitness(self, genomes: Tensor, generation: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Fitness ``[P_local]`` of this rank's genomes ``[P_local, D]`` plus counters (0-dim tensors:
        ``env_steps`` executed, ``episode_steps`` within episodes)."""
        ...

    def evaluate_mean(self, mean: Tensor, generation: int) -> dict[str, float]:
        """Evaluate the ES mean with fresh seeds; must return ``return_mean`` (and may add more)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class RunnerConfig:
    generations: int
    seed: int = 0
    eval_every: int = 10
    checkpoint_every: int = 10
    log_every: int = 1
    max_minutes: float | None = None
    max_env_steps: float | None = None  # budget on episode steps (env interactions within episodes)


def _to_float(x: Tensor | float) -> float:
    return float(x.item()) if isinstance(x, Tensor) else float(x)


def run_es(
    problem: Problem,
    strategy: Any,
    config: RunnerConfig,
    run_dir: Path,
    info: DistInfo,
    resume: bool = False,
    title: str = "",
) -> tuple[ESState, list[dict[str, Any]], dict[str, Any] | None]:
    """Run the ES loop.

    Returns the final ES state, the metric rows and the best ES mean seen by the periodic evaluations
    (``{"generation", "return_mean", "mean"}``) -- rows and best on rank 0 only (others get ``[]`` and ``None``).
    """
    logger = RunLogger(run_dir, enabled=info.is_main, log_every=config.log_every)
    ckpt_path = run_dir / "checkpoint.pt"
    device = info.device
    start_gen = 0
    counters = {"env_steps": 0.0, "episode_steps": 0.0, "wall_time": 0.0}
    best: dict[str, Any] | None = None
    if resume:
        ckpt = _checked_checkpoint(load_checkpoint(ckpt_path), ckpt_path, problem.num_dims, config.generations)
        try:
            state = _state_from_dict(ckpt["es_state"], device)
        except (TypeError, ValueError) as e:
            raise CheckpointFileError(f"{ckpt_path}: its es_state does not rebuild an ES state ({e})") from None
        try:
            problem.load_state_dict(ckpt["problem"])
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
            raise CheckpointFileError(f"{ckpt_path}: its 'problem' entry does not fit this run "
                                      f"({type(e).__name__}: {e})") from None
        start_gen = int(ckpt["generation"])
        counters.update(ckpt["counters"])
        best = ckpt.get("best")
        if best is not None:
            best = {**best, "mean": best["mean"].to(device)}
        logger.truncate_after(start_gen)
        logger.print(f"resumed from {ckpt_path} at generation {start_gen}")
    else:
        state = strategy.init(problem.initial_mean().to(device))
    popsize = strategy.popsize
    my_slice = shard(popsize, info)
    gen_ask = torch.Generator(device=device)
    t_run = time.perf_counter() - counters["wall_time"]
    last_logged_t, last_logged_gen, last_steps = time.perf_counter(), start_gen, counters["env_steps"]
    failure_hook = _test_rank_failure(info) if info.enabled else None
    saved_gen = start_gen if resume else None  # generation of the newest checkpoint (rank 0 knows)
    g = start_gen
    try:
        with sigterm_as_rank_failure(info):
            for g in range(start_gen, config.generations):
                if failure_hook is not None and failure_hook[0] == g:
                    if failure_hook[1] == "hang":
                        time.sleep(3600)
                    os._exit(1)
                gen_ask.manual_seed(derive_seed(config.seed, g, Streams.ASK))
                population = strategy.ask(state, gen_ask)  # [P, D] on every rank
                local_fit, stats = problem.fitness(population[my_slice], g)
                # fitness slices and step counters of every rank in one collective; no host sync before it
                counts = torch.stack([torch.as_tensor(stats[k], device=device).to(torch.float64)
                                      for k in ("env_steps", "episode_steps")])
                fitness, counts = gather_fitness_and_counts(local_fit.float(), counts, popsize, info)
                state, es_metrics = strategy.tell(state, population, fitness)
                env_steps, episode_steps = counts.tolist()
                counters["env_steps"] += env_steps
                counters["episode_steps"] += episode_steps
                done_gen = g + 1
                finite = fitness[torch.isfinite(fitness)]
                n_finite = finite.numel()
                fit_stats = (torch.stack([finite.mean(), finite.max(), finite.min(),
                                          finite.std() if n_finite > 1 else finite.new_zeros(())]).tolist()
                             if n_finite else [float("nan")] * 3 + [0.0])  # one host transfer for the four statistics
                now = time.perf_counter()
                row: dict[str, Any] = {
                    "generation": done_gen,
                    "fitness_mean": fit_stats[0],
                    "fitness_max": fit_stats[1],
                    "fitness_min": fit_stats[2],
                    "fitness_std": fit_stats[3],
                    "nonfinite": int(fitness.numel() - n_finite),
                    "env_steps": counters["env_steps"],
                    "episode_steps": counters["episode_steps"],
                    "wall_time": now - t_run,
                }
                row.update({k: _to_float(v) for k, v in es_metrics.items()})
                if info.is_main and (done_gen % config.eval_every == 0 or done_gen == config.generations):
                    ev = problem.evaluate_mean(state.mean, done_gen)
                    row["es_mean_return"] = ev["return_mean"]
                    if best is None or ev["return_mean"] > best["return_mean"]:
                        best = {"generation": done_gen, "return_mean": ev["return_mean"], "mean": state.mean.clone()}
                    row.update({f"es_mean_{k}": v for k, v in ev.items() if k != "return_mean"})
                now = time.perf_counter()
                dt = max(now - last_logged_t, 1e-9)
                row["gens_per_s"] = (done_gen - last_logged_gen) / dt
                row["env_steps_per_s"] = (counters["env_steps"] - last_steps) / dt
                last_logged_t, last_logged_gen, last_steps = now, done_gen, counters["env_steps"]
                row["wall_time"] = now - t_run
                counters["wall_time"] = row["wall_time"]
                logger.log(row)
                logger.progress(row, config.generations)
                out_of_time = config.max_minutes is not None and row["wall_time"] > 60 * config.max_minutes
                out_of_steps = config.max_env_steps is not None and counters["episode_steps"] >= config.max_env_steps
                if config.max_minutes is not None:  # every rank must stop at the same generation
                    out_of_time = stop_together(out_of_time, info)
                if info.is_main and (done_gen % config.checkpoint_every == 0 or done_gen == config.generations
                                     or out_of_time or out_of_steps):
                    save_checkpoint(
                        ckpt_path,
                        {
                            "generation": done_gen,
                            "es_state": state._asdict(),
                            "problem": problem.state_dict(),
                            "counters": counters,
                            "best": best,
                        },
                    )
                    saved_gen = done_gen
                if out_of_time:
                    logger.print(f"time budget of {config.max_minutes} min reached after generation {done_gen}")
                if out_of_steps:
                    logger.print(f"env-step budget of {config.max_env_steps:.0f} reached after generation {done_gen}")
                if out_of_time or out_of_steps:
                    break
    except RankFailure as e:
        if saved_gen is not None and info.is_main:
            hint = f"resume with --resume {run_dir} (its checkpoint.pt holds generation {saved_gen})"
        elif info.is_main:
            hint = f"no checkpoint was written yet in {run_dir}; start the run again"
        else:
            hint = f"resume with --resume {run_dir} (rank 0 writes its checkpoints)"
        raise e.at(g + 1, hint) from None
    rows = logger.read_metrics() if info.is_main else []
    if info.is_main and rows:
        plot_curves(rows, run_dir / "curves.png", title)
    return state, rows, best


def _checked_checkpoint(ckpt: Any, path: Path, num_dims: int, generations: int) -> dict[str, Any]:
    """``ckpt`` if it has the entries :func:`run_es` writes, with the right types and a ``[num_dims]`` ES mean;
    else :class:`~torch_distill.io.CheckpointFileError` naming the file and what is wrong."""

    def bad(what: str) -> CheckpointFileError:
        return CheckpointFileError(f"{path}: {what}; expected a checkpoint written by this run (generation, "
                                   "es_state, problem, counters, best)")

    if not isinstance(ckpt, dict):
        raise bad(f"holds a {type(ckpt).__name__}, not a dict")
    missing = sorted({"generation", "es_state", "problem", "counters"} - set(ckpt))
    if missing:
        raise bad(f"no {', '.join(map(repr, missing))} entry")
    gen = ckpt["generation"]
    if isinstance(gen, bool) or not isinstance(gen, int) or gen < 0:
        raise bad(f"generation {gen!r} is not a generation count")
    es = ckpt["es_state"]
    fields = set(ESState._fields) - {"extra"}
    if not isinstance(es, dict) or not fields <= set(es) or not set(es) <= set(ESState._fields):
        keys = sorted(es) if isinstance(es, dict) else type(es).__name__
        raise bad(f"es_state has {keys}, expected the ESState fields {list(ESState._fields)}")
    mean = es["mean"]
    if not isinstance(mean, Tensor) or tuple(mean.shape) != (num_dims,) or not mean.is_floating_point():
        shape = tuple(mean.shape) if isinstance(mean, Tensor) else type(mean).__name__
        raise bad(f"es_state mean has shape {shape}, this run's genome has {num_dims} dims")
    if not torch.isfinite(mean).all():
        raise bad("es_state mean contains NaN or inf values")
    for k in ("sigma", "lr", "generation"):
        if not isinstance(es[k], Tensor):
            raise bad(f"es_state {k} is a {type(es[k]).__name__}, not a tensor")
    if not isinstance(ckpt["problem"], dict):
        raise bad(f"problem is a {type(ckpt['problem']).__name__}, not a dict")
    counters = ckpt["counters"]
    if not isinstance(counters, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 for v in counters.values()):
        raise bad("counters is not a dict of numbers")
    best = ckpt.get("best")
    if best is not None and not (isinstance(best, dict) and isinstance(best.get("mean"), Tensor)
                                 and tuple(best["mean"].shape) == (num_dims,)
                                 and isinstance(best.get("generation"), int)
                                 and isinstance(best.get("return_mean"), (int, float))):
        raise bad("best is not {generation, return_mean, mean [D]}")
    return ckpt


def _state_from_dict(d: dict[str, Any], device: torch.device) -> ESState:
    from torch_distill.es.optim import AdamState

    def dev(x: Any) -> Any:
        if isinstance(x, Tensor):
            return x.to(device)
        if isinstance(x, dict):
            return {k: dev(v) for k, v in x.items()}
        return x

    d = dev(d)
    opt = d["opt"]
    if isinstance(opt, dict):
        opt = AdamState(**opt)
    return ESState(**{**d, "opt": opt})
