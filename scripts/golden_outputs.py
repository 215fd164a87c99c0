"""Record or check the golden outputs of fixed-seed runs: a refactor must leave them unchanged.

    python scripts/golden_outputs.py record docs/bench/golden_outputs.json   # before a change
    python scripts/golden_outputs.py check docs/bench/golden_outputs.json    # after it: prints a before/after table

Each case is a short fixed-seed run through the public API (HaDES-F/R discrete and continuous, direct ES, a
synthetic-env search of each kind) or an evaluation of a shipped artefact (every shipped dataset retrained and
evaluated; every shipped synthetic env rolled out with random actions and one fresh agent trained on it). The
numbers are compared exactly (``--rtol`` to allow for a different machine or BLAS). One torch thread; CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def _rows(run_dir: Path, keys: tuple[str, ...]) -> list[dict[str, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: r[k] for k in keys if k in r and r[k] is not None} for r in rows]


_KEYS = ("generation", "fitness_mean", "fitness_max", "fitness_min", "eval_return_mean", "env_steps", "episode_steps")


def _hades(out: Path, **kw: Any) -> dict[str, Any]:
    from torch_distill.algorithms.hades import HadesConfig, run_hades
    from torch_distill.io import load_dataset

    cfg = HadesConfig(out=str(out), name="run", log_every=1000, final_episodes=10, final_seeds=2, **kw)
    summary = run_hades(cfg)
    ds = load_dataset(summary["dataset"])
    return {"metrics": _rows(out / "run", _KEYS), "states_sum": float(ds.states.double().sum()),
            "actions_sum": float(ds.actions.double().sum())}


def _direct_es(out: Path, **kw: Any) -> dict[str, Any]:
    from torch_distill.algorithms.direct_es import DirectESConfig, run_direct_es

    run_direct_es(DirectESConfig(out=str(out), name="run", log_every=1000, final_episodes=10, **kw))
    return {"metrics": _rows(out / "run", _KEYS)}


def _synth(out: Path, **kw: Any) -> dict[str, Any]:
    from torch_distill.algorithms.synthetic_env import SynthEnvConfig, run_synth_env
    from torch_distill.envs.synthetic import load_synthetic_env

    summary = run_synth_env(SynthEnvConfig(out=str(out), name="run", log_every=1000, final_seeds=0, eval_every=2,
                                           eval_agents=1, **kw))
    env = load_synthetic_env(summary["env_file"])
    return {"metrics": _rows(out / "run", _KEYS), "genome_sum": float(env.genome.double().sum())}


def _shipped_dataset(name: str) -> dict[str, Any]:
    from torch_distill.algorithms.hades import evaluate_dataset
    from torch_distill.io import load_dataset

    ds = load_dataset(name)
    out: dict[str, Any] = {}
    if ds.metadata.get("init_seeds"):
        out["fixed_init"] = evaluate_dataset(ds, fixed_init=True, episodes=5).return_mean
    out["fresh"] = evaluate_dataset(ds, seeds=[0, 1], episodes=5).return_mean
    return out


def _shipped_env(name: str) -> dict[str, Any]:
    from torch_distill.algorithms.synthetic_env import evaluate_synthetic_env
    from torch_distill.envs.synthetic import load_synthetic_env

    env = load_synthetic_env(name)
    gen = torch.Generator().manual_seed(0)
    params = env.default_params()
    state, obs = env.reset(32, gen, params)
    spec = env.spec
    obs_sum = float(obs.double().sum())
    rew_sum = 0.0
    ends = 0
    for _ in range(50):
        if spec.discrete:
            a = torch.randint(spec.n_actions, (32,), generator=gen)
        else:
            lo, hi = torch.tensor(spec.action_low), torch.tensor(spec.action_high)
            a = lo + (hi - lo) * torch.rand((32, spec.action_dim), generator=gen)
        state, obs, r, term, trunc = env.step(state, a, gen, params)[:5]
        obs_sum += float(obs.double().sum())
        rew_sum += float(r.double().sum())
        ends += int((term | trunc).sum())
    algo = "ppo" if spec.discrete else "bandit"
    res = evaluate_synthetic_env(env, algos=algo, seeds=1, episodes=4, inner_steps=2000, seed=7)
    return {"rollout_obs_sum": obs_sum, "rollout_reward_sum": rew_sum, "rollout_ends": ends,
            f"{algo}_return": res[algo].return_mean}


def cases() -> dict[str, Callable[[Path], dict[str, Any]]]:
    from torch_distill.envs.synthetic import shipped_synthetic_envs
    from torch_distill.io import shipped_datasets

    c: dict[str, Callable[[Path], dict[str, Any]]] = {
        "hades F CartPole-v1": lambda d: _hades(d, popsize=32, generations=4, eval_every=2),
        "hades R CartPole-v1": lambda d: _hades(d, variant="R", popsize=16, generations=3, eval_every=2),
        "hades F Pendulum-v1": lambda d: _hades(d, env="Pendulum-v1", dataset_size=4, popsize=16, generations=2,
                                                eval_every=1, episodes=2),
        "direct-es CartPole-v1": lambda d: _direct_es(d, popsize=16, generations=3, eval_every=2),
        "synth-env scb CartPole-v1 ppo,dqn": lambda d: _synth(d, popsize=4, generations=2, inner_steps=2000,
                                                              episodes=2),
        "synth-env scb Pendulum-v1 bandit": lambda d: _synth(d, env="Pendulum-v1", algos="bandit", popsize=4,
                                                             generations=2, inner_steps=2000, episodes=2),
        "synth-env mdp CartPole-v0 dqn": lambda d: _synth(d, env="CartPole-v0", kind="mdp", popsize=4,
                                                          generations=2, inner_steps=1000, episodes=2),
        "synth-env reward CartPole-v1 dqn": lambda d: _synth(d, kind="reward", popsize=4, generations=2,
                                                             inner_steps=1000, episodes=2),
    }
    for name in shipped_datasets():
        c[f"dataset {name}"] = lambda d, n=name: _shipped_dataset(n)
    for name in shipped_synthetic_envs():
        c[f"synthetic env {name}"] = lambda d, n=name: _shipped_env(n)
    return c


def _flatten(prefix: str, x: Any, out: dict[str, Any]) -> None:
    if isinstance(x, dict):
        for k, v in x.items():
            _flatten(f"{prefix}.{k}", v, out)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            _flatten(f"{prefix}[{i}]", v, out)
    else:
        out[prefix] = x


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["record", "check"])
    p.add_argument("path")
    p.add_argument("--only", default="", help="comma-separated substrings: run only the matching cases")
    p.add_argument("--rtol", type=float, default=0.0, help="relative tolerance of check (0: exact)")
    args = p.parse_args()
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    wanted = [s for s in args.only.split(",") if s]
    for name, fn in cases().items():
        if wanted and not any(w in name for w in wanted):
            continue
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            results[name] = fn(Path(d))
        print(f"{name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    path = Path(args.path)
    if args.mode == "record":
        path.write_text(json.dumps({"torch": torch.__version__, "cases": results}, indent=1) + "\n")
        print(f"wrote {path}")
        return 0
    golden = json.loads(path.read_text())["cases"]
    changed = 0
    print("| case | value | before | after | same |\n|---|---|---|---|---|")
    for name, res in results.items():
        old: dict[str, Any] = {}
        new: dict[str, Any] = {}
        _flatten("", golden.get(name, {}), old)
        _flatten("", res, new)
        for k in sorted(set(old) | set(new)):
            a, b = old.get(k), new.get(k)
            same = a == b or (isinstance(a, float) and isinstance(b, float) and abs(a - b) <= args.rtol * abs(a))
            changed += not same
            if not same or k.endswith("fitness_mean") or k.endswith("return") or k.endswith("fresh"):
                print(f"| {name} | {k.lstrip('.')} | {a} | {b} | {'yes' if same else 'NO'} |")
    print(f"\n{changed} value(s) changed")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
