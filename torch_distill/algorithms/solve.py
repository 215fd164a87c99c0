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

import functools
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from torch_distill.algorithms.dqn import DQNConfig, dqn_act, dqn_train, make_qnetwork
from torch_distill.algorithms.rl_common import evaluate_greedy, make_keys
from torch_distill.envs.core import FunctionalEnv

__all__ = ["SolveResult", "dqn_steps_to_solve", "ferreira_ddqn_config"]


def ferreira_ddqn_config(total_timesteps: int = 30_000, **overrides: Any) -> DQNConfig:
    """DDQN with the CartPole hyperparameters of Ferreira et al. 2022 (their tuned ``DDQN`` config): batch 199,
    gamma 0.988, lr 3.04e-4, soft target updates with tau 0.00848 after every gradient step, hidden 57 tanh,
    replay 1e5, MSE loss. Their epsilon decays 0.809 -> 0.037 by a factor 0.961 per episode (~77 episodes); here
    it decays linearly over the first 3000 steps, about the steps of those episodes on CartPole."""
    kw: dict[str, Any] = dict(
        total_timesteps=total_timesteps, num_envs=1, buffer_size=100_000, batch_size=199, learning_starts=200,
        train_frequency=1, gradient_steps=1, target_update_interval=1, tau=0.00848, lr=3.04e-4, gamma=0.988,
        eps_start=0.809, eps_end=0.037, exploration_fraction=min(1.0, 3000 / total_timesteps), double=True,
        dueling=False, loss="mse", hidden=(57,), activation="tanh", max_grad_norm=10.0,
    )
    kw.update(overrides)
    return DQNConfig(**kw)


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
    config = DQNConfig(**{**{f: getattr(config, f) for f in config.__dataclass_fields__}, "metrics_interval": check_every})
    act = functools.partial(dqn_act, make_qnetwork(real_env.spec, config, device))
    eval_seed = seed + 7919
    checks: list[int] = []
    curves: list[Tensor] = []

    def on_check(step: int, params: Tensor) -> None:
        gen = torch.Generator(device=device).manual_seed(eval_seed)
        ret = evaluate_greedy(act, params, real_env, eval_episodes, gen)
        checks.append(step)
        curves.append(ret.mean(-1).cpu())

    gen = torch.Generator(device=device).manual_seed(seed)
    dqn_train(config, train_env, train_env_params, gen, members, keys=make_keys(seed, members, device), callback=on_check)
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
