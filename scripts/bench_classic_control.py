"""Steps per second of the native torch classic-control envs vs gymnasium SyncVectorEnv and envpool.

    python scripts/bench_classic_control.py                       # CartPole-v1 + Pendulum-v1, B in 1..16384
    python scripts/bench_classic_control.py --env-ids CartPole-v1 --batch-sizes 1024 --seconds 1

Every backend steps a batch of ``B`` envs with random actions drawn before timing (a pool of ``--action-pool``
batches cycled through), auto-resetting as it goes; a row reports env-steps per second (``B * steps / s``).
Backends: ``torch`` (our eager FunctionalEnv, ``--torch-threads`` intra-op threads), ``gymnasium``
(``SyncVectorEnv`` of ``B`` envs, only for ``B <= --gym-max-batch``), ``envpool-1t``/``envpool-2t``
(``envpool.make(id, env_type="gymnasium", num_envs=B, batch_size=B, num_threads=1|2)``).
The table gives each row's speed relative to the fastest backend of its (env, B) group, and the JSON file
(written atomically) holds every number plus the versions and thread settings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import tyro

from torch_distill.envs.classic_control import make_classic_control


@dataclass
class Args:
    env_ids: tuple[str, ...] = ("CartPole-v1", "Pendulum-v1")
    """gymnasium ids to benchmark (each must be native, in gymnasium and in envpool)"""
    batch_sizes: tuple[int, ...] = (1, 64, 1024, 16384)
    """numbers of parallel envs B"""
    seconds: float = 2.0
    """timed wall-clock budget of one (env, B, backend) measurement, after warm-up"""
    warmup_steps: int = 5
    """untimed steps before each measurement"""
    gym_max_batch: int = 1024
    """largest B run with gymnasium's SyncVectorEnv (it is a Python loop over envs)"""
    envpool_threads: tuple[int, ...] = (1, 2)
    """envpool thread-pool sizes to measure"""
    torch_threads: int = 1
    """torch intra-op threads for the native env (the benchmark machine has 2 shared cores)"""
    action_pool: int = 32
    """random action batches drawn before timing and cycled through"""
    seed: int = 0
    """seed of the actions and of the envs"""
    out: Path = Path("bench_classic_control.json")
    """where to write the JSON results"""


@dataclass
class Result:
    env_id: str
    batch_size: int
    backend: str
    steps_per_s: float
    batches: int
    seconds: float
    relative_to_fastest: float = field(default=float("nan"))


def _time_loop(step: Callable[[int], None], warmup: int, seconds: float) -> tuple[int, float]:
    """Call ``step(i)`` ``warmup`` times, then as often as fits in ``seconds``; return (calls, elapsed)."""
    for i in range(warmup):
        step(i)
    n, t0 = 0, time.perf_counter()
    while True:
        step(n)
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return n, elapsed


def bench_torch(env_id: str, b: int, args: Args) -> tuple[int, float]:
    env = make_classic_control(env_id)
    gen = torch.Generator().manual_seed(args.seed)
    state, _ = env.reset(b, gen)
    spec = env.spec
    if spec.discrete:
        actions = torch.randint(spec.n_actions, (args.action_pool, b), generator=gen)
    else:
        low, high = torch.tensor(spec.action_low), torch.tensor(spec.action_high)
        actions = low + (high - low) * torch.rand(args.action_pool, b, spec.action_dim, generator=gen)
    holder = [state]

    def step(i: int) -> None:
        holder[0] = env.step(holder[0], actions[i % args.action_pool], gen)[0]

    return _time_loop(step, args.warmup_steps, args.seconds)


def _np_actions(space: Any, b: int, args: Args) -> list[np.ndarray]:
    rng = np.random.default_rng(args.seed)
    if hasattr(space, "n"):
        return [rng.integers(0, int(space.n), size=b) for _ in range(args.action_pool)]
    low, high = np.asarray(space.low), np.asarray(space.high)
    return [rng.uniform(low, high, size=(b, *space.shape)).astype(np.float32) for _ in range(args.action_pool)]


def bench_gymnasium(env_id: str, b: int, args: Args) -> tuple[int, float]:
    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        venv = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(b)])
        venv.reset(seed=args.seed)
        actions = _np_actions(venv.single_action_space, b, args)
        try:
            return _time_loop(lambda i: venv.step(actions[i % args.action_pool]), args.warmup_steps, args.seconds)
        finally:
            venv.close()


def bench_envpool(env_id: str, b: int, threads: int, args: Args) -> tuple[int, float]:
    import envpool

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = envpool.make(env_id, env_type="gymnasium", num_envs=b, batch_size=b, num_threads=threads, seed=args.seed)
        env.reset()
        space = env.action_space
        actions = _np_actions(space, b, args)
        if hasattr(space, "n"):
            actions = [a.astype(np.int32) for a in actions]
        try:
            return _time_loop(lambda i: env.step(actions[i % args.action_pool]), args.warmup_steps, args.seconds)
        finally:
            env.close()


def run(args: Args) -> list[Result]:
    torch.set_num_threads(args.torch_threads)
    results: list[Result] = []
    for env_id in args.env_ids:
        for b in args.batch_sizes:
            group: list[Result] = []
            runs: list[tuple[str, Callable[[], tuple[int, float]]]] = [("torch", lambda: bench_torch(env_id, b, args))]
            if b <= args.gym_max_batch:
                runs.append(("gymnasium", lambda: bench_gymnasium(env_id, b, args)))
            for t in args.envpool_threads:
                runs.append((f"envpool-{t}t", lambda t=t: bench_envpool(env_id, b, t, args)))
            for name, fn in runs:
                n, secs = fn()
                group.append(Result(env_id, b, name, n * b / secs, n, secs))
                print(f"  {env_id:<12} B={b:<6} {name:<11} {group[-1].steps_per_s:>14,.0f} steps/s", flush=True)
            best = max(r.steps_per_s for r in group)
            for r in group:
                r.relative_to_fastest = r.steps_per_s / best
            results += group
    return results


def table(results: list[Result]) -> str:
    lines = [
        f"{'env':<12} {'B':>6} {'backend':<11} {'steps/s':>14} {'vs fastest':>10} {'torch/best peer':>15}",
        "-" * 73,
    ]
    for r in results:
        peers = [p.steps_per_s for p in results if (p.env_id, p.batch_size) == (r.env_id, r.batch_size) and p.backend != "torch"]
        ratio = f"{r.steps_per_s / max(peers):.2f}x" if r.backend == "torch" and peers else ""
        lines.append(
            f"{r.env_id:<12} {r.batch_size:>6} {r.backend:<11} {r.steps_per_s:>14,.0f} {r.relative_to_fastest:>9.2f}x {ratio:>15}"
        )
    return "\n".join(lines)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(args: Args) -> None:
    import envpool
    import gymnasium

    header = (
        f"torch {torch.__version__} eager float32, torch threads={args.torch_threads}; gymnasium {gymnasium.__version__}; "
        f"envpool {envpool.__version__}; {os.cpu_count()} CPUs visible; {args.seconds:.1f} s per measurement"
    )
    print(header, flush=True)
    results = run(args)
    print()
    print(header)
    print(table(results))
    _write_json(
        args.out,
        {
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(args).items()},
            "torch_version": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "gymnasium_version": gymnasium.__version__,
            "envpool_version": envpool.__version__,
            "cpu_count": os.cpu_count(),
            "machine": platform.platform(),
            "results": [dataclasses.asdict(r) for r in results],
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
