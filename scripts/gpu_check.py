"""One prepared device check: CUDA tests, host-sync checks of the hot loops, and timings at GPU sizes.

    python scripts/gpu_check.py                         # on the GPU machine (at most ~8 minutes on one GPU)
    python scripts/gpu_check.py --tiny --device cpu     # CPU-sized smoke run (seconds); what CI runs
    python scripts/gpu_check.py --out gpu_check.json --skip timings

Sections of the JSON file (``--out``, written atomically) and of the printed table:

1. ``tests``: ``pytest -q -k cuda`` on every test file that mentions CUDA (the suite has no cuda marker: its device
   tests are parametrised over ``"cuda"`` or named ``*cuda*`` and skip without a GPU), one file at a time (a file
   that cannot be collected, e.g. for a missing gymnasium, is recorded as such). On CPU: ``skipped (cpu)``.
2. ``sync_checks``: one generation each of HaDES (CartPole-v1; Hopper-v4 through envpool when importable; MinAtar
   when ``torch_distill.envs.minatar`` exists), the synthetic-env search (a PPO and a DQN generation) and plain
   stepping loops (classic control, MiniGrid DoorKey-8x8) under ``torch.cuda.set_sync_debug_mode``, around the
   hot loop only (set-up and a warm-up call run before). Stepping loops run in mode ``error``: any host sync fails
   the check. Whole generations run in mode ``warn`` and every sync is recorded with its file, line, function and
   count: the rollout's documented early-exit check (``evaluation.rollout``: ``bool(done.all())`` every 16 steps)
   is allowed, any other site fails the check. Envpool steps on the host: its syncs are recorded, not judged. On
   CPU the mode does not apply: every check is ``skipped (cpu)`` (the loop still runs, and its time is recorded).
3. ``timings``: HaDES CartPole P=2048 s/generation, MiniGrid DoorKey-8x8 steps/s at B=65536 (eager and
   ``torch.compile``), BC of P=2048 policies of width 512, PPO population env-steps/s. ``--tiny`` shrinks every
   size to CPU scale.

Only torch and the package are needed; gymnasium, tyro, minigrid and envpool are not imported unless a part needs
them, and a part whose package is missing is recorded as ``skipped (missing X)``. When ``torch_distill`` is not
installed the repository root is put on ``sys.path``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import traceback
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("torch_distill") is None:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402


@dataclass
class Args:
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """torch device (default: cuda if available, else cpu)"""
    tiny: bool = False
    """CPU-sized run (seconds): small populations and batches"""
    out: str = "gpu_check.json"
    """JSON output file"""
    skip: tuple[str, ...] = ()
    """sections to skip: tests, sync, timings"""
    min_time: float = 1.0
    """seconds each steps/s timing runs for (--tiny: 0.2)"""
    threads: int = 1
    """torch intra-op threads on CPU (0: torch's default); the small ops of the loops are slowest with several
    threads on a busy machine. Ignored on CUDA"""


def parse_args(argv: list[str] | None = None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    for f in dataclasses.fields(Args):
        default = f.default
        if isinstance(default, bool):
            p.add_argument(f"--{f.name.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, tuple):
            p.add_argument(f"--{f.name}", nargs="*", default=default, choices=["tests", "sync", "timings"])
        else:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=type(default), default=default)
    ns = p.parse_args(argv)
    args = Args(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(Args)})
    if args.tiny and args.min_time == Args.min_time:
        args = dataclasses.replace(args, min_time=0.2)
    return args


# ------------------------------------------------------------------------------------------------------ helpers
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _missing(*modules: str) -> str | None:
    """``skipped (missing X)`` for the first module that cannot be found, else None."""
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                return f"skipped (missing {m})"
        except (ImportError, ValueError):
            return f"skipped (missing {m})"
    return None


def _function_at(filename: str, lineno: int, _cache: dict[str, list[tuple[int, int, str]]] = {}) -> str:
    """The innermost function of ``filename`` that contains line ``lineno`` (for sync-site records)."""
    if filename not in _cache:
        try:
            tree = ast.parse(Path(filename).read_text())
            _cache[filename] = [(n.lineno, n.end_lineno or n.lineno, n.name) for n in ast.walk(tree)
                                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        except (OSError, SyntaxError):
            _cache[filename] = []
    inside = [(a, b, name) for a, b, name in _cache[filename] if a <= lineno <= b]
    return max(inside)[2] if inside else "<module>"


ALLOWED_SYNCS = [("torch_distill/evaluation.py", "rollout", "done.all()")]
"""Documented host syncs: the rollout's early exit when every env is done (every ``check_every`` steps)."""


def _site_of_stack() -> dict[str, Any]:
    """The innermost frame of the package (else of anything outside torch) on the current stack."""
    frames = traceback.extract_stack()[:-3]
    pkg = [f for f in frames if "torch_distill" in f.filename.replace(os.sep, "/") and "gpu_check" not in f.filename]
    other = [f for f in frames if "/torch/" not in f.filename.replace(os.sep, "/") and "warnings" not in f.filename]
    f = (pkg or other or frames)[-1]
    path = f.filename.replace(os.sep, "/")
    rel = path[path.index("torch_distill/"):] if "torch_distill/" in path else path
    return {"file": rel, "line": f.lineno, "function": _function_at(f.filename, f.lineno or 0), "code": f.line or ""}


@contextmanager
def _record_syncs(sites: Counter) -> Iterator[None]:
    """``set_sync_debug_mode("warn")`` with every synchronising op counted by its package frame."""
    old_show = warnings.showwarning

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if "synchroniz" in str(message):
            s = _site_of_stack()
            sites[(s["file"], s["line"], s["function"], s["code"].strip())] += 1
        else:
            old_show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode("default")
            warnings.showwarning = old_show


def sync_check(name: str, device: torch.device, setup: Callable[[], Callable[[], Any]], mode: str,
               judge: bool = True) -> dict[str, Any]:
    """Run ``hot = setup()`` (set-up, outside the check), ``hot()`` once as warm-up, then ``hot()`` under the sync
    debug mode: ``error`` (any sync fails) or ``warn`` (every sync recorded; only :data:`ALLOWED_SYNCS` pass)."""
    rec: dict[str, Any] = {"name": name, "mode": mode}
    try:
        hot = setup()
        hot()  # warm-up: caches, lazy allocations, compilation
        _sync(device)
        t0 = time.perf_counter()
        if device.type != "cuda":
            hot()
            rec.update(status="skipped (cpu)", seconds=time.perf_counter() - t0,
                       note="set_sync_debug_mode applies to CUDA only; the loop ran without the check")
            return rec
        if mode == "error":
            torch.cuda.set_sync_debug_mode("error")
            try:
                hot()
                _sync(device)
                rec.update(status="pass", sites=[])
            except RuntimeError as e:
                if "synchroniz" not in str(e):
                    raise
                tb = traceback.extract_tb(e.__traceback__)
                pkg = [f for f in tb if "torch_distill" in f.filename.replace(os.sep, "/")]
                f = (pkg or tb)[-1]
                rec.update(status="fail", sites=[{"file": f.filename, "line": f.lineno, "code": (f.line or "").strip(),
                                                  "error": str(e).splitlines()[0]}])
            finally:
                torch.cuda.set_sync_debug_mode("default")
        else:
            sites: Counter = Counter()
            with _record_syncs(sites):
                hot()
                _sync(device)
            listed = [{"file": f, "line": ln, "function": fn, "code": code, "count": n,
                       "allowed": any(f.endswith(a) and fn == b and c in code for a, b, c in ALLOWED_SYNCS)}
                      for (f, ln, fn, code), n in sites.most_common()]
            bad = [s for s in listed if not s["allowed"]]
            status = ("pass" if not bad else "fail") if judge else "recorded (host-side env)"
            rec.update(status=status, sites=listed)
        rec["seconds"] = time.perf_counter() - t0
    except ImportError as e:
        rec.update(status=f"skipped (missing {e.name or e})")
    except Exception as e:  # noqa: BLE001 -- a broken part is recorded, the other parts still run
        rec.update(status="error", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-3000:])
    return rec


