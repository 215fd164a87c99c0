"""Side-by-side table of finished runs (HaDES, direct ES) plus a uniformly random policy on the same envs.

    python scripts/budget_report.py RUN_DIR [RUN_DIR ...] --out budget_report.json [--random-episodes 100]

For each run folder: method, env, generations, wall time, env steps spent on fitness (within episodes and executed
by the vector env), and the fresh evaluation returns of the final (and best) artefact from its summary.json.
For each env seen: the mean return of uniformly random actions over ``--random-episodes`` episodes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from torch_distill.envs.vec import make_vec_env
from torch_distill.io import write_json
from torch_distill.log import format_table


@torch.no_grad()
def random_policy_return(env_id: str, episodes: int, seed: int = 0) -> tuple[float, float]:
    venv = make_vec_env(env_id, episodes)
    spec = venv.spec
    gen = torch.Generator().manual_seed(seed)
    venv.reset(seed, group_size=episodes)
    ret = torch.zeros(episodes)
    done = torch.zeros(episodes, dtype=torch.bool)
    low = torch.tensor(spec.action_low) if not spec.discrete else None
    high = torch.tensor(spec.action_high) if not spec.discrete else None
    for _ in range(spec.max_episode_steps):
        if spec.discrete:
            a = torch.randint(spec.n_actions, (episodes,), generator=gen)
        else:
            a = low + (high - low) * torch.rand((episodes, spec.action_dim), generator=gen)
        out = venv.step(a)
        ret += out.reward * ~done
        done |= out.terminated | out.truncated
        if bool(done.all()):
            break
    venv.close()
    return float(ret.mean()), float(ret.std())


def run_row(run_dir: Path) -> list[dict]:
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = []
    base = {"run": run_dir.name, "env": summary["env"], "method": summary.get("variant", summary.get("method")),
            "generations": summary["generations"], "wall_s": summary["train_time_s"],
            "episode_steps": summary["episode_steps"], "executed_steps": summary["env_steps"]}
    if "variant" in summary:  # HaDES
        datasets = summary.get("datasets") or {"final": {"generation": summary["generations"], "eval": summary["final_eval"]}}
        for which, d in datasets.items():
            for k, ev in d["eval"].items():
                ep_std = sum(r["return_std"] for r in ev["per_policy"]) / len(ev["per_policy"])
                rows.append({**base, "artefact": f"{which} dataset (gen {d['generation']})", "evaluated with": k,
                             "return": ev["return_mean"], "std over episodes": ep_std,
                             "std over policies": ev["return_std"] if len(ev["per_policy"]) > 1 else "-"})
    else:  # direct ES
        rows.append({**base, "artefact": "final ES mean", "evaluated with": "the policy itself",
                     "return": summary["final_eval"]["return_mean"], "std over episodes": summary["final_eval"]["return_std"],
                     "std over policies": "-"})
        if summary.get("best_eval"):
            b = summary["best_eval"]
            rows.append({**base, "artefact": f"best ES mean (gen {b['generation']})", "evaluated with": "the policy itself",
                         "return": b["return_mean"], "std over episodes": b["return_std"], "std over policies": "-"})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", default="budget_report.json")
    ap.add_argument("--random-episodes", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [r for run in args.runs for r in run_row(run)]
    for env in sorted({r["env"] for r in rows}):
        m, s = random_policy_return(env, args.random_episodes)
        rows.append({"run": "-", "env": env, "method": "uniform random actions", "generations": 0, "wall_s": 0.0,
                     "episode_steps": 0, "executed_steps": 0, "artefact": "-", "evaluated with": f"{args.random_episodes} episodes",
                     "return": m, "std over episodes": s, "std over policies": "-"})
    rows.sort(key=lambda r: (r["env"], r["method"]))
    print(format_table(rows))
    write_json(args.out, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
