"""Steps to solve: how many training env steps agents need before they solve the *real* env.

The neural-MDP claim of Ferreira et al. (ICLR 2022) is "agents trained on the synthetic env solve the real env in
fewer steps than agents trained on the real env". :func:`dqn_steps_to_solve` measures it for DQN/DDQN: it trains
``members`` agents at once (one vectorised population, per-member keys) on a training env -- the real env itself or
a synthetic env -- and every ``check_every`` training steps evaluates all of them greedily on the real env
(``eval_episodes`` episodes each, the same start states for every agent). An agent's *steps to solve* is the first
check at which its mean real-env return reaches ``threshold`` (CartPole-v0: 195, the gym "solved" bar); agents
that never reach it within ``total_timesteps`` count as unsolved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor

from torch_distill.evaluation import evaluate_functional
from torch_distill.algorithms.rl.dqn import AGENT as DQN
from torch_distill.algorithms.rl.dqn import DQNConfig
from torch_distill.envs.core import FunctionalEnv
from torch_distill.keyed import make_keys

__all__ = ["SolveResult", "dqn_steps_to_solve"]


@dataclass
class SolveResult:
    """Per-agent steps to solve (``None``: not solved) and the learning curves on the real env."""

    threshold: float
    steps_to_solve: list[int | None]
    solved_fraction: float
    mean_steps_solved: float | None  # mean over the agents that solved
    median_steps: float | None  # median over all agents, unsolved counted as +inf (None if half never solved)
    check_steps: list[int]
    curves: list[list[float]]  # [check][agent] mean real-env return
    final_returns: list[float]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def dqn_steps_to_solve(
    config: DQNConfig,
    train_env: FunctionalEnv,
    real_env: FunctionalEnv,
    members: int = 8,
    seed: int = 0,
    threshold: float = 195.0,
    check_every: int = 500,
    eval_episodes: int = 20,
    train_env_params: Any = None,
    device: torch.device | str = "cpu",
) -> SolveResult:
    """Train ``members`` DQN agents with ``config`` on ``train_env``; evaluate them on ``real_env`` every
    ``check_every`` training steps (module docstring). ``config.metrics_interval`` is overridden by ``check_every``."""
    if check_every < config.num_envs or members < 1 or eval_episodes < 1:
        raise ValueError(f"check_every={check_every}, members={members}, eval_episodes={eval_episodes}: expected "
                         f"check_every >= num_envs={config.num_envs} and positive members/episodes")
    if train_env.spec.n_actions != real_env.spec.n_actions or train_env.spec.obs_shape != real_env.spec.obs_shape:
        raise ValueError(f"train env {train_env.spec.env_id} and real env {real_env.spec.env_id} have different "
                         f"observation/action spaces")
    device = torch.device(device)
    config = replace(config, metrics_interval=check_every)
    nets = DQN.networks(real_env.spec, config, device)
    eval_seed = seed + 7919
    checks: list[int] = []
    curves: list[Tensor] = []

    def on_check(step: int, params: Tensor) -> None:
        gen = torch.Generator(device=device).manual_seed(eval_seed)
        ret = evaluate_functional(lambda p, o: DQN.act(nets, p, o), params, real_env, eval_episodes, gen).returns
        checks.append(step)
        curves.append(ret.mean(-1).cpu())

    gen = torch.Generator(device=device).manual_seed(seed)
    DQN.train(config, train_env, train_env_params, gen, members, make_keys(seed, members, device), callback=on_check)
    curve = torch.stack(curves)  # [C, M]
    solved = curve >= threshold
    steps: list[int | None] = []
    for m in range(members):
        idx = torch.nonzero(solved[:, m]).flatten()
        steps.append(checks[int(idx[0])] if idx.numel() else None)
    done = [s for s in steps if s is not None]
    ordered = sorted(float(s) if s is not None else float("inf") for s in steps)
    n = len(ordered)
    med = 0.5 * (ordered[(n - 1) // 2] + ordered[n // 2])
    return SolveResult(float(threshold), steps, len(done) / members, (sum(done) / len(done)) if done else None,
                       med if med != float("inf") else None, checks, curve.tolist(), curve[-1].tolist())
