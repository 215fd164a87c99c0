"""Stateful vector envs with torch tensors in and out: native torch envs, envpool and gymnasium.

All three present the :class:`~torch_distill.envs.core.VecEnv` face to the evaluator. ``reset(seed, group_size)``
lays the ``num_envs`` envs out as ``[num_envs // group_size, group_size]`` and gives env ``j`` of every group the
same initial state (common random numbers across population members): native envs draw ``group_size`` initial
states and repeat them; envpool and gymnasium seed env ``i`` with ``seed + i % group_size``.

Only the native backend keeps everything on the device; envpool and gymnasium step on the host (one copy of
actions and observations per step). The host backends also step subsets (``steps_subsets = True``,
``step_subset(action [K, ...], env_ids [K])``: envpool's ``step(action, env_id)``, gymnasium one sub-env at a time), so
that the evaluator steps only the envs whose first episode is still running; the native backend keeps the masked full
step (no host syncs).
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any, Callable, NamedTuple

import numpy as np
import torch

from torch_distill.envs.core import EnvSpec, FunctionalEnv, StepOut, step_with_final_obs

__all__ = [
    "UnknownEnvError",
    "NativeVecEnv",
    "EnvpoolVecEnv",
    "GymnasiumVecEnv",
    "make_vec_env",
    "make_native",
    "native_env_ids",
    "env_spec",
    "BACKENDS",
]

BACKENDS = ("auto", "native", "envpool", "gymnasium", "cale")


class UnknownEnvError(ValueError):
    """An env id no backend knows."""


# ------------------------------------------------------------------------------------------------ native registry
def _native_registry() -> dict[str, Callable[..., FunctionalEnv]]:
    reg: dict[str, Callable[..., FunctionalEnv]] = {}
    try:
        from torch_distill.envs.classic_control import CLASSIC_CONTROL

        reg.update(CLASSIC_CONTROL)
    except ImportError:  # pragma: no cover - module always shipped
        pass
    try:
        from torch_distill.envs.minigrid import make as make_minigrid
        from torch_distill.envs.minigrid import registered_ids
        from torch_distill.envs.wrappers import FlatSymbolicObs

        for env_id in registered_ids():
            # Policies see a flat symbolic vector (7x7x3 cell codes + one-hot direction).
            reg[env_id] = lambda env_id=env_id, **kw: FlatSymbolicObs(make_minigrid(env_id, **kw))
    except ImportError:  # pragma: no cover
        pass
    try:
        from torch_distill.envs.minatar import MINATAR_GAMES
        from torch_distill.envs.minatar import make as make_minatar
        from torch_distill.envs.wrappers import FlatMinAtarObs

        for game in MINATAR_GAMES:
            # minatar's MinAtar/<Game>-v0 (full actions) / -v1 (minimal) without the slash (one gymnasium
            # namespace only), and gymnax's <Game>-MinAtar (no sticky actions); policies see [100 * C] floats.
            for env_id in (f"MinAtar-{game}-v0", f"MinAtar-{game}-v1", f"{game}-MinAtar"):
                reg[env_id] = lambda env_id=env_id, **kw: FlatMinAtarObs(make_minatar(env_id, **kw))
    except ImportError:  # pragma: no cover
        pass
    return reg


def native_env_ids() -> list[str]:
    """Ids of the natively batched torch envs."""
    return sorted(_native_registry())


def make_native(env_id: str, **kwargs: Any) -> FunctionalEnv:
    """Construct the native torch env ``env_id`` (raises :class:`UnknownEnvError` with suggestions)."""
    reg = _native_registry()
    if env_id not in reg:
        raise UnknownEnvError(_unknown_message(env_id, reg))
    return reg[env_id](**kwargs)


def _envpool_ids() -> list[str]:
    try:
        import envpool

        return list(envpool.list_all_envs())
    except Exception:
        return []


def _cale_ids() -> list[str]:
    from torch_distill.envs.cale import cale_ids

    return cale_ids()


def _gymnasium_ids() -> list[str]:
    try:
        import gymnasium

        return list(gymnasium.envs.registry.keys())
    except Exception:  # pragma: no cover
        return []


def _unknown_message(env_id: str, known: Any) -> str:
    close = difflib.get_close_matches(env_id, list(known), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown env id {env_id!r}.{hint} Native torch envs: {', '.join(native_env_ids())}."


def _spec_from_gym_spaces(env_id: str, obs_space: Any, act_space: Any, max_steps: int) -> EnvSpec:
    import gymnasium.spaces as sp

    if isinstance(act_space, sp.Discrete):
        return EnvSpec(env_id, tuple(obs_space.shape), True, n_actions=int(act_space.n), max_episode_steps=max_steps)
    if isinstance(act_space, sp.Box):
        return EnvSpec(
            env_id,
            tuple(obs_space.shape),
            False,
            action_dim=int(np.prod(act_space.shape)),
            action_low=tuple(float(x) for x in np.asarray(act_space.low).ravel()),
            action_high=tuple(float(x) for x in np.asarray(act_space.high).ravel()),
            max_episode_steps=max_steps,
        )
    raise ValueError(f"env {env_id!r}: action space {act_space} is not supported (expected Discrete or Box)")


def resolve_backend(env_id: str, backend: str = "auto") -> str:
    """Pick the backend for ``env_id``: native torch if available, else envpool, else gymnasium."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: expected one of {BACKENDS}")
    if backend != "auto":
        known = {"native": native_env_ids, "envpool": _envpool_ids, "gymnasium": _gymnasium_ids, "cale": _cale_ids}[backend]()
        if env_id not in known:
            raise UnknownEnvError(f"env id {env_id!r} is not available with backend {backend!r}. " + _unknown_message(env_id, known))
        return backend
    if env_id in _native_registry():
        return "native"
    if env_id.startswith("CALE/"):  # continuous-action Atari (envs/cale.py), evaluation only
        return "cale"
    if env_id in _envpool_ids():
        return "envpool"
    if env_id in _gymnasium_ids():
        return "gymnasium"
    raise UnknownEnvError(_unknown_message(env_id, set(_native_registry()) | set(_envpool_ids()) | set(_gymnasium_ids())))


