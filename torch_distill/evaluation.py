"""The one rollout loop of torch_distill: batched evaluation of populations of policies, state collection, and the
fixed observation normaliser.

:func:`rollout` steps any :class:`~torch_distill.envs.core.VecEnv` under a policy (``obs [N, ...] -> action``) and
accumulates each env's first episode (return, length; everything after an env's first end is masked), optionally
recording every observation; it stops early once every env is done (host check every ``check_every`` steps -- the
only host sync). On host backends that step subsets (envpool, gymnasium) it steps only the envs whose first episode
is running, so no simulator step is wasted; native envs keep the masked device-side step. Everything that runs a policy in an env is built on it: :func:`evaluate_policies` (flat-parameter
policies on a vector env: HaDES and direct-ES fitness), :func:`evaluate_functional` (trained agents on a native
:class:`~torch_distill.envs.core.FunctionalEnv` with a caller's generator and optionally a population of env params:
synthetic-env fitness), :func:`collect_observations` (states a policy visits) and :func:`estimate_obs_normalizer`.

:func:`evaluate_policies` evaluates ``N`` policies (population members x initialisations) on ``E`` episodes each, in one vector env
of ``N * E`` envs laid out ``[N, E]``. Common random numbers: every policy sees the same ``E`` initial states
(``VecEnv.reset(seed, group_size=E)``) and the same action-sampling noise (Gumbel / Gaussian noise drawn ``[E, ...]``
per step and broadcast over ``N``), as in the HaDES reference. Each env runs exactly one episode: ended envs are no longer stepped
(envpool, gymnasium) or their rewards after the first ``terminated``/``truncated`` are masked out (native envs), and
the loop stops when every env is done (native: checked on the host every ``check_every`` steps -- the only host
sync of an evaluation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from torch_distill.envs.core import EnvSpec, FunctionalEnv, VecEnv
from torch_distill.envs.vec import NativeVecEnv, make_vec_env, resolve_backend
from torch_distill.keyed import gumbel_from_uniform, is_broadcast
from torch_distill.policies import PolicyNet

__all__ = [
    "ObsNormalizer",
    "EvalResult",
    "RealEnvEvaluator",
    "RolloutResult",
    "rollout",
    "evaluate_policies",
    "evaluate_functional",
    "collect_observations",
    "estimate_obs_normalizer",
    "sample_noise",
    "uniform_actions",
]


@dataclass
class ObsNormalizer:
    """A fixed affine map ``(obs - mean) / sqrt(var + eps)`` estimated once and stored with a dataset.

    ``mean``/``var`` are ``[obs_dim]`` tensors; ``None`` for both means identity.
    """

    mean: Tensor | None = None
    var: Tensor | None = None
    eps: float = 1e-8

    def __call__(self, obs: Tensor) -> Tensor:
        """``obs [*B, *obs_shape]`` -> ``[*B, obs_dim]`` float32 (observations are flattened to the normaliser's
        ``obs_dim``; the identity normaliser only casts)."""
        obs = obs.float()
        if self.mean is None:
            return obs
        d = self.mean.shape[-1]
        if obs.shape[-1] != d:  # flatten the trailing observation dims [*obs_shape] into [obs_dim]
            k, n = obs.dim(), 1
            while k > 0 and n < d:
                k -= 1
                n *= obs.shape[k]
            if n != d:
                raise ValueError(f"observations of shape {tuple(obs.shape)} do not end in {d} features")
            obs = obs.reshape(*obs.shape[:k], d)
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
    env_steps: Tensor  # env steps executed (live-only: the episode steps; masked: N * E * loop iterations)


class RolloutResult(NamedTuple):
    """What :func:`rollout` returns; per-env tensors are ``[num_envs]``, on the policy's device."""

    returns: Tensor  # float32: return of each env's first episode (or of its steps so far)
    lengths: Tensor  # int64: steps of each env's first episode
    done: Tensor  # bool: the first episode ended
    env_steps: Tensor  # 0-dim int64: env steps executed (masked path: num_envs * loop iterations)
    observations: Tensor | None  # [T, num_envs, *obs_shape]: the observation each decision was taken on (record_obs)
    last_obs: Tensor  # [num_envs, *obs_shape]: the observation after the last step


