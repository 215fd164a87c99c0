"""PPO built only from torchrl's parts, driving the native batched envs through ``TorchRLEnv``.

The pieces are torchrl's own: the synchronous collector (``torchrl.collectors.Collector``, called
``SyncDataCollector`` before torchrl 0.14), ``GAE``, ``ClipPPOLoss``, a ``TensorDictReplayBuffer``
(``LazyTensorStorage`` + ``SamplerWithoutReplacement``) for the minibatch epochs, a ``ProbabilisticActor`` with a
categorical distribution and a ``ValueOperator``. The env is ``TorchRLEnv`` over ``make_native(env_id)`` (one
batched torch env, batch_size ``[num_envs]``; MiniGrid ids see the flat symbolic observation), with torchrl's
``RewardSum`` for the progress lines. The hyperparameters are the ones of the library's PPO
(``torch_distill.algorithms.rl.ppo``, CleanRL's): separate 64-64 tanh actor and critic with orthogonal init,
GAE(0.99, 0.95) computed once per iteration, 4 epochs x 4 minibatches, clip 0.2, clipped MSE value loss, advantages
normalised per minibatch, gradient-norm clip 0.5, learning rate annealed linearly to 0.

Examples::

    python scripts/torchrl_ppo.py --env CartPole-v1 --frames 100000 --num-envs 4 --lr 1e-3 --compare
    python scripts/torchrl_ppo.py --env MiniGrid-DoorKey-5x5-v0 --frames 500000 --num-envs 32 --lr 5e-4 --compare \
        --out docs/bench/torchrl_ppo.json

The final policy is evaluated greedily (argmax of the logits) on ``--eval-episodes`` fresh episodes (one per env,
initial states from seed ``10000 + seed``, unrelated to training). Success: MiniGrid, reward > 0 (the goal was
reached); other envs, the episode ran to the time limit without terminating (CartPole: the pole stayed up for 500
steps). ``--compare`` also trains the library's own PPO (``ppo_train``, one member) with the same settings and
frames and evaluates it on the same episodes. ``--out FILE`` adds the rows to FILE (JSON, keyed by env, frames and
seed).
Collection runs in this process: a multi-process collector does not pay on one core (the env is already one
batched torch call per step).
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["Args", "build_modules", "evaluate_greedy", "main", "run"]


@dataclass
class Args:
    """PPO from torchrl's parts on a native torch env."""

    env: str = "CartPole-v1"
    """native env id (classic control or MiniGrid, discrete actions)."""
    frames: int = 100_000
    """env steps (frames) to train for, over all envs (rounded down to whole iterations)."""
    num_envs: int = 4
    """rows of the batched env (torchrl batch_size [num_envs])."""
    num_steps: int = 128
    """rollout length per env per iteration (frames per batch = num_envs * num_steps)."""
    epochs: int = 4
    """passes over each batch."""
    num_minibatches: int = 4
    """minibatches per epoch."""
    lr: float = 1e-3
    """Adam learning rate (annealed linearly to 0)."""
    gamma: float = 0.99
    """discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_eps: float = 0.2
    """surrogate clipping range."""
    ent_coef: float = 0.01
    """entropy bonus coefficient."""
    vf_coef: float = 0.5
    """value loss coefficient."""
    max_grad_norm: float = 0.5
    """global gradient-norm clip."""
    hidden: tuple[int, ...] = (64, 64)
    """hidden widths of the actor and of the critic."""
    eval_episodes: int = 100
    """greedy evaluation episodes of the final policy."""
    seed: int = 0
    """seed of the parameters, the env and the action sampling."""
    threads: int = 1
    """torch threads."""
    compare: bool = False
    """also train and evaluate the library's own PPO (ppo_train, one member) with the same settings."""
    log_every: int = 1
    """print a progress line every this many iterations (0: never)."""
    out: str | None = None
    """add the results to this JSON file (rows keyed by env, frames and seed)."""


