"""Steps/s of the batched torch MiniGrid vs Farama MiniGrid, envpool's C++ MiniGrid, NAVIX and XLand-MiniGrid.

Random actions, auto-reset on, a 7x7 egocentric observation for everyone (like with like). Peers:

- Farama MiniGrid: one env (B=1 row; its speed does not depend on B) and ``SyncVectorEnv`` for B <= 64.
- envpool's C++ MiniGrid (``--envpool-threads`` worker threads).
- NAVIX (JAX): ``jit(vmap)`` with a fused ``lax.scan`` over steps, random actions drawn inside the scan, NAVIX's
  own auto-reset (``step = cond(done, reset, _step)``). Two observations: ``symbolic_first_person`` (7x7x3,
  MiniGrid's egocentric view; like with like, column ``navix_fp``) and NAVIX's default full-grid ``symbolic``
  observation (column ``navix_full``; NOT like with like, never used in the ratio). ``max_steps`` is set to
  MiniGrid's value for the id (NAVIX's default is 100).
- XLand-MiniGrid (JAX): ``jit(vmap)`` + ``lax.scan``, its ``GymAutoResetWrapper``, its egocentric 7x7x2 view
  (``view_size=7``; no occlusion). Closest registry ids: MiniGrid-Empty-8x8, MiniGrid-DoorKey-8x8,
  MiniGrid-FourRooms.

JIT / torch.compile time is excluded from steps/s and reported separately. The ratio ours/best-peer is computed
for the eager and the compiled torch path separately, against the fastest egocentric-view peer in the same run.
Prints a table and writes JSON (``--out``).

    python scripts/bench_gridworld.py --batch-sizes 1 64 1024 4096 16384 --out bench_gridworld.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
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
    batch_sizes: list[int] = field(default_factory=lambda: [1, 64, 1024, 4096, 16384])
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
    compile_batch_sizes: list[int] = field(default_factory=lambda: [1024, 4096, 16384])
    """batch sizes for which the compiled kernel is timed (each B compiles once)."""
    peers: list[str] = field(default_factory=lambda: ["minigrid", "minigrid_sync", "envpool", "navix", "xminigrid"])
    """peers to run: minigrid (one env), minigrid_sync (SyncVectorEnv), envpool, navix, xminigrid."""
    sync_max_b: int = 64
    """largest B for Farama MiniGrid's SyncVectorEnv."""
    scan_env_steps: int = 131072
    """JAX peers: env-steps (B * scan length) per jitted call; scan length is clamped to [8, 512]."""
    max_cell_s: float = 20.0
    """skip a (peer, env, B) cell whose predicted measuring time exceeds this many seconds."""
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


def bench_minigrid_sync(env_id: str, b: int, args: Args) -> dict[str, Any]:
    import gymnasium as gym
    import minigrid  # noqa: F401

    env = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(b)])  # auto-reset: gymnasium default
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step() -> None:
        env.step(rng.integers(0, 7, size=b))

    rate = _time_loop(step, b, args.min_time, args.repeats)
    env.close()
    return {"steps_per_s": rate}


# MiniGrid's max_steps per id (NAVIX defaults to 100 for every id; set it to MiniGrid's for like with like).
MINIGRID_MAX_STEPS = {"MiniGrid-Empty-8x8-v0": 256, "MiniGrid-DoorKey-8x8-v0": 640, "MiniGrid-FourRooms-v0": 100}
NAVIX_IDS = {
    "MiniGrid-Empty-8x8-v0": "Navix-Empty-8x8-v0",
    "MiniGrid-DoorKey-8x8-v0": "Navix-DoorKey-8x8-v0",
    "MiniGrid-FourRooms-v0": "Navix-FourRooms-v0",
}
XMINIGRID_IDS = {
    "MiniGrid-Empty-8x8-v0": "MiniGrid-Empty-8x8",
    "MiniGrid-DoorKey-8x8-v0": "MiniGrid-DoorKey-8x8",
    "MiniGrid-FourRooms-v0": "MiniGrid-FourRooms",
}
_SKIP_PREDICT: dict[tuple[str, str], float] = {}  # (peer, env) -> last measured steps/s, to predict cost at larger B