def sample_noise(spec: EnvSpec, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """Action-sampling noise ``[n, act_dim]``: Gumbel for categorical policies, standard normal for Gaussian."""
    if spec.discrete:
        u = torch.rand((n, spec.n_actions), generator=generator, device=device)
        return gumbel_from_uniform(u.clamp(1e-20, 1.0 - 1e-7))
    return torch.randn((n, spec.action_dim), generator=generator, device=device)


def uniform_actions(spec: EnvSpec, n: int, generator: torch.Generator, device: torch.device | str) -> Tensor:
    """``n`` uniformly random actions: ``[n]`` int64 over ``n_actions``, or ``[n, action_dim]`` uniform in the
    action box (unbounded dimensions in ``[-1, 1]``)."""
    if spec.discrete:
        return torch.randint(spec.n_actions, (n,), generator=generator, device=device)
    low, high = spec.action_bounds(device, unbounded=1.0)
    u = torch.rand((n, spec.action_dim), generator=generator, device=device)
    return low + (high - low) * u


@torch.no_grad()
def rollout(
    venv: VecEnv,
    obs: Tensor,
    policy: Callable[[Tensor], Tensor],
    steps: int,
    *,
    stop_when_done: bool = True,
    check_every: int = 16,
    record_obs: bool = False,
    device: torch.device | str | None = None,
    live_only: bool = True,
    group_size: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> RolloutResult:
    """Step ``venv`` (already reset; ``obs`` its current observations) for up to ``steps`` steps under ``policy``.

    Two ways to step, with the same returns and lengths: where ``venv.steps_subsets`` (envpool, gymnasium) and
    ``live_only`` (with ``stop_when_done`` and without ``record_obs``), only the envs whose first episode is running
    are stepped (``venv.step_subset``; executed steps == episode steps, the loop ends with the last episode); else
    every env is stepped and what follows each env's first end is masked (native envs: no host syncs but the
    early-exit check). The policy always sees all ``num_envs`` rows (an ended env's row holds its last
    observation on the live-only path), so its batch and random draws are the same either way.

    Args:
        venv: any vector env (native, envpool, gymnasium); it auto-resets, the rollout masks what follows each env's
            first end.
        obs: ``[num_envs, *obs_shape]`` observations to act on first.
        policy: ``obs [num_envs, *obs_shape] -> action [num_envs, ...]`` (it may draw from its own generator: it is
            called once per step, before the env step).
        steps: step budget.
        stop_when_done: stop once every env's first episode ended (checked every ``check_every`` steps); else run
            ``steps`` steps (e.g. to collect states across auto-resets).
        record_obs: keep every observation a decision was taken on (``[T, num_envs, *obs_shape]``).
        device: where returns and lengths live (default: the observations' device).
        live_only: step only running envs where the backend can (see above); False forces the masked full step.
        group_size: the envs come in groups of this size that one policy member acts in (rows
            ``[g * group_size, (g + 1) * group_size)``). On CPU the policy is then called as
            ``policy(obs, members)`` with ``members`` the int64 ids of the groups with an episode still running
            (None: all of them), refreshed at every early-exit check: it needs to compute those members'
            actions only (any valid action for the others, which are masked). Same returns and lengths; on
            other devices (no host syncs) ``members`` stays None.
        progress: called with the number of steps taken since its last call (e.g. a progress bar's ``update``):
            every step on the live-only path, at every early-exit check (``check_every`` steps) otherwise.
    """
    device = torch.device(device) if device is not None else obs.device
    n = venv.num_envs
    returns = torch.zeros(n, device=device)
    lengths = torch.zeros(n, dtype=torch.int64, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    recorded: list[Tensor] = []
    executed = 0
    grouped = group_size is not None
    compact = grouped and device.type == "cpu" and stop_when_done and not record_obs
    members: Tensor | None = None

    def act(o: Tensor) -> Tensor:
        return policy(o, members) if grouped else policy(o)  # type: ignore[call-arg]

    def refresh(done: Tensor) -> Tensor | None:
        live = ~done.view(-1, int(group_size)).all(1)  # type: ignore[arg-type]
        return None if bool(live.all()) else live.nonzero().squeeze(1)
    if live_only and stop_when_done and not record_obs and getattr(venv, "steps_subsets", False):
        live = torch.arange(n)  # host ids of the envs whose first episode is running (host backends step on the host)
        for _ in range(int(steps)):
            if live.numel() == 0:
                break
            action = act(obs)
            out = venv.step_subset(action[live.to(action.device)], live)
            ids = live.to(device)
            returns = returns.index_add(0, ids, out.reward.to(device))
            lengths = lengths.index_add(0, ids, torch.ones_like(ids))
            ended = (out.terminated | out.truncated).cpu()
            done = done.index_copy(0, ids, ended.to(device))
            obs = obs.index_copy(0, live.to(obs.device), out.obs.to(obs.device, obs.dtype))
            executed += live.numel()
            live = live[~ended]
            if compact and bool(ended.any()):
                members = refresh(done)
            if progress is not None:
                progress(1)
        return RolloutResult(returns, lengths, done, torch.tensor(executed, device=device), None, obs)
    for t in range(int(steps)):
        if record_obs:
            recorded.append(obs)
        out = venv.step(act(obs))
        alive = ~done
        returns = returns + out.reward.to(device) * alive
        lengths = lengths + alive.long()
        done = done | out.terminated.to(device) | out.truncated.to(device)
        obs = out.obs
        executed += 1
        if (t + 1) % check_every == 0:
            if progress is not None:
                progress(check_every)
            if stop_when_done:
                if bool(done.all()):
                    break
                if compact:
                    members = refresh(done)
    observations = torch.stack(recorded) if record_obs and recorded else None
    return RolloutResult(returns, lengths, done, torch.tensor(executed * n, device=device), observations, obs)


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
    live_only: bool = True,
    compact: bool = True,
    progress: Callable[[int], Any] | None = None,
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
        live_only: on backends that step subsets (envpool, gymnasium), step only the envs whose episode is running
            (same returns; ``env_steps`` then equals ``lengths.sum()``); False steps every env (masked).
        compact: on CPU, run the policy only for the members with an episode still running (refreshed at every
            early-exit check; same returns, the noise is drawn for all); False always runs the whole population.
        progress: called with the steps taken (see :func:`rollout`), e.g. a progress bar's ``update``.

    Returns:
        :class:`EvalResult` with ``returns``/``lengths`` ``[N, E]`` float32 / int64.
    """
    n = params.shape[0]
    if venv.num_envs != n * episodes:
        raise ValueError(f"venv has {venv.num_envs} envs, expected N * episodes = {n} * {episodes}")
    spec = venv.spec
    device = params.device
    normalizer = normalizer or ObsNormalizer()
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) + 7919)
    action_shape = () if spec.discrete else (spec.action_dim,)

    cache: dict[str, Tensor | None] = {"members": None, "params": params}

    def policy(obs: Tensor, members: Tensor | None = None) -> Tensor:
        x = normalizer(obs.to(device)).reshape(n, episodes, -1)
        noise = None if deterministic else sample_noise(spec, episodes, gen, device)  # drawn for every member
        if members is None:
            return net.act(params, x, noise).reshape(n * episodes, *action_shape)
        if cache["members"] is not members:  # the live members' parameters, gathered once per refresh
            cache["members"], cache["params"] = members, params.index_select(0, members)
        live = net.act(cache["params"], x.index_select(0, members), noise)  # type: ignore[arg-type]
        full = live.new_zeros((n, episodes, *action_shape))  # finished members' rows are masked: any action
        return full.index_copy_(0, members, live).reshape(n * episodes, *action_shape)

    obs = venv.reset(seed, group_size=episodes)
    res = rollout(venv, obs, policy, max_steps or spec.max_episode_steps, check_every=check_every, device=device,
                  live_only=live_only, group_size=episodes if compact else None, progress=progress)
    return EvalResult(res.returns.reshape(n, episodes), res.lengths.reshape(n, episodes), res.env_steps)


@torch.no_grad()
def evaluate_functional(
    act: Callable[[Tensor, Tensor], Tensor],
    params: Tensor,
    env: FunctionalEnv,
    episodes: int,
    generator: torch.Generator,
    env_params: Any = None,
    max_steps: int | None = None,
    check_every: int = 16,
) -> EvalResult:
    """One episode in each of ``E = episodes`` envs per agent for ``M`` trained agents on a native functional env.

    Args:
        act: ``act(params [M, P], obs [M, E, obs_dim]) -> [M, E] / [M, E, A]`` (greedy, or sampling from a generator
            it holds -- it is called once per step, before the env step).
        params: ``[M, P]`` the agents.
        env: the env, run with ``M * E`` rows (member-major).
        episodes: ``E``.
        generator: the env's randomness, used as it is (not reseeded). Common random numbers: with shared (0-dim)
            ``env_params``, env ``e`` of every agent starts from the same initial state (``E`` states drawn once and
            tiled); with per-row params ``[M * E]`` (a population of envs) every row is drawn from its own env.
        max_steps: step budget per episode, default ``env.spec.max_episode_steps``.
    """
    m, e = params.shape[0], int(episodes)
    venv = NativeVecEnv(env, m * e, generator.device, env_params, generator=generator)
    broadcast = env_params is None or is_broadcast(env_params)
    obs = venv.reset(None, group_size=e if broadcast else m * e)

    def policy(o: Tensor) -> Tensor:
        a = act(params, o.reshape(m, e, -1).to(params.device))
        return a.reshape(m * e, *a.shape[2:])

    res = rollout(venv, obs, policy, max_steps or env.spec.max_episode_steps, check_every=check_every,
                  device=params.device)
    return EvalResult(res.returns.reshape(m, e), res.lengths.reshape(m, e), res.env_steps)


@torch.no_grad()
def collect_observations(
    venv: VecEnv, obs: Tensor, policy: Callable[[Tensor], Tensor], decisions: int, stop_when_done: bool = False
) -> Tensor:
    """The observations ``[T, num_envs, *obs_shape]`` that ``policy`` acts on in ``decisions`` steps of ``venv``
    (already reset, ``obs`` its observations; across auto-resets), plus the observation after the last step (so
    ``T = steps taken + 1``). ``stop_when_done``: stop at the first step after which every env's first episode ended
    (checked every step)."""
    res = rollout(venv, obs, policy, decisions, stop_when_done=stop_when_done, check_every=1, record_obs=True)
    parts = [res.observations] if res.observations is not None else []
    return torch.cat(parts + [res.last_obs.unsqueeze(0)])


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
    seen = collect_observations(venv, obs, lambda o: uniform_actions(spec, venv.num_envs, gen, device), steps)[:steps]
    total = torch.zeros(spec.obs_dim, dtype=torch.float64, device=device)
    total_sq = torch.zeros_like(total)
    for o in seen:  # accumulated step by step in float64
        flat = o.reshape(venv.num_envs, -1).double()
        total += flat.sum(0)
        total_sq += (flat * flat).sum(0)
    count = seen.shape[0] * venv.num_envs
    mean = total / count
    var = (total_sq / count - mean * mean).clamp_min(min_var)
    return ObsNormalizer(mean.float(), var.float())


class RealEnvEvaluator:
    """Evaluates populations of policies on a real env; caches one vector env per batch size."""

    def __init__(self, env_id: str, device: torch.device, backend: str = "auto", max_steps: int | None = None,
                 deterministic: bool = False, live_only: bool = True) -> None:
        self.env_id = env_id
        self.live_only = live_only  # step only running envs on envpool/gymnasium (False: the masked full step)
        self.device = device
        self.backend = resolve_backend(env_id, backend)
        self.max_steps = max_steps
        self.deterministic = deterministic
        self._venvs: dict[int, Any] = {}
        self.spec: EnvSpec = self.venv(1).spec
        self.normalizer = ObsNormalizer()

    def venv(self, num_envs: int) -> Any:
        if num_envs not in self._venvs:
            self._venvs[num_envs] = make_vec_env(self.env_id, num_envs, self.device, self.backend)
        return self._venvs[num_envs]

    def fit_normalizer(self, seed: int, num_envs: int = 64, steps: int = 200) -> ObsNormalizer:
        """Estimate the fixed affine observation normaliser from random-action rollouts."""
        self.normalizer = estimate_obs_normalizer(self.venv(num_envs), steps, seed).to(self.device)
        return self.normalizer

    def evaluate(self, net: PolicyNet, params: Tensor, episodes: int, seed: int,
                 progress: Callable[[int], Any] | None = None) -> EvalResult:
        """One episode per env for each of ``params [N, num_params]``, ``episodes`` envs each (CRN across N);
        ``progress`` as in :func:`rollout`."""
        venv = self.venv(params.shape[0] * episodes)
        return evaluate_policies(net, params, venv, episodes, seed, self.normalizer, self.deterministic, self.max_steps,
                                 live_only=self.live_only, progress=progress)

    def state_dict(self) -> dict[str, Any]:
        """The fixed normaliser (checkpointed: a resumed run evaluates exactly as the uninterrupted one)."""
        return {"obs_mean": self.normalizer.mean, "obs_var": self.normalizer.var}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("obs_mean") is not None:
            self.normalizer = ObsNormalizer(state["obs_mean"].to(self.device), state["obs_var"].to(self.device))

    def close(self) -> None:
        for v in self._venvs.values():
            v.close()
        self._venvs.clear()
