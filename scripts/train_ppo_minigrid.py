"""Train a population of PPO agents on the batched torch MiniGrid and report greedy success rates.

A vectorised PPO trains on the native MiniGrid: DoorKey-5x5 success >= 0.9, Empty-8x8 >= 0.95.

Example::

    python scripts/train_ppo_minigrid.py --env MiniGrid-Empty-8x8-v0 --total-steps 200000 --members 4 \
        --num-envs 32 --seed 0 --out empty.json

Observations are :class:`~torch_distill.envs.wrappers.FlatSymbolicObs` (flat float ``[B, 155]``: 7x7x3 cell codes,
one-hot direction, mission codes). The cell codes are small integers (0..10); ``--obs-scale`` divides the whole
observation by a constant inside this script (default 1: no scaling).

Success rate = fraction of greedy evaluation episodes with reward > 0 (MiniGrid pays ``1 - 0.9 t / T`` on success).
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import torch

from torch_distill.evaluation import evaluate_functional
from torch_distill.algorithms.rl.ppo import ActorCritic, PPOConfig, ppo_act, ppo_train
from torch_distill.envs.vec import make_native
from torch_distill.keyed import make_keys


class ScaledObs:
    """Divide the observations of a ``FunctionalEnv`` by a constant (the spec is unchanged)."""

    def __init__(self, env, scale: float) -> None:
        self.env = env
        self.spec = env.spec
        self.scale = float(scale)

    def default_params(self, device="cpu"):
        return self.env.default_params(device)

    def reset(self, batch_size, generator, params=None):
        state, obs = self.env.reset(batch_size, generator, params)
        return state, obs / self.scale

    def step(self, state, action, generator, params=None):
        state, obs, reward, term, trunc = self.env.step(state, action, generator, params)
        return state, obs / self.scale, reward, term, trunc

    def transition(self, state, action, generator, params=None):
        state, obs, reward, term, trunc = self.env.transition(state, action, generator, params)
        return state, obs / self.scale, reward, term, trunc

    def reset_done(self, done, state, obs, generator, params=None):
        state, obs = self.env.reset_done(done, state, obs * self.scale, generator, params)
        return state, obs / self.scale


def make_env(env_id: str, obs_scale: float):
    env = make_native(env_id)
    return env if obs_scale == 1.0 else ScaledObs(env, obs_scale)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="MiniGrid-Empty-8x8-v0")
    p.add_argument("--total-steps", type=int, default=200_000, help="env steps per member")
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--num-envs", type=int, default=32, help="envs per member")
    p.add_argument("--num-steps", type=int, default=128, help="rollout length per env per iteration")
    p.add_argument("--update-epochs", type=int, default=4)
    p.add_argument("--num-minibatches", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--activation", default="tanh")
    p.add_argument("--obs-scale", type=float, default=1.0, help="divide observations by this (1: no scaling)")
    p.add_argument("--eval-episodes", type=int, default=128, help="greedy evaluation episodes per member")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    env = make_env(args.env, args.obs_scale)
    cfg = PPOConfig(
        total_timesteps=args.total_steps, num_envs=args.num_envs, num_steps=args.num_steps,
        update_epochs=args.update_epochs, num_minibatches=args.num_minibatches, lr=args.lr, gamma=args.gamma,
        gae_lambda=args.gae_lambda, ent_coef=args.ent_coef, hidden=tuple(args.hidden), activation=args.activation,
    )
    keys = make_keys(args.seed, args.members)
    t0 = time.perf_counter()
    params, metrics = ppo_train(cfg, env, None, torch.Generator().manual_seed(args.seed), args.members, keys=keys)
    train_time = time.perf_counter() - t0
    net = ActorCritic(env.spec, cfg.hidden, cfg.activation)
    t1 = time.perf_counter()
    ret = evaluate_functional(functools.partial(ppo_act, net), params, env, args.eval_episodes,
                              torch.Generator().manual_seed(10_000 + args.seed)).returns
    eval_time = time.perf_counter() - t1
    success = (ret > 0).float().mean(1)
    # training-episode return over the last 10% of iterations (stochastic policy), for reference
    er = metrics["episode_return"]
    tail = er[-max(1, er.shape[0] // 10):]
    train_ret = torch.nanmean(tail, dim=0)
    return {
        "env": args.env,
        "members": args.members,
        "env_steps_per_member": int(metrics["env_steps"][-1]),
        "env_steps_total": int(metrics["env_steps"][-1]) * args.members,
        "train_wall_s": round(train_time, 1),
        "eval_wall_s": round(eval_time, 1),
        "threads": torch.get_num_threads(),
        "eval_episodes_per_member": args.eval_episodes,
        "greedy_success_rate": [round(float(s), 4) for s in success],
        "greedy_mean_return": [round(float(r), 4) for r in ret.mean(1)],
        "train_return_last10pct": [round(float(r), 4) for r in train_ret],
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    res = run(args)
    print(f"{'env':<26} {'member':>6} {'steps/member':>12} {'wall s':>7} {'success':>8} {'return':>7} {'train ret':>9} {'threads':>7}")
    for m in range(res["members"]):
        print(f"{res['env']:<26} {m:>6} {res['env_steps_per_member']:>12} {res['train_wall_s']:>7} "
              f"{res['greedy_success_rate'][m]:>8.3f} {res['greedy_mean_return'][m]:>7.3f} "
              f"{res['train_return_last10pct'][m]:>9.3f} {res['threads']:>7}")
    print(f"train wall {res['train_wall_s']} s for {res['members']} x {res['env_steps_per_member']} env steps "
          f"({res['env_steps_total'] / res['train_wall_s']:.0f} steps/s); eval {res['eval_episodes_per_member']} "
          f"episodes/member in {res['eval_wall_s']} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()
