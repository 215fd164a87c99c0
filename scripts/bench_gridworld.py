"""Steps/s of the batched torch MiniGrid vs Farama MiniGrid and envpool's C++ MiniGrid.

Random actions, auto-reset on, MiniGrid's 7x7 egocentric ``image`` observation for everyone. Prints a table
(steps/s and our ratio to the fastest peer) and writes JSON.

    python scripts/bench_gridworld.py --batch-sizes 1 64 1024 4096 --out bench_gridworld.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch


@dataclass
class Args:
    env_ids: list[str] = field(
        default_factory=lambda: ["MiniGrid-Empty-8x8-v0", "MiniGrid-DoorKey-8x8-v0", "MiniGrid-FourRooms-v0"]
    )
    """MiniGrid ids to benchmark."""
    batch_sizes: list[int] = field(default_factory=lambda: [1, 64, 1024, 4096])
    """numbers of parallel envs B."""
    min_time: float = 1.0
    """seconds of stepping per measurement (after warm-up)."""
    repeats: int = 3
    """measurements per cell; the median is reported."""
    threads: int = 1
    """torch intra-op threads (the machine has 2 shared cores)."""
    envpool_threads: int = 2
    """envpool worker threads."""
    compile: bool = True
    """also time ``make(env_id, compile=True)`` (torch.compile; compile time excluded)."""
    compile_batch_sizes: list[int] = field(default_factory=lambda: [1024, 4096])
    """batch sizes for which the compiled kernel is timed (each B compiles once)."""
    peers: list[str] = field(default_factory=lambda: ["minigrid", "envpool"])
    """peers to run: minigrid (one env, B=1 only: its speed does not depend on B), envpool."""
    profile: bool = False
    """print a torch.profiler table of our eager step at the largest B of each env."""
    out: str = "bench_gridworld.json"
    """where to write the JSON results (written to a temp file, then renamed)."""


def parse_args(argv: list[str] | None = None) -> Args:
    """Build ``Args`` from the command line; each field's docstring is its ``--help``."""
    src = open(__file__).read()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(Args):
        has_factory = f.default_factory is not dataclasses.MISSING
        default = f.default_factory() if has_factory else f.default  # type: ignore[misc]
        marker = f"    {f.name}:"
        doc = ""
        if marker in src:
            rest = src.split(marker, 1)[1]
            doc = rest.split('"""')[1].strip() if '"""' in rest else ""
        name = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            p.add_argument(name, action=argparse.BooleanOptionalAction, default=default, help=doc)
        elif isinstance(default, list):
            typ = type(default[0]) if default else str
            p.add_argument(name, nargs="+", type=typ, default=default, help=doc)
        else:
            p.add_argument(name, type=type(default), default=default, help=doc)
    ns = p.parse_args(argv)
    return Args(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(Args)})


def _time_loop(step: Callable[[], None], batch: int, min_time: float, repeats: int) -> float:
    """Median steps/s (env-steps, i.e. ``batch`` per call) over ``repeats`` runs of at least ``min_time`` s."""
    for _ in range(3):
        step()
    rates = []
    for _ in range(repeats):
        n = 0
        t0 = time.perf_counter()
        while True:
            step()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        rates.append(n * batch / dt)
    return statistics.median(rates)


def bench_ours(env_id: str, b: int, args: Args, compiled: bool) -> dict[str, Any]:
    from torch_distill.envs.minigrid import make

    env = make(env_id, compile=compiled)
    g = torch.Generator().manual_seed(0)
    params = env.default_params()
    state, _ = env.reset(b, g, params)
    box: list[Any] = [state]

    def step() -> None:
        a = torch.randint(0, 7, (b,), generator=g)
        box[0], obs, r, te, tr = env.step(box[0], a, g, params)

    t0 = time.perf_counter()
    step()  # compile happens here when compiled
    warm = time.perf_counter() - t0
    rate = _time_loop(step, b, args.min_time, args.repeats)
    state_bytes = sum(t.numel() * t.element_size() for t in box[0]) / b
    return {"steps_per_s": rate, "state_bytes_per_env": state_bytes, "first_call_s": warm}