def env_spec(env_id: str, backend: str = "auto") -> EnvSpec:
    """The :class:`EnvSpec` of ``env_id`` without building a large batch."""
    backend = resolve_backend(env_id, backend)
    if backend == "native":
        return make_native(env_id).spec
    venv = make_vec_env(env_id, 1, backend=backend)
    spec = venv.spec
    venv.close()
    return spec


# ------------------------------------------------------------------------------------------------------ backends
def _subset_ids(env_ids: Any, num_envs: int) -> np.ndarray:
    """``env_ids [K]`` (tensor, array or list) as distinct int32 ids in ``[0, num_envs)``, else a ``ValueError``."""
    if isinstance(env_ids, torch.Tensor):
        env_ids = env_ids.cpu().numpy()
    ids = np.asarray(env_ids).reshape(-1)
    if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= num_envs):
        raise ValueError(f"env_ids={ids.tolist()}: expected integer ids in [0, {num_envs})")
    if np.unique(ids).size != ids.size:
        raise ValueError(f"env_ids={ids.tolist()}: expected distinct ids")
    return ids.astype(np.int32)


def _empty_step(spec: EnvSpec, device: torch.device) -> StepOut:
    z = torch.zeros(0, device=device)
    flag = torch.zeros(0, dtype=torch.bool, device=device)
    return StepOut(torch.zeros((0, *spec.obs_shape), device=device), z, flag, flag.clone())


def _repeat_tree(x: Any, groups: int) -> Any:
    if isinstance(x, torch.Tensor):
        return x.repeat(groups, *([1] * (x.dim() - 1))) if x.dim() > 0 else x
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*(_repeat_tree(v, groups) for v in x))
    if isinstance(x, (tuple, list)):
        return type(x)(_repeat_tree(v, groups) for v in x)
    if isinstance(x, dict):
        return {k: _repeat_tree(v, groups) for k, v in x.items()}
    return x


class NativeVecEnv:
    """A :class:`FunctionalEnv` held with its state: device-resident, no host round trips (no subset stepping: the
    evaluator masks ended rows of the full step, which needs no host sync)."""

    supports_common_random_numbers = True
    steps_subsets = False

    def __init__(self, env: FunctionalEnv, num_envs: int, device: torch.device | str = "cpu", params: NamedTuple | None = None,
                 generator: torch.Generator | None = None, final_obs: bool = False):
        self.env = env
        self.spec = env.spec
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.params = params if params is not None else env.default_params(self.device)
        self.state: Any = None
        self.generator = generator if generator is not None else torch.Generator(device=self.device)
        self.final_obs = final_obs  # fill StepOut.final_obs (transition + reset_done: MiniGrid observes twice)

    def reset(self, seed: int | None, group_size: int | None = None) -> torch.Tensor:
        """Reset every env (``seed`` reseeds the generator; ``None`` draws on from its current state)."""
        group_size = group_size or self.num_envs
        if self.num_envs % group_size:
            raise ValueError(f"num_envs={self.num_envs} is not a multiple of group_size={group_size}")
        if seed is not None:
            self.generator.manual_seed(int(seed))
        state, obs = self.env.reset(group_size, self.generator, self.params)
        groups = self.num_envs // group_size
        self.state, obs = _repeat_tree(state, groups), _repeat_tree(obs, groups)
        return obs

    def step(self, action: torch.Tensor) -> StepOut:
        if self.final_obs:
            out = step_with_final_obs(self.env, self.state, action, self.generator, self.params)
            self.state = out.state
            return StepOut(out.obs, out.reward, out.terminated, out.truncated, out.final_obs)
        self.state, obs, reward, terminated, truncated = self.env.step(self.state, action, self.generator, self.params)
        return StepOut(obs, reward, terminated, truncated)

    def close(self) -> None:
        self.state = None


