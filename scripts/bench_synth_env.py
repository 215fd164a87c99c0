"""Benchmark the synthetic-env (SCB) search: wall time and env steps per ES generation vs population size.

    python scripts/bench_synth_env.py --out bench_synth_env.json                  # CartPole-v1, P = 8 16 32 64
    python scripts/bench_synth_env.py --popsizes 4 8 --inner-steps 1000 --generations 1 --out bench.json

For every env of ``--envs`` and population size P of ``--popsizes`` this builds the fitness of
:class:`torch_distill.algorithms.synthetic_env.SynthEnvProblem` (``SynthEnvConfig(env, popsize=P, inner_steps,
agents, episodes, ...)`` on the native torch env) and times ``problem.fitness(genomes, g)`` -- one whole SCB
generation without the ES update (train P x agents inner agents for ``inner_steps`` synthetic steps each, then
evaluate them on the real env, PPO/SAC sampling their actions) -- with ``genomes [P, G]`` = the initial ES mean + ``sigma`` noise.
``--kind`` picks the synthetic env (scb, mdp, reward). Each inner algorithm of the round-robin (``--algos``; auto
= SCB: ppo,dqn for discrete actions, ppo,td3 for continuous ones; MDP/reward: dqn or td3) is measured
on its own: generation indices ``k + n j`` (algorithm ``k`` of ``n``) hit it; ``j = 0`` is an untimed warm-up and
``j = 1 .. --generations`` are timed (their hyperparameters are re-sampled per generation, as in a real run).

A row reports seconds per generation (mean of the timed ones), real-env steps executed per generation
(``P x agents x episodes x horizon``: the evaluation runs the whole horizon in every env), steps within the
episodes (before each env's first episode end: the "real interactions" of the paper), synthetic steps per
generation (``P x agents x inner_steps``) and synthetic steps per second. The table is printed with
``torch_distill.log.format_table``; the JSON file (written atomically) holds every row plus the machine
(CPU count, torch version, threads, load averages before and after).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from torch_distill.algorithms.synthetic_env import SynthEnvConfig, SynthEnvProblem
from torch_distill.envs.vec import make_native
from torch_distill.io import write_json
from torch_distill.log import format_table


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_one(env_id: str, popsize: int, args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """Rows (one per inner algorithm) of one (env, popsize) setting."""
    cfg = SynthEnvConfig(env=env_id, kind=args.kind, algos=args.algos, popsize=popsize, inner_steps=args.inner_steps, agents=args.agents,
                         episodes=args.episodes, max_steps=args.max_steps, seed=args.seed, device=str(device),
                         threads=args.threads)
    problem = SynthEnvProblem(cfg, make_native(env_id), device)
    mean = problem.initial_mean()
    noise = torch.randn(popsize, mean.numel(), generator=torch.Generator(device=device).manual_seed(args.seed),
                        device=device)
    genomes = mean + cfg.sigma * noise
    n = len(problem.algos)
    rows = []
    for k, algo in enumerate(problem.algos):
        times: list[float] = []
        env_steps = episode_steps = 0.0
        warmup = 0.0
        fit = torch.zeros(())
        for j in range(1 - args.warmup, args.generations + 1):
            g = k + n * j
            assert problem.algo_of(g) == algo
            _sync(device)
            t = time.perf_counter()
            fit, info = problem.fitness(genomes, g)
            _sync(device)
            dt = time.perf_counter() - t
            if j == 0:
                warmup = dt
                continue
            times.append(dt)
            env_steps += float(info["env_steps"])
            episode_steps += float(info["episode_steps"])
        gens = args.generations
        s_per_gen = sum(times) / gens
        synth = popsize * args.agents * args.inner_steps
        rows.append({
            "env": env_id, "kind": args.kind, "algo": algo, "P": popsize, "agents": args.agents, "inner_steps": args.inner_steps,
            "episodes": args.episodes, "horizon": problem.horizon(0), "generations": gens,
            "s_per_gen": s_per_gen, "warmup_s": warmup,
            "real_env_steps_per_gen": env_steps / gens, "episode_steps_per_gen": episode_steps / gens,
            "synthetic_steps_per_gen": synth, "synthetic_steps_per_s": synth / s_per_gen,
            "real_env_steps_per_s": env_steps / gens / s_per_gen, "last_fitness_mean": float(fit.mean()),
            "times_s": times,
        })
        print(f"  {env_id} {algo:<4} P={popsize:<4} {s_per_gen:8.3f} s/generation (warm-up {warmup:.2f} s), "
              f"{synth / s_per_gen:12,.0f} synthetic steps/s", flush=True)
    return rows


COLUMNS = ["env", "kind", "algo", "P", "s_per_gen", "real_env_steps_per_gen", "episode_steps_per_gen",
           "synthetic_steps_per_gen", "synthetic_steps_per_s"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", nargs="+", default=["CartPole-v1"], help="native real env ids (default: CartPole-v1)")
    ap.add_argument("--kind", default="scb", choices=["scb", "mdp", "reward"], help="synthetic env kind")
    ap.add_argument("--algos", default="auto", help="inner algorithms (comma-separated; auto: the kind's default)")
    ap.add_argument("--warmup", type=int, default=1, choices=[0, 1], help="untimed warm-up generation per algorithm")
    ap.add_argument("--popsizes", nargs="+", type=int, default=[8, 16, 32, 64], help="ES population sizes P")
    ap.add_argument("--generations", type=int, default=2, help="timed generations per algorithm (after --warmup untimed ones)")
    ap.add_argument("--inner-steps", type=int, default=10_000, help="synthetic steps per inner agent (reference 10k)")
    ap.add_argument("--agents", type=int, default=1, help="inner agents per candidate env")
    ap.add_argument("--episodes", type=int, default=8, help="real-env evaluation episodes per agent")
    ap.add_argument("--max-steps", type=int, default=None, help="evaluation horizon (default: the env's time limit)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:N)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--out", default="bench_synth_env.json", help="JSON results file (written atomically)")
    args = ap.parse_args(argv)
    for k in ["generations", "inner_steps", "agents", "episodes", "threads"]:
        if getattr(args, k) < 1:
            ap.error(f"--{k.replace('_', '-')}={getattr(args, k)}: expected a positive integer")
    if any(p < 1 for p in args.popsizes):
        ap.error(f"--popsizes {args.popsizes}: expected positive integers")
    if args.max_steps is not None and args.max_steps < 1:
        ap.error(f"--max-steps={args.max_steps}: expected a positive integer")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = os.getloadavg()
    machine = {
        "cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "processor": platform.processor() or platform.machine(), "platform": platform.platform(),
        "python": sys.version.split()[0], "torch": torch.__version__, "threads": torch.get_num_threads(),
        "device": str(device), "loadavg_before": list(load_before),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op thread(s), {machine['cpu_count']} CPUs, "
          f"{machine['processor']}; load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    print(f"{args.kind.upper()} fitness (train P x {args.agents} agent(s) x {args.inner_steps} synthetic steps, then "
          f"{args.episodes} real episodes each); {args.generations} timed generation(s) per algorithm after "
          f"{args.warmup} warm-up\n", flush=True)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for env_id in args.envs:
        for p in args.popsizes:
            rows += bench_one(env_id, p, args, device)
    machine["loadavg_after"] = list(os.getloadavg())
    print(f"\n## SCB generation cost vs population size ({time.perf_counter() - t0:.0f} s in all; load average "
          f"after {machine['loadavg_after'][0]:.2f})")
    print(format_table(rows, COLUMNS))
    settings = asdict(SynthEnvConfig(env=args.envs[0], inner_steps=args.inner_steps, agents=args.agents,
                                     episodes=args.episodes, max_steps=args.max_steps, seed=args.seed))
    result = {"command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
              "args": vars(args), "machine": machine,
              "config": {k: settings[k] for k in ["hidden", "agent_hidden", "agent_activation", "hparams", "sigma",
                                                  "ppo_epochs", "ppo_minibatches", "dqn_train_frequency"]},
              "total_s": time.perf_counter() - t0, "results": rows}
    write_json(Path(args.out), result)
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
