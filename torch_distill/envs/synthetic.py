"""Learned synthetic environments as natively batched torch envs (the :class:`~torch_distill.envs.core.FunctionalEnv`
contract), and their files.

Three kinds, all with the same interface (:class:`SyntheticEnvBase`): the learned parameters are ONE flat genome,
the env params are :class:`SyntheticEnvParams` holding ``genome [G]`` (one env broadcast over every row) or
``genome [B, G]`` (one env per row), so a population of synthetic envs is just a batch of params: with a
member-major batch of ``n`` rows per member, member ``m``'s rows carry genome ``m``
(``SyntheticEnvParams(genomes.repeat_interleave(n, 0))``). Every sub-network is an MLP laid out as
:class:`~torch_distill.algorithms.rl_common.FlatMLP` (per layer ``W [in, out]`` row-major, then ``b [out]``), and
the genome is the concatenation of the sub-networks in the order listed below (:meth:`~SyntheticEnvBase.layout`
names every piece, e.g. ``transition.0.weight``). Discrete actions enter the networks one-hot, continuous ones
clipped to the real env's bounds (``clip_actions=True``) as floats; ``act_in`` is ``n_actions`` or ``action_dim``.

``"scb"`` -- :class:`SyntheticContextualBandit` (Liesen et al. 2024, "Discovering Minimal Reinforcement Learning
Environments", arXiv 2406.12589). An episode is ONE step: ``reset`` draws a latent ``z ~ N(0, I)`` and maps it
through the initial-state network to an observation; ``step`` scores the action with the reward network over
``[observation, action]``, terminates every row and auto-resets it with a fresh latent. Reference: one hidden layer
of 32 ReLU units, latent size = obs size; init LeCun normal (flax ``Dense``)::

    genome = [ initial_state (latent -> *hidden -> obs_dim) | reward (obs_dim + act_in -> *hidden -> 1) ]

CartPole-v1 (hidden 32): ``(4*32 + 32 + 32*4 + 4) + (6*32 + 32 + 32 + 1) = 292 + 257 = 549``, the reference's count.
Option (not the reference's): ``reward_head="quadratic"`` for continuous actions, a reward network over the
observation only whose outputs define a concave quadratic in the action (:class:`SyntheticContextualBandit`).

``"mdp"`` -- :class:`SyntheticMDP` (Ferreira, Nierhoff, Saelinger & Hutter, "Learning Synthetic Environments and
Reward Networks for Reinforcement Learning", ICLR 2022; their ``VirtualEnv``). A neural MDP: three heads over
``x = cat(action encoding, state)`` (action first, as the reference) give the next state (``transition="direct"``,
the reference; or ``"delta"``: ``state + output``), a scalar reward and a scalar done output; the episode
terminates when ``done > 0.5`` and is truncated at ``max_episode_steps`` (default: the real env's). Initial states
come from the real env's ``reset`` (``initial_state="real"``, the reference) or from a learned initial-state
network of a latent ``z ~ N(0, I)`` as the SCB's (``initial_state="learned"``). Reference CartPole: hidden 83,
LeakyReLU (slope 0.01). Init: PyTorch ``nn.Linear``'s distribution (weights and biases ``U(-1/sqrt(fan_in),
1/sqrt(fan_in))``, as the reference's networks)::

    genome = [ transition (act_in + obs_dim -> *hidden -> obs_dim) | reward (... -> 1) | done (... -> 1)
               | initial_state (latent -> *hidden -> obs_dim), only with initial_state="learned" ]

CartPole (hidden 83): each head ``(2+4)*83 + 83 + 83*out + out``: ``917 + 665 + 665 = 2247``. Next states (and
learned initial states) are clamped to ``[-state_clip, state_clip]`` (default 100: far outside every classic-control
observation, but it stops a recurrent network from blowing up to inf over an episode); a step whose next state,
reward or done output is not finite terminates the row (its reward becomes 0) and the row is reset.

``"reward"`` -- :class:`RewardNetworkEnv` (Ferreira et al.'s reward networks, their ``RewardEnv``): the real env's
dynamics, termination, time limit and initial states (its native torch env) with a learned reward. ``potential=True``:
a state network ``Phi`` and the potential-based shaping (Ng, Harada & Russell 1999) ``F = gamma Phi(s') - Phi(s)``
with ``Phi(s') = 0`` when the step terminated; ``potential=False``: an MLP over ``[s, action encoding]`` (the brief's
choice; the reference's non-potential variant scores ``s'`` only). ``mode="exclusive"`` replaces the real reward by
the learned one, ``"additive"`` adds it (reference CartPole default: potential, additive, 2 x 64 LeakyReLU, gamma
0.99). ``gamma`` is part of the env (use the agent's discount for the policy invariance of the shaping). Init as
the MDP's::

    genome = [ potential (obs_dim -> *hidden -> 1) ]          # potential=True
    genome = [ reward (obs_dim + act_in -> *hidden -> 1) ]    # potential=False

CartPole (hidden (64, 64)): potential ``4*64+64 + 64*64+64 + 64+1 = 4545``; non-potential ``4673``. ``s'`` is the
observation BEFORE the auto-reset: for the classic-control envs (:mod:`torch_distill.envs.classic_control`) the
step is computed from their ``_transition``/``_obs``/``_sample`` pieces, so ``Phi(s')`` is exact on truncation too;
for other native envs (e.g. MiniGrid) the contract hides the pre-reset observation of rows that ended, and a
truncated step uses ``Phi(s') = 0`` like a terminated one (documented approximation).

Common random numbers: ``crn_period=k`` (:meth:`~SyntheticEnvBase.with_crn_period`; the SCB's older name is
``latent_period``) makes rows ``r`` and ``r + j k`` get the same random draws: every draw (latents, real-env
initial states) is made for ``k`` rows and tiled, so with ``k`` = rows per member every member of a member-major
population sees identical randomness, and an ``M``-member run equals ``M`` single-member runs with the same
generator seed (batch sizes must be multiples of ``k``). One exception: a reward network over a real env that is
not classic control calls that env's own ``step``, whose auto-reset draws batch-size-many states (which are then
replaced by the tiled ones); the members still share every initial state, but the generator stream depends on the
batch size, so a population run is not bit-identical to single-member runs, and randomness inside such an env's
dynamics (none in the native envs) would not be shared.

Files (format ``torch_distill.synthetic_env``; readable with ``safetensors.safe_open`` + ``json``): tensors
``genome [G]`` float32 plus, for reading without this library, every layer as ``{head}.{i}.weight [in, out]`` /
``{head}.{i}.bias`` (the names of :meth:`~SyntheticEnvBase.layout`); metadata key ``"torch_distill"``: JSON with
``format``, ``format_version`` (the lowest reader version that understands the file: 1 for ``"scb"`` without
observation scaling, 2 for ``"scb"`` with it, ``"mdp"`` and ``"reward"``, 3 for an SCB with the quadratic reward
head), ``kind``, ``env`` (the real env's
:class:`~torch_distill.envs.core.EnvSpec`), ``architecture`` (everything needed to rebuild the env: widths,
activation, options, ``gamma``, the genome ``layout``), ``num_params`` and free-form fields (evaluation, command,
created, ...). Kinds that need the real env (MDP with real initial states, reward networks) rebuild it at load time
with :func:`~torch_distill.envs.vec.make_native` from the recorded ``env`` spec.

Shipped envs: :func:`load_synthetic_env` also takes the name of a file in ``torch_distill/synthetic_envs/``
(package data; :func:`shipped_synthetic_envs`), named ``<KIND>-<env id>`` (``SCB-CartPole-v1``,
``MDP-CartPole-v0``, ``RewardNet-CartPole-v1``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from torch_distill.nets import FlatMLP
from torch_distill.envs.classic_control import _ClassicControlEnv
from torch_distill.envs.core import EnvSpec, FunctionalEnv

__all__ = [
    "DONE_THRESHOLD",
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "SHIPPED_DIR",
    "RewardNetState",
    "RewardNetworkEnv",
    "SCBParams",
    "SCBState",
    "SyntheticContextualBandit",
    "SyntheticEnv",
    "SyntheticEnvBase",
    "SyntheticEnvFileError",
    "SyntheticEnvParams",
    "SyntheticMDP",
    "SyntheticMDPState",
    "load_synthetic_env",
    "read_synthetic_env_metadata",
    "resolve_synthetic_env",
    "save_synthetic_env",
    "shipped_synthetic_envs",
    "observation_scaling",
]

FORMAT = "torch_distill.synthetic_env"
FORMAT_VERSION = 3
DONE_THRESHOLD = 0.5
"""A synthetic MDP's episode terminates when its done head outputs more than this (Ferreira et al.)."""

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "synthetic_envs"
"""Package-data directory of the shipped synthetic envs (``<name>.safetensors``)."""


