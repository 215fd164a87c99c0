"""HaDES at the reference's CartPole settings: torch_distill's side of a side-by-side run with the JAX reference.

    python scripts/bench_hades_reference.py --widths 64 512 --generations 35 --cpu 0 \\
        --reference-json reference_runs.jsonl --out docs/bench/hades_reference.json

Settings (those of the HaDES reference, Lupu et al. ICLR 2024, FLAIROx/behaviour-distillation, for CartPole-v1):
population 256, D = 4 state-action pairs, HaDES-F (fixed policy inits), SNES with sigma 0.5 and temperature-20
rank weights, fixed balanced one-hot labels, relu MLP of the given width (two hidden layers), 32 full-batch BC
steps of Adam at lr 0.03, fitness from 8 envs per candidate with sampled actions. Each run is the real command
line (``torch-distill hades``) in a subprocess pinned to one core (``taskset -c CPU`` where available), one
intra-op thread; the figures come from the run's ``metrics.jsonl``:

- s/gen: median of the per-generation wall times (differences of ``wall_time``), the first generation dropped;
- env steps/gen: steps executed per generation (every env until its policy group is done, masked after an env's
  end) and the within-episode steps (the sum of episode lengths);
- generations to population-mean fitness >= 475;
- the whole process's wall time (imports, the periodic and final evaluations included).

The reference itself is not run here (no recipe for it is part of the project): its measured figures, one JSON
object per line with at least ``width``, ``s_per_gen`` and optionally ``compile_s``, ``wall_s``,
``env_steps_per_gen``, ``gens_to_475``, ``rollout_len``, are read from ``--reference-json`` and stored next to
ours in the output, with the ratio ours / reference of s/gen for every reference row of the width. Prints a table, writes JSON atomically.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET = 475.0


def _command(width: int, generations: int, out: str, seed: int) -> list[str]:
    return [
        sys.executable, "-m", "torch_distill.cli", "hades", "--env", "CartPole-v1", "--popsize", "256",
        "--dataset-size", "4", "--variant", "F", "--strategy", "snes", "--sigma", "0.5", "--temperature", "20",
        "--labels", "fixed", "--hidden", f"{width},{width}", "--activation", "relu", "--bc-steps", "32",
        "--bc-lr", "0.03", "--episodes", "8", "--generations", str(generations), "--threads", "1",
        "--seed", str(seed), "--out", out, "--name", "run", "--log-every", "1000",
    ]


def run_ours(width: int, generations: int, cpu: int | None, seed: int) -> dict[str, Any]:
    """One run of the real command; its timings from ``metrics.jsonl``."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = _command(width, generations, tmp, seed)
        if cpu is not None and shutil.which("taskset"):
            cmd = ["taskset", "-c", str(cpu), *cmd]
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        load = os.getloadavg()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"torch-distill hades failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "fitness_mean" in r]
    times = [b["wall_time"] - a["wall_time"] for a, b in itertools.pairwise(rows)]
    steps = [b["env_steps"] - a["env_steps"] for a, b in itertools.pairwise(rows)]
    ep_steps = [b["episode_steps"] - a["episode_steps"] for a, b in itertools.pairwise(rows)]
    solved = next((r["generation"] for r in rows if r["fitness_mean"] >= TARGET), None)
    return {
        "width": width,
        "generations": len(rows),
        "first_gen_s": rows[0]["wall_time"],
        "s_per_gen": statistics.median(times),
        "loop_s": rows[-1]["wall_time"],
        "wall_s": wall,
        "env_steps_per_gen": statistics.median(steps),
        "env_steps_per_gen_mean": sum(steps) / len(steps),
        "episode_steps_per_gen_mean": sum(ep_steps) / len(ep_steps),
        "gens_to_475": solved,
        "final_fitness_mean": rows[-1]["fitness_mean"],
        "loadavg_before": load,
        "loadavg_after": os.getloadavg(),
        "command": " ".join("python" if c == sys.executable else "RUNS" if c == tmp else c for c in cmd),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", type=int, nargs="+", default=[64, 512], help="hidden widths (two layers each)")
    p.add_argument("--generations", type=int, default=35)
    p.add_argument("--repeats", type=int, default=1, help="runs per width (interleaved)")
    p.add_argument("--cpu", type=int, default=None, help="pin every run to this core (taskset -c)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference-json", default=None, help="the reference's measured figures, JSON lines")
    p.add_argument("--out", default=None, help="JSON output file")
    args = p.parse_args()
    if args.generations < 3:
        p.error(f"--generations {args.generations}: expected >= 3 (the first generation is dropped)")
    reference: list[dict[str, Any]] = []
    if args.reference_json:
        try:
            reference = [json.loads(x) for x in Path(args.reference_json).read_text().splitlines() if x.strip()]
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"--reference-json {args.reference_json}: {e}") from None
        bad = [r for r in reference if not {"width", "s_per_gen"} <= set(r)]
        if bad:
            raise SystemExit(f"--reference-json: every line needs 'width' and 's_per_gen'; got {bad[0]}")
    runs = []
    for _ in range(args.repeats):
        for w in args.widths:
            runs.append(run_ours(w, args.generations, args.cpu, args.seed))
            print(f"width {w}: {runs[-1]['s_per_gen']:.3f} s/gen", file=sys.stderr)
    rows = []
    for w in args.widths:
        ours = min((r for r in runs if r["width"] == w), key=lambda r: r["s_per_gen"])
        refs = [r for r in reference if r["width"] == w]
        rows.append({"width": w, "ours": ours, "reference": refs,
                     "ratio_s_per_gen": [ours["s_per_gen"] / r["s_per_gen"] for r in refs]})
    head = f"{'width':>5} | {'side':<14} | {'s/gen':>7} | {'steps/gen':>10} | {'gens>=475':>9} | {'wall s':>7} | ratio"
    print(head)
    print("-" * len(head))
    for r in rows:
        o = r["ours"]
        print(f"{r['width']:>5} | {'ours':<14} | {o['s_per_gen']:7.3f} | {o['env_steps_per_gen']:10.0f} | "
              f"{str(o['gens_to_475']):>9} | {o['wall_s']:7.1f} |")
        for ref, ratio in zip(r["reference"], r["ratio_s_per_gen"]):
            side = f"ref T={ref.get('rollout_len', '?')}"
            print(f"{r['width']:>5} | {side:<14} | {ref['s_per_gen']:7.3f} | "
                  f"{ref.get('env_steps_per_gen', float('nan')):10.0f} | {str(ref.get('gens_to_475')):>9} | "
                  f"{ref.get('wall_s', float('nan')):7.1f} | ours/ref {ratio:.2f}x")
    if args.out:
        import torch

        from torch_distill.io import write_json

        write_json(Path(args.out), {
            "benchmark": "hades_reference", "settings": _command(0, args.generations, "OUT", args.seed)[3:],
            "threads": 1, "cpu": args.cpu, "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "rows": rows, "runs": runs,
            "reference_runs": reference,
        })
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
