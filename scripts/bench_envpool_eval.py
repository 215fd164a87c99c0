"""Benchmark live-only stepping of host vector envs (envpool) against the masked full step, in one run.

    python scripts/bench_envpool_eval.py [--env Hopper-v4] [--popsize 64] [--generations 4] [--out F.json]

HaDES generations at the library's settings for the env (D = 16, 4 episodes per candidate by default): every
generation trains the population by BC once, then evaluates the same policies twice on the same seeds, once with
the masked full step (every env stepped until all are done; what follows each env's first end is masked) and once
live-only (``step_subset``: only envs whose first episode is running are stepped), alternating which goes first.
Reports executed / within-episode env steps, evaluation seconds and whole-generation seconds (BC + evaluation)
per mode, and checks that both modes give the same returns and lengths. envpool uses its own thread pool
(``num_threads=0``: all cores); torch uses ``--threads`` intra-op threads. A table is printed and everything goes
to the JSON file.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from torch_distill.algorithms.hades import HadesConfig, HadesProblem, resolve_hades
from torch_distill.es.strategies import make_strategy
from torch_distill.evaluation import RealEnvEvaluator
from torch_distill.io import write_json
from torch_distill.log import format_table
from torch_distill.runner import Streams, derive_seed

MODES = {"masked": False, "live-only": True}


def bench(env_id: str, popsize: int, dataset_size: int, episodes: int, generations: int) -> dict:
    cfg = HadesConfig(env=env_id, popsize=popsize, dataset_size=dataset_size, episodes=episodes, device="cpu")
    evaluator = RealEnvEvaluator(env_id, torch.device("cpu"), "auto")
    if evaluator.backend == "native":
        raise SystemExit(f"{env_id}: native backend; live-only stepping applies to host backends (envpool, gymnasium)")
    resolved = resolve_hades(cfg, evaluator.spec)
    problem = HadesProblem(resolved, evaluator)
    es = make_strategy(resolved.strategy, problem.num_dims, **resolved.strategy_kwargs)
    state = es.init(problem.initial_mean())
    gen = torch.Generator()
    per_mode = {m: {"eval_s": [], "executed": 0, "episode": 0} for m in MODES}
    bc_s, same = [], True
    for g in range(generations + 1):  # generation 0 warms up both modes
        gen.manual_seed(derive_seed(0, g, Streams.ASK))
        pop = es.ask(state, gen)
        t = time.perf_counter()
        params = problem.train(pop, problem.fixed_inits)
        bc = time.perf_counter() - t
        seed = derive_seed(0, g, Streams.ENV)
        order = list(MODES) if g % 2 == 0 else list(MODES)[::-1]
        results = {}
        for mode in order:
            evaluator.live_only = MODES[mode]
            t = time.perf_counter()
            results[mode] = res = evaluator.evaluate(problem.net, params, episodes, seed)
            dt = time.perf_counter() - t
            if g > 0:
                per_mode[mode]["eval_s"].append(dt)
                per_mode[mode]["executed"] += int(res.env_steps)
                per_mode[mode]["episode"] += int(res.lengths.sum())
        a, b = results["masked"], results["live-only"]
        same &= bool(torch.equal(a.returns, b.returns) and torch.equal(a.lengths, b.lengths))
        if g > 0:
            bc_s.append(bc)
        fit = results["live-only"].returns.reshape(popsize, -1).mean(-1)
        state, _ = es.tell(state, pop, fit)
    evaluator.close()
    rows = []
    bc_med = statistics.median(bc_s)
    for mode, m in per_mode.items():
        ev = statistics.median(m["eval_s"])
        rows.append({"env": env_id, "mode": mode, "P": popsize, "envs": popsize * episodes,
                     "executed_M": m["executed"] / 1e6, "episode_M": m["episode"] / 1e6,
                     "executed/episode": m["executed"] / max(m["episode"], 1), "eval_s_per_gen": ev,
                     "bc_s_per_gen": bc_med, "gen_s": ev + bc_med})
    masked, live = rows
    return {"rows": rows, "same_returns_and_lengths": same, "eval_speedup": masked["eval_s_per_gen"] / live["eval_s_per_gen"],
            "generation_speedup": masked["gen_s"] / live["gen_s"], "generations": generations,
            "dataset_size": dataset_size, "episodes": episodes, "hidden": ",".join(map(str, resolved.policy.hidden))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="Hopper-v4")
    ap.add_argument("--popsize", type=int, default=64)
    ap.add_argument("--dataset-size", type=int, default=16)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--generations", type=int, default=4, help="measured generations (after one warm-up)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench_envpool_eval.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} intra-op thread(s), envpool all cores ({os.cpu_count()}), "
          f"{platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.2f}")
    res = bench(args.env, args.popsize, args.dataset_size, args.episodes, args.generations)
    print(format_table(res["rows"]))
    print(f"same returns and lengths in both modes: {res['same_returns_and_lengths']}; evaluation "
          f"{res['eval_speedup']:.2f}x faster live-only, whole generation {res['generation_speedup']:.2f}x")
    write_json(Path(args.out), {"torch": torch.__version__, "threads": args.threads, "cpus": os.cpu_count(),
                                "load_avg_1min": os.getloadavg()[0], **{k: v for k, v in vars(args).items() if k != "out"}, **res})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