class EnvpoolVecEnv:
    """envpool (C++ thread pool; classic control, MuJoCo, Atari, ...) with torch tensors in and out.

    envpool auto-resets one step AFTER an episode ends (that step ignores the action, returns the reset observation
    and reward 0); the evaluator steps only envs whose first episode is running (:meth:`step_subset`), so it never
    sees those reset steps. Envs are re-created on every ``reset`` with per-env seeds (``env_seed``) so that an
    evaluation is a pure function of its seed.
    """

    supports_common_random_numbers = True
    steps_subsets = True

    def __init__(self, env_id: str, num_envs: int, device: torch.device | str = "cpu", num_threads: int = 0, **kwargs: Any):
        import envpool

        self.env_id = env_id
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.num_threads = num_threads
        self.kwargs = kwargs
        self._make = envpool.make
        self.env = self._create([0] * num_envs)
        max_steps = int(getattr(self.env.spec.config, "max_episode_steps", 1000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.spec = _spec_from_gym_spaces(env_id, self.env.observation_space, self.env.action_space, max_steps)
        self._low, self._high = (None, None) if self.spec.discrete else self.spec.action_bounds(self.device)

    def _create(self, env_seed: list[int]) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._make(
                self.env_id,
                env_type="gymnasium",
                num_envs=self.num_envs,
                batch_size=self.num_envs,
                num_threads=self.num_threads,
                env_seed=env_seed,
                **self.kwargs,
            )

    def reset(self, seed: int, group_size: int | None = None) -> torch.Tensor:
        group_size = group_size or self.num_envs
        self.env.close()
        base = int(seed) % (2**31 - 1 - group_size)  # envpool seeds are int32
        self.env = self._create([base + i % group_size for i in range(self.num_envs)])
        obs, _ = self.env.reset()
        return torch.as_tensor(np.asarray(obs), dtype=torch.float32).to(self.device)

    def _host_action(self, action: torch.Tensor) -> np.ndarray:
        if self.spec.discrete:
            return action.to("cpu", torch.int64).numpy().astype(np.int32)
        return torch.clamp(action, self._low, self._high).to("cpu", torch.float64).numpy()

    def _out(self, obs: Any, rew: Any, term: Any, trunc: Any) -> StepOut:
        t = lambda x, dt: torch.as_tensor(np.asarray(x)).to(self.device, dt)  # noqa: E731
        return StepOut(t(obs, torch.float32), t(rew, torch.float32), t(term, torch.bool), t(trunc, torch.bool))

    def step(self, action: torch.Tensor) -> StepOut:
        obs, rew, term, trunc, _ = self.env.step(self._host_action(action))
        return self._out(obs, rew, term, trunc)

    def step_subset(self, action: torch.Tensor, env_ids: torch.Tensor) -> StepOut:
        """Step only envs ``env_ids [K]`` with ``action [K, ...]`` (envpool's ``step(action, env_id)``: in sync mode,
        ``batch_size == num_envs``, ``recv`` returns exactly the ``K`` envs sent); rows in ``env_ids`` order (envpool
        reports its order in ``info["env_id"]``)."""
        ids = _subset_ids(env_ids, self.num_envs)
        if ids.size == 0:
            return _empty_step(self.spec, self.device)
        obs, rew, term, trunc, info = self.env.step(self._host_action(action), ids)
        got = np.asarray(info["env_id"])
        if not np.array_equal(got, ids):
            pos = np.empty(self.num_envs, dtype=np.int64)
            pos[got] = np.arange(got.size)
            order = pos[ids]
            obs, rew, term, trunc = (np.asarray(x)[order] for x in (obs, rew, term, trunc))
        return self._out(obs, rew, term, trunc)

    def close(self) -> None:
        self.env.close()


class GymnasiumVecEnv:
    """A gymnasium ``SyncVectorEnv`` (any registered gymnasium id) with torch tensors in and out. Slow: fallback.

    ``SyncVectorEnv`` steps its sub-envs one at a time in Python anyway, so :meth:`step_subset` (a loop over the
    given sub-envs only) costs nothing extra per env stepped.
    """

    supports_common_random_numbers = True
    steps_subsets = True

    def __init__(self, env_id: str, num_envs: int, device: torch.device | str = "cpu", **kwargs: Any):
        import gymnasium

        self.env_id = env_id
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.env = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make(env_id, **kwargs) for _ in range(num_envs)])
        single = self.env.envs[0]
        max_steps = single.spec.max_episode_steps if single.spec and single.spec.max_episode_steps else 1000
        self.spec = _spec_from_gym_spaces(env_id, self.env.single_observation_space, self.env.single_action_space, int(max_steps))

    def reset(self, seed: int, group_size: int | None = None) -> torch.Tensor:
        group_size = group_size or self.num_envs
        base = int(seed) % (2**32 - 1 - group_size)  # numpy seeds are uint32
        obs, _ = self.env.reset(seed=[base + i % group_size for i in range(self.num_envs)])
        return torch.as_tensor(np.asarray(obs), dtype=torch.float32).to(self.device)

    def _host_action(self, action: torch.Tensor) -> np.ndarray:
        a = action.cpu().numpy()
        if self.spec.discrete:
            return a
        space = self.env.single_action_space  # clipped in the box's own dtype (ale-py's CALE asserts float32)
        return np.clip(a, space.low, space.high).astype(space.dtype, copy=False)

    def _out(self, obs: Any, rew: Any, term: Any, trunc: Any) -> StepOut:
        t = lambda x, dt: torch.as_tensor(np.asarray(x)).to(self.device, dt)  # noqa: E731
        return StepOut(t(obs, torch.float32), t(rew, torch.float32), t(term, torch.bool), t(trunc, torch.bool))

    def step(self, action: torch.Tensor) -> StepOut:
        obs, rew, term, trunc, _ = self.env.step(self._host_action(action))
        return self._out(obs, rew, term, trunc)

    def step_subset(self, action: torch.Tensor, env_ids: torch.Tensor) -> StepOut:
        """Step only sub-envs ``env_ids [K]`` with ``action [K, ...]``, exactly as ``SyncVectorEnv.step`` steps each
        of them (next-step autoreset: a sub-env stepped after its end is reset, reward 0); rows in ``env_ids`` order.
        Keeps ``SyncVectorEnv``'s per-env autoreset flags, so full and subset steps can be mixed."""
        ids = _subset_ids(env_ids, self.num_envs)
        if ids.size == 0:
            return _empty_step(self.spec, self.device)
        a = self._host_action(action)
        pending = self.env._autoreset_envs  # gymnasium's NEXT_STEP bookkeeping (per sub-env "reset at next step")
        obs, rew, term, trunc = [], np.zeros(ids.size), np.zeros(ids.size, bool), np.zeros(ids.size, bool)
        for k, i in enumerate(ids.tolist()):
            if pending[i]:
                o, _ = self.env.envs[i].reset()
            else:
                o, rew[k], term[k], trunc[k], _ = self.env.envs[i].step(a[k])
            pending[i] = term[k] or trunc[k]
            obs.append(np.asarray(o, dtype=self.env.single_observation_space.dtype))
        return self._out(np.stack(obs), rew, term, trunc)

    def close(self) -> None:
        self.env.close()


def make_vec_env(env_id: str, num_envs: int, device: torch.device | str = "cpu", backend: str = "auto", **kwargs: Any):
    """Build ``num_envs`` copies of ``env_id`` on the first backend that has it (native > envpool > gymnasium;
    ``CALE/<Game>-v5`` ids go to :class:`~torch_distill.envs.cale.CALEVecEnv`).

    Raises :class:`UnknownEnvError` (naming close matches) for an id no backend knows.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs={num_envs}: expected a positive integer")
    backend = resolve_backend(env_id, backend)
    if backend == "native":
        return NativeVecEnv(make_native(env_id), num_envs, device)
    if backend == "envpool":
        return EnvpoolVecEnv(env_id, num_envs, device, **kwargs)
    if backend == "cale":
        from torch_distill.envs.cale import CALEVecEnv

        return CALEVecEnv(env_id, num_envs, device, **kwargs)
    return GymnasiumVecEnv(env_id, num_envs, device, **kwargs)
