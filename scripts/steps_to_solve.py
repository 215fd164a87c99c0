"""Steps to solve the real env: DDQN trained on the real env vs on a synthetic env (Ferreira et al. 2022's measure).

    python scripts/steps_to_solve.py MDP-CartPole-v0 --members 16 --out steps_to_solve.json
    python scripts/steps_to_solve.py runs/<run>/env_best.safetensors --real-steps 30000 --synthetic-steps 10000

Both rows train ``--members`` DDQN agents (one vectorised population, Ferreira et al.'s CartPole hyperparameters:
:func:`torch_distill.algorithms.rl.dqn.ferreira_ddqn_config`) and evaluate every agent greedily on the real env
every ``--check-every`` training steps (``--eval-episodes`` episodes, same start states for all agents). An agent's
steps to solve is the first check with mean return >= ``--threshold`` (CartPole-v0: 195). The table reports the
fraction of agents that solved, the median steps (unsolved agents count as never) and the mean over solvers; the
JSON file holds every agent's curve. ``fewer steps`` = 1 - median(synthetic) / median(real).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from torch_distill.algorithms.rl.dqn import ferreira_ddqn_config
from torch_distill.algorithms.rl.solve import dqn_steps_to_solve
from torch_distill.envs.synthetic import load_synthetic_env
from torch_distill.envs.vec import make_native
from torch_distill.io import write_json
from torch_distill.log import format_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("env_file", help="synthetic env file or shipped name (its real env is the evaluation env)")
    ap.add_argument("--members", type=int, default=16, help="DDQN agents per row (one vectorised population)")
    ap.add_argument("--real-steps", type=int, default=30_000, help="training budget on the real env")
    ap.add_argument("--synthetic-steps", type=int, default=10_000, help="training budget on the synthetic env")
    ap.add_argument("--check-every", type=int, default=500, help="training steps between real-env evaluations")
    ap.add_argument("--eval-episodes", type=int, default=20, help="real-env episodes per agent and check")
    ap.add_argument("--threshold", type=float, default=195.0, help="solved when the mean return reaches this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-real", action="store_true", help="only the synthetic-env row")
    ap.add_argument("--dueling", action="store_true", help="dueling DDQN (a learner held out of a DDQN-trained env)")
    ap.add_argument("--out", default="steps_to_solve.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    synth = load_synthetic_env(args.env_file)
    real = make_native(synth.real_spec.env_id)
    load0 = os.getloadavg()
    rows, results = [], {}
    plans = [("synthetic", synth, args.synthetic_steps)] + ([] if args.skip_real else [("real", real, args.real_steps)])
    for name, env, steps in plans:
        t0 = time.perf_counter()
        res = dqn_steps_to_solve(ferreira_ddqn_config(steps, dueling=args.dueling), env, real, members=args.members, seed=args.seed,
                                 threshold=args.threshold, check_every=args.check_every,
                                 eval_episodes=args.eval_episodes)
        wall = time.perf_counter() - t0
        results[name] = {**res.to_json(), "train_steps": steps, "wall_s": wall}
        rows.append({"trained on": f"{name} ({synth.spec.env_id if name == 'synthetic' else real.spec.env_id})",
                     "agent": "dueling DDQN" if args.dueling else "DDQN",
                     "agents": args.members, "budget": steps, "solved": f"{res.solved_fraction:.2f}",
                     "median steps": res.median_steps if res.median_steps is not None else "never",
                     "mean steps (solvers)": res.mean_steps_solved if res.mean_steps_solved is not None else "-",
                     "final real return": sum(res.final_returns) / len(res.final_returns), "wall s": wall})
        print(f"{name}: steps to solve per agent {res.steps_to_solve}", flush=True)
    print(format_table(rows))
    if "real" in results and results["real"]["median_steps"] and results["synthetic"]["median_steps"]:
        fewer = 1 - results["synthetic"]["median_steps"] / results["real"]["median_steps"]
        results["fewer_steps_median"] = fewer
        print(f"median steps to solve: {100 * fewer:.0f}% fewer on the synthetic env")
    results["machine"] = {"cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": args.threads,
                          "platform": platform.platform(), "load_before": load0, "load_after": os.getloadavg()}
    results["args"] = vars(args)
    write_json(args.out, results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