# ---------------------------------------------------------------------------------------------------- records
class SyntheticEnvParams(NamedTuple):
    """Params of every synthetic env kind: the flat genome, ``[G]`` (one env for every row) or ``[B, G]`` (one env
    per row)."""

    genome: Tensor


SCBParams = SyntheticEnvParams
"""The SCB's name for :class:`SyntheticEnvParams` (same type)."""


class SCBState(NamedTuple):
    """SCB state: the current observation ``[B, obs_dim]`` float32 and ``time [B]`` int64 (always 0: every
    episode is one step)."""

    obs: Tensor
    time: Tensor


class SyntheticMDPState(NamedTuple):
    """Synthetic-MDP state: the current observation ``[B, obs_dim]`` float32 (the state IS the observation) and
    ``time [B]`` int64, steps taken in the current episode."""

    obs: Tensor
    time: Tensor


class RewardNetState(NamedTuple):
    """Reward-network env state: the real env's state ``real`` (its own ``NamedTuple``) and its current observation
    ``obs [B, obs_dim]`` float32 (the reward networks' input ``s``)."""

    real: Any
    obs: Tensor


# ---------------------------------------------------------------------------------------------------- helpers
def _hidden_tuple(hidden: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(int(h) for h in hidden)
    except (TypeError, ValueError):
        raise ValueError(f"hidden={hidden!r}: expected a sequence of positive ints") from None
    if any(h < 1 for h in out):
        raise ValueError(f"hidden={out}: expected positive widths")
    return out


def _period(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: expected None or a positive int")
    return int(value)


def _choice(value: Any, name: str, options: Sequence[str]) -> str:
    if value not in options:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(repr(o) for o in options)}")
    return str(value)


def _tile(x: Any, reps: int) -> Any:
    """Repeat ``x`` (a tensor ``[k, ...]`` or a (named) tuple of them, nested) ``reps`` times along dim 0."""
    if reps == 1:
        return x
    if isinstance(x, Tensor):
        return x.repeat(reps, *([1] * (x.dim() - 1)))
    if isinstance(x, tuple):
        items = [_tile(v, reps) for v in x]
        return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
    return x


def _where_rows(mask: Tensor, new: Any, old: Any) -> Any:
    """Row-wise ``where(mask [B], new, old)`` over a tensor or a (nested) ``NamedTuple`` of ``[B, ...]`` tensors."""
    if isinstance(new, Tensor):
        return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old)
    return type(new)(*(_where_rows(mask, a, b) for a, b in zip(new, old)))


def _real_parts(real: FunctionalEnv | EnvSpec, who: str, need_env: bool) -> tuple[FunctionalEnv | None, EnvSpec]:
    """``(real env or None, real spec)`` from a ``FunctionalEnv`` or an ``EnvSpec``."""
    if isinstance(real, EnvSpec):
        if need_env:
            raise TypeError(f"{who} needs the real env itself (a native FunctionalEnv, e.g. "
                            f"torch_distill.envs.vec.make_native({real.env_id!r})), got its EnvSpec")
        return None, real
    spec = getattr(real, "spec", None)
    if not isinstance(spec, EnvSpec) or not callable(getattr(real, "reset", None)) or not callable(getattr(real, "step", None)):
        raise TypeError(f"{who}: expected the real env as a FunctionalEnv (spec, reset, step) or an EnvSpec, "
                        f"got {type(real).__name__}")
    return real, spec


