"""Generalisation sweeps of distilled datasets (``torch-distill sweep``).

A dataset is only as good as the learners it trains. :func:`sweep_dataset` retrains fresh policies on a dataset
over a grid of learners -- hidden widths x activations x init schemes x BC learning rates x BC steps, ``seeds``
fresh inits per cell -- and scores each on the real env. It is vectorised where the shapes allow: one architecture
(widths, activation, init) and one learning rate train all their seeds in one batched BC run whose parameters are
snapshotted at every step count of the grid (:func:`~torch_distill.algorithms.bc.bc_train_snapshots`), and all
those policies are evaluated in one batched rollout. :func:`write_sweep` writes the rows as CSV and the heatmap
(architecture rows x (lr, steps) columns, mean return per cell). Across several datasets (or envs),
:func:`thc_scores` gives the hyperparameter-consistency score of each BC hyperparameter (Obando-Ceron et al.,
2024): 0 when every dataset ranks its values the same way.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from torch_distill.algorithms.bc import bc_train_snapshots
from torch_distill.algorithms.hades import recorded_bc, recorded_policy
from torch_distill.evaluation import ObsNormalizer, RealEnvEvaluator
from torch_distill.files import atomic_write
from torch_distill.io import Dataset
from torch_distill.log import progress_bar
from torch_distill.policies import INIT_SCHEMES, PolicyConfig, PolicyNet, parse_hidden

__all__ = ["SweepGrid", "sweep_dataset", "write_sweep", "plot_sweep", "thc_scores", "HYPERPARAMETERS"]

HYPERPARAMETERS = ("hidden", "activation", "init", "lr", "steps")  # the grid's axes (columns of a sweep row)


@dataclass(frozen=True)
class SweepGrid:
    """The learners of a sweep: every combination of the five axes, ``seeds`` fresh inits each."""

    hidden: tuple[tuple[int, ...], ...] = ((16, 16), (32, 32), (64, 64), (256, 256), (512, 512))
    activation: tuple[str, ...] = ("relu", "tanh")
    init: tuple[str, ...] = ("orthogonal", "torch")
    lr: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    steps: tuple[int, ...] = (32, 100, 500, 1000)
    seeds: int = 3

    def __post_init__(self) -> None:
        for name in HYPERPARAMETERS:
            if not getattr(self, name):
                raise ValueError(f"sweep {name}: expected at least one value")
        object.__setattr__(self, "hidden", tuple(parse_hidden(h) for h in self.hidden))
        for a in self.activation:
            PolicyConfig((8,), a)  # names a bad activation
        for i in self.init:
            if i not in INIT_SCHEMES:
                raise ValueError(f"sweep init={i!r}: expected one of {list(INIT_SCHEMES)}")
        for lr in self.lr:
            if not (math.isfinite(lr) and lr > 0):
                raise ValueError(f"sweep lr={lr!r}: expected positive finite learning rates")
        for s in self.steps:
            if int(s) != s or s < 1:
                raise ValueError(f"sweep steps={s!r}: expected positive integers")
        if self.seeds < 1:
            raise ValueError(f"sweep seeds={self.seeds}: expected a positive number of inits per cell")

    @property
    def cells(self) -> int:
        return len(self.hidden) * len(self.activation) * len(self.init) * len(self.lr) * len(self.steps)


def sweep_dataset(dataset: Dataset, grid: SweepGrid = SweepGrid(), episodes: int = 20, env_seed: int = 12345,
                  device: torch.device | str = "cpu", backend: str = "auto", deterministic: bool = False,
                  seed: int = 0, progress: bool | None = None) -> list[dict[str, Any]]:
    """Train ``grid.seeds`` fresh policies per grid cell on ``dataset`` and evaluate them on its real env.

    The dataset's recorded BC settings (Adam eps, betas, gradient clip) and observation normaliser are kept; only
    the grid's axes change. Every cell sees the same evaluation episodes (``env_seed``) and, for one architecture,
    the same inits (``seed``). Returns one row per cell: the axes, ``return_mean`` (over policies and episodes),
    ``return_std`` (across the cell's policies), ``return_min`` (its worst policy) and ``policies``.
    """
    device = torch.device(device)
    base_bc = recorded_bc(dataset)
    base_policy = recorded_policy(dataset)
    evaluator = RealEnvEvaluator(dataset.spec.env_id, device, backend, deterministic=deterministic)
    evaluator.normalizer = ObsNormalizer.from_json(dataset.metadata.get("obs_normalizer"), device)
    steps = sorted(set(int(s) for s in grid.steps))
    n = grid.seeds * len(steps)
    states = dataset.states.to(device).unsqueeze(0).expand(grid.seeds, *dataset.states.shape)
    actions = dataset.actions.to(device).unsqueeze(0).expand(grid.seeds, *dataset.actions.shape)
    rows: list[dict[str, Any]] = []
    archs = list(itertools.product(grid.hidden, grid.activation, grid.init))
    with progress_bar(len(archs) * len(grid.lr), f"sweeping {grid.cells} cells x {grid.seeds} seeds", "run",
                      progress) as bar:
        for hidden, act, init in archs:
            net = PolicyNet(dataset.spec, dataclasses.replace(base_policy, hidden=hidden, activation=act, init=init))
            gen = torch.Generator(device=device)
            gen.manual_seed(int(seed))
            inits = net.init(grid.seeds, gen)
            for lr in grid.lr:
                bc = type(base_bc)(max(steps), float(lr), base_bc.eps, base_bc.beta1, base_bc.beta2,
                                   base_bc.max_grad_norm)
                snaps = bc_train_snapshots(net, inits, states, actions, bc, steps)
                res = evaluator.evaluate(net, torch.cat(snaps), episodes, env_seed)
                per_policy = res.returns.mean(-1).reshape(len(steps), grid.seeds)
                for k, st in enumerate(steps):
                    r = per_policy[k]
                    rows.append({"hidden": ",".join(map(str, hidden)), "activation": act, "init": init, "lr": float(lr),
                                 "steps": st, "policies": grid.seeds, "episodes": episodes,
                                 "return_mean": float(r.mean()),
                                 "return_std": float(r.std()) if grid.seeds > 1 else 0.0,
                                 "return_min": float(r.min())})
                bar.update(1)
    return rows


def write_sweep(rows: list[dict[str, Any]], csv_path: str | Path) -> None:
    """The sweep rows as CSV (temp file, then rename)."""
    if not rows:
        raise ValueError("write_sweep: no rows")
    fields = list(rows[0])

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)

    atomic_write(csv_path, write)


def plot_sweep(rows: list[dict[str, Any]], png_path: str | Path, title: str = "", threshold: float | None = None) -> None:
    """Heatmap PNG of a sweep: one row per architecture (hidden, activation, init), one column per (lr, steps),
    each cell's mean return written in it (cells below ``threshold`` outlined)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arch = sorted({(r["hidden"], r["activation"], r["init"]) for r in rows},
                  key=lambda a: (tuple(int(w) for w in a[0].split(",") if w), a[1], a[2]))
    hyp = sorted({(r["lr"], r["steps"]) for r in rows})
    grid = torch.full((len(arch), len(hyp)), float("nan"))
    for r in rows:
        grid[arch.index((r["hidden"], r["activation"], r["init"])), hyp.index((r["lr"], r["steps"]))] = r["return_mean"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(hyp), 1.2 + 0.32 * len(arch)))
    im = ax.imshow(grid.numpy(), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(hyp)), [f"lr {lr:g}\n{st} steps" for lr, st in hyp], fontsize=6, rotation=90)
    ax.set_yticks(range(len(arch)), [f"{h} {a} {i}" for h, a, i in arch], fontsize=6)
    lo, hi = float(grid.nan_to_num(float("inf")).min()), float(grid.nan_to_num(float("-inf")).max())
    for (i, j), v in ((ij, grid[ij]) for ij in itertools.product(range(len(arch)), range(len(hyp)))):
        if torch.isfinite(v):
            light = (float(v) - lo) < 0.5 * (hi - lo)
            ax.text(j, i, f"{float(v):.0f}", ha="center", va="center", fontsize=5, color="white" if light else "black")
            if threshold is not None and float(v) < threshold:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1))
    fig.colorbar(im, ax=ax, label="mean return")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    atomic_write(png_path, lambda tmp: fig.savefig(tmp, format="png", dpi=150))
    plt.close(fig)