# --------------------------------------------------------------------------------------------- the hot loops
def hades_generation(env_id: str, popsize: int, device: torch.device, backend: str = "auto", episodes: int = 8,
                     max_steps: int | None = None, **kw: Any) -> Callable[[], Any]:
    """Set up a HaDES problem; the returned call runs one generation (ask, BC, real-env fitness, tell)."""
    from torch_distill.algorithms.hades import HadesConfig, HadesProblem, resolve_hades
    from torch_distill.es.strategies import make_strategy
    from torch_distill.evaluation import RealEnvEvaluator

    cfg = HadesConfig(env=env_id, popsize=popsize, episodes=episodes, device=str(device), backend=backend,
                      max_steps=max_steps, **kw)
    evaluator = RealEnvEvaluator(env_id, device, backend, max_steps)
    resolved = resolve_hades(cfg, evaluator.spec)
    problem = HadesProblem(resolved, evaluator)
    es = make_strategy(resolved.strategy, problem.num_dims, **resolved.strategy_kwargs)
    box = [es.init(problem.initial_mean())]
    gen = torch.Generator(device=device)
    counter = [0]

    def one() -> Any:
        gen.manual_seed(counter[0])
        pop = es.ask(box[0], gen)
        fit, stats = problem.fitness(pop, counter[0])
        box[0], _ = es.tell(box[0], pop, fit)
        counter[0] += 1
        return fit

    return one


