"""Run folders: resolved config, per-generation metrics (JSONL), progress lines, fitness-curve plot.

A run folder holds::

    config.json          resolved configuration (what ``--resume`` restarts from)
    metrics.jsonl        one JSON object per generation (and ``"kind": "eval"`` rows for ES-mean evaluations)
    checkpoint.pt        last checkpoint (atomic write; see ``torch_distill.runner``)
    curves.png           population mean / max fitness and ES-mean evaluation return per generation
    dataset.safetensors  final artefact (HaDES) or policy.safetensors (direct ES)
    summary.json         final results
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from torch_distill.io import atomic_write, write_json

__all__ = ["RunLogger", "format_table", "plot_curves", "progress_bar", "progress_enabled"]

PROGRESS_ENV = "TORCH_DISTILL_PROGRESS"


def progress_enabled(stream: Any = None) -> bool:
    """Whether long commands draw progress bars: when ``stream`` (stderr) is a terminal and not under CI, so that
    logs stay readable; ``TORCH_DISTILL_PROGRESS=1`` / ``=0`` forces it on / off."""
    forced = os.environ.get(PROGRESS_ENV)
    if forced is not None and forced.strip() != "":
        return forced.strip().lower() not in ("0", "false", "no", "off")
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress_bar(total: int | None, desc: str, unit: str = "it", enabled: bool | None = None, **kwargs: Any):
    """A tqdm bar on stderr with rate and ETA (see :func:`progress_enabled` for when it is drawn; a disabled bar
    accepts the same calls and prints nothing). Use as a context manager; ``bar.update(n)`` advances it."""
    from tqdm.auto import tqdm

    on = progress_enabled() if enabled is None else enabled
    return tqdm(total=total, desc=desc, unit=unit, disable=not on, dynamic_ncols=True, leave=False, file=sys.stderr,
                **kwargs)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if abs(x) >= 1e6:
            return f"{x / 1e6:.2f}M"
        if abs(x) >= 1e4:
            return f"{x / 1e3:.1f}k"
        return f"{x:.4g}"
    return str(x)


def format_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A plain aligned text table (markdown-compatible) of ``rows``."""
    if not rows:
        return ""
    columns = columns or list(rows[0])
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    out = [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


class RunLogger:
    """Writes metrics of one run (rank 0 only; other ranks get ``enabled=False`` and write nothing)."""

    def __init__(self, run_dir: Path, enabled: bool = True, log_every: int = 1, stream=sys.stdout) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.log_every = max(1, log_every)
        self.stream = stream
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self._t_last = time.perf_counter()
        if enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    def print(self, msg: str) -> None:
        if self.enabled:
            print(msg, file=self.stream, flush=True)

    def truncate_after(self, generation: int) -> None:
        """On resume: drop metric rows of generations after the checkpoint (they will be recomputed)."""
        if not (self.enabled and self.metrics_path.exists()):
            return
        keep = [json.dumps(r) for r in self.read_metrics() if r["generation"] <= generation]
        atomic_write(self.metrics_path, lambda tmp: Path(tmp).write_text("".join(k + "\n" for k in keep)))

    def log(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def progress(self, row: dict[str, Any], total: int) -> None:
        if not self.enabled:
            return
        g = row["generation"]
        if g % self.log_every and g != total:
            return
        parts = [f"gen {g:>4}/{total}", f"fitness mean {_fmt(row['fitness_mean'])} max {_fmt(row['fitness_max'])}"]
        if row.get("es_mean_return") is not None:
            parts.append(f"ES-mean return {_fmt(row['es_mean_return'])}")
        parts.append(f"{row['gens_per_s']:.2f} gen/s")
        parts.append(f"{_fmt(row['env_steps_per_s'])} env-steps/s")
        parts.append(f"{row['wall_time']:.0f}s")
        self.print(" | ".join(parts))

    def read_metrics(self) -> list[dict[str, Any]]:
        """Metric rows; a torn last line (the process was killed while appending) is skipped."""
        if not self.metrics_path.exists():
            return []
        rows = []
        for ln in self.metrics_path.read_text().splitlines():
            try:
                rows.append(json.loads(ln))
            except json.JSONDecodeError:
                continue
        return rows

    def write_json(self, name: str, obj: Any) -> None:
        if self.enabled:
            write_json(self.run_dir / name, obj)


def plot_curves(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """PNG of population mean / max fitness and ES-mean evaluation returns per generation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = [r["generation"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(gens, [r["fitness_mean"] for r in rows], label="population mean")
    ax.plot(gens, [r["fitness_max"] for r in rows], label="population best", alpha=0.7)
    ev = [(r["generation"], r["es_mean_return"]) for r in rows if r.get("es_mean_return") is not None]
    if ev:
        ax.plot(*zip(*ev), "o-", label="ES mean (fresh seeds)")
    ax.set_xlabel("generation")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
