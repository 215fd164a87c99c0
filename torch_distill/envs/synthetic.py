"""Learned synthetic environments as natively batched torch envs (the :class:`~torch_distill.envs.core.FunctionalEnv`
contract), and their files.

Synthetic contextual bandit (SCB; Liesen et al. 2024, "Discovering Minimal Reinforcement Learning Environments",
arXiv 2406.12589): an episode is ONE step. ``reset`` draws a latent ``z ~ N(0, I)`` and maps it through the
initial-state network to an observation; ``step`` scores the action with the reward network over
``[observation, action]`` (one-hot for discrete actions), terminates every row and auto-resets it with a fresh
latent. Both networks are MLPs with ``hidden`` ReLU layers (reference: one layer of 32 units; latent size = obs
size), and their parameters are ONE flat genome::

    genome = [ initial_state MLP (latent -> *hidden -> obs_dim) | reward MLP (obs_dim + act_in -> *hidden -> 1) ]

with each MLP laid out as :class:`~torch_distill.algorithms.rl_common.FlatMLP` (per layer ``W [in, out]`` row-major,
then ``b [out]``). CartPole-v1 (obs 4, 2 actions, hidden 32): ``(4*32 + 32 + 32*4 + 4) + (6*32 + 32 + 32 + 1) =
292 + 257 = 549`` parameters, the reference's count.

Params are the genome: :class:`SCBParams` holds ``genome [G]`` (one env broadcast over every row) or
``genome [B, G]`` (one env per row), so a population of synthetic envs is just a batch of params: with a
member-major batch of ``n`` rows per member, member ``m``'s rows carry genome ``m``.

``latent_period=k`` makes rows ``r`` and ``r + j k`` share their latent draws (``k`` draws per call, tiled): with
``k`` = rows per member every member of a population sees the same latents (common random numbers), and an
``M``-member run equals ``M`` single-member runs with the same generator seed.

Files (format ``torch_distill.synthetic_env`` version 1; readable with ``safetensors.safe_open`` + ``json``):
tensors ``genome [G]`` float32 plus, for reading without this library, every layer as
``initial_state.{i}.weight [in, out]`` / ``.bias`` and ``reward.{i}.weight`` / ``.bias``; metadata key
``"torch_distill"``: JSON with ``format``, ``format_version``, ``kind`` ("scb"), ``env`` (the real env's
:class:`~torch_distill.envs.core.EnvSpec`), ``architecture`` (hidden, latent_dim, activation, action encoding,
genome layout), ``num_params`` and free-form fields (evaluation, command, created, ...).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from torch_distill.algorithms.rl_common import FlatMLP
from torch_distill.envs.core import EnvSpec

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SCBParams",
    "SCBState",
    "SyntheticContextualBandit",
    "SyntheticEnvFileError",
    "load_synthetic_env",
    "read_synthetic_env_metadata",
    "save_synthetic_env",
]

FORMAT = "torch_distill.synthetic_env"
FORMAT_VERSION = 1


class SCBState(NamedTuple):
    """SCB state: the current observation ``[B, obs_dim]`` float32 and ``time [B]`` int64 (always 0: every
    episode is one step)."""

    obs: Tensor
    time: Tensor


class SCBParams(NamedTuple):
    """SCB params: the flat genome, ``[G]`` (one env for every row) or ``[B, G]`` (one env per row)."""

    genome: Tensor


class SyntheticContextualBandit:
    """A synthetic contextual bandit mirroring a real env's observation and action spaces (module docstring).

    Args:
        real_spec: the real env's :class:`EnvSpec` (obs dim, action space and bounds are copied; the time limit
            of the synthetic env is 1).
        hidden: hidden widths of both sub-networks (reference: ``(32,)``).
        latent_dim: size of the latent ``z`` (default: ``obs_dim``, as the reference).
        activation: hidden activation (reference: relu).
        genome: optional ``[G]`` genome returned by :meth:`default_params` (a loaded env carries its own).
        latent_period: share latent draws between rows ``r`` and ``r + j * latent_period`` (common random
            numbers across a member-major population; batch sizes must then be multiples of it).
        clip_actions: clip continuous actions to the real env's bounds before the reward network sees them.
    """

    def __init__(
        self,
        real_spec: EnvSpec,
        hidden: Sequence[int] = (32,),
        latent_dim: int | None = None,
        activation: str = "relu",
        genome: Tensor | None = None,
        latent_period: int | None = None,
        clip_actions: bool = True,
    ) -> None:
        if len(real_spec.obs_shape) != 1:
            raise ValueError(f"{real_spec.env_id}: SCB needs vector observations, got obs_shape {real_spec.obs_shape}")
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden={hidden}: expected positive widths")
        obs_dim = real_spec.obs_dim
        self.latent_dim = int(latent_dim) if latent_dim is not None else obs_dim
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim={latent_dim!r}: expected a positive int")
        if latent_period is not None and (isinstance(latent_period, bool) or int(latent_period) < 1):
            raise ValueError(f"latent_period={latent_period!r}: expected None or a positive int")
        self.real_spec = real_spec
        self.hidden = hidden
        self.activation = activation
        self.latent_period = None if latent_period is None else int(latent_period)
        self.clip_actions = bool(clip_actions)
        self.spec = EnvSpec(
            env_id=f"SCB-{real_spec.env_id}",
            obs_shape=real_spec.obs_shape,
            discrete=real_spec.discrete,
            n_actions=real_spec.n_actions,
            action_dim=real_spec.action_dim,
            action_low=real_spec.action_low,
            action_high=real_spec.action_high,
            max_episode_steps=1,
        )
        self.act_in = real_spec.n_actions if real_spec.discrete else real_spec.action_dim
        self.init_net = FlatMLP([self.latent_dim, *hidden, obs_dim], activation)
        self.reward_net = FlatMLP([obs_dim + self.act_in, *hidden, 1], activation)
        self.num_params = self.init_net.num_params + self.reward_net.num_params
        if genome is not None:
            genome = self._check_genome_vector(genome)
        self.genome = genome
        self._bounds: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def __repr__(self) -> str:
        return (f"SyntheticContextualBandit({self.real_spec.env_id}, hidden={self.hidden}, latent_dim={self.latent_dim}, "
                f"{self.num_params} params)")

    # ------------------------------------------------------------------------------------------------ genome
    def _check_genome_vector(self, genome: Tensor) -> Tensor:
        if not isinstance(genome, Tensor) or genome.shape != (self.num_params,):
            shape = tuple(genome.shape) if isinstance(genome, Tensor) else type(genome).__name__
            raise ValueError(f"{self.spec.env_id}: genome has shape {shape}, expected ({self.num_params},)")
        return genome.detach().to(torch.float32)

    def with_latent_period(self, latent_period: int | None) -> SyntheticContextualBandit:
        """A copy sharing everything but :attr:`latent_period`."""
        return SyntheticContextualBandit(self.real_spec, self.hidden, self.latent_dim, self.activation, self.genome,
                                         latent_period, self.clip_actions)

    def layout(self) -> list[tuple[str, tuple[int, ...]]]:
        """``[(name, shape), ...]`` of the genome's pieces in order (``initial_state.0.weight [in, out]``, ...)."""
        out: list[tuple[str, tuple[int, ...]]] = []
        for prefix, net in (("initial_state", self.init_net), ("reward", self.reward_net)):
            for i in range(len(net.sizes) - 1):
                out += [(f"{prefix}.{i}.weight", (net.sizes[i], net.sizes[i + 1])), (f"{prefix}.{i}.bias", (net.sizes[i + 1],))]
        return out

    def unflatten(self, genome: Tensor) -> dict[str, Tensor]:
        """Named views of ``genome [G]`` following :meth:`layout`."""
        genome = self._check_genome_vector(genome)
        shapes = self.layout()
        chunks = torch.split(genome, [math.prod(s) for _, s in shapes])
        return {name: c.reshape(s) for (name, s), c in zip(shapes, chunks)}

    def init_genome(self, generator: torch.Generator, n: int = 1) -> Tensor:
        """``[n, G]`` genomes at the networks' default initialisation, as the reference (flax ``Dense``):
        LeCun-normal weights (truncated normal in ``[-2, 2]`` std rescaled to ``1 / sqrt(fan_in)``), zero biases."""
        dev = generator.device
        rows = []
        for _ in range(int(n)):
            parts = []
            for net in (self.init_net, self.reward_net):
                for i in range(len(net.sizes) - 1):
                    fan_in, fan_out = net.sizes[i], net.sizes[i + 1]
                    w = torch.empty(fan_in, fan_out, device=dev)
                    # std of the standard normal truncated to [-2, 2] is 0.87962566; flax divides it out
                    torch.nn.init.trunc_normal_(w, 0.0, 1.0, -2.0, 2.0, generator=generator)
                    parts += [(w / 0.87962566103423978 / math.sqrt(fan_in)).reshape(-1), torch.zeros(fan_out, device=dev)]
            rows.append(torch.cat(parts))
        return torch.stack(rows)

    def default_params(self, device: torch.device | str = "cpu") -> SCBParams:
        """The carried genome (a loaded env), else the default initialisation drawn with seed 0; ``[G]``."""
        if self.genome is not None:
            return SCBParams(self.genome.to(device))
        return SCBParams(self.init_genome(torch.Generator(device=device).manual_seed(0))[0])

    def _params(self, params: SCBParams | None, batch: int, device: torch.device) -> Tensor:
        if params is None:
            params = self.default_params(device)
        g = params.genome
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

    def split(self, genome: Tensor) -> tuple[Tensor, Tensor]:
        """``(initial-state params [..., Pi], reward params [..., Pr])`` of ``genome [..., G]``."""
        return torch.split(genome, [self.init_net.num_params, self.reward_net.num_params], dim=-1)

    def initial_obs(self, genome: Tensor, z: Tensor) -> Tensor:
        """Observations ``[B, obs_dim]`` from latents ``z [B, latent_dim]`` (``genome [G]`` or ``[B, G]``)."""
        return self._apply(self.init_net, self.split(genome)[0], z)

    def action_input(self, action: Tensor) -> Tensor:
        """The reward network's action input ``[B, act_in]``: one-hot (discrete) or clipped float (continuous)."""
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

    def reward(self, genome: Tensor, obs: Tensor, action: Tensor) -> Tensor:
        """Rewards ``[B]`` of ``action`` (``[B]`` int or ``[B, A]`` float) in ``obs [B, obs_dim]``."""
        x = torch.cat([obs.to(torch.float32), self.action_input(action)], dim=-1)
        return self._apply(self.reward_net, self.split(genome)[1], x).squeeze(-1)

    def _latents(self, batch: int, generator: torch.Generator) -> Tensor:
        k = self.latent_period
        if k is None:
            return torch.randn(batch, self.latent_dim, generator=generator, device=generator.device)
        if batch % k:
            raise ValueError(f"{self.spec.env_id}: batch of {batch} rows is not a multiple of latent_period={k}")
        z = torch.randn(k, self.latent_dim, generator=generator, device=generator.device)
        return z.repeat(batch // k, 1)

    # ------------------------------------------------------------------------------------------------ contract
    def reset(self, batch_size: int, generator: torch.Generator, params: SCBParams | None = None) -> tuple[SCBState, Tensor]:
        """``batch_size`` fresh contexts: ``(state, obs [B, obs_dim] float32)`` (one ``randn`` call)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive int")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator={generator!r}: expected a torch.Generator")
        genome = self._params(params, batch_size, generator.device)
        obs = self.initial_obs(genome, self._latents(batch_size, generator))
        return SCBState(obs, torch.zeros(batch_size, dtype=torch.int64, device=obs.device)), obs

    def step(self, state: SCBState, action: Tensor, generator: torch.Generator,
             params: SCBParams | None = None) -> tuple[SCBState, Tensor, Tensor, Tensor, Tensor]:
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

    # ------------------------------------------------------------------------------------------------ metadata
    def architecture(self) -> dict[str, Any]:
        return {
            "hidden": list(self.hidden),
            "latent_dim": self.latent_dim,
            "latent_dist": "normal(0, I)",
            "activation": self.activation,
            "action_encoding": "one_hot" if self.spec.discrete else ("clipped" if self.clip_actions else "raw"),
            "clip_actions": self.clip_actions,
            "episode_length": 1,
            "layout": [[name, list(shape)] for name, shape in self.layout()],
        }


# ---------------------------------------------------------------------------------------------------- files
class SyntheticEnvFileError(ValueError):
    """A synthetic-env file that is missing, corrupt or inconsistent with its metadata."""


def save_synthetic_env(path: str | os.PathLike, env: SyntheticContextualBandit, genome: Tensor,
                       metadata: dict[str, Any] | None = None) -> None:
    """Write ``genome [G]`` of ``env`` atomically as safetensors + JSON metadata (module docstring)."""
    from safetensors.torch import save_file

    import torch_distill
    from torch_distill.io import atomic_write

    genome = env._check_genome_vector(genome).cpu().contiguous()
    if not torch.isfinite(genome).all():
        raise SyntheticEnvFileError(f"{path}: genome contains NaN or inf values")
    meta = dict(metadata or {})
    meta.update(format=FORMAT, format_version=FORMAT_VERSION, kind="scb", env=env.real_spec.to_json(),
                architecture=env.architecture(), num_params=env.num_params)
    meta.setdefault("library_version", torch_distill.__version__)
    tensors = {"genome": genome, **{k: v.contiguous().clone() for k, v in env.unflatten(genome).items()}}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"torch_distill": json.dumps(meta, default=str)}))


def read_synthetic_env_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a synthetic-env file (raises :class:`SyntheticEnvFileError`)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise SyntheticEnvFileError(f"{path}: no such synthetic-env file")
    try:
        with safe_open(str(p), framework="pt") as f:
            raw = (f.metadata() or {}).get("torch_distill")
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for corrupt headers
        raise SyntheticEnvFileError(f"{path}: not a safetensors file ({e})") from None
    if raw is None:
        raise SyntheticEnvFileError(f"{path}: no 'torch_distill' metadata; not a torch_distill synthetic env")
    try:
        meta = json.loads(raw)
    except ValueError as e:
        raise SyntheticEnvFileError(f"{path}: metadata is not valid JSON ({e})") from None
    if meta.get("format") != FORMAT:
        raise SyntheticEnvFileError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if int(meta.get("format_version", -1)) > FORMAT_VERSION:
        raise SyntheticEnvFileError(f"{path}: format_version {meta.get('format_version')} is newer than this "
                                    f"library's {FORMAT_VERSION}; upgrade torch_distill")
    return meta


def load_synthetic_env(path: str | os.PathLike, device: torch.device | str = "cpu",
                       latent_period: int | None = None) -> SyntheticContextualBandit:
    """Load a saved synthetic env as a native torch env whose :meth:`default_params` is the saved genome.

    ``env.reset(B, generator)`` / ``env.step(state, action, generator)`` then run it; ``env.metadata`` holds the
    file's metadata.
    """
    from safetensors import safe_open

    meta = read_synthetic_env_metadata(path)
    if meta.get("kind") != "scb":
        raise SyntheticEnvFileError(f"{path}: kind {meta.get('kind')!r}, this library version loads 'scb'")
    try:
        spec = EnvSpec.from_json(meta["env"])
        arch = meta["architecture"]
        env = SyntheticContextualBandit(spec, tuple(arch["hidden"]), int(arch["latent_dim"]), arch["activation"],
                                        latent_period=latent_period, clip_actions=bool(arch.get("clip_actions", True)))
    except (KeyError, TypeError, ValueError) as e:
        raise SyntheticEnvFileError(f"{path}: inconsistent metadata ({type(e).__name__}: {e})") from None
    with safe_open(str(path), framework="pt") as f:
        if "genome" not in f.keys():  # noqa: SIM118 - safe_open is not iterable
            raise SyntheticEnvFileError(f"{path}: no 'genome' tensor")
        genome = f.get_tensor("genome")
    if genome.shape != (env.num_params,) or genome.dtype != torch.float32:
        raise SyntheticEnvFileError(f"{path}: genome has shape {tuple(genome.shape)} dtype {genome.dtype}, "
                                    f"expected float32 ({env.num_params},) for the recorded architecture")
    if not torch.isfinite(genome).all():
        raise SyntheticEnvFileError(f"{path}: genome contains NaN or inf values")
    env.genome = genome.to(device)
    env.metadata = meta  # type: ignore[attr-defined]
    return env
