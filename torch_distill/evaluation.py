"""Batched real-environment evaluation of populations of policies, and the fixed observation normaliser.

One call evaluates ``N`` policies (population members x initialisations) on ``E`` episodes each, in one vector env
of ``N * E`` envs laid out ``[N, E]``. Common random numbers: every policy sees the same ``E`` initial states
(``VecEnv.reset(seed, group_size=E)``) and the same action-sampling noise (Gumbel / Gaussian noise drawn ``[E, ...]``
per step and broadcast over ``N``), as in the HaDES reference. Each env runs exactly one episode: rewards after an
env's first ``terminated``/``truncated`` are masked out, and the loop stops when every env is done (checked on the
host every ``check_every`` steps -- the only host sync of an evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from torch_distill.envs.core import EnvSpec, VecEnv
from torch_distill.policies import PolicyNet

__all__ = ["ObsNormalizer", "EvalResult", "evaluate_policies", "estimate_obs_normalizer", "sample_noise"]


@dataclass
class ObsNormalizer:
    """A fixed affine map ``(obs - mean) / sqrt(var + eps)`` estimated once and stored with a dataset.

    ``mean``/``var`` are ``[obs_dim]`` tensors; ``None`` for both means identity.
    """

    mean: Tensor | None = None
    var: Tensor | None = None
    eps: float = 1e-8

    def __call__(self, obs: Tensor) -> Tensor:
        obs = obs.reshape(*obs.shape[: obs.dim() - 1], -1) if obs.dim() > 0 else obs
        obs = obs.float()
        if self.mean is None:
            return obs
        return (obs - self.mean) / torch.sqrt(self.var + self.eps)

    def to(self, device: torch.device | str) -> "ObsNormalizer":
        if self.mean is None:
            return self
        return ObsNormalizer(self.mean.to(device), self.var.to(device), self.eps)

    def to_json(self) -> dict | None:
        if self.mean is None:
            return None
        return {
            "type": "affine",
            "obs_mean": [float(x) for x in self.mean.cpu()],
            "obs_var": [float(x) for x in self.var.cpu()],
            "eps": self.eps,
        }

    @classmethod
    def from_json(cls, d: dict | None, device: torch.device | str = "cpu") -> "ObsNormalizer":
        if d is None:
            return cls()
        return cls(
            torch.tensor(d["obs_mean"], dtype=torch.float32, device=device),
            torch.tensor(d["obs_var"], dtype=torch.float32, device=device),
            float(d.get("eps", 1e-8)),
        )


class EvalResult(NamedTuple):
    """Returns and lengths ``[N, E]`` of one episode per env, and the env steps executed (a 0-dim tensor)."""

    returns: Tensor
    lengths: Tensor
    env_steps: Tensor  # steps executed by the vector env (N * E * loop iterations)


def sample_noise(spec: EnvSpec, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """Action-sampling noise ``[n, act_dim]``: Gumbel for categorical policies, standard normal for Gaussian."""
    if spec.discrete:
        u = torch.rand((n, spec.n_actions), generator=generator, device=device)
        return -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
    return torch.randn((n, spec.action_dim), generator=generator, device=device)


@torch.no_grad()
def evaluate_policies(
    net: PolicyNet,
    params: Tensor,
    venv: VecEnv,
    episodes: int,
    seed: int,
    normalizer: ObsNormalizer | None = None,
    deterministic: bool = False,
    max_steps: int | None = None,
    check_every: int = 16,
) -> EvalResult:
    """Run one episode per env for ``params [N, num_params]`` on ``venv`` (``venv.num_envs == N * episodes``).

    Args:
        net: the policy architecture.
        params: flat parameters of the ``N`` policies.
        venv: vector env with ``N * episodes`` envs.
        episodes: episodes (envs) per policy, ``E``.
        seed: seeds the initial states (shared by all ``N`` policies) and the action noise.
        normalizer: fixed observation normaliser applied before the policy.
        deterministic: act greedily (argmax / Gaussian mean) instead of sampling, as the reference does.
        max_steps: step budget; defaults to the env's ``max_episode_steps``.
        check_every: host-sync interval for the early exit when every env is done.

    Returns:
        :class:`EvalResult` with ``returns``/``lengths`` ``[N, E]`` float32 / int64.
    """
    n = params.shape[0]
    if venv.num_envs != n * episodes:
        raise ValueError(f"venv has {venv.num_envs} envs, expected N * episodes = {n} * {episodes}")
    spec = venv.spec
    device = params.device
    normalizer = normalizer or ObsNormalizer()
    max_steps = max_steps or spec.max_episode_steps
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) + 7919)
    obs = venv.reset(seed, group_size=episodes)
    returns = torch.zeros(n * episodes, device=device)
    lengths = torch.zeros(n * episodes, dtype=torch.int64, device=device)
    done = torch.zeros(n * episodes, dtype=torch.bool, device=device)
    steps = 0
    for t in range(max_steps):
        x = normalizer(obs.to(device)).reshape(n, episodes, -1)
        noise = None if deterministic else sample_noise(spec, episodes, gen, device)
        action = net.act(params, x, noise).reshape(n * episodes, *(() if spec.discrete else (spec.action_dim,)))
        out = venv.step(action)
        alive = ~done
        returns = returns + out.reward.to(device) * alive
        lengths = lengths + alive.long()
        done = done | out.terminated.to(device) | out.truncated.to(device)
        obs = out.obs
        steps += 1
        if (t + 1) % check_every == 0 and bool(done.all()):
            break
    return EvalResult(
        returns.reshape(n, episodes),
        lengths.reshape(n, episodes),
        torch.tensor(steps * n * episodes, device=device),
    )


@torch.no_grad()
def estimate_obs_normalizer(venv: VecEnv, steps: int, seed: int, min_var: float = 1e-2) -> ObsNormalizer:
    """Estimate a fixed normaliser from uniformly random actions (``steps`` steps of ``venv``).

    ``var`` is floored at ``min_var`` so that near-constant features are not blown up.
    """
    spec = venv.spec
    device = venv.device
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) + 104729)
    obs = venv.reset(seed, group_size=venv.num_envs)
    total = torch.zeros(spec.obs_dim, dtype=torch.float64, device=device)
    total_sq = torch.zeros_like(total)
    count = 0
    # Uniform random actions; unbounded action dimensions are sampled in [-1, 1].
    low = torch.tensor(spec.action_low, device=device).nan_to_num(-1.0, -1.0, -1.0) if not spec.discrete else None
    high = torch.tensor(spec.action_high, device=device).nan_to_num(1.0, 1.0, 1.0) if not spec.discrete else None
    for _ in range(steps):
        flat = obs.reshape(venv.num_envs, -1).double()
        total += flat.sum(0)
        total_sq += (flat * flat).sum(0)
        count += flat.shape[0]
        if spec.discrete:
            action = torch.randint(spec.n_actions, (venv.num_envs,), generator=gen, device=device)
        else:
            u = torch.rand((venv.num_envs, spec.action_dim), generator=gen, device=device)
            action = low + (high - low) * u
        obs = venv.step(action).obs
    mean = total / count
    var = (total_sq / count - mean * mean).clamp_min(min_var)
    return ObsNormalizer(mean.float(), var.float())