def _mlp(sizes: list[int], out_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        last = i == len(sizes) - 2
        nn.init.orthogonal_(lin.weight, out_gain if last else math.sqrt(2.0))
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if not last:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def build_modules(obs_dim: int, n_actions: int, hidden: tuple[int, ...], action_spec: Any) -> tuple[Any, Any]:
    """torchrl actor (``observation -> logits -> action, action_log_prob``) and critic (``observation ->
    state_value``): separate MLPs, orthogonal init (gain sqrt 2; 0.01 actor output, 1 critic output)."""
    from tensordict.nn import TensorDictModule
    from torchrl.modules import ProbabilisticActor, ValueOperator

    logits = TensorDictModule(_mlp([obs_dim, *hidden, n_actions], 0.01), in_keys=["observation"], out_keys=["logits"])
    actor = ProbabilisticActor(logits, in_keys=["logits"], out_keys=["action"], spec=action_spec,
                               distribution_class=torch.distributions.Categorical, return_log_prob=True)
    critic = ValueOperator(_mlp([obs_dim, *hidden, 1], 1.0), in_keys=["observation"])
    return actor, critic


@torch.no_grad()
def evaluate_greedy(act: Any, env_id: str, episodes: int, seed: int) -> dict[str, float]:
    """Greedy episodes of ``act(obs [B, obs_dim]) -> [B]`` on the native env (one episode per env, initial states
    from ``seed``): mean return, success rate (MiniGrid: reward > 0; else: ran to the time limit)."""
    from torch_distill.envs.vec import make_native
    from torch_distill.evaluation import evaluate_functional

    env = make_native(env_id)
    res = evaluate_functional(lambda _p, obs: act(obs[0])[None], torch.zeros(1, 1), env, episodes,
                              torch.Generator().manual_seed(seed))
    ret, length = res.returns[0], res.lengths[0]
    success = ret > 0 if env_id.startswith("MiniGrid") else length >= env.spec.max_episode_steps
    return {"mean_return": round(float(ret.mean()), 4), "success_rate": round(float(success.float().mean()), 4)}


def _check(args: Args) -> int:
    batch = args.num_envs * args.num_steps
    if args.num_envs < 1 or args.num_steps < 1 or args.epochs < 1 or args.num_minibatches < 1:
        raise ValueError(f"num_envs, num_steps, epochs and num_minibatches must be >= 1, got {args.num_envs}, "
                         f"{args.num_steps}, {args.epochs}, {args.num_minibatches}")
    if batch % args.num_minibatches:
        raise ValueError(f"num_envs * num_steps = {batch} is not divisible by num_minibatches {args.num_minibatches}")
    if args.frames < batch:
        raise ValueError(f"frames {args.frames} is less than one batch (num_envs * num_steps = {batch})")
    return batch


def train_torchrl(args: Args) -> tuple[Any, dict[str, Any]]:
    """Train with torchrl's collector / GAE / ClipPPOLoss / replay buffer; returns ``(actor, record)``."""
    from torchrl.collectors import Collector
    from torchrl.data import LazyTensorStorage, SamplerWithoutReplacement, TensorDictReplayBuffer
    from torchrl.envs import RewardSum, TransformedEnv
    from torchrl.objectives import ClipPPOLoss
    from torchrl.objectives.value import GAE

    from torch_distill.envs.torchrl_adapter import TorchRLEnv
    from torch_distill.envs.vec import make_native

    batch = _check(args)
    iterations = args.frames // batch
    fenv = make_native(args.env)
    if not fenv.spec.discrete:
        raise ValueError(f"env {args.env!r} has continuous actions; this script's actor is categorical")
    torch.manual_seed(args.seed)  # the module inits and the collector's action sampling
    env = TransformedEnv(TorchRLEnv(fenv, args.num_envs, seed=args.seed), RewardSum())
    actor, critic = build_modules(fenv.spec.obs_dim, fenv.spec.n_actions, tuple(args.hidden), env.action_spec)
    collector = Collector(env, actor, frames_per_batch=batch, total_frames=iterations * batch,
                          auto_register_policy_transforms=False)
    gae = GAE(gamma=args.gamma, lmbda=args.gae_lambda, value_network=critic, average_gae=False)
    loss_fn = ClipPPOLoss(actor, critic, clip_epsilon=args.clip_eps, entropy_coeff=args.ent_coef,
                          critic_coeff=0.5 * args.vf_coef, loss_critic_type="l2", clip_value=args.clip_eps,
                          normalize_advantage=True)  # torchrl's l2 is the MSE without the 1/2
    buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(batch), sampler=SamplerWithoutReplacement(),
                                    batch_size=batch // args.num_minibatches)
    optim = torch.optim.Adam(loss_fn.parameters(), lr=args.lr, eps=1e-5)
    params = list(loss_fn.parameters())
    frames, history = 0, []
    t0 = time.perf_counter()
    for it, data in enumerate(collector):  # data [num_envs, num_steps]
        frac = 1.0 - it / iterations
        for g in optim.param_groups:
            g["lr"] = args.lr * frac
        with torch.no_grad():
            gae(data)
        buffer.empty()
        buffer.extend(data.reshape(-1))
        for _ in range(args.epochs):
            for _ in range(args.num_minibatches):
                mb = buffer.sample()
                losses = loss_fn(mb)
                loss = losses["loss_objective"] + losses["loss_critic"] + losses["loss_entropy"]
                last = losses.detach()
                optim.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
                optim.step()
        collector.update_policy_weights_()
        frames += data.numel()
        done = data["next", "done"]
        ep = data["next", "episode_reward"][done]
        ep_ret = float(ep.mean()) if ep.numel() else float("nan")
        history.append(ep_ret)
        if args.log_every and (it + 1) % args.log_every == 0:
            print(f"iter {it + 1}/{iterations}  frames {frames}  episodes {ep.numel()}  train return {ep_ret:.3f}  "
                  f"loss_pi {float(last['loss_objective']):.4f}  loss_v {float(last['loss_critic']):.4f}  "
                  f"{frames / (time.perf_counter() - t0):.0f} fps", flush=True)
    collector.shutdown()
    wall = time.perf_counter() - t0
    last_ret = history[-1]  # mean return of the training episodes that ended in the last batch (None: none did)
    return actor, {"frames": frames, "train_wall_s": round(wall, 1),
                   "train_return_last": None if math.isnan(last_ret) else round(last_ret, 4)}


def train_builtin(args: Args) -> tuple[Any, dict[str, Any]]:
    """The library's PPO (``ppo_train``, one member) with the same settings; returns ``(act, record)``."""
    from torch_distill.algorithms.rl.ppo import ActorCritic, PPOConfig, ppo_act, ppo_train
    from torch_distill.envs.vec import make_native
    from torch_distill.keyed import make_keys

    _check(args)
    env = make_native(args.env)
    cfg = PPOConfig(total_timesteps=args.frames, num_envs=args.num_envs, num_steps=args.num_steps,
                    update_epochs=args.epochs, num_minibatches=args.num_minibatches, lr=args.lr, gamma=args.gamma,
                    gae_lambda=args.gae_lambda, clip_eps=args.clip_eps, ent_coef=args.ent_coef, vf_coef=args.vf_coef,
                    max_grad_norm=args.max_grad_norm, hidden=tuple(args.hidden), activation="tanh")
    t0 = time.perf_counter()
    params, metrics = ppo_train(cfg, env, None, torch.Generator().manual_seed(args.seed), 1,
                                keys=make_keys(args.seed, 1))
    wall = time.perf_counter() - t0
    net = ActorCritic(env.spec, cfg.hidden, cfg.activation)
    act = functools.partial(ppo_act, net)
    return (lambda obs: act(params, obs[None])[0]), {"frames": int(metrics["env_steps"][-1]),
                                                     "train_wall_s": round(wall, 1)}


def run(args: Args) -> list[dict[str, Any]]:
    """Train (torchrl PPO, and the library's PPO with ``compare``) and evaluate; one result row per method."""
    torch.set_num_threads(args.threads)
    eval_seed = 10_000 + args.seed
    actor, rec = train_torchrl(args)
    logits = actor.module[0].module  # the logits MLP of the ProbabilisticActor

    def greedy(obs: torch.Tensor) -> torch.Tensor:
        return logits(obs).argmax(-1)

    rows = [{"method": "torchrl PPO", "env": args.env, "seed": args.seed, **rec,
             **evaluate_greedy(greedy, args.env, args.eval_episodes, eval_seed)}]
    if args.compare:
        act, rec = train_builtin(args)
        rows.append({"method": "torch_distill PPO", "env": args.env, "seed": args.seed, **rec,
                     **evaluate_greedy(act, args.env, args.eval_episodes, eval_seed)})
    for r in rows:
        r.update(eval_episodes=args.eval_episodes, threads=torch.get_num_threads())
    return rows


def _summary(runs: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (env, frames, method): the seeds, their greedy mean returns / success rates and the means over seeds."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for run_ in runs.values():
        for r in run_["results"]:
            groups.setdefault((r["env"], run_["config"]["frames"], r["method"]), []).append(r)
    out = []
    for (env, frames, method), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["seed"])
        out.append({"env": env, "frames": frames, "method": method, "seeds": [r["seed"] for r in rs],
                    "mean_return": [r["mean_return"] for r in rs], "success_rate": [r["success_rate"] for r in rs],
                    "mean_return_over_seeds": round(sum(r["mean_return"] for r in rs) / len(rs), 4),
                    "success_rate_over_seeds": round(sum(r["success_rate"] for r in rs) / len(rs), 4),
                    "train_wall_s": [r["train_wall_s"] for r in rs]})
    return out


def _write(path: str, rows: list[dict[str, Any]], args: Args) -> None:
    from torch_distill.files import atomic_write

    p = Path(path)
    doc = json.loads(p.read_text()) if p.is_file() else {}
    doc.setdefault("description", "PPO from torchrl's parts (scripts/torchrl_ppo.py) vs the library's PPO, "
                                  "same settings and frames, greedy evaluation on the same fresh episodes")
    runs = doc.setdefault("runs", {})
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(args).items() if k not in ("out",)}
    runs[f"{args.env}/frames{args.frames}/seed{args.seed}"] = {"config": config, "results": rows}
    doc["summary"] = _summary(runs)
    atomic_write(p, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=2) + "\n"))


def main(args: Args | None = None) -> list[dict[str, Any]]:
    """Run, print the table and write ``--out``; ``args`` defaults to the command line."""
    if args is None:
        import tyro

        args = tyro.cli(Args, description=__doc__)
    rows = run(args)
    print(f"{'method':<18} {'env':<24} {'seed':>4} {'frames':>8} {'wall s':>7} {'return':>8} {'success':>7}")
    for r in rows:
        print(f"{r['method']:<18} {r['env']:<24} {r['seed']:>4} {r['frames']:>8} {r['train_wall_s']:>7} "
              f"{r['mean_return']:>8.3f} {r['success_rate']:>7.3f}")
    if args.out:
        _write(args.out, rows, args)
    return rows


if __name__ == "__main__":
    main()