def synth_generation(algo: str, popsize: int, inner_steps: int, device: torch.device) -> Callable[[], Any]:
    """Set up a synthetic-env (SCB, CartPole-v1) problem with one inner algorithm; the call runs one generation."""
    from torch_distill.algorithms.synthetic_env import SynthEnvConfig, SynthEnvProblem
    from torch_distill.envs.vec import make_native
    from torch_distill.es.strategies import make_strategy

    cfg = SynthEnvConfig(env="CartPole-v1", kind="scb", algos=algo, popsize=popsize, inner_steps=inner_steps,
                         episodes=4, device=str(device))
    problem = SynthEnvProblem(cfg, make_native(cfg.env), device)
    es = make_strategy(cfg.strategy_name(), problem.num_dims, **cfg.strategy_kwargs())
    box = [es.init(problem.initial_mean().to(device))]
    gen = torch.Generator(device=device)
    counter = [0]

    def one() -> Any:
        gen.manual_seed(counter[0])
        pop = es.ask(box[0], gen)
        fit, _ = problem.fitness(pop, counter[0])
        box[0], _ = es.tell(box[0], pop, fit)
        counter[0] += 1
        return fit

    return one


def stepping(env: Any, batch: int, steps: int, device: torch.device) -> Callable[[], Any]:
    """Reset ``batch`` envs; the call steps them ``steps`` times with random actions drawn on the device."""
    gen = torch.Generator(device=device).manual_seed(0)
    params = env.default_params(device)
    state, _ = env.reset(batch, gen, params)
    box = [state]
    spec = env.spec
    lo, hi = (None, None) if spec.discrete else spec.action_bounds(device)

    def run() -> Any:
        for _ in range(steps):
            if spec.discrete:
                a = torch.randint(0, spec.n_actions, (batch,), generator=gen, device=device)
            else:
                a = torch.rand((batch, spec.action_dim), generator=gen, device=device) * (hi - lo) + lo
            box[0], obs, r, te, tr = env.step(box[0], a, gen, params)
        return obs

    return run


def _classic(env_id: str) -> Any:
    from torch_distill.envs.classic_control import make_classic_control

    return make_classic_control(env_id)


def _minigrid(env_id: str, compile: bool = False) -> Any:
    from torch_distill.envs.minigrid import make

    return make(env_id, compile=compile)


def run_sync_checks(args: Args, device: torch.device) -> list[dict[str, Any]]:
    t = args.tiny
    checks: list[dict[str, Any]] = []
    checks.append(sync_check("hades CartPole-v1 generation (P=%d)" % (16 if t else 256), device,
                             lambda: hades_generation("CartPole-v1", 16 if t else 256, device,
                                                      episodes=2 if t else 8, max_steps=50 if t else None), "warn"))
    missing = _missing("envpool")
    if missing:
        checks.append({"name": "hades Hopper-v4 generation (envpool)", "status": missing})
    else:
        checks.append(sync_check("hades Hopper-v4 generation (envpool, P=%d)" % (8 if t else 64), device,
                                 lambda: hades_generation("Hopper-v4", 8 if t else 64, device, backend="envpool",
                                                          episodes=1 if t else 2, max_steps=50 if t else 200),
                                 "warn", judge=False))
    missing = _missing("torch_distill.envs.minatar")
    if missing:
        checks.append({"name": "hades MinAtar generation", "status": missing})
    else:
        from torch_distill.envs.vec import native_env_ids

        ids = sorted((i for i in native_env_ids() if "MinAtar" in i), key=lambda i: (i != "Breakout-MinAtar", i))
        if not ids:
            checks.append({"name": "hades MinAtar generation", "status": "skipped (no MinAtar id registered)"})
        else:
            checks.append(sync_check(f"hades MinAtar {ids[0]} generation (P={8 if t else 64})", device,
                                     lambda: hades_generation(ids[0], 8 if t else 64, device, episodes=2,
                                                              max_steps=50 if t else None), "warn"))
    for algo in ("ppo", "dqn"):
        checks.append(sync_check(f"synth-env SCB CartPole-v1 {algo} generation (P={4 if t else 64})", device,
                                 lambda algo=algo: synth_generation(algo, 4 if t else 64, 200 if t else 2000, device),
                                 "warn"))
    b = 64 if t else 4096
    for env_id in ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"):
        checks.append(sync_check(f"classic control {env_id} step x32 (B={b})", device,
                                 lambda env_id=env_id: stepping(_classic(env_id), b, 32, device), "error"))
    checks.append(sync_check(f"MiniGrid DoorKey-8x8 step x32 (B={b})", device,
                             lambda: stepping(_minigrid("MiniGrid-DoorKey-8x8-v0"), b, 32, device), "error"))
    return checks


