"""Steps/s of the batched torch MinAtar games vs gymnax's MinAtar (JAX) and the ``minatar`` package.

    python scripts/bench_minatar.py                                        # 5 games, B in 1..16384, 1 thread
    python scripts/bench_minatar.py --games SpaceInvaders Seaquest --sizes 4096 --steps 100

Every backend steps ``B`` envs with uniformly random actions over the game's minimal action set, auto-resetting,
and produces the observation of every step; a row reports env-steps per second (``B * steps / s``), the best of
``--repeats`` timed runs, the backends taking turns (the benchmark machine is shared, so single runs are noisy; the
JSON also holds steps per second of CPU time). All three run the same
game rules: ``<Game>-MinAtar`` ids (minimal actions, no sticky actions, ramping on, 1000-step limit; our env still
draws one sticky uniform per row and step, so ours does slightly more work).

* ``torch``: our eager ``MinAtarEnv``, one ``env.step`` call per env step, actions drawn each step from a
  ``torch.Generator`` on ``--device``; ``--threads`` intra-op threads.
* ``gymnax``: ``jit`` of a ``lax.scan`` of ``--scan-length`` steps over ``vmap(env.step)``, actions drawn inside
  the scan, the observation carried (so XLA cannot drop it): its best case. Compile time is excluded and
  reported. With ``--threads 1`` XLA runs single-threaded (``XLA_FLAGS`` is set before jax is imported).
  Skipped with a note when jax/gymnax cannot be imported or the game is missing from gymnax.
* ``minatar``: a Python loop over ``B`` ``minatar.Environment`` objects (``act``, ``reset`` at terminal,
  ``state()``), only for ``B <= --minatar-max-batch`` and at most ``--minatar-steps`` steps (measured, never
  extrapolated).

Each measurement runs ``--steps`` steps or stops after ``--seconds`` (whichever first; at least one scan). Prints a
table with the ratio torch / gymnax and writes JSON (atomically) with every number, versions and thread settings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import tyro

ALL_GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")
SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


@dataclass
class Args:
    games: tuple[str, ...] = ALL_GAMES
    """MinAtar games (our names; those our registry cannot import are skipped with a note)"""
    sizes: tuple[int, ...] = (1, 64, 1024, 4096, 16384)
    """numbers of parallel envs B"""
    steps: int = 200
    """env steps per timed run (fewer if --seconds runs out first)"""
    seconds: float = 3.0
    """wall-clock budget of one timed run"""
    repeats: int = 3
    """timed runs per measurement; the best is reported"""
    warmup_steps: int = 3
    """untimed steps before timing (torch); gymnax runs one untimed scan (which also compiles)"""
    scan_length: int = 20
    """gymnax: env steps per jitted lax.scan call"""
    threads: int = 1
    """torch intra-op threads; 1 also makes XLA single-threaded (the machine has 2 shared cores)"""
    backends: tuple[str, ...] = ("torch", "gymnax", "minatar")
    """which backends to run"""
    minatar_max_batch: int = 64
    """largest B run with the minatar package (a Python loop over envs)"""
    minatar_steps: int = 100
    """at most this many steps for the minatar package"""
    device: str = "cpu"
    """torch device of our envs"""
    seed: int = 0
    """seed of the actions and the envs"""
    out: Path = Path("bench_minatar.json")
    """where to write the JSON results"""


@dataclass
class Result:
    game: str
    batch_size: int
    backend: str
    steps_per_s: float
    steps: int
    seconds: float
    cpu_steps_per_s: float  # the same run per second of this process's CPU time (less sensitive to a busy machine)
    compile_s: float = field(default=float("nan"))


Timed = Callable[[], tuple[int, float, float]]  # one timed run: (steps, wall seconds, CPU seconds)


def _timed(step: Callable[[], int], limit: int, seconds: float, sync: Callable[[], None]) -> Timed:
    """A timed run that calls ``step()`` (returning the env steps it made) until ``limit`` steps or ``seconds``."""
    def run_once() -> tuple[int, float, float]:
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while n < limit:
            n += step()
            if time.perf_counter() - t0 >= seconds:
                break
        sync()
        return n, time.perf_counter() - t0, time.process_time() - c0

    return run_once


def bench_torch(game: str, b: int, args: Args) -> tuple[Timed, float]:
    from torch_distill.envs.minatar import make

    dev = torch.device(args.device)
    env = make(f"{game}-MinAtar")
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    n_act = env.spec.n_actions
    holder = [env.reset(b, gen)[0]]

    def step() -> int:
        a = torch.randint(n_act, (b,), generator=gen, device=dev)
        state, obs, *_ = env.step(holder[0], a, gen)
        holder[0] = state
        return 1

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(args.warmup_steps):
        step()
    sync()
    return _timed(step, args.steps, args.seconds, sync), float("nan")


def bench_gymnax(game: str, b: int, args: Args) -> tuple[Timed, float]:
    import jax
    import gymnax

    env, params = gymnax.make(f"{game}-MinAtar")
    n_act = env.num_actions
    length = max(1, min(args.scan_length, args.steps))

    def chunk(carry: Any) -> Any:
        def body(c: Any, _: Any) -> tuple[Any, Any]:
            state, obs, key = c
            key, ka, ks = jax.random.split(key, 3)
            action = jax.random.randint(ka, (b,), 0, n_act)
            obs, state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(ks, b), state, action, params)
            return (state, obs, key), reward.sum()

        carry, _ = jax.lax.scan(body, carry, None, length)
        return carry

    key = jax.random.PRNGKey(args.seed)
    key, kr = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(kr, b), params)
    run = jax.jit(chunk)
    t0 = time.perf_counter()
    carry = jax.block_until_ready(run((state, obs, key)))
    compile_s = time.perf_counter() - t0

    def step() -> int:
        nonlocal carry
        carry = run(carry)
        jax.block_until_ready(carry)
        return length

    return _timed(step, args.steps, args.seconds, lambda: None), compile_s


def bench_minatar(game: str, b: int, args: Args) -> tuple[Timed, float]:
    from minatar import Environment

    from torch_distill.envs.minatar import MINATAR_GAMES

    module = MINATAR_GAMES[game].module
    envs = []
    for i in range(b):
        e = Environment(module, sticky_action_prob=0.0)
        e.seed(args.seed + i)
        e.reset()
        envs.append(e)
    actions = envs[0].minimal_action_set()
    rng = np.random.default_rng(args.seed)

    def step() -> int:
        for e, a in zip(envs, rng.integers(0, len(actions), b)):
            _, terminal = e.act(actions[a])
            if terminal:
                e.reset()
            e.state()
        return 1

    return _timed(step, min(args.steps, args.minatar_steps), args.seconds, lambda: None), float("nan")


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def _gymnax_games(notes: list[str]) -> set[str] | None:
    """The gymnax MinAtar ids that can be made, or None (with a note) when jax / gymnax cannot be imported."""
    try:
        import gymnax
        import jax
    except Exception as e:  # noqa: BLE001 - any import failure means: skip the column
        notes.append(f"gymnax column skipped: cannot import jax/gymnax ({type(e).__name__}: {e})")
        return None
    names = set(getattr(gymnax, "registered_envs", []))
    notes.append(f"jax {jax.__version__}, gymnax {_version('gymnax')}, XLA_FLAGS="
                 f"{os.environ.get('XLA_FLAGS', '')!r}")
    return names


def run(args: Args, notes: list[str]) -> list[Result]:
    from torch_distill.envs.minatar import MINATAR_GAMES

    torch.set_num_threads(args.threads)
    games = [g for g in args.games if g in MINATAR_GAMES]
    for g in args.games:
        if g not in MINATAR_GAMES:
            notes.append(f"{g}: not importable from torch_distill.envs.minatar, skipped")
    gx = _gymnax_games(notes) if "gymnax" in args.backends else None
    results: list[Result] = []
    for game in games:
        for b in args.sizes:
            runs: list[tuple[str, Callable[[], tuple[Timed, float]]]] = []
            if "torch" in args.backends:
                runs.append(("torch", lambda: bench_torch(game, b, args)))
            if gx is not None:
                if f"{game}-MinAtar" in gx:
                    runs.append(("gymnax", lambda: bench_gymnax(game, b, args)))
                elif b == args.sizes[0]:
                    notes.append(f"{game}: not in gymnax's registry, gymnax column skipped")
            if "minatar" in args.backends and b <= args.minatar_max_batch:
                runs.append(("minatar", lambda: bench_minatar(game, b, args)))
            ready = [(name, *setup()) for name, setup in runs]
            best: dict[str, tuple[int, float, float]] = {}
            for _ in range(args.repeats):  # alternate the backends, so that a busy spell hits them alike
                for name, timed, _compile in ready:
                    n, wall, cpu = timed()
                    if name not in best or n / wall > best[name][0] / best[name][1]:
                        best[name] = (n, wall, cpu)
            for name, _timed_run, compile_s in ready:
                n, wall, cpu = best[name]
                r = Result(game, b, name, n * b / wall, n, wall, n * b / max(cpu, 1e-9), compile_s)
                results.append(r)
                extra = f" (compile {r.compile_s:.1f} s)" if r.compile_s == r.compile_s else ""
                print(f"  {game:<14} B={b:<6} {r.backend:<8} {r.steps_per_s:>14,.0f} steps/s  "
                      f"[{r.steps} steps in {r.seconds:.2f} s; {r.cpu_steps_per_s:,.0f} per CPU s]{extra}", flush=True)
    return results


def table(results: list[Result]) -> str:
    def get(game: str, b: int, backend: str) -> float | None:
        for r in results:
            if (r.game, r.batch_size, r.backend) == (game, b, backend):
                return r.steps_per_s
        return None

    def fmt(v: float | None) -> str:
        return f"{v:>14,.0f}" if v is not None else f"{'-':>14}"

    lines = [f"{'game':<14} {'B':>6} {'torch':>14} {'gymnax':>14} {'minatar':>14} {'torch/gymnax':>13}", "-" * 80]
    seen: list[tuple[str, int]] = []
    for r in results:
        if (r.game, r.batch_size) not in seen:
            seen.append((r.game, r.batch_size))
    for game, b in seen:
        t, g, m = get(game, b, "torch"), get(game, b, "gymnax"), get(game, b, "minatar")
        ratio = f"{t / g:>12.2f}x" if t is not None and g else f"{'-':>13}"
        lines.append(f"{game:<14} {b:>6} {fmt(t)} {fmt(g)} {fmt(m)} {ratio}")
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
    if args.threads < 1:
        raise ValueError(f"--threads {args.threads}: expected >= 1")
    if any(b < 1 for b in args.sizes) or args.steps < 1 or args.repeats < 1:
        raise ValueError("--sizes, --steps and --repeats must be positive")
    unknown = set(args.backends) - {"torch", "gymnax", "minatar"}
    if unknown:
        raise ValueError(f"--backends: unknown {sorted(unknown)}; expected torch, gymnax, minatar")
    if args.threads == 1 and "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + SINGLE_THREAD_XLA).strip()
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    notes: list[str] = []
    header = (f"torch {torch.__version__} eager on {args.device}, threads={args.threads}; {os.cpu_count()} CPUs "
              f"visible, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; best of {args.repeats} runs of <= "
              f"{args.steps} steps / {args.seconds:.1f} s")
    print(header, flush=True)
    results = run(args, notes)
    print()
    print(header)
    for n in notes:
        print(f"note: {n}")
    print(table(results))
    payload = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(args).items()},
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "cpu_count": os.cpu_count(),
        "load_average": list(load),
        "machine": platform.platform(),
        "notes": notes,
        "results": [dataclasses.asdict(r) for r in results],
    }
    _write_json(args.out, payload)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