def _ranks(means: Sequence[float], stds: Sequence[float], count: int) -> list[float]:
    """Ranks of values by mean (1 = best); values whose 95% intervals overlap share their average rank."""
    n = len(means)
    order = sorted(range(n), key=lambda i: -means[i])
    half = [1.96 * s / math.sqrt(max(count, 1)) for s in stds]
    ranks = [0.0] * n
    i = 0
    while i < n:  # group consecutive values whose intervals overlap the group's first
        j = i
        while j + 1 < n and means[order[i]] - half[order[i]] <= means[order[j + 1]] + half[order[j + 1]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def thc_scores(sweeps: dict[str, list[dict[str, Any]]], hyperparameters: Sequence[str] = ("lr", "steps")) -> dict[str, float]:
    """THC score (Obando-Ceron et al., 2024) of each hyperparameter across contexts (``{name: sweep rows}``):
    per context, the hyperparameter's values are ranked by their mean return over the rest of the grid (values
    whose 95% intervals overlap share the average rank); ``THC(h) = mean_i (max_k rank_k(v_i) - min_k rank_k(v_i))
    / (n - 1)``. 0: every context ranks the values the same way. Needs at least two contexts."""
    if len(sweeps) < 2:
        raise ValueError(f"thc_scores: expected at least two sweeps (contexts), got {len(sweeps)}")
    out = {}
    for h in hyperparameters:
        values = sorted({r[h] for rows in sweeps.values() for r in rows}, key=str)
        if len(values) < 2:
            continue
        per_ctx = []
        for rows in sweeps.values():
            means, stds, counts = [], [], []
            for v in values:
                rets = [r["return_mean"] for r in rows if r[h] == v]
                if not rets:
                    raise ValueError(f"thc_scores: a sweep has no rows with {h}={v!r}; sweeps must share their grid")
                t = torch.tensor(rets, dtype=torch.float64)
                means.append(float(t.mean()))
                stds.append(float(t.std()) if len(rets) > 1 else 0.0)
                counts.append(len(rets))
            per_ctx.append(_ranks(means, stds, min(counts)))
        n = len(values)
        out[h] = sum(max(c[i] for c in per_ctx) - min(c[i] for c in per_ctx) for i in range(n)) / (n * (n - 1))
    return out