def _scan_len(b: int, args: Args) -> int:
    return int(min(512, max(8, args.scan_env_steps // b)))


def _predict_skip(key: tuple[str, str], b: int, t: int, args: Args) -> float | None:
    """Predicted seconds to measure a JAX cell (warm call + repeats), from the rate at the previous B."""
    rate = _SKIP_PREDICT.get(key)
    if rate is None:
        return None
    call = b * t / rate
    return call * (2 + args.repeats * max(1, int(np.ceil(args.min_time / call))))


def _bench_jax_rollout(
    key: tuple[str, str], b: int, args: Args, reset_fn: Callable, step_fn: Callable, num_actions: int
) -> dict[str, Any]:
    """Time ``jit(scan(vmap(step)))`` with random actions drawn inside the scan. Compile time excluded."""
    import jax
    import jax.numpy as jnp

    t = _scan_len(b, args)
    pred = _predict_skip(key, b, t, args)
    if pred is not None and pred > args.max_cell_s:
        return {"skipped": f"predicted {pred:.0f}s > {args.max_cell_s:.0f}s"}

    def init(k: Any) -> Any:
        return jax.vmap(reset_fn)(jax.random.split(k, b))

    def rollout(ts: Any, k: Any) -> tuple[Any, Any]:
        def body(carry: Any, _: Any) -> tuple[Any, Any]:
            ts, k = carry
            k, ka = jax.random.split(k)
            a = jax.random.randint(ka, (b,), 0, num_actions)
            ts = jax.vmap(step_fn)(ts, a)
            return (ts, k), ts.reward.sum()

        (ts, k), rs = jax.lax.scan(body, (ts, k), None, length=t)
        return ts, k, rs.sum()

    k0 = jax.random.PRNGKey(0)
    t0 = time.perf_counter()
    init_c = jax.jit(init).lower(k0).compile()
    ts = init_c(k0)
    jax.block_until_ready(ts)
    roll_c = jax.jit(rollout, donate_argnums=(0,)).lower(ts, k0).compile()
    compile_s = time.perf_counter() - t0
    state = getattr(ts, "state", ts)
    state_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(state)) / b
    box = [ts, k0]

    def step() -> None:
        box[0], box[1], r = roll_c(box[0], box[1])
        jax.block_until_ready(r)

    t1 = time.perf_counter()
    step()
    first = time.perf_counter() - t1
    pred = first * (1 + args.repeats * max(1, int(np.ceil(args.min_time / first))))
    if pred > args.max_cell_s:
        rate = b * t / first  # one post-compile call only
        _SKIP_PREDICT[key] = rate
        return {"steps_per_s": rate, "note": "single timed call (cell would exceed max_cell_s)",
                "compile_s": compile_s, "state_bytes_per_env": state_bytes, "scan_len": t}
    rate = _time_loop(step, b * t, args.min_time, args.repeats)
    _SKIP_PREDICT[key] = rate
    del jnp
    return {"steps_per_s": rate, "compile_s": compile_s, "state_bytes_per_env": state_bytes, "scan_len": t}


def bench_navix(env_id: str, b: int, args: Args, first_person: bool) -> dict[str, Any] | None:
    import navix as nx

    if env_id not in NAVIX_IDS:
        return None
    obs_fn = nx.observations.symbolic_first_person if first_person else nx.observations.symbolic
    env = nx.make(NAVIX_IDS[env_id], max_steps=MINIGRID_MAX_STEPS.get(env_id, 100), observation_fn=obs_fn)
    n_act = int(env.action_space.maximum) + 1
    key = ("navix_fp" if first_person else "navix_full", env_id)
    return _bench_jax_rollout(key, b, args, env.reset, env.step, n_act)


def bench_xminigrid(env_id: str, b: int, args: Args) -> dict[str, Any] | None:
    import xminigrid
    from xminigrid.wrappers import GymAutoResetWrapper

    xid = XMINIGRID_IDS.get(env_id)
    if xid is None or xid not in xminigrid.registered_environments():
        return None
    env, params = xminigrid.make(xid)
    params = params.replace(view_size=7)
    env = GymAutoResetWrapper(env)
    n_act = int(env.num_actions(params))
    res = _bench_jax_rollout(
        ("xminigrid", env_id), b, args, lambda k: env.reset(params, k), lambda ts, a: env.step(params, ts, a), n_act
    )
    res["max_steps"] = int(params.max_steps)
    return res


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in ("torch", "numpy", "jax", "jaxlib", "navix", "xminigrid", "envpool", "minigrid", "gymnasium"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


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
    jax_info: dict[str, Any] = {}
    for name in ("navix", "xminigrid"):
        if name in args.peers:
            try:
                __import__(name)
            except Exception as e:  # noqa: BLE001 - a missing peer is skipped and reported
                print(f"skipping peer {name}: {e!r}", file=sys.stderr)
                args.peers = [p for p in args.peers if p != name]
    if any(p in args.peers for p in ("navix", "xminigrid")):
        import jax

        jax_info = {"devices": [str(d) for d in jax.devices()], "XLA_FLAGS": os.environ.get("XLA_FLAGS")}
    ego_peers = ("minigrid_1env", "minigrid_sync", "envpool", "navix_fp", "xminigrid")
    for env_id in args.env_ids:
        if "minigrid" in args.peers:
            minigrid_single[env_id] = bench_minigrid(env_id, args)["steps_per_s"]
        for b in args.batch_sizes:
            row: dict[str, Any] = {"env_id": env_id, "B": b, "notes": {}}
            ours = bench_ours(env_id, b, args, compiled=False)
            row["ours_eager"] = ours["steps_per_s"]
            row["state_bytes_per_env"] = ours["state_bytes_per_env"]
            if args.compile and b in args.compile_batch_sizes:
                oc = bench_ours(env_id, b, args, compiled=True)
                row["ours_compiled"] = oc["steps_per_s"]
                row["compile_s"] = oc["first_call_s"]
            if "minigrid" in args.peers and b == 1:
                row["minigrid_1env"] = minigrid_single[env_id]
            if "minigrid_sync" in args.peers and 1 < b <= args.sync_max_b:
                row["minigrid_sync"] = bench_minigrid_sync(env_id, b, args)["steps_per_s"]
            if "envpool" in args.peers:
                ep = bench_envpool(env_id, b, args)
                if ep is not None:
                    row["envpool"] = ep["steps_per_s"]
            jax_runs: list[tuple[str, Callable[[], dict[str, Any] | None]]] = []
            if "navix" in args.peers:
                jax_runs.append(("navix_fp", lambda: bench_navix(env_id, b, args, first_person=True)))
                jax_runs.append(("navix_full", lambda: bench_navix(env_id, b, args, first_person=False)))
            if "xminigrid" in args.peers:
                jax_runs.append(("xminigrid", lambda: bench_xminigrid(env_id, b, args)))
            for col, fn in jax_runs:
                try:
                    res = fn()
                except Exception as e:  # noqa: BLE001 - report and continue with the other peers
                    row["notes"][col] = f"error: {e!r}"[:300]
                    continue
                if res is None:
                    continue
                if "skipped" in res:
                    row["notes"][col] = res["skipped"]
                    continue
                row[col] = res["steps_per_s"]
                row[col + "_compile_s"] = res["compile_s"]
                row[col + "_state_bytes_per_env"] = res["state_bytes_per_env"]
                row[col + "_scan_len"] = res["scan_len"]
                if "note" in res:
                    row["notes"][col] = res["note"]
            peers = {k: row[k] for k in ego_peers if k in row}
            if peers:
                best = max(peers, key=peers.__getitem__)
                row["best_peer"] = best
                row["ratio_eager_vs_best_peer"] = row["ours_eager"] / peers[best]
                if "ours_compiled" in row:
                    row["ratio_compiled_vs_best_peer"] = row["ours_compiled"] / peers[best]
            row["peak_rss_mb_so_far"] = _peak_rss_mb()
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if args.profile:
            print(f"--- profile of our eager step, {env_id}, B={max(args.batch_sizes)}")
            print(profile_ours(env_id, max(args.batch_sizes)))

    def fmt(x: float | None) -> str:
        if x is None:
            return "-"
        return f"{x / 1e6:.3f}M" if x >= 1e5 else f"{x / 1e3:.1f}k"

    cols = [
        ("ours_eager", "ours eager"), ("ours_compiled", "ours comp"), ("minigrid_1env", "mg(1)"),
        ("minigrid_sync", "mg sync"), ("envpool", "envpool"), ("navix_fp", "navix 7x7"),
        ("xminigrid", "xmg 7x7"), ("navix_full", "navix full*"),
    ]
    header = f"{'env':<18} {'B':>5} " + " ".join(f"{h:>11}" for _, h in cols)
    header += f" {'best peer':>13} {'eager/best':>10} {'comp/best':>10}"
    print(header)
    print("-" * len(header))
    for r in results:
        re_, rc_ = r.get("ratio_eager_vs_best_peer"), r.get("ratio_compiled_vs_best_peer")
        line = f"{r['env_id'].replace('MiniGrid-', '').replace('-v0', ''):<18} {r['B']:>5} "
        line += " ".join(f"{fmt(r.get(k)):>11}" for k, _ in cols)
        line += f" {r.get('best_peer', '-'):>13} {(f'{re_:.2f}x' if re_ else '-'):>10} {(f'{rc_:.2f}x' if rc_ else '-'):>10}"
        print(line)
    print("* navix full = NAVIX default full-grid observation (not like with like; excluded from best peer).")
    print("state bytes/env and compile/jit seconds:")
    for r in results:
        parts = [f"ours {r['state_bytes_per_env']:.0f}B"]
        if "compile_s" in r:
            parts.append(f"ours compile {r['compile_s']:.1f}s")
        for k in ("navix_fp", "navix_full", "xminigrid"):
            if k in r:
                parts.append(f"{k} {r[k + '_state_bytes_per_env']:.0f}B jit {r[k + '_compile_s']:.1f}s")
        notes = "; ".join(f"{k}: {v}" for k, v in r["notes"].items())
        print(f"  {r['env_id'].replace('MiniGrid-', '').replace('-v0', ''):<18} {r['B']:>5}  " + ", ".join(parts)
              + (f"  [{notes}]" if notes else ""))
    print(f"peak RSS of the process: {_peak_rss_mb():.0f} MB")
    out = {
        "args": dataclasses.asdict(args),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "loadavg_at_end": os.getloadavg(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "versions": _versions(),
            "jax": jax_info,
            "peak_rss_mb": _peak_rss_mb(),
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