# ---------------------------------------------------------------------------------------------------- base class
class SyntheticEnvBase:
    """What every synthetic env kind shares: the flat genome and its layout, params handling, default init, action
    encoding and checks, common random numbers, metadata (module docstring).

    Subclasses set ``kind``, ``file_prefix``, ``format_version``, ``init_scheme`` and build their sub-networks with
    :meth:`_setup`; they define ``reset``, ``step``, :meth:`architecture`, :meth:`from_architecture` and
    :meth:`needs_real_env`.

    Attributes:
        spec: the synthetic env's :class:`EnvSpec` (observation and action spaces of the real env).
        real_spec: the real env's :class:`EnvSpec`.
        heads: the sub-networks in genome order, ``{name: FlatMLP}``.
        num_params: genome size ``G``.
        genome: the carried genome ``[G]`` (a loaded env's) or None.
        crn_period: rows ``r`` and ``r + j * crn_period`` share their random draws (None: independent rows).
    """

    kind: ClassVar[str]
    file_prefix: ClassVar[str]
    format_version: ClassVar[int]
    init_scheme: ClassVar[str]  # "lecun_normal" or "torch_linear"
    _crn_arg: ClassVar[str] = "crn_period"

    spec: EnvSpec
    real_spec: EnvSpec
    heads: dict[str, FlatMLP]
    num_params: int
    genome: Tensor | None
    crn_period: int | None
    clip_actions: bool
    hidden: tuple[int, ...]
    activation: str

    def _setup(self, real_spec: EnvSpec, spec: EnvSpec, heads: dict[str, FlatMLP], genome: Tensor | None,
               crn_period: int | None, clip_actions: bool) -> None:
        self.real_spec = real_spec
        self.spec = spec
        self.heads = heads
        self.num_params = sum(net.num_params for net in heads.values())
        self.crn_period = _period(crn_period, self._crn_arg)
        self.clip_actions = bool(clip_actions)
        self._bounds: dict[torch.device, tuple[Tensor, Tensor]] = {}
        self._default_cache: dict[torch.device, Tensor] = {}
        self.genome = None if genome is None else self._check_genome_vector(genome)

    @staticmethod
    def _check_real_spec(real_spec: EnvSpec, who: str) -> None:
        if len(real_spec.obs_shape) != 1:
            raise ValueError(f"{real_spec.env_id}: {who} needs vector observations, got obs_shape {real_spec.obs_shape}")

    @property
    def act_in(self) -> int:
        """Width of the networks' action input: ``n_actions`` (one-hot) or ``action_dim``."""
        return self.real_spec.n_actions if self.real_spec.discrete else self.real_spec.action_dim

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.real_spec.env_id}, {self._repr_options()}, {self.num_params} params)"

    def _repr_options(self) -> str:
        return f"hidden={self.hidden}, activation={self.activation!r}"

    # ------------------------------------------------------------------------------------------------ genome
    def _check_genome_vector(self, genome: Tensor) -> Tensor:
        """``genome`` as a detached float32 ``[G]`` tensor (raises ``ValueError`` naming the shape)."""
        if not isinstance(genome, Tensor) or genome.shape != (self.num_params,):
            shape = tuple(genome.shape) if isinstance(genome, Tensor) else type(genome).__name__
            raise ValueError(f"{self.spec.env_id}: genome has shape {shape}, expected ({self.num_params},)")
        return genome.detach().to(torch.float32)

    def layout(self) -> list[tuple[str, tuple[int, ...]]]:
        """``[(name, shape), ...]`` of the genome's pieces in order (``{head}.{i}.weight [in, out]``, ``.bias``)."""
        out: list[tuple[str, tuple[int, ...]]] = []
        for prefix, net in self.heads.items():
            for i in range(len(net.sizes) - 1):
                out += [(f"{prefix}.{i}.weight", (net.sizes[i], net.sizes[i + 1])), (f"{prefix}.{i}.bias", (net.sizes[i + 1],))]
        return out

    def unflatten(self, genome: Tensor) -> dict[str, Tensor]:
        """Named views of ``genome [G]`` following :meth:`layout`."""
        genome = self._check_genome_vector(genome)
        shapes = self.layout()
        chunks = torch.split(genome, [math.prod(s) for _, s in shapes])
        return {name: c.reshape(s) for (name, s), c in zip(shapes, chunks)}

    def head_params(self, genome: Tensor) -> dict[str, Tensor]:
        """``{head: flat params [..., P_head]}`` of ``genome [..., G]`` (views)."""
        chunks = torch.split(genome, [net.num_params for net in self.heads.values()], dim=-1)
        return dict(zip(self.heads, chunks))

    def init_genome(self, generator: torch.Generator, n: int = 1) -> Tensor:
        """``[n, G]`` genomes at the networks' default initialisation (row by row, layer by layer, weight then bias).

        ``init_scheme="lecun_normal"`` (SCB; the reference's flax ``Dense``): weights truncated normal in
        ``[-2, 2]`` std rescaled to std ``1 / sqrt(fan_in)``, zero biases. ``"torch_linear"`` (MDP, reward networks;
        the reference's ``torch.nn.Linear``): weights and biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (the same
        distribution as ``nn.Linear``, not the same numbers).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n={n!r}: expected a positive int")
        dev = generator.device
        rows = []
        for _ in range(n):
            parts = []
            for net in self.heads.values():
                for i in range(len(net.sizes) - 1):
                    fan_in, fan_out = net.sizes[i], net.sizes[i + 1]
                    if self.init_scheme == "lecun_normal":
                        w = torch.empty(fan_in, fan_out, device=dev)
                        # std of the standard normal truncated to [-2, 2] is 0.87962566; flax divides it out
                        torch.nn.init.trunc_normal_(w, 0.0, 1.0, -2.0, 2.0, generator=generator)
                        parts += [(w / 0.87962566103423978 / math.sqrt(fan_in)).reshape(-1), torch.zeros(fan_out, device=dev)]
                    else:
                        bound = 1.0 / math.sqrt(fan_in)
                        w = torch.rand(fan_in * fan_out, generator=generator, device=dev) * (2 * bound) - bound
                        b = torch.rand(fan_out, generator=generator, device=dev) * (2 * bound) - bound
                        parts += [w, b]
            rows.append(torch.cat(parts))
        return torch.stack(rows)

    def default_params(self, device: torch.device | str = "cpu") -> SyntheticEnvParams:
        """The carried genome (a loaded env), else the default initialisation drawn with seed 0; ``[G]``."""
        dev = torch.device(device)
        if self.genome is not None:
            return SyntheticEnvParams(self.genome.to(dev))
        g = self._default_cache.get(dev)
        if g is None:
            g = self._default_cache[dev] = self.init_genome(torch.Generator(device=dev).manual_seed(0))[0]
        return SyntheticEnvParams(g)

    def _params(self, params: SyntheticEnvParams | None, batch: int, device: torch.device) -> Tensor:
        if params is None:
            params = self.default_params(device)
        g = getattr(params, "genome", None)
        if not isinstance(g, Tensor):
            raise TypeError(f"{self.spec.env_id}: params={type(params).__name__}, expected SyntheticEnvParams(genome)")
        if g.shape != (self.num_params,) and g.shape != (batch, self.num_params):
            raise ValueError(f"{self.spec.env_id}: params.genome has shape {tuple(g.shape)}, expected "
                             f"({self.num_params},) or ({batch}, {self.num_params}) for a batch of {batch}")
        return g

    # ------------------------------------------------------------------------------------------------ networks
    @staticmethod
    def _apply(net: FlatMLP, flat: Tensor, x: Tensor) -> Tensor:
        """``flat [P]`` or ``[B, P]``; ``x [B, in]`` -> ``[B, out]``."""
        if flat.dim() == 1:
            return net(flat, x)
        return net(flat, x.unsqueeze(-2)).squeeze(-2)

    def action_input(self, action: Tensor) -> Tensor:
        """The networks' action input ``[B, act_in]``: one-hot (discrete) or (clipped) float (continuous)."""
        if self.spec.discrete:
            return torch.nn.functional.one_hot(action.long(), self.spec.n_actions).to(torch.float32)
        a = action.to(torch.float32)
        if self.clip_actions and self.spec.action_low:
            dev = a.device
            if dev not in self._bounds:
                self._bounds[dev] = (torch.tensor(self.spec.action_low, dtype=torch.float32, device=dev),
                                     torch.tensor(self.spec.action_high, dtype=torch.float32, device=dev))
            low, high = self._bounds[dev]
            a = torch.maximum(torch.minimum(a, high), low)
        return a

    def _action_encoding(self) -> str:
        return "one_hot" if self.spec.discrete else ("clipped" if self.clip_actions else "raw")

    # ------------------------------------------------------------------------------------------------ checks
    def _check_action(self, action: Tensor, batch: int) -> None:
        if not isinstance(action, Tensor):
            raise TypeError(f"action must be a torch.Tensor, got {type(action).__name__}")
        if self.spec.discrete:
            if action.shape != (batch,) or action.dtype.is_floating_point or action.dtype == torch.bool:
                raise ValueError(f"{self.spec.env_id}: action shape {tuple(action.shape)} dtype {action.dtype}, "
                                 f"expected ({batch},) integer actions")
        elif action.shape != (batch, self.spec.action_dim) or not action.dtype.is_floating_point:
            raise ValueError(f"{self.spec.env_id}: action shape {tuple(action.shape)} dtype {action.dtype}, "
                             f"expected ({batch}, {self.spec.action_dim}) float actions")

    @staticmethod
    def _check_reset(batch_size: int, generator: torch.Generator) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive int")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator={generator!r}: expected a torch.Generator")

    # ------------------------------------------------------------------------------------------------ CRN
    def with_crn_period(self, crn_period: int | None) -> Any:
        """A copy sharing everything (genome included) but :attr:`crn_period` (module docstring)."""
        period = _period(crn_period, self._crn_arg)
        out = copy.copy(self)
        out.crn_period = period
        return out

    def _crn_draw(self, batch: int, draw: Callable[[int], Any]) -> Any:
        """``draw(batch)``, or with a CRN period ``k``: ``draw(k)`` tiled to ``batch`` rows."""
        k = self.crn_period
        if k is None:
            return draw(batch)
        if batch % k:
            raise ValueError(f"{self.spec.env_id}: batch of {batch} rows is not a multiple of {self._crn_arg}={k}")
        return _tile(draw(k), batch // k)

    # ------------------------------------------------------------------------------------------------ metadata
    def _base_architecture(self) -> dict[str, Any]:
        return {
            "hidden": list(self.hidden),
            "activation": self.activation,
            "action_encoding": self._action_encoding(),
            "clip_actions": self.clip_actions,
            "init": self.init_scheme,
        }

    def architecture(self) -> dict[str, Any]:
        """JSON-able description with everything :meth:`from_architecture` needs, plus the genome ``layout``."""
        raise NotImplementedError

    def _layout_json(self) -> list[list[Any]]:
        return [[name, list(shape)] for name, shape in self.layout()]

    @classmethod
    def from_architecture(cls, real: FunctionalEnv | EnvSpec, arch: dict[str, Any],
                          crn_period: int | None = None) -> Any:
        """Rebuild an env (without genome) from :meth:`architecture` and the real env (or its spec)."""
        raise NotImplementedError

    @staticmethod
    def needs_real_env(arch: dict[str, Any]) -> bool:
        """Whether the env described by ``arch`` needs the real ``FunctionalEnv`` (not only its spec)."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------- SCB
def _obs_scaling(loc: Sequence[float] | None, scale: Sequence[float] | None,
                 spec: EnvSpec) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """Checked ``(obs_loc, obs_scale)`` tuples of ``obs_dim`` finite numbers (scales > 0), or ``(None, None)``."""
    if loc is None and scale is None:
        return None, None
    d = spec.obs_dim
    loc = [0.0] * d if loc is None else list(loc)
    scale = [1.0] * d if scale is None else list(scale)
    for name, v in (("obs_loc", loc), ("obs_scale", scale)):
        if len(v) != d or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
            raise ValueError(f"{spec.env_id}: {name}={v!r}, expected {d} finite numbers (one per observation dimension)")
    if not all(x > 0 for x in scale):
        raise ValueError(f"{spec.env_id}: obs_scale={scale!r}, expected positive numbers")
    return tuple(float(x) for x in loc), tuple(float(x) for x in scale)


def observation_scaling(env_id: str, with_bounded: bool = False) -> Any:
    """``(loc, scale)`` mapping the gymnasium observation box of ``env_id`` onto ``[-1, 1]`` per dimension
    (centre and half-width; unbounded dimensions keep ``(0, 1)``). For :class:`SyntheticContextualBandit`'s
    ``obs_loc`` / ``obs_scale``; ``with_bounded`` also returns which dimensions are bounded (``obs_squash``).
    Raises ``ValueError`` for ids gymnasium does not know."""
    import gymnasium
    import numpy as np

    try:
        space = gymnasium.spec(env_id)
    except Exception as exc:  # gymnasium raises its own NameNotFound / VersionNotFound errors
        raise ValueError(f"observation_scaling: {env_id!r} is not a gymnasium env id ({exc})") from None
    env = gymnasium.make(space.id)
    try:
        low = np.asarray(env.observation_space.low, dtype=np.float64).ravel()
        high = np.asarray(env.observation_space.high, dtype=np.float64).ravel()
    finally:
        env.close()
    finite = np.isfinite(low) & np.isfinite(high) & (high > low)
    low, high = np.where(finite, low, -1.0), np.where(finite, high, 1.0)
    loc, scale = (high + low) / 2, (high - low) / 2
    out = tuple(float(x) for x in loc), tuple(float(x) for x in scale)
    return (*out, tuple(bool(x) for x in finite)) if with_bounded else out


class SyntheticContextualBandit(SyntheticEnvBase):
    """A synthetic contextual bandit mirroring a real env's observation and action spaces (module docstring).

    Args:
        real_spec: the real env's :class:`EnvSpec` (or the real env itself; obs dim, action space and bounds are
            copied; the time limit of the synthetic env is 1).
        hidden: hidden widths of both sub-networks (reference: ``(32,)``).
        latent_dim: size of the latent ``z`` (default: ``obs_dim``, as the reference).
        activation: hidden activation (reference: relu).
        genome: optional ``[G]`` genome returned by :meth:`default_params` (a loaded env carries its own).
        latent_period: share latent draws between rows ``r`` and ``r + j * latent_period`` (common random
            numbers across a member-major population; batch sizes must then be multiples of it). Same as
            ``crn_period``.
        clip_actions: clip continuous actions to the real env's bounds before the reward network sees them.
        obs_loc, obs_scale: optional per-dimension observation scaling (``obs_dim`` numbers each; file format 2):
            the initial-state network outputs ``obs_loc + obs_scale * out`` and the reward network sees
            ``(obs - obs_loc) / obs_scale``, so both networks work on unit-scale values even where the real env's
            observations do not (e.g. MountainCar's velocity in ``[-0.07, 0.07]``); see :func:`observation_scaling`.
            Agents still see raw observations. None: no scaling (the reference).
        obs_squash: optional per-dimension flags (needs ``obs_scale``): the initial-state output of a flagged
            dimension goes through ``tanh`` before the scaling, so its contexts stay inside ``obs_loc +- obs_scale``
            (the real observation box) -- agents then train on states like those they meet in the real env.
        crn_period: the name shared with the other kinds for ``latent_period``.
        reward_head: ``"mlp"`` (the reference): the reward network scores ``[observation, action]``.
            ``"quadratic"`` (continuous actions only; file format 3): the reward network maps the observation to
            ``(v, m, c)`` and ``r(s, a) = v - sum_j softplus(c_j) ((a_j - mu_j) / h_j)^2`` with
            ``mu = mid + h * tanh(m)`` (``mid``, ``h``: the action box's centre and half-width) -- a reward with one
            maximum ``mu(s)`` inside the box, so every learner (greedy or gradient-based) finds the same best
            action. The learned part is still a reward network and an initial-state network.
    """

    kind = "scb"
    file_prefix = "SCB"
    format_version = 1
    init_scheme = "lecun_normal"
    _crn_arg = "latent_period"

    def __init__(
        self,
        real_spec: EnvSpec | FunctionalEnv,
        hidden: Sequence[int] = (32,),
        latent_dim: int | None = None,
        activation: str = "relu",
        genome: Tensor | None = None,
        latent_period: int | None = None,
        clip_actions: bool = True,
        *,
        crn_period: int | None = None,
        obs_loc: Sequence[float] | None = None,
        obs_scale: Sequence[float] | None = None,
        obs_squash: Sequence[bool] | None = None,
        reward_head: str = "mlp",
    ) -> None:
        _, real_spec = _real_parts(real_spec, "SyntheticContextualBandit", need_env=False)
        self._check_real_spec(real_spec, "SCB")
        self.reward_head = _choice(reward_head, "reward_head", ("mlp", "quadratic"))
        if self.reward_head == "quadratic" and real_spec.discrete:
            raise ValueError(f"{real_spec.env_id}: reward_head='quadratic' needs continuous actions, the env has "
                             f"{real_spec.n_actions} discrete ones (use reward_head='mlp')")
        self.obs_loc, self.obs_scale = _obs_scaling(obs_loc, obs_scale, real_spec)
        self.obs_squash: tuple[bool, ...] | None = None
        if obs_squash is not None and any(obs_squash):
            if self.obs_scale is None:
                raise ValueError(f"{real_spec.env_id}: obs_squash needs obs_loc/obs_scale (the box to stay inside)")
            if len(obs_squash) != real_spec.obs_dim or not all(isinstance(x, bool) for x in obs_squash):
                raise ValueError(f"{real_spec.env_id}: obs_squash={obs_squash!r}, expected {real_spec.obs_dim} booleans")
            self.obs_squash = tuple(obs_squash)
        self.format_version = 3 if self.reward_head == "quadratic" else (1 if self.obs_scale is None else 2)
        self._scaling: dict[torch.device, tuple[Tensor, Tensor, Tensor | None]] = {}
        if latent_period is not None and crn_period is not None and latent_period != crn_period:
            raise ValueError(f"latent_period={latent_period!r} and crn_period={crn_period!r}: give one of them")
        self.hidden = _hidden_tuple(hidden)
        obs_dim = real_spec.obs_dim
        if latent_dim is not None and (isinstance(latent_dim, bool) or int(latent_dim) < 1):
            raise ValueError(f"latent_dim={latent_dim!r}: expected a positive int")
        self.latent_dim = int(latent_dim) if latent_dim is not None else obs_dim
        self.activation = activation
        spec = dataclasses.replace(real_spec, env_id=f"SCB-{real_spec.env_id}", max_episode_steps=1)
        act_in = real_spec.act_dim
        self.init_net = FlatMLP([self.latent_dim, *self.hidden, obs_dim], activation)
        if self.reward_head == "quadratic":
            self.reward_net = FlatMLP([obs_dim, *self.hidden, 1 + 2 * act_in], activation)
            low = torch.tensor(real_spec.action_low, dtype=torch.float32)
            high = torch.tensor(real_spec.action_high, dtype=torch.float32)
            if not bool(torch.isfinite(high - low).all()):
                raise ValueError(f"{real_spec.env_id}: reward_head='quadratic' needs a bounded action box, got "
                                 f"low={real_spec.action_low}, high={real_spec.action_high}")
            self._action_box = ((high + low) / 2, (high - low) / 2)
            self._box_cache: dict[torch.device, tuple[Tensor, Tensor]] = {}
        else:
            self.reward_net = FlatMLP([obs_dim + act_in, *self.hidden, 1], activation)
        self._setup(real_spec, spec, {"initial_state": self.init_net, "reward": self.reward_net}, genome,
                    latent_period if latent_period is not None else crn_period, clip_actions)

    def _repr_options(self) -> str:
        head = "" if self.reward_head == "mlp" else f", reward_head={self.reward_head!r}"
        return f"hidden={self.hidden}, latent_dim={self.latent_dim}{head}"

    @property
    def latent_period(self) -> int | None:
        """The SCB's name for :attr:`crn_period`."""
        return self.crn_period

    def with_latent_period(self, latent_period: int | None) -> SyntheticContextualBandit:
        """A copy sharing everything but :attr:`latent_period` (= :meth:`with_crn_period`)."""
        return self.with_crn_period(latent_period)

    # ------------------------------------------------------------------------------------------------ networks
    def split(self, genome: Tensor) -> tuple[Tensor, Tensor]:
        """``(initial-state params [..., Pi], reward params [..., Pr])`` of ``genome [..., G]``."""
        return torch.split(genome, [self.init_net.num_params, self.reward_net.num_params], dim=-1)

    def _loc_scale(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(loc, scale, squash mask or None)`` on ``device`` (made once per device)."""
        if device not in self._scaling:
            mask = None if self.obs_squash is None else torch.tensor(self.obs_squash, device=device)
            self._scaling[device] = (torch.tensor(self.obs_loc, dtype=torch.float32, device=device),
                                     torch.tensor(self.obs_scale, dtype=torch.float32, device=device), mask)
        return self._scaling[device]

    def scale_out(self, out: Tensor) -> Tensor:
        """The initial-state network's output ``[..., obs_dim]`` -> observations (``obs_loc + obs_scale * out``,
        ``tanh(out)`` in the dimensions flagged by ``obs_squash``)."""
        if self.obs_scale is None:
            return out
        loc, scale, mask = self._loc_scale(out.device)
        if mask is not None:
            out = torch.where(mask, torch.tanh(out), out)
        return loc + scale * out

    def scale_in(self, obs: Tensor) -> Tensor:
        """Observations ``[..., obs_dim]`` -> the reward network's input (``(obs - obs_loc) / obs_scale``)."""
        obs = obs.to(torch.float32)
        if self.obs_scale is None:
            return obs
        loc, scale, _ = self._loc_scale(obs.device)
        return (obs - loc) / scale

    def initial_obs(self, genome: Tensor, z: Tensor) -> Tensor:
        """Observations ``[B, obs_dim]`` from latents ``z [B, latent_dim]`` (``genome [G]`` or ``[B, G]``)."""
        return self.scale_out(self._apply(self.init_net, self.split(genome)[0], z))

    def reward(self, genome: Tensor, obs: Tensor, action: Tensor) -> Tensor:
        """Rewards ``[B]`` of ``action`` (``[B]`` int or ``[B, A]`` float) in ``obs [B, obs_dim]``."""
        reward_p = self.split(genome)[1]
        if reward_p.dim() == 1:  # one SCB for every row
            return self.scores_at(reward_p.unsqueeze(0), obs.unsqueeze(0), action.unsqueeze(0))[0]
        return self.scores_at(reward_p, obs.unsqueeze(1), action.unsqueeze(1))[:, 0]  # one SCB per row

    def scores(self, reward_p: Tensor, obs: Tensor, act_in: Tensor) -> Tensor:
        """Rewards ``[M, N, K]`` of ``K`` candidate actions (network inputs ``act_in [K, act_in]``, see
        :meth:`action_input`) in each of ``N`` observations ``obs [M, N, obs_dim]`` of ``M`` SCBs (reward params
        ``[M, Pr]``, the second part of :meth:`split`)."""
        m, n, k = obs.shape[0], obs.shape[1], act_in.shape[0]
        if self.reward_head == "quadratic":
            head = self.reward_net(reward_p, self.scale_in(obs))  # [M, N, 1 + 2A]
            return self._quadratic(head.unsqueeze(2), act_in)
        x = torch.cat([self.scale_in(obs).unsqueeze(2).expand(m, n, k, -1),
                       act_in.expand(m, n, k, -1)], dim=-1).reshape(m, n * k, -1)
        return self.reward_net(reward_p, x).reshape(m, n, k)

    def scores_at(self, reward_p: Tensor, obs: Tensor, action: Tensor) -> Tensor:
        """Rewards ``[M, B]`` of one action per observation (``action [M, B, A]`` float or ``[M, B]`` int,
        ``obs [M, B, obs_dim]``) for ``M`` SCBs (reward params ``[M, Pr]``); differentiable in a float ``action``."""
        act = self.action_input(action)
        if self.reward_head == "quadratic":
            return self._quadratic(self.reward_net(reward_p, self.scale_in(obs)), act)
        return self.reward_net(reward_p, torch.cat([self.scale_in(obs), act], dim=-1)).squeeze(-1)

    def action_box(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(centre, half-width)`` ``[A]`` of the action box on ``device`` (quadratic head; made once per device)."""
        if device not in self._box_cache:
            self._box_cache[device] = tuple(x.to(device) for x in self._action_box)
        return self._box_cache[device]

    def head_mu(self, head: Tensor) -> Tensor:
        """Quadratic head outputs ``[..., 1 + 2A]`` -> the reward's maximiser ``mu = mid + h tanh(m)`` ``[..., A]``."""
        mid, half = self.action_box(head.device)
        return mid + half * torch.tanh(head[..., 1:1 + self.real_spec.action_dim])

    def _quadratic(self, head: Tensor, act: Tensor) -> Tensor:
        """``reward_head="quadratic"``: head outputs ``[..., 1 + 2A]`` and actions ``[..., A]`` -> rewards ``[...]``."""
        half = self.action_box(head.device)[1]
        curvature = torch.nn.functional.softplus(head[..., 1 + self.real_spec.action_dim:])
        return head[..., 0] - (curvature * ((act - self.head_mu(head)) / half) ** 2).sum(-1)

    def best_action(self, genome: Tensor, obs: Tensor) -> Tensor:
        """``reward_head="quadratic"`` only: the reward's maximiser ``mu(s)`` ``[B, A]`` in ``obs [B, obs_dim]``."""
        if self.reward_head != "quadratic":
            raise ValueError(f"best_action needs reward_head='quadratic' (a closed-form maximiser), got {self.reward_head!r}")
        return self.head_mu(self._apply(self.reward_net, self.split(genome)[1], self.scale_in(obs)))

    def _latents(self, batch: int, generator: torch.Generator) -> Tensor:
        return self._crn_draw(batch, lambda n: torch.randn(n, self.latent_dim, generator=generator, device=generator.device))

    # ------------------------------------------------------------------------------------------------ contract
    def reset(self, batch_size: int, generator: torch.Generator,
              params: SyntheticEnvParams | None = None) -> tuple[SCBState, Tensor]:
        """``batch_size`` fresh contexts: ``(state, obs [B, obs_dim] float32)`` (one ``randn`` call)."""
        self._check_reset(batch_size, generator)
        genome = self._params(params, batch_size, generator.device)
        obs = self.initial_obs(genome, self._latents(batch_size, generator))
        return SCBState(obs, torch.zeros(batch_size, dtype=torch.int64, device=obs.device)), obs

    def step(self, state: SCBState, action: Tensor, generator: torch.Generator,
             params: SyntheticEnvParams | None = None) -> tuple[SCBState, Tensor, Tensor, Tensor, Tensor]:
        """Reward the action, terminate every row and auto-reset it with a fresh latent.

        Returns ``(state, obs [B, obs_dim], reward [B] float32, terminated [B] bool (all True), truncated [B]
        bool (all False))``; ``obs`` is the next episode's observation.
        """
        batch = state.obs.shape[0]
        self._check_action(action, batch)
        genome = self._params(params, batch, state.obs.device)
        reward = self.reward(genome, state.obs, action)
        obs = self.initial_obs(genome, self._latents(batch, generator))
        terminated = torch.ones(batch, dtype=torch.bool, device=obs.device)
        return SCBState(obs, torch.zeros_like(state.time)), obs, reward, terminated, torch.zeros_like(terminated)

    # ------------------------------------------------------------------------------------------------ metadata
    def architecture(self) -> dict[str, Any]:
        return {
            **self._base_architecture(),
            "latent_dim": self.latent_dim,
            "latent_dist": "normal(0, I)",
            "episode_length": 1,
            "obs_loc": None if self.obs_loc is None else list(self.obs_loc),
            "obs_scale": None if self.obs_scale is None else list(self.obs_scale),
            "obs_squash": None if self.obs_squash is None else list(self.obs_squash),
            "reward_head": self.reward_head,
            "layout": self._layout_json(),
        }

    @classmethod
    def from_architecture(cls, real: FunctionalEnv | EnvSpec, arch: dict[str, Any],
                          crn_period: int | None = None) -> SyntheticContextualBandit:
        return cls(real, tuple(arch["hidden"]), int(arch["latent_dim"]), arch["activation"],
                   latent_period=crn_period, clip_actions=bool(arch.get("clip_actions", True)),
                   obs_loc=arch.get("obs_loc"), obs_scale=arch.get("obs_scale"), obs_squash=arch.get("obs_squash"),
                   reward_head=arch.get("reward_head", "mlp"))

    @staticmethod
    def needs_real_env(arch: dict[str, Any]) -> bool:
        return False


# ---------------------------------------------------------------------------------------------------- MDP
class SyntheticMDP(SyntheticEnvBase):
    """A neural MDP (Ferreira et al. 2022's synthetic environment) mirroring a real env's spaces (module docstring).

    Args:
        real_env: the real native :class:`FunctionalEnv` (e.g. ``make_native("CartPole-v0")``); its ``reset``
            gives the initial observations with ``initial_state="real"``. With ``initial_state="learned"`` its
            :class:`EnvSpec` is enough.
        hidden: hidden widths of every head (reference CartPole: ``(83,)``; Acrobot ``(167,)``).
        activation: hidden activation (reference CartPole: ``"leaky_relu"``; the reference's Acrobot PReLU has
            learned slopes and is not available).
        transition: ``"direct"`` (the head outputs the next state; reference) or ``"delta"`` (``state + output``).
        initial_state: ``"real"`` (initial observations from the real env's reset; reference) or ``"learned"``
            (an initial-state network of ``z ~ N(0, I)``, as the SCB's).
        latent_dim: size of ``z`` with ``initial_state="learned"`` (default ``obs_dim``).
        state_clip: next states (and learned initial states) are clamped to ``[-state_clip, state_clip]``.
        max_episode_steps: time limit (default: the real env's).
        clip_actions: clip continuous actions to the real env's bounds before the networks see them.
        genome: optional ``[G]`` genome (a loaded env carries its own).
        crn_period: common random numbers (module docstring).
    """

    kind = "mdp"
    file_prefix = "MDP"
    format_version = 2
    init_scheme = "torch_linear"

    def __init__(
        self,
        real_env: FunctionalEnv | EnvSpec,
        hidden: Sequence[int] = (83,),
        activation: str = "leaky_relu",
        transition: str = "direct",
        initial_state: str = "real",
        latent_dim: int | None = None,
        state_clip: float = 100.0,
        max_episode_steps: int | None = None,
        clip_actions: bool = True,
        genome: Tensor | None = None,
        crn_period: int | None = None,
    ) -> None:
        self.transition = _choice(transition, "transition", ("direct", "delta"))
        self.initial_state = _choice(initial_state, "initial_state", ("real", "learned"))
        real, real_spec = _real_parts(real_env, f"SyntheticMDP(initial_state={initial_state!r})",
                                      need_env=self.initial_state == "real")
        self._check_real_spec(real_spec, "SyntheticMDP")
        self.real_env = real
        self.hidden = _hidden_tuple(hidden)
        self.activation = activation
        obs_dim = real_spec.obs_dim
        if self.initial_state == "real":
            if latent_dim is not None:
                raise ValueError(f"latent_dim={latent_dim!r}: only used with initial_state='learned'")
            self.latent_dim: int | None = None
        else:
            if latent_dim is not None and (isinstance(latent_dim, bool) or int(latent_dim) < 1):
                raise ValueError(f"latent_dim={latent_dim!r}: expected a positive int")
            self.latent_dim = int(latent_dim) if latent_dim is not None else obs_dim
        if isinstance(state_clip, bool) or not isinstance(state_clip, (int, float)) or not 0 < float(state_clip) < math.inf:
            raise ValueError(f"state_clip={state_clip!r}: expected a positive finite float")
        self.state_clip = float(state_clip)
        steps = real_spec.max_episode_steps if max_episode_steps is None else max_episode_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"max_episode_steps={max_episode_steps!r}: expected None or a positive int")
        spec = dataclasses.replace(real_spec, env_id=f"SynthMDP-{real_spec.env_id}", max_episode_steps=int(steps))
        act_in = real_spec.act_dim
        x_dim = act_in + obs_dim
        heads = {
            "transition": FlatMLP([x_dim, *self.hidden, obs_dim], activation),
            "reward": FlatMLP([x_dim, *self.hidden, 1], activation),
            "done": FlatMLP([x_dim, *self.hidden, 1], activation),
        }
        if self.initial_state == "learned":
            heads["initial_state"] = FlatMLP([self.latent_dim, *self.hidden, obs_dim], activation)
        self._setup(real_spec, spec, heads, genome, crn_period, clip_actions)

    def _repr_options(self) -> str:
        return (f"hidden={self.hidden}, activation={self.activation!r}, transition={self.transition!r}, "
                f"initial_state={self.initial_state!r}")

    # ------------------------------------------------------------------------------------------------ networks
    def forward(self, genome: Tensor, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The raw model: ``(next_obs [B, obs_dim] (delta applied, not clamped), reward [B], done_out [B])`` for
        ``obs [B, obs_dim]``, ``action`` (``[B]`` int or ``[B, A]`` float), ``genome [G]`` or ``[B, G]``."""
        hp = self.head_params(genome)
        obs = obs.to(torch.float32)
        x = torch.cat([self.action_input(action), obs], dim=-1)
        nxt = self._apply(self.heads["transition"], hp["transition"], x)
        if self.transition == "delta":
            nxt = obs + nxt
        reward = self._apply(self.heads["reward"], hp["reward"], x).squeeze(-1)
        done = self._apply(self.heads["done"], hp["done"], x).squeeze(-1)
        return nxt, reward, done

    def _clip(self, x: Tensor) -> Tensor:
        c = self.state_clip
        return torch.nan_to_num(x, nan=0.0, posinf=c, neginf=-c).clamp(-c, c)

    def initial_obs(self, genome: Tensor, z: Tensor) -> Tensor:
        """Learned initial observations ``[B, obs_dim]`` (clamped) of latents ``z [B, latent_dim]``."""
        if self.initial_state != "learned":
            raise ValueError(f"{self.spec.env_id}: initial_obs needs initial_state='learned', this env uses 'real'")
        return self._clip(self._apply(self.heads["initial_state"], self.head_params(genome)["initial_state"], z))

    def _initial(self, batch: int, generator: torch.Generator, genome: Tensor) -> Tensor:
        if self.initial_state == "real":
            real = self.real_env
            return self._crn_draw(batch, lambda n: real.reset(n, generator)[1]).to(torch.float32)  # type: ignore[union-attr]
        z = self._crn_draw(batch, lambda n: torch.randn(n, self.latent_dim, generator=generator, device=generator.device))
        return self.initial_obs(genome, z)

    # ------------------------------------------------------------------------------------------------ contract
    def reset(self, batch_size: int, generator: torch.Generator,
              params: SyntheticEnvParams | None = None) -> tuple[SyntheticMDPState, Tensor]:
        """``batch_size`` initial observations: ``(state, obs [B, obs_dim] float32)``."""
        self._check_reset(batch_size, generator)
        genome = self._params(params, batch_size, generator.device)
        obs = self._initial(batch_size, generator, genome)
        return SyntheticMDPState(obs, torch.zeros(batch_size, dtype=torch.int64, device=obs.device)), obs

    def step(self, state: SyntheticMDPState, action: Tensor, generator: torch.Generator,
             params: SyntheticEnvParams | None = None) -> tuple[SyntheticMDPState, Tensor, Tensor, Tensor, Tensor]:
        """One model step with auto-reset.

        ``terminated = done_out > 0.5`` (or a non-finite output), ``truncated = time + 1 >= max_episode_steps``
        (reported alongside ``terminated`` when both happen). Returns ``(state, obs [B, obs_dim], reward [B]
        float32, terminated [B] bool, truncated [B] bool)``; rows that ended come back with fresh initial
        observations (one batch of initial states is drawn per call).
        """
        obs, time = state.obs, state.time
        batch = obs.shape[0]
        self._check_action(action, batch)
        genome = self._params(params, batch, obs.device)
        nxt, reward, done_out = self.forward(genome, obs, action)
        reward_ok = torch.isfinite(reward)
        finite = torch.isfinite(nxt).all(-1) & reward_ok & torch.isfinite(done_out)
        terminated = (done_out > DONE_THRESHOLD) | ~finite
        reward = torch.where(reward_ok, reward, torch.zeros_like(reward))
        time = time + 1
        truncated = time >= self.spec.max_episode_steps
        done = terminated | truncated
        fresh = self._initial(batch, generator, genome)
        obs = torch.where(done.unsqueeze(-1), fresh, self._clip(nxt))
        time = torch.where(done, torch.zeros_like(time), time)
        return SyntheticMDPState(obs, time), obs, reward, terminated, truncated

    # ------------------------------------------------------------------------------------------------ metadata
    def architecture(self) -> dict[str, Any]:
        return {
            **self._base_architecture(),
            "input": "cat(action, state)",
            "transition": self.transition,
            "initial_state": self.initial_state,
            "latent_dim": self.latent_dim,
            "state_clip": self.state_clip,
            "done_threshold": DONE_THRESHOLD,
            "max_episode_steps": self.spec.max_episode_steps,
            "layout": self._layout_json(),
        }

    @classmethod
    def from_architecture(cls, real: FunctionalEnv | EnvSpec, arch: dict[str, Any],
                          crn_period: int | None = None) -> SyntheticMDP:
        latent = arch.get("latent_dim")
        return cls(real, tuple(arch["hidden"]), arch["activation"], arch["transition"], arch["initial_state"],
                   None if latent is None else int(latent), float(arch["state_clip"]), int(arch["max_episode_steps"]),
                   bool(arch.get("clip_actions", True)), crn_period=crn_period)

    @staticmethod
    def needs_real_env(arch: dict[str, Any]) -> bool:
        return arch.get("initial_state") == "real"


# ---------------------------------------------------------------------------------------------------- reward nets
class RewardNetworkEnv(SyntheticEnvBase):
    """The real env's dynamics with a learned reward (Ferreira et al. 2022's reward networks; module docstring).

    Args:
        real_env: the real native :class:`FunctionalEnv` (e.g. ``make_native("CartPole-v1")``), run with its
            default params. Classic-control envs give the exact pre-reset ``s'`` for the potential.
        gamma: discount of the potential-based shaping ``gamma Phi(s') - Phi(s)`` (reference: the agent's 0.99).
        mode: ``"exclusive"`` (the learned reward replaces the real one) or ``"additive"`` (added to it).
        potential: potential-based (a state network ``Phi``) or not (an MLP over ``[s, action encoding]``).
        hidden: hidden widths (reference CartPole: ``(64, 64)``).
        activation: hidden activation (reference CartPole: ``"leaky_relu"``).
        clip_actions: clip continuous actions to the real env's bounds before the reward network sees them (the
            real env gets the raw action, as it would without the reward network).
        genome: optional ``[G]`` genome (a loaded env carries its own).
        crn_period: common random numbers (module docstring): the real env's initial states are drawn
            ``crn_period`` at a time and tiled, in ``reset`` and in the auto-reset of ``step``.
    """

    kind = "reward"
    file_prefix = "RewardNet"
    format_version = 2
    init_scheme = "torch_linear"

    def __init__(
        self,
        real_env: FunctionalEnv,
        gamma: float = 0.99,
        mode: str = "additive",
        potential: bool = True,
        hidden: Sequence[int] = (64, 64),
        activation: str = "leaky_relu",
        clip_actions: bool = True,
        genome: Tensor | None = None,
        crn_period: int | None = None,
    ) -> None:
        real, real_spec = _real_parts(real_env, "RewardNetworkEnv", need_env=True)
        self._check_real_spec(real_spec, "RewardNetworkEnv")
        self.real_env: FunctionalEnv = real  # type: ignore[assignment]
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"gamma={gamma!r}: expected a float in [0, 1]")
        self.gamma = float(gamma)
        self.mode = _choice(mode, "mode", ("exclusive", "additive"))
        if not isinstance(potential, bool):
            raise TypeError(f"potential={potential!r}: expected True or False")
        self.potential = potential
        self.hidden = _hidden_tuple(hidden)
        self.activation = activation
        self.exact_next_obs = isinstance(real, _ClassicControlEnv)
        obs_dim = real_spec.obs_dim
        act_in = real_spec.act_dim
        if potential:
            heads = {"potential": FlatMLP([obs_dim, *self.hidden, 1], activation)}
        else:
            heads = {"reward": FlatMLP([obs_dim + act_in, *self.hidden, 1], activation)}
        spec = dataclasses.replace(real_spec, env_id=f"RewardNet-{real_spec.env_id}")
        self._setup(real_spec, spec, heads, genome, crn_period, clip_actions)
        self._real_params: dict[torch.device, Any] = {}

    def _repr_options(self) -> str:
        return (f"mode={self.mode!r}, potential={self.potential}, gamma={self.gamma}, hidden={self.hidden}, "
                f"activation={self.activation!r}")

    # ------------------------------------------------------------------------------------------------ networks
    def potential_of(self, genome: Tensor, obs: Tensor) -> Tensor:
        """``Phi(obs)`` ``[B]`` (``potential=True``)."""
        if not self.potential:
            raise ValueError(f"{self.spec.env_id}: potential_of needs potential=True")
        return self._apply(self.heads["potential"], self.head_params(genome)["potential"], obs.to(torch.float32)).squeeze(-1)

    def learned_reward(self, genome: Tensor, obs: Tensor, action: Tensor, next_obs: Tensor,
                       next_valid: Tensor) -> Tensor:
        """The learned reward ``[B]`` of ``(s = obs, a = action, s' = next_obs)``; ``next_valid [B]`` bool is False
        where ``Phi(s')`` counts as 0 (the step terminated)."""
        if self.potential:
            phi_next = self.potential_of(genome, next_obs)
            phi_next = torch.where(next_valid, phi_next, torch.zeros_like(phi_next))
            return self.gamma * phi_next - self.potential_of(genome, obs)
        x = torch.cat([obs.to(torch.float32), self.action_input(action)], dim=-1)
        return self._apply(self.heads["reward"], self.head_params(genome)["reward"], x).squeeze(-1)

    # ------------------------------------------------------------------------------------------------ contract
    def reset(self, batch_size: int, generator: torch.Generator,
              params: SyntheticEnvParams | None = None) -> tuple[RewardNetState, Tensor]:
        """The real env's reset (``crn_period`` rows at a time, tiled): ``(state, obs [B, obs_dim] float32)``."""
        self._check_reset(batch_size, generator)
        self._params(params, batch_size, generator.device)
        real_state, obs = self._crn_draw(batch_size, lambda n: self.real_env.reset(n, generator))
        obs = obs.to(torch.float32)
        return RewardNetState(real_state, obs), obs

    def step(self, state: RewardNetState, action: Tensor, generator: torch.Generator,
             params: SyntheticEnvParams | None = None) -> tuple[RewardNetState, Tensor, Tensor, Tensor, Tensor]:
        """One real-env step with the learned reward, auto-reset as the real env.

        Returns ``(state, obs [B, obs_dim], reward [B] float32, terminated [B] bool, truncated [B] bool)``; the
        flags and the dynamics are the real env's, the reward is the learned one (``exclusive``) or the real one
        plus the learned one (``additive``).
        """
        obs = state.obs
        batch = obs.shape[0]
        self._check_action(action, batch)
        genome = self._params(params, batch, obs.device)
        real = self.real_env
        if self.exact_next_obs:
            # The classic-control step (classic_control._ClassicControlEnv.step), split to keep the pre-reset s'.
            rc: _ClassicControlEnv = real  # type: ignore[assignment]
            p = self._real_params.get(obs.device)
            if p is None:
                p = self._real_params[obs.device] = rc.default_params(obs.device)
            fields, real_reward, terminated = rc._transition(state.real, rc._check_action(action, batch), p)
            time = state.real.time + 1
            truncated = time >= rc.spec.max_episode_steps
            nxt = rc.State(*fields, time)
            next_obs = rc._obs(nxt)
            next_valid = ~terminated
            done = terminated | truncated
            fresh = self._crn_draw(batch, lambda n: rc._sample(n, generator, p))
            real_state = _where_rows(done, fresh, nxt)
            new_obs = rc._obs(real_state)
        else:
            real_state, new_obs, real_reward, terminated, truncated = real.step(state.real, action, generator)
            done = terminated | truncated
            if self.crn_period is not None:
                fresh_state, fresh_obs = self._crn_draw(batch, lambda n: real.reset(n, generator))
                real_state = _where_rows(done, fresh_state, real_state)
                new_obs = _where_rows(done, fresh_obs, new_obs)
            next_obs = new_obs  # pre-reset s' is only known for rows that did not end
            next_valid = ~done
        learned = self.learned_reward(genome, obs, action, next_obs.to(torch.float32), next_valid)
        reward = learned if self.mode == "exclusive" else real_reward.to(torch.float32) + learned
        new_obs = new_obs.to(torch.float32)
        return RewardNetState(real_state, new_obs), new_obs, reward, terminated, truncated

    # ------------------------------------------------------------------------------------------------ metadata
    def architecture(self) -> dict[str, Any]:
        return {
            **self._base_architecture(),
            "mode": self.mode,
            "potential": self.potential,
            "gamma": self.gamma,
            "input": "state" if self.potential else "cat(state, action)",
            "layout": self._layout_json(),
        }

    @classmethod
    def from_architecture(cls, real: FunctionalEnv | EnvSpec, arch: dict[str, Any],
                          crn_period: int | None = None) -> RewardNetworkEnv:
        return cls(real, float(arch["gamma"]), arch["mode"], bool(arch["potential"]), tuple(arch["hidden"]),
                   arch["activation"], bool(arch.get("clip_actions", True)), crn_period=crn_period)

    @staticmethod
    def needs_real_env(arch: dict[str, Any]) -> bool:
        return True


SyntheticEnv = SyntheticContextualBandit | SyntheticMDP | RewardNetworkEnv

KINDS: dict[str, type[SyntheticEnvBase]] = {
    "scb": SyntheticContextualBandit,
    "mdp": SyntheticMDP,
    "reward": RewardNetworkEnv,
}
"""File ``kind`` -> class."""


# ---------------------------------------------------------------------------------------------------- files
class SyntheticEnvFileError(ValueError):
    """A synthetic-env file that is missing, corrupt or inconsistent with its metadata."""


def shipped_synthetic_envs() -> dict[str, Path]:
    """Synthetic envs shipped inside the package, by name (file stem), e.g. ``{"SCB-CartPole-v1": .../SCB-CartPole-v1.safetensors}``."""
    return {p.stem: p for p in sorted(Path(SHIPPED_DIR).glob("*.safetensors"))}


def resolve_synthetic_env(path_or_name: str | os.PathLike) -> Path:
    """A path to an existing file, or the shipped synthetic env of that name (with or without ``.safetensors``)."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    shipped = shipped_synthetic_envs()
    name = str(path_or_name)
    key = name.removesuffix(".safetensors")
    if key in shipped:
        return shipped[key]
    names = ", ".join(shipped) or "(none)"
    raise SyntheticEnvFileError(f"{name}: no such synthetic-env file, and no shipped synthetic env of that name "
                                f"(shipped: {names})")


def save_synthetic_env(path: str | os.PathLike, env: SyntheticEnvBase, genome: Tensor | None = None,
                       metadata: dict[str, Any] | None = None) -> None:
    """Write ``genome [G]`` of ``env`` (default: the env's carried genome) atomically as safetensors + JSON metadata
    (module docstring)."""
    from safetensors.torch import save_file

    import torch_distill
    from torch_distill.io import atomic_write

    if not isinstance(env, SyntheticEnvBase):
        raise TypeError(f"env={type(env).__name__}: expected one of {', '.join(c.__name__ for c in KINDS.values())}")
    if genome is None:
        if env.genome is None:
            raise ValueError(f"{path}: no genome given and {env.spec.env_id} carries none")
        genome = env.genome
    genome = env._check_genome_vector(genome).cpu().contiguous()
    if not torch.isfinite(genome).all():
        raise SyntheticEnvFileError(f"{path}: genome contains NaN or inf values")
    meta = dict(metadata or {})
    meta.update(format=FORMAT, format_version=env.format_version, kind=env.kind, env=env.real_spec.to_json(),
                architecture=env.architecture(), num_params=env.num_params)
    meta.setdefault("library_version", torch_distill.__version__)
    tensors = {"genome": genome, **{k: v.contiguous().clone() for k, v in env.unflatten(genome).items()}}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"torch_distill": json.dumps(meta, default=str)}))


def read_synthetic_env_metadata(path_or_name: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a synthetic-env file or shipped env (raises :class:`SyntheticEnvFileError`)."""
    from safetensors import safe_open

    p = resolve_synthetic_env(path_or_name)
    try:
        with safe_open(str(p), framework="pt") as f:
            raw = (f.metadata() or {}).get("torch_distill")
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for corrupt headers
        raise SyntheticEnvFileError(f"{p}: not a safetensors file ({e})") from None
    if raw is None:
        raise SyntheticEnvFileError(f"{p}: no 'torch_distill' metadata; not a torch_distill synthetic env")
    try:
        meta = json.loads(raw)
    except ValueError as e:
        raise SyntheticEnvFileError(f"{p}: metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise SyntheticEnvFileError(f"{p}: metadata is a JSON {type(meta).__name__}, expected an object")
    if meta.get("format") != FORMAT:
        raise SyntheticEnvFileError(f"{p}: format {meta.get('format')!r}, expected {FORMAT!r}")
    try:
        version = int(meta.get("format_version", -1))
    except (TypeError, ValueError):
        raise SyntheticEnvFileError(f"{p}: format_version {meta.get('format_version')!r} is not an int") from None
    if version > FORMAT_VERSION:
        raise SyntheticEnvFileError(f"{p}: format_version {version} is newer than this library's {FORMAT_VERSION}; "
                                    f"upgrade torch_distill")
    if meta.get("kind") not in KINDS:
        raise SyntheticEnvFileError(f"{p}: kind {meta.get('kind')!r}, expected one of {', '.join(map(repr, KINDS))}")
    return meta


def _native_real_env(spec: EnvSpec, path: Path) -> FunctionalEnv:
    """The native env of the recorded real-env ``spec`` (same spec, time limit included)."""
    from torch_distill.envs.vec import UnknownEnvError, make_native

    try:
        real = make_native(spec.env_id)
    except UnknownEnvError as e:
        raise SyntheticEnvFileError(f"{path}: the recorded real env has no native torch env ({e})") from None
    if real.spec != spec and real.spec.max_episode_steps != spec.max_episode_steps:
        try:
            real = make_native(spec.env_id, max_episode_steps=spec.max_episode_steps)
        except TypeError:
            pass
    return real


def load_synthetic_env(path_or_name: str | os.PathLike, device: torch.device | str = "cpu",
                       latent_period: int | None = None, *, crn_period: int | None = None,
                       real_env: FunctionalEnv | None = None) -> SyntheticEnv:
    """Load a saved synthetic env (a path, or the name of a shipped env, e.g. ``"SCB-CartPole-v1"``) as a native
    torch env whose :meth:`~SyntheticEnvBase.default_params` is the saved genome.

    ``env.reset(B, generator)`` / ``env.step(state, action, generator)`` then run it; ``env.genome`` is the genome
    on ``device``, ``env.metadata`` the file's metadata. ``crn_period`` (``latent_period``, the SCB's name) sets
    common random numbers. Kinds that need the real env rebuild it with ``make_native(env_id)`` from the recorded
    spec, unless ``real_env`` (whose spec must equal the recorded one) is given.
    """
    from safetensors import safe_open

    if latent_period is not None and crn_period is not None and latent_period != crn_period:
        raise ValueError(f"latent_period={latent_period!r} and crn_period={crn_period!r}: give one of them")
    period = latent_period if latent_period is not None else crn_period
    path = resolve_synthetic_env(path_or_name)
    meta = read_synthetic_env_metadata(path)
    cls = KINDS[meta["kind"]]
    try:
        spec = EnvSpec.from_json(meta["env"])
        arch = meta["architecture"]
        if not isinstance(arch, dict):
            raise TypeError(f"architecture is a {type(arch).__name__}, expected an object")
    except (KeyError, TypeError, ValueError) as e:
        raise SyntheticEnvFileError(f"{path}: inconsistent metadata ({type(e).__name__}: {e})") from None
    real: FunctionalEnv | EnvSpec = spec
    if cls.needs_real_env(arch):
        real = real_env if real_env is not None else _native_real_env(spec, path)
        if real.spec != spec:
            raise SyntheticEnvFileError(f"{path}: the recorded real env spec {spec} differs from the real env's "
                                        f"{real.spec}")
    try:
        env = cls.from_architecture(real, arch, crn_period=period)
    except (KeyError, TypeError, ValueError) as e:
        raise SyntheticEnvFileError(f"{path}: inconsistent {meta['kind']!r} architecture ({type(e).__name__}: {e})") from None
    if "layout" in arch and arch["layout"] != env._layout_json():
        raise SyntheticEnvFileError(f"{path}: the recorded genome layout does not match the one rebuilt from the "
                                    f"architecture ({arch['layout']} vs {env._layout_json()})")
    if meta.get("num_params", env.num_params) != env.num_params:
        raise SyntheticEnvFileError(f"{path}: num_params {meta.get('num_params')!r}, the architecture has "
                                    f"{env.num_params}")
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            if "genome" not in keys:
                raise SyntheticEnvFileError(f"{path}: no 'genome' tensor")
            genome = f.get_tensor("genome")
            named = {k: f.get_tensor(k) for k, _ in env.layout() if k in keys}
    except SyntheticEnvFileError:
        raise
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for corrupt payloads
        raise SyntheticEnvFileError(f"{path}: cannot read tensors ({e})") from None
    if genome.shape != (env.num_params,) or genome.dtype != torch.float32:
        raise SyntheticEnvFileError(f"{path}: genome has shape {tuple(genome.shape)} dtype {genome.dtype}, "
                                    f"expected float32 ({env.num_params},) for the recorded architecture")
    if not torch.isfinite(genome).all():
        raise SyntheticEnvFileError(f"{path}: genome contains NaN or inf values")
    views = env.unflatten(genome)
    for k, t in named.items():
        if not torch.equal(t, views[k]):
            raise SyntheticEnvFileError(f"{path}: tensor {k!r} disagrees with the genome")
    env.genome = genome.to(device)
    env.metadata = meta  # type: ignore[attr-defined]
    return env
