"""Generations and env steps to solve CartPole-v1 with every registered ES strategy, for HaDES and direct ES.

    python scripts/bench_strategies.py --out docs/bench/strategies.json        # P=64, <= 40 generations per run
    python scripts/bench_strategies.py --strategies cma_es,pgpe --methods hades --generations 10

Every run is the library's own search (``run_hades`` / ``run_direct_es``: the functions behind ``torch-distill
hades`` / ``direct-es``) with ``eval_every=1``: after each generation the ES mean is evaluated on
``--eval-episodes`` fresh episodes, and a run counts as solved at the first generation whose ES-mean return is
>= ``--target`` (475, CartPole-v1's threshold). Reported for it: that generation, the env steps within episodes
up to it (``episode_steps``: env interactions of the fitness evaluations; the ES-mean evaluations are not
counted) and the executed vector-env steps (``env_steps``). Runs go on to ``--generations`` (the runner has no
target stop; the extra generations are not counted), or stop at ``--max-minutes`` per run.

Settings: HaDES with every option at its default (``auto``: sigma and es_lr the strategy's defaults, see
``torch_distill.search.STRATEGY_HELP``). Direct ES with ``--direct-hidden`` (16: a 114-weight policy, so that the
full-covariance CMA-ES -- ``[D, D]`` covariance, one ``O(D^3)`` eigendecomposition per generation -- fits two CPU
cores; the default 64,64 policy has 4610 weights), sigma 0.05 (the method's default) and the method's es_lr 0.02
for open_es / snes, the strategy's own default learning rate for the others (CMA c_m 1, PGPE 0.05; CEM has none).
One seed per run (``--seed``): these are single runs, not a statistically sound comparison. Threads: one intra-op
thread (``torch.set_num_threads``), stated in the JSON with the CPUs this process may use.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from torch_distill.algorithms.direct_es import DirectESConfig, run_direct_es  # noqa: E402
from torch_distill.algorithms.hades import HadesConfig, run_hades  # noqa: E402
from torch_distill.es import STRATEGIES  # noqa: E402
from torch_distill.files import atomic_write  # noqa: E402

METHODS = ("hades", "direct-es")


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--strategies", default=",".join(sorted(STRATEGIES)),
                   help="comma-separated registered strategies (default: all)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated: hades, direct-es")
    p.add_argument("--env", default="CartPole-v1", help="env id")
    p.add_argument("--target", type=float, default=475.0, help="ES-mean return that counts as solved")
    p.add_argument("--popsize", type=int, default=64, help="ES population size P")
    p.add_argument("--generations", type=int, default=40, help="generations per run at most")
    p.add_argument("--episodes", type=int, default=8, help="fitness episodes per candidate")
    p.add_argument("--max-steps", type=int, default=None, help="episode step cap (default: the env's limit)")
    p.add_argument("--eval-episodes", type=int, default=16, help="episodes of the per-generation ES-mean evaluation")
    p.add_argument("--direct-hidden", default="16", help="hidden widths of the direct-ES policy")
    p.add_argument("--max-minutes", type=float, default=1.5, help="wall-clock cap per run")
    p.add_argument("--seed", type=int, default=0, help="seed of every run")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads")
    p.add_argument("--out", default=None, help="JSON output file (written atomically)")
    args = p.parse_args(argv)
    args.strategies = [s for s in args.strategies.split(",") if s]
    args.methods = [m for m in args.methods.split(",") if m]
    for s in args.strategies:
        if s not in STRATEGIES:
            p.error(f"--strategies: unknown strategy {s!r}; expected some of {sorted(STRATEGIES)}")
    for m in args.methods:
        if m not in METHODS:
            p.error(f"--methods: unknown method {m!r}; expected some of {list(METHODS)}")
    return args


def _config(args: argparse.Namespace, method: str, strategy: str, out: str) -> HadesConfig | DirectESConfig:
    common = dict(env=args.env, strategy=strategy, popsize=args.popsize, generations=args.generations,
                  episodes=args.episodes, max_steps=args.max_steps, eval_every=1, eval_episodes=args.eval_episodes,
                  final_episodes=args.eval_episodes, checkpoint_every=10**6, log_every=10**6, seed=args.seed,
                  device="cpu", threads=args.threads, max_minutes=args.max_minutes, out=out,
                  name=f"{method}-{strategy}")
    if method == "hades":
        return HadesConfig(**common, final_seeds=0)
    cfg = DirectESConfig(**common, hidden=args.direct_hidden)
    if strategy not in ("open_es", "snes"):
        cfg.es_lr = None  # type: ignore[assignment]  # the strategy's own default learning rate
    return cfg


def _one(args: argparse.Namespace, method: str, strategy: str, out: str) -> dict[str, Any]:
    cfg = _config(args, method, strategy, out)
    run = run_hades if method == "hades" else run_direct_es
    t0 = time.perf_counter()
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        run(cfg)
    wall = time.perf_counter() - t0
    rows = [json.loads(x) for x in (Path(out) / cfg.name / "metrics.jsonl").read_text().splitlines()]
    solved = next((r for r in rows if r.get("es_mean_return", -float("inf")) >= args.target), None)
    best = max(rows, key=lambda r: r.get("es_mean_return", -float("inf")))
    return {
        "method": method, "strategy": strategy, "solved": solved is not None,
        "generations_to_solve": solved["generation"] if solved else None,
        "episode_steps_to_solve": solved["episode_steps"] if solved else None,
        "env_steps_to_solve": solved["env_steps"] if solved else None,
        "best_es_mean_return": best.get("es_mean_return"), "best_generation": best["generation"],
        "generations_run": rows[-1]["generation"], "env_steps": rows[-1]["env_steps"],
        "episode_steps": rows[-1]["episode_steps"], "wall_s": wall,
        "s_per_gen": rows[-1]["wall_time"] / max(1, rows[-1]["generation"]),
        "strategy_kwargs": cfg.strategy_kwargs(),
    }


def _fmt(x: Any, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    results = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_strategies_") as tmp:
        for method in args.methods:
            for strategy in args.strategies:
                r = _one(args, method, strategy, tmp)
                results.append(r)
                print(f"  {method:<9} {strategy:<10} solved={r['solved']!s:<5} gens={_fmt(r['generations_to_solve'], 'd')}"
                      f" best={r['best_es_mean_return']:.1f} ({r['wall_s']:.1f}s)", file=sys.stderr, flush=True)
    head = (f"| {'method':<9} | {'strategy':<10} | solved | gens to solve | episode steps to solve | "
            f"env steps to solve | best ES-mean return | gens run | s/gen |")
    print(f"\n{args.env}: ES-mean return >= {args.target:g} ({args.eval_episodes} episodes after every generation), "
          f"P={args.popsize}, <= {args.generations} generations, seed {args.seed}, {args.threads} thread(s)")
    print(head + "\n|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for r in results:
        print(f"| {r['method']:<9} | {r['strategy']:<10} | {'yes' if r['solved'] else 'no':<6} | "
              f"{_fmt(r['generations_to_solve'], 'd'):>13} | {_fmt(r['episode_steps_to_solve'], '.0f'):>22} | "
              f"{_fmt(r['env_steps_to_solve'], '.0f'):>18} | {r['best_es_mean_return']:>19.1f} | "
              f"{r['generations_run']:>8} | {r['s_per_gen']:>5.2f} |")
    record = {
        "benchmark": "bench_strategies", "args": {k: v for k, v in vars(args).items() if k != "out"},
        "results": results, "total_wall_s": time.perf_counter() - t_all, "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_end": list(os.getloadavg()), "python": platform.python_version(), "torch": torch.__version__,
        "machine": platform.machine(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if args.out:
        out = Path(args.out)
        atomic_write(out, lambda p: Path(p).write_text(json.dumps(record, indent=2) + "\n"))
        print(f"wrote {out}")
    return record


if __name__ == "__main__":
    main()