def bench_minigrid(env_id: str, args: Args) -> dict[str, Any]:
    import gymnasium as gym
    import minigrid  # noqa: F401

    env = gym.make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step() -> None:
        _, _, te, tr, _ = env.step(int(rng.integers(7)))
        if te or tr:
            env.reset()

    return {"steps_per_s": _time_loop(step, 1, args.min_time, args.repeats)}


def bench_envpool(env_id: str, b: int, args: Args) -> dict[str, Any] | None:
    import envpool

    if env_id not in envpool.list_all_envs():
        return None
    env = envpool.make(env_id, env_type="gymnasium", num_envs=b, num_threads=min(args.envpool_threads, b))
    env.reset()
    rng = np.random.default_rng(0)

    def step() -> None:
        env.step(rng.integers(0, 7, size=b))

    return {"steps_per_s": _time_loop(step, b, args.min_time, args.repeats)}


def profile_ours(env_id: str, b: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    from torch_distill.envs.minigrid import make

    env = make(env_id)
    g = torch.Generator().manual_seed(0)
    state, _ = env.reset(b, g)
    for _ in range(5):
        state, *_ = env.step(state, torch.randint(0, 7, (b,), generator=g), g)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(20):
            state, *_ = env.step(state, torch.randint(0, 7, (b,), generator=g), g)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    results: list[dict[str, Any]] = []
    minigrid_single: dict[str, float] = {}
    for env_id in args.env_ids:
        if "minigrid" in args.peers:
            minigrid_single[env_id] = bench_minigrid(env_id, args)["steps_per_s"]
        for b in args.batch_sizes:
            row: dict[str, Any] = {"env_id": env_id, "B": b}
            ours = bench_ours(env_id, b, args, compiled=False)
            row["ours_eager"] = ours["steps_per_s"]
            row["state_bytes_per_env"] = ours["state_bytes_per_env"]
            if args.compile and b in args.compile_batch_sizes:
                oc = bench_ours(env_id, b, args, compiled=True)
                row["ours_compiled"] = oc["steps_per_s"]
                row["compile_s"] = oc["first_call_s"]
            if "minigrid" in args.peers:
                row["minigrid_1env"] = minigrid_single[env_id]
            if "envpool" in args.peers:
                ep = bench_envpool(env_id, b, args)
                if ep is not None:
                    row["envpool"] = ep["steps_per_s"]
            peers = [row[k] for k in ("minigrid_1env", "envpool") if k in row]
            best_ours = max(row.get("ours_eager", 0.0), row.get("ours_compiled", 0.0))
            row["ratio_vs_best_peer"] = best_ours / max(peers) if peers else None
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if args.profile:
            print(f"--- profile of our eager step, {env_id}, B={max(args.batch_sizes)}")
            print(profile_ours(env_id, max(args.batch_sizes)))

    def fmt(x: float | None) -> str:
        if x is None:
            return "-"
        return f"{x / 1e6:.3f}M" if x >= 1e5 else f"{x / 1e3:.1f}k"

    header = (
        f"{'env':<26} {'B':>5} {'ours eager':>11} {'ours compiled':>14} {'minigrid(1)':>12} {'envpool':>9} "
        f"{'ours/best':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = r["ratio_vs_best_peer"]
        print(
            f"{r['env_id'].replace('MiniGrid-', ''):<26} {r['B']:>5} {fmt(r.get('ours_eager')):>11} "
            f"{fmt(r.get('ours_compiled')):>14} {fmt(r.get('minigrid_1env')):>12} {fmt(r.get('envpool')):>9} "
            f"{(f'{ratio:.2f}x' if ratio else '-'):>10}"
        )
    out = {
        "args": dataclasses.asdict(args),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "loadavg_at_end": os.getloadavg(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "results": results,
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
