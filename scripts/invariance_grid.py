"""Does a distilled dataset train learners it was not evolved for? Plain torch only, no torch_distill code.

Reads a dataset file with ``safetensors`` (the documented format), trains fresh ``nn.Sequential`` policies by
full-batch behaviour cloning with ``torch.optim.Adam`` over the grid hidden width x activation x Adam lr x BC steps
x init (orthogonal with the reference gains, or PyTorch's default), ``--seeds`` inits per cell, and scores each on
gymnasium's own env (``--episodes`` episodes per policy, greedy actions). One training run per (width, activation,
init, lr, seed) is snapshotted at every step count of the grid. Writes a JSON of every cell and prints a summary:
cells at or above the threshold, the worst cell and the marginal mean of each axis.

    python scripts/invariance_grid.py torch_distill/datasets/CartPole-v1.safetensors --threshold 450 --out grid.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from safetensors import safe_open
from torch import nn

THRESHOLDS = {"CartPole-v1": 450.0, "Acrobot-v1": -100.0, "Pendulum-v1": -250.0}


def load(path: str) -> tuple[torch.Tensor, torch.Tensor, dict]:
    with safe_open(path, "pt") as f:
        meta = json.loads(f.metadata()["torch_distill"])
        return f.get_tensor("states"), f.get_tensor("actions"), meta


def make_policy(obs_dim: int, out_dim: int, width: int, depth: int, act: str, init: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    sizes = [obs_dim] + [width] * depth
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU() if act == "relu" else nn.Tanh()]
    layers.append(nn.Linear(sizes[-1], out_dim))
    net = nn.Sequential(*layers)
    if init == "orthogonal":  # the HaDES reference: gain sqrt(2) hidden, 0.01 output, zero biases
        linears = [m for m in net if isinstance(m, nn.Linear)]
        for i, m in enumerate(linears):
            nn.init.orthogonal_(m.weight, math.sqrt(2) if i < len(linears) - 1 else 0.01)
            nn.init.zeros_(m.bias)
    return net


def train(net: nn.Sequential, log_std: torch.Tensor | None, states: torch.Tensor, actions: torch.Tensor,
          lr: float, snapshots: list[int]) -> list[dict]:
    params = list(net.parameters()) + ([log_std] if log_std is not None else [])
    opt = torch.optim.Adam(params, lr=lr)
    out = []
    for step in range(1, max(snapshots) + 1):
        pred = net(states)
        if log_std is None:
            loss = nn.functional.cross_entropy(pred, actions)
        else:
            loss = (0.5 * ((actions - pred) * torch.exp(-log_std)) ** 2 + log_std).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in snapshots:
            out.append({k: v.detach().clone() for k, v in net.state_dict().items()})
    return out


def evaluate(env_id: str, policies: list[nn.Sequential], mean: np.ndarray, std: np.ndarray, episodes: int,
             seed: int, discrete: bool, low: np.ndarray | None, high: np.ndarray | None) -> np.ndarray:
    """Greedy returns ``[len(policies), episodes]`` on gymnasium's env (first episode of each sub-env)."""
    n = len(policies) * episodes
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(n)])
    obs, _ = envs.reset(seed=[seed + i % episodes for i in range(n)])
    ret, done = np.zeros(n), np.zeros(n, bool)
    while not done.all():
        x = torch.as_tensor((obs - mean) / std, dtype=torch.float32).reshape(len(policies), episodes, -1)
        with torch.no_grad():
            out = torch.cat([p(x[i]) for i, p in enumerate(policies)]).numpy()
        a = out.argmax(-1) if discrete else np.clip(out, low, high)
        obs, r, term, trunc, _ = envs.step(a)
        ret += np.where(done, 0.0, r)
        done |= term | trunc
    envs.close()
    return ret.reshape(len(policies), episodes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("datasets", nargs="+")
    p.add_argument("--widths", default="16,32,64,256,512")
    p.add_argument("--activations", default="relu,tanh")
    p.add_argument("--lrs", default="1e-3,3e-3,1e-2,3e-2")
    p.add_argument("--steps", default="32,100,500,1000")
    p.add_argument("--inits", default="orthogonal,default")
    p.add_argument("--depth", type=int, default=None, help="hidden layers (default: the dataset's recorded depth)")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--env-seed", type=int, default=12345)
    p.add_argument("--threshold", type=float, default=None, help="default: CartPole 450, Acrobot -100, Pendulum -250")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON of every cell")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    widths = [int(w) for w in a.widths.split(",")]
    acts, inits = a.activations.split(","), a.inits.split(",")
    lrs = [float(x) for x in a.lrs.split(",")]
    steps = sorted(int(s) for s in a.steps.split(","))
    record = {"args": vars(a), "torch_threads": a.threads, "datasets": {}}
    for path in a.datasets:
        states, actions, meta = load(path)
        env = meta["env"]
        env_id, discrete = env["env_id"], env["discrete"]
        norm = meta.get("obs_normalizer") or {}
        mean = np.asarray(norm.get("obs_mean", np.zeros(env["obs_shape"])), np.float64)
        std = np.sqrt(np.asarray(norm.get("obs_var", np.ones(env["obs_shape"])), np.float64) + norm.get("eps", 0.0))
        if discrete and actions.dtype != torch.int64:
            actions = actions.argmax(-1)  # label logits: train on their argmax classes
        out_dim = env["n_actions"] if discrete else env["action_dim"]
        depth = a.depth or len((meta.get("policy") or {}).get("hidden", [64, 64]))
        low = None if discrete else np.asarray(env["action_low"])
        high = None if discrete else np.asarray(env["action_high"])
        threshold = a.threshold if a.threshold is not None else THRESHOLDS.get(env_id, float("-inf"))
        cells, t0 = [], time.perf_counter()
        for width, act, init, lr in itertools.product(widths, acts, inits, lrs):
            per_seed = []
            for seed in range(a.seeds):
                torch.manual_seed(seed)
                net = make_policy(states.shape[-1], out_dim, width, depth, act, init)
                log_std = None if discrete else torch.zeros(out_dim, requires_grad=True)
                snaps = train(net, log_std, states, actions, lr, steps)
                pols = []
                for sd in snaps:
                    q = make_policy(states.shape[-1], out_dim, width, depth, act, init)
                    q.load_state_dict(sd)
                    pols.append(q)
                per_seed.append(evaluate(env_id, pols, mean, std, a.episodes, a.env_seed, discrete, low, high).mean(-1))
            rets = np.stack(per_seed, 1)  # [len(steps), seeds]
            for k, st in enumerate(steps):
                cells.append({"width": width, "activation": act, "init": init, "lr": lr, "steps": st,
                              "return_mean": float(rets[k].mean()), "return_min_seed": float(rets[k].min())})
        ok = [c for c in cells if c["return_mean"] >= threshold]
        worst = min(cells, key=lambda c: c["return_mean"])
        marg = {ax: {str(v): float(np.mean([c["return_mean"] for c in cells if c[ax] == v]))
                     for v in sorted({c[ax] for c in cells}, key=str)}
                for ax in ("width", "activation", "init", "lr", "steps")}
        record["datasets"][path] = {"env": env_id, "threshold": threshold, "cells": cells, "cells_ok": len(ok),
                                    "cells_total": len(cells), "worst": worst, "marginals": marg,
                                    "wall_s": time.perf_counter() - t0}
        print(f"{Path(path).name} ({env_id}): {len(ok)}/{len(cells)} cells >= {threshold:g}; worst "
              f"{worst['return_mean']:.1f} (width {worst['width']} {worst['activation']} {worst['init']} lr "
              f"{worst['lr']:g} {worst['steps']} steps); mean over cells "
              f"{np.mean([c['return_mean'] for c in cells]):.1f}; {time.perf_counter() - t0:.0f} s")
        for ax, m in marg.items():
            print(f"  {ax:<10} " + "  ".join(f"{k}: {v:.1f}" for k, v in m.items()))
    if a.out:
        tmp = Path(a.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(a.out)


if __name__ == "__main__":
    main()