# -------------------------------------------------------------------------------------------------- timings
def _rate(call: Callable[[], Any], work: float, device: torch.device, min_time: float) -> tuple[float, int]:
    """``work`` units per second of ``call`` (after one warm-up call), repeated for at least ``min_time`` s."""
    call()
    _sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        call()
        n += 1
        _sync(device)
        dt = time.perf_counter() - t0
        if dt >= min_time:
            return work * n / dt, n


def _timing(name: str, metric: str, unit: str, size: dict[str, Any], fn: Callable[[], float]) -> dict[str, Any]:
    rec: dict[str, Any] = {"name": name, "metric": metric, "unit": unit, "size": size}
    try:
        t0 = time.perf_counter()
        rec["value"] = fn()
        rec["status"] = "ok"
        rec["seconds"] = time.perf_counter() - t0
    except ImportError as e:
        rec["status"] = f"skipped (missing {e.name or e})"
    except Exception as e:  # noqa: BLE001
        rec.update(status="error", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-3000:])
    return rec


def run_timings(args: Args, device: torch.device) -> list[dict[str, Any]]:
    t = args.tiny
    out: list[dict[str, Any]] = []

    p = 32 if t else 2048
    def hades() -> float:  # noqa: E306
        one = hades_generation("CartPole-v1", p, device, episodes=2 if t else 8, max_steps=50 if t else None)
        rate, _ = _rate(one, 1.0, device, args.min_time)
        return 1.0 / rate
    out.append(_timing(f"HaDES CartPole-v1 P={p}", "s_per_generation", "s/gen", {"popsize": p}, hades))

    b = 256 if t else 65536
    for compiled in (False, True):
        def grid(compiled: bool = compiled) -> float:
            steps = 4 if t else 16
            run = stepping(_minigrid("MiniGrid-DoorKey-8x8-v0", compile=compiled), b, steps, device)
            rate, _ = _rate(run, float(b * steps), device, args.min_time)
            return rate
        out.append(_timing(f"MiniGrid DoorKey-8x8 B={b} ({'torch.compile' if compiled else 'eager'})",
                           "steps_per_s", "env-steps/s", {"batch": b, "compile": compiled}, grid))

    bp, width = (16, 32) if t else (2048, 512)
    def bc() -> float:  # noqa: E306
        from torch_distill.algorithms.bc import BCConfig, bc_train
        from torch_distill.envs.classic_control import make_classic_control
        from torch_distill.policies import PolicyConfig, PolicyNet

        net = PolicyNet(make_classic_control("CartPole-v1").spec, PolicyConfig((width, width), "relu"))
        g = torch.Generator(device=device).manual_seed(0)
        params = net.init(bp, g)
        states = torch.randn(bp, 4, 4, generator=g, device=device)
        actions = torch.arange(4, device=device).remainder(2).expand(bp, 4).contiguous()
        cfg = BCConfig(steps=32)
        rate, _ = _rate(lambda: bc_train(net, params, states, actions, cfg), float(bp), device, args.min_time)
        return rate
    out.append(_timing(f"BC P={bp} width {width} (32 full-batch steps, D=4)", "policies_per_s", "policies/s",
                       {"popsize": bp, "width": width, "steps": 32}, bc))

    m, n_envs, n_steps = (4, 4, 32) if t else (256, 16, 128)
    def ppo() -> float:  # noqa: E306
        from torch_distill.algorithms.rl import AGENTS
        from torch_distill.algorithms.rl.ppo import PPOConfig

        env = _classic("CartPole-v1")
        cfg = PPOConfig(total_timesteps=n_envs * n_steps * 2, num_envs=n_envs, num_steps=n_steps, update_epochs=4,
                        num_minibatches=4)
        params = env.default_params(device)
        g = torch.Generator(device=device).manual_seed(0)
        rate, _ = _rate(lambda: AGENTS["ppo"].train(cfg, env, params, g, m), float(m * cfg.total_timesteps),
                        device, args.min_time)
        return rate
    out.append(_timing(f"PPO population M={m} CartPole-v1 ({n_envs} envs x {n_steps} steps, 2 iterations)",
                       "env_steps_per_s", "env-steps/s", {"members": m, "num_envs": n_envs, "num_steps": n_steps}, ppo))
    return out


