"""One ES search run, end to end, for any method (HaDES, the direct-ES baseline, synthetic environments).

:func:`run_search` does what every method's run does, written once: resume (the stored options), validation,
threads, torchrun initialisation, device, the strategy from :class:`ESOptions`, run folder and ``config.json``,
banner, the ES loop (:func:`~torch_distill.runner.run_es`), the final and best ES means handed one by one to the
method's finishing hook (evaluate and save each), ``summary.json``, the closing table and cleanup. A method
supplies a :class:`SearchMethod`: its :class:`~torch_distill.runner.Problem` and the hooks that describe,
evaluate and save it. Rank 0 writes; every rank computes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, TypeVar

import torch
from torch import Tensor

from torch_distill import __version__
from torch_distill.distributed import barrier, cleanup, init_distributed, resolve_device
from torch_distill.es.strategies import STRATEGIES, make_strategy
from torch_distill.io import write_json
from torch_distill.log import format_table
from torch_distill.runner import Problem, RunnerConfig, Streams, derive_seed, run_es
from torch_distill.runs import RunOptions, command_line, make_run_dir, resumed_config

__all__ = ["ESOptions", "Candidate", "Finished", "SearchMethod", "run_search", "LEARNING_RATE_FIELD", "STRATEGY_HELP"]

LEARNING_RATE_FIELD: dict[str, str | None] = {
    "snes": "lrate_mean",
    "open_es": "lr",
    "cma_es": "lrate_mean",
    "sep_cma_es": "lrate_mean",
    "pgpe": "center_learning_rate",
    "cem": None,
}
"""The hyperparameter of each strategy that ``ESOptions.es_lr`` sets: OpenES's Adam lr, SNES's ``lrate_mean``,
CMA-ES's and Sep-CMA-ES's mean learning rate ``c_m`` (the tutorial's 1), PGPE's ClipUp centre learning rate; None
for CEM, which refits its mean to the elite and has no learning rate (``es_lr`` is not used). Every registered
strategy has an entry (``ESOptions.sigma`` always sets ``sigma_init``: the initial step size of CMA-ES and
Sep-CMA-ES, the initial per-dimension stdev of SNES, PGPE and CEM, OpenES's sigma)."""

STRATEGY_HELP = (
    "snes (sigma auto 0.5, es_lr = lrate_mean auto 1.0), open_es (OpenES + Adam: sigma auto 0.03, es_lr = Adam lr "
    "auto 0.05; even popsize), cma_es and sep_cma_es (sigma = initial step size auto 0.5, es_lr = mean learning "
    "rate c_m auto 1.0; other rates from D and popsize as Hansen's tutorial), pgpe (PGPE + ClipUp, EvoTorch "
    "recipe: sigma = initial stdev auto 0.1, es_lr = centre learning rate auto 0.05, max speed 2 es_lr; even "
    "popsize), cem (cross-entropy method: sigma auto 0.5, es_lr unused)"
)
"""What ``--sigma`` and ``--es-lr`` mean for each strategy (the methods' ``strategy`` help cites it)."""


def _needs_even_popsize(name: str) -> bool:
    """Strategies that sample antithetic pairs by default (OpenES, PGPE)."""
    cfg = STRATEGIES[name][1]
    return any(f.name == "antithetic" and f.default is True for f in dataclasses.fields(cfg))


@dataclass
class ESOptions(RunOptions):
    """Options of an ES search on a real env: the env, the strategy and its budget, plus :class:`RunOptions`.

    Method configs subclass it and override defaults (and their documentation) field by field. ``sigma`` and
    ``es_lr`` left at None take the strategy's defaults (:class:`~torch_distill.es.strategies.SNESConfig`,
    :class:`~torch_distill.es.strategies.OpenESConfig`).
    """

    env: str = "CartPole-v1"
    """Environment id."""
    strategy: str = "snes"
    """Evolution strategy: snes, open_es, cma_es, sep_cma_es, pgpe or cem (auto: snes); see
    :data:`STRATEGY_HELP` for what ``sigma`` and ``es_lr`` set in each."""
    popsize: int = 64
    """ES population size (even for OpenES and PGPE, which sample antithetic pairs)."""
    generations: int = 30
    """Number of ES generations."""
    sigma: float | None = None
    """Initial ES noise scale (auto: 0.5 SNES, CMA-ES, Sep-CMA-ES, CEM; 0.03 OpenES; 0.1 PGPE)."""
    es_lr: float | None = None
    """ES learning rate: OpenES Adam lr (auto 0.05), SNES lrate_mean (auto 1.0), CMA-ES / Sep-CMA-ES c_m (auto
    1.0), PGPE centre learning rate (auto 0.05); not used by CEM."""

    strategy_fields: ClassVar[tuple[str, ...]] = ()
    """Further fields of the config passed to the strategy under their own names where the strategy has that
    hyperparameter (e.g. SNES ``temperature``, OpenES ``beta1``)."""

    def strategy_name(self) -> str:
        """The registered strategy (``auto`` is SNES)."""
        return "snes" if self.strategy == "auto" else self.strategy

    def strategy_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~torch_distill.es.strategies.make_strategy` (recorded in ``config.json``):
        ``popsize``, ``sigma_init`` and the learning rate, then the :attr:`strategy_fields`, in the order of the
        strategy's config."""
        name = self.strategy_name()
        lr_field = LEARNING_RATE_FIELD[name]
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(STRATEGIES[name][1]):
            if f.name == "popsize":
                kw[f.name] = self.popsize
            elif f.name == "sigma_init":
                kw[f.name] = self.sigma if self.sigma is not None else f.default
            elif f.name == lr_field:
                kw[f.name] = self.es_lr if self.es_lr is not None else f.default
            elif f.name in self.strategy_fields:
                kw[f.name] = getattr(self, f.name)
        return kw

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid run or ES option (subclasses add their own checks)."""
        self.validate_run_options()
        for f in dataclasses.fields(self):  # no option of any method means anything as NaN or inf
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{f.name}={v!r}: expected a finite number")
        if self.strategy_name() not in LEARNING_RATE_FIELD:
            raise ValueError(f"strategy={self.strategy!r}: expected one of {sorted(LEARNING_RATE_FIELD)}")
        for k in ["popsize", "generations"]:
            v = getattr(self, k)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{k}={v!r}: expected a positive integer")
        for k in ["sigma", "es_lr"]:
            v = getattr(self, k)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{k}={v!r}: expected a positive finite number")
        if _needs_even_popsize(self.strategy_name()) and self.popsize % 2:
            who = {"open_es": "OpenES", "pgpe": "PGPE"}.get(self.strategy_name(), self.strategy_name())
            raise ValueError(f"popsize={self.popsize}: {who} samples antithetic pairs, expected an even number")


@dataclass(frozen=True)
class Candidate:
    """An ES mean handed to :meth:`SearchMethod.finish` when the search ends."""

    which: str
    """``final`` (the last ES mean) or ``best`` (the best mean of the periodic evaluations, when not the last)."""
    mean: Tensor
    """The ES mean ``[D]``."""
    generation: int
    """The generation it is the mean of."""
    seed: int
    """Seed of its final evaluation, ``derive_seed(seed, 10**6, Streams.FINAL)``: fresh, the same for both."""

    @property
    def selected_as(self) -> str:
        return "final ES mean" if self.which == "final" else "best ES mean by periodic evaluation"

    def file(self, run_dir: Path, stem: str) -> Path:
        """``run_dir/stem.safetensors`` for the final mean, ``run_dir/stem_best.safetensors`` for the best one."""
        return run_dir / (f"{stem}.safetensors" if self.which == "final" else f"{stem}_best.safetensors")

    def metadata(self) -> dict[str, Any]:
        """Provenance for the saved file: command, library version, time, generation and how it was selected."""
        return {"command": command_line(), "library_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "generations": self.generation,
                "selected_as": self.selected_as}


class Finished(NamedTuple):
    """What :meth:`SearchMethod.finish` did with one candidate."""

    path: Path | None
    """The file it was saved to (None: not saved)."""
    eval: dict[str, Any]
    """Its final evaluation (JSON), stored in ``summary.json``."""
    rows: list[dict[str, Any]]
    """Its rows of the closing table."""


class SearchMethod(ABC):
    """What a method supplies to :func:`run_search`. It is built by the ``factory`` passed to :func:`run_search`,
    ``factory(config, device, resumed)``, once the options are final and the device is known, and builds the
    :attr:`problem` (before the run folder exists: bad input leaves nothing on disk)."""

    problem: Problem
    artefact: str = "artefact"
    """Noun of the saved files in the closing lines (``dataset (final): PATH``)."""

    @abstractmethod
    def run_name(self) -> str:
        """Default run-folder name without the time stamp, e.g. ``CartPole-v1-hades-F-s0``."""

    @abstractmethod
    def record(self) -> dict[str, Any]:
        """The body of ``config.json``; its ``config`` entry (``asdict`` of the options) is what a resumed run
        reads back. The search adds ``command`` and ``library_version``."""

    @abstractmethod
    def banner(self, where: str) -> str:
        """The first banner line; ``where`` is the device and world size."""

    @abstractmethod
    def title(self) -> str:
        """Title of the learning curves."""

    @abstractmethod
    def finish(self, candidate: Candidate, run_dir: Path) -> Finished:
        """Evaluate ``candidate`` afresh and save it (rank 0)."""

    @abstractmethod
    def summary(self, common: dict[str, Any], entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The body of ``summary.json`` after ``env``, from ``common`` (generations, train_time_s, env_steps,
        episode_steps, final_population_mean_fitness) and ``entries`` (``{which: {path, generation, eval}}``)."""

    @abstractmethod
    def headline(self, summary: dict[str, Any]) -> str:
        """The line printed above the closing table."""

    def close(self) -> None:
        """Release envs (every rank, after the search)."""


OptionsT = TypeVar("OptionsT", bound=ESOptions)


def run_search(config: OptionsT, factory: Callable[[OptionsT, torch.device, bool], SearchMethod],
               resume: str | None = None, resume_overrides: Collection[str] = ()) -> dict[str, Any]:
    """Run one ES search end to end (see the module docstring).

    Args:
        config: the options; with ``resume`` only the fields named in ``resume_overrides`` (and a device other than
            ``auto``) are taken from it, the rest are the stored ones
            (:func:`~torch_distill.runs.resumed_config`).
        factory: builds the method's :class:`SearchMethod` from the final options, the device and whether the run
            is resumed.
        resume: a run folder to continue from its checkpoint.

    Returns:
        the summary dict (also ``summary.json``) on rank 0, ``{}`` on other ranks.
    """
    run_dir = Path()
    if resume:
        run_dir = make_run_dir(config.out, None, "", resume)
        config = resumed_config(type(config), config, run_dir, resume_overrides)
    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    info = init_distributed(config.device)
    device = info.device if info.enabled else resolve_device(config.device)
    method = factory(config, device, bool(resume))
    strategy = make_strategy(config.strategy_name(), method.problem.num_dims, **config.strategy_kwargs())
    if not resume:
        run_dir = make_run_dir(config.out, config.name, method.run_name(), None)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            write_json(run_dir / "config.json",
                       {**method.record(), "command": command_line(), "library_version": __version__})
        print(f"{method.banner(f'{device}, world size {info.world_size}')}\nrun folder: {run_dir}", flush=True)
    barrier(info)
    t0 = time.perf_counter()
    state, rows, best = run_es(
        method.problem,
        strategy,
        RunnerConfig(config.generations, config.seed, config.eval_every, config.checkpoint_every, config.log_every,
                     config.max_minutes, config.max_env_steps),
        run_dir,
        info,
        resume=bool(resume),
        title=method.title(),
    )
    summary: dict[str, Any] = {}
    if info.is_main:
        summary = _finish(config, method, run_dir, state.mean, rows, best, time.perf_counter() - t0)
    method.close()
    cleanup(info)
    return summary


def _finish(config: ESOptions, method: SearchMethod, run_dir: Path, mean: Tensor, rows: list[dict[str, Any]],
            best: dict[str, Any] | None, elapsed: float) -> dict[str, Any]:
    """Final and best candidates through ``method.finish``, then ``summary.json`` and the closing lines."""
    last = rows[-1] if rows else {}
    last_gen = last.get("generation", 0)
    seed = derive_seed(config.seed, 10**6, Streams.FINAL)
    candidates = [Candidate("final", mean, last_gen, seed)]
    if best is not None and best["generation"] != last_gen:
        candidates.append(Candidate("best", best["mean"], best["generation"], seed))
    common = {"generations": last_gen, "train_time_s": last.get("wall_time", elapsed),
              "env_steps": last.get("env_steps", 0), "episode_steps": last.get("episode_steps", 0),
              "final_population_mean_fitness": last.get("fitness_mean")}
    entries: dict[str, dict[str, Any]] = {}
    table: list[dict[str, Any]] = []
    for c in candidates:
        done = method.finish(c, run_dir)
        entries[c.which] = {**({"path": str(done.path)} if done.path is not None else {}),
                            "generation": c.generation, "eval": done.eval}
        table += done.rows
    summary = {"env": config.env, **method.summary(common, entries)}
    write_json(run_dir / "summary.json", summary)
    print(f"\n{method.headline(summary)}")
    if table:
        print(format_table(table))
    print("\n".join(f"{method.artefact} ({k}): {v['path']}" for k, v in entries.items() if "path" in v))
    print(f"curves: {run_dir / 'curves.png'}")
    return summary
