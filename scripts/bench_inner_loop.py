"""Benchmark the HaDES inner loop: vmapped BC vs a Python loop over members, and whole HaDES generations.

    python scripts/bench_inner_loop.py --out bench_inner_loop.json [--threads 1] [--quick]

Part 1: full-batch BC (D=4 CartPole-shaped data, 32 Adam steps) for a population of P policies, as one vmapped
computation (`bc_train`) vs a Python loop over members doing the same math one member at a time; ratio = loop
time / vmap time (> 1: vmap faster).
Part 2: HaDES generations (ask -> BC -> real-env fitness -> tell) on CartPole-v1 (native torch env) and Hopper-v4
(envpool): seconds per generation, generations/s and env-steps/s.
Printed as tables; everything also goes to the JSON file. State the threads: torch uses `--threads` intra-op
threads; envpool uses its own pool (`num_threads=0`: all cores).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from torch.func import grad

from torch_distill.algorithms.bc import BCConfig, bc_loss, bc_train
from torch_distill.algorithms.bc import auto_chunk_size
from torch_distill.algorithms.hades import HadesConfig, HadesProblem, resolve_hades
from torch_distill.envs.core import EnvSpec
from torch_distill.es.optim import adam_init, adam_update
from torch_distill.es.strategies import make_strategy
from torch_distill.io import write_json
from torch_distill.log import format_table
from torch_distill.policies import PolicyConfig, PolicyNet
from torch_distill.runner import Streams, derive_seed
from torch_distill.evaluation import RealEnvEvaluator

CARTPOLE = EnvSpec("CartPole-v1", (4,), True, n_actions=2, max_episode_steps=500)


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bc_auto_chunk(num_params: int, p: int) -> int:
    return auto_chunk_size(num_params, p, torch.device("cpu"))


def bench_bc(pops: list[int], widths: list[int], steps: int, repeats: int) -> list[dict]:
    rows = []
    for width in widths:
        net = PolicyNet(CARTPOLE, PolicyConfig((width, width), "relu"))
        cfg = BCConfig(steps=steps, lr=0.03)
        for p in pops:
            if width >= 512 and p > 256:
                continue  # minutes per measurement; the trend is clear by then
            g = torch.Generator().manual_seed(0)
            params0 = net.init(p, g)
            states = torch.randn(p, 4, 4, generator=g)
            actions = (torch.arange(4) % 2).expand(p, 4)

            def vmapped():  # auto chunking (on CPU: ~4M parameters per vmapped chunk)
                bc_train(net, params0, states, actions, cfg)

            def one_batch():  # the whole population in one vmapped computation
                bc_train(net, params0, states, actions, cfg, chunk_size=p)

            def loop():
                for i in range(p):
                    x, opt = params0[i], adam_init(params0[i])
                    for _ in range(cfg.steps):
                        gr = grad(lambda q: bc_loss(net, q, states[i], actions[i]))(x)
                        gr = gr * torch.clamp(cfg.max_grad_norm / (gr.norm() + 1e-6), max=1.0)
                        delta, opt = adam_update(gr, opt, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)
                        x = x - delta

            wide = width >= 512
            tv = _time(vmapped, 1 if wide else repeats)
            t1 = _time(one_batch, 1) if not (wide and p > 64) else float("nan")
            tl = _time(loop, 1)
            rows.append({"hidden": f"{width},{width}", "P": p, "bc_steps": steps,
                         "chunk": bc_auto_chunk(net.num_params, p), "vmap_s": tv, "vmap_one_batch_s": t1,
                         "loop_s": tl, "loop/vmap": tl / tv, "members_per_s_vmap": p / tv})
            print(format_table(rows[-1:]), flush=True)
    return rows


def bench_hades(env_id: str, popsize: int, dataset_size: int, episodes: int, gens: int, **kw) -> dict:
    cfg = HadesConfig(env=env_id, popsize=popsize, dataset_size=dataset_size, episodes=episodes, device="cpu", **kw)
    evaluator = RealEnvEvaluator(env_id, torch.device("cpu"), "auto")
    resolved = resolve_hades(cfg, evaluator.spec)
    problem = HadesProblem(resolved, evaluator)
    es = make_strategy(resolved.strategy, problem.num_dims, **resolved.strategy_kwargs)
    state = es.init(problem.initial_mean())
    gen = torch.Generator()
    steps = ep_steps = 0.0
    times = []
    for g in range(gens + 1):
        t = time.perf_counter()
        gen.manual_seed(derive_seed(0, g, Streams.ASK))
        pop = es.ask(state, gen)
        fit, st = problem.fitness(pop, g)
        state, _ = es.tell(state, pop, fit)
        dt = time.perf_counter() - t
        if g > 0:  # generation 0 is warm-up
            times.append(dt)
            steps += float(st["env_steps"])
            ep_steps += float(st["episode_steps"])
    total = sum(times)
    evaluator.close()
    return {"env": env_id, "backend": evaluator.backend, "P": popsize, "D": dataset_size, "episodes": episodes,
            "hidden": ",".join(map(str, resolved.policy.hidden)), "bc_steps": resolved.bc.steps, "generations": gens,
            "s_per_gen": total / gens, "gens_per_s": gens / total, "env_steps_per_s": steps / total,
            "episode_steps_per_s": ep_steps / total, "final_fitness_mean": float(fit.mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench_inner_loop.json")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pops = [16, 64] if args.quick else [64, 256, 1024]
    widths = [64] if args.quick else [64, 512]
    print(f"torch {torch.__version__}, {args.threads} intra-op thread(s), {platform.processor() or platform.machine()}")
    print("\n## BC for a population: vmap vs Python loop over members (D=4, 32 Adam steps)")
    bc_rows = bench_bc(pops, widths, 32, 1 if args.quick else 3)
    print(format_table(bc_rows))
    gens = 2 if args.quick else 5
    print("\n## HaDES generations (ask -> vmapped BC -> real-env fitness -> tell), after 1 warm-up generation")
    hades_rows = [
        bench_hades("CartPole-v1", 64, 4, 8, gens),
        bench_hades("CartPole-v1", 256, 4, 8, gens),  # the stored JAX reference's settings (SNES, 32 BC steps)
        bench_hades("Hopper-v4", 64, 16, 4, max(1, gens // 2)),
    ]
    print(format_table(hades_rows))
    print("\nStored reference (JAX, FLAIROx/behaviour-distillation, same machine type, not re-run here): CartPole-v1 "
          "HaDES-F pop 256, D=4, width 64, 8 envs x 1024 steps: 2.5 s/generation, ~0.85M env-steps/s (jit, 9 s compile).")
    result = {"torch": torch.__version__, "threads": args.threads, "bc": bc_rows, "hades": hades_rows,
              "reference_stored": {"CartPole-v1": {"s_per_gen": 2.5, "env_steps_per_s": 0.85e6, "P": 256, "D": 4}}}
    write_json(Path(args.out), result)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