# ---------------------------------------------------------------------------------------------------- tests
def run_tests(device: torch.device) -> dict[str, Any]:
    if device.type != "cuda":
        return {"status": "skipped (cpu)"}
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py") if "cuda" in p.read_text())
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    results = []
    for f in files:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-k", "cuda", "-p", "no:cacheprovider", f],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        lines = [x for x in proc.stdout.splitlines() if x.strip()]
        status = {0: "pass", 5: "no cuda tests selected", 2: "collection error"}.get(proc.returncode, "fail")
        results.append({"file": f, "status": status, "returncode": proc.returncode,
                        "summary": lines[-1] if lines else "", "seconds": time.perf_counter() - t0,
                        **({"output": (proc.stdout + proc.stderr)[-3000:]} if status in ("fail", "collection error")
                           else {})})
    bad = [r for r in results if r["status"] == "fail"]
    return {"status": "fail" if bad else "pass", "files": results}


# ----------------------------------------------------------------------------------------------------- main
def _table(record: dict[str, Any]) -> str:
    rows = []
    tests = record.get("tests", {})
    if tests:
        rows.append(("tests", "cuda tests", tests.get("status", ""), ""))
        for r in tests.get("files", []):
            rows.append(("tests", r["file"], r["status"], r["summary"]))
    for c in record.get("sync_checks", []):
        sites = c.get("sites") or []
        detail = ", ".join(f"{s['file']}:{s['line']} x{s.get('count', 1)}{'' if s.get('allowed') else ' (!)'}"
                           for s in sites[:3])
        if "seconds" in c:
            detail = f"{c['seconds']:.2f} s " + detail
        rows.append(("sync", c["name"], c["status"], detail or c.get("error", "")))
    for r in record.get("timings", []):
        v = f"{r['value']:.4g} {r['unit']}" if r.get("status") == "ok" else r.get("error", "")
        rows.append(("timing", r["name"], r["status"], v))
    w = [max(len(str(r[i])) for r in rows + [("section", "check", "status", "value")]) for i in range(4)]
    line = lambda r: "| " + " | ".join(str(x).ljust(w[i]) for i, x in enumerate(r)) + " |"  # noqa: E731
    return "\n".join([line(("section", "check", "status", "value")), "|" + "|".join("-" * (x + 2) for x in w) + "|",
                      *map(line, rows)])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    torch.manual_seed(0)
    if device.type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "meta": {"device": str(device), "tiny": args.tiny, "args": dataclasses.asdict(args),
                 "torch": torch.__version__, "cuda": torch.version.cuda,
                 "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                 "python": platform.python_version(), "threads": torch.get_num_threads(),
                 "created": time.strftime("%Y-%m-%dT%H:%M:%S")},
    }
    if "tests" not in args.skip:
        record["tests"] = run_tests(device)
        print(f"tests: {record['tests']['status']}", flush=True)
    if "sync" not in args.skip:
        record["sync_checks"] = run_sync_checks(args, device)
        print(f"sync checks: {len(record['sync_checks'])}", flush=True)
    if "timings" not in args.skip:
        record["timings"] = run_timings(args, device)
    record["meta"]["total_s"] = time.perf_counter() - t0
    print(_table(record))
    from torch_distill.files import atomic_write

    atomic_write(args.out, lambda p: Path(p).write_text(json.dumps(record, indent=2, default=str) + "\n"))
    print(f"wrote {args.out} ({record['meta']['total_s']:.1f} s)")
    return record


if __name__ == "__main__":
    main()
