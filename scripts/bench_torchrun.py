"""HaDES generations per second with 1 and N torchrun processes (gloo on CPU): the speed-up of sharding.

    python scripts/bench_torchrun.py                                   # CartPole-v1 + Pendulum-v1, P=256, 1 vs 2
    python scripts/bench_torchrun.py --envs CartPole-v1 --repeats 1 --generations 5

Each run is the real command line, in a subprocess, one intra-op thread per process (``--threads 1``,
``OMP_NUM_THREADS=1``):

    python -m torch_distill.cli hades --env ENV --popsize 256 ...                                     # world 1
    python -m torch.distributed.run --standalone --nproc-per-node N -m torch_distill.cli hades ...   # world N

Speed is read from the run's ``metrics.jsonl``: per-generation times are the differences of its ``wall_time``
column; the first generation (caches, warm-up) is dropped and the median of the rest is the headline ("s/gen");
"loop gen/s" is generations 2..G over their whole wall time, the periodic ES-mean evaluation on rank 0 included
(``--eval-every``; the last generation always has one). World-1 and world-N runs are interleaved and repeated
(``--repeats``); the table shows the fastest repeat of each (the least disturbed on a shared machine) and the JSON
file (written atomically) every repeat, with ``os.getloadavg()`` before and after each run, the thread settings
and the CPUs this process may use. The speed-up is world-1 s/gen over world-N s/gen.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Args:
    envs: tuple[str, ...] = ("CartPole-v1", "Pendulum-v1")
    """env ids to run HaDES on"""
    popsize: int = 256
    """ES population size P"""
    generations: int = 6
    """generations per run (the first is dropped from the timing)"""
    worlds: tuple[int, ...] = (1, 2)
    """numbers of processes; 1 runs without torchrun"""
    repeats: int = 2
    """interleaved repeats of every (env, world) run"""
    eval_every: int = 10
    """periodic ES-mean evaluation (rank 0); the last generation always has one"""
    threads: int = 1
    """intra-op threads per process (--threads and OMP_NUM_THREADS)"""
    out: str = "docs/bench/torchrun.json"
    """JSON output file"""


def _parse(argv: list[str]) -> Args:
    try:
        import tyro
    except ImportError:  # minimal fallback: --name value / --name v1 v2 for tuples
        args, i = Args(), 0
        while i < len(argv):
            name = argv[i].lstrip("-").replace("-", "_")
            default = getattr(args, name)
            vals = []
            i += 1
            while i < len(argv) and not argv[i].startswith("--"):
                vals.append(argv[i])
                i += 1
            if isinstance(default, tuple):
                setattr(args, name, tuple(type(default[0])(v) for v in vals))
            else:
                setattr(args, name, type(default)(vals[0]))
        return args
    return tyro.cli(Args, args=argv)


def _command(args: Args, env_id: str, world: int, out: Path, name: str) -> list[str]:
    hades = ["-m", "torch_distill.cli", "hades", "--env", env_id, "--popsize", str(args.popsize),
             "--generations", str(args.generations), "--eval-every", str(args.eval_every),
             "--checkpoint-every", str(10**6), "--final-seeds", "0", "--final-episodes", "1",
             "--threads", str(args.threads), "--device", "cpu", "--out", str(out), "--name", name]
    if world == 1:
        return [sys.executable, *hades]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}", *hades]


def _run(args: Args, env_id: str, world: int, out: Path, name: str) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = _command(args, env_id, world, out, name)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    rows = [json.loads(x) for x in (out / name / "metrics.jsonl").read_text().splitlines()]
    wall = [r["wall_time"] for r in rows]
    per_gen = [b - a for a, b in zip(wall, wall[1:])]  # generations 2..G
    if not per_gen:
        raise RuntimeError(f"{name}: need at least 2 generations, got {len(rows)}")
    return {
        "env": env_id, "world": world, "command": " ".join(cmd[1:]).replace(str(out), "OUT"),
        "s_per_gen_median": statistics.median(per_gen), "per_gen_s": per_gen,
        "loop_gens_per_s": len(per_gen) / (wall[-1] - wall[0]), "first_gen_s": wall[0], "process_s": total,
        "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.generations < 3:
        raise SystemExit(f"--generations {args.generations}: expected at least 3 (the first one is not timed)")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_torchrun_") as tmp:
        for rep in range(args.repeats):
            for env_id in args.envs:
                for world in args.worlds:
                    r = _run(args, env_id, world, Path(tmp), f"{env_id}-w{world}-r{rep}")
                    r["repeat"] = rep
                    runs.append(r)
                    print(f"  {env_id} world {world} repeat {rep}: {r['s_per_gen_median']:.3f} s/gen "
                          f"(load {r['loadavg_before'][0]:.2f})", flush=True)
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for r in runs:
        key = (r["env"], r["world"])
        if key not in best or r["s_per_gen_median"] < best[key]["s_per_gen_median"]:
            best[key] = r
    table = []
    for (env_id, world), r in best.items():
        base = best.get((env_id, min(args.worlds)))
        speedup = base["s_per_gen_median"] / r["s_per_gen_median"] if base else float("nan")
        table.append({"env": env_id, "world": world, "s_per_gen": r["s_per_gen_median"],
                      "gens_per_s": 1.0 / r["s_per_gen_median"], "speedup": speedup,
                      "loop_gens_per_s": r["loop_gens_per_s"],
                      "loop_speedup": r["loop_gens_per_s"] / base["loop_gens_per_s"] if base else float("nan"),
                      "all_repeats_s_per_gen": [x["s_per_gen_median"] for x in runs
                                                if (x["env"], x["world"]) == (env_id, world)],
                      "loadavg_1min": r["loadavg_before"][0]})
    head = f"| {'env':<12} | world | s/gen (median) | gen/s | speed-up | loop gen/s | loop speed-up | load 1m |"
    print(f"\nHaDES P={args.popsize}, {args.threads} thread(s) per process, fastest of {args.repeats} repeat(s)")
    print(head + "\n|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for t in table:
        print(f"| {t['env']:<12} | {t['world']:>5} | {t['s_per_gen']:>14.3f} | {t['gens_per_s']:>5.2f} | "
              f"{t['speedup']:>7.2f}x | {t['loop_gens_per_s']:>10.2f} | {t['loop_speedup']:>12.2f}x | "
              f"{t['loadavg_1min']:>7.2f} |")
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    record = {
        "benchmark": "bench_torchrun", "args": {k: v for k, v in asdict(args).items() if k != "out"}, "table": table, "runs": runs,
        "threads_per_process": args.threads, "omp_num_threads": str(args.threads),
        "cpu_count": os.cpu_count(), "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None, "loadavg_end": list(os.getloadavg()), "python": platform.python_version(), "torch": torch_version,
        "machine": platform.machine(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out = Path(args.out)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from torch_distill.files import atomic_write

    atomic_write(out, lambda p: Path(p).write_text(json.dumps(record, indent=2) + "\n"))
    print(f"wrote {out}")
    return record


if __name__ == "__main__":
    main()
