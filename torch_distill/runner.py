"""The ES outer loop shared by HaDES, the direct-ES baseline and the synthetic-environment search.

A :class:`Problem` turns genomes into fitness; :func:`run_es` does the rest: ask / evaluate this rank's slice /
gather fitness / tell, periodic evaluation of the ES mean, progress lines, metrics, checkpoints and resume.
Every random draw of generation ``g`` comes from ``derive_seed(seed, g, stream)``: a resumed run repeats exactly
what an uninterrupted run would have done, and every rank can regenerate the whole population without any
parameter broadcast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from torch_distill.distributed import DistInfo, gather_fitness_and_counts, shard
from torch_distill.es.strategies import ESState
from torch_distill.io import load_checkpoint, save_checkpoint
from torch_distill.log import RunLogger, plot_curves

__all__ = ["derive_seed", "Problem", "RunnerConfig", "run_es", "Streams"]


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
        ckpt = load_checkpoint(ckpt_path)
        state = _state_from_dict(ckpt["es_state"], device)
        problem.load_state_dict(ckpt["problem"])
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
    g = start_gen
    for g in range(start_gen, config.generations):
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
        if info.enabled and config.max_minutes is not None:  # every rank must stop at the same generation
            flag = torch.tensor([float(out_of_time)], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            out_of_time = bool(flag[0] > 0)
        if info.is_main and (done_gen % config.checkpoint_every == 0 or done_gen == config.generations or out_of_time
                             or out_of_steps):
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
        if out_of_time:
            logger.print(f"time budget of {config.max_minutes} min reached after generation {done_gen}")
        if out_of_steps:
            logger.print(f"env-step budget of {config.max_env_steps:.0f} reached after generation {done_gen}")
        if out_of_time or out_of_steps:
            break
    rows = logger.read_metrics() if info.is_main else []
    if info.is_main and rows:
        plot_curves(rows, run_dir / "curves.png", title)
    return state, rows, best


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
