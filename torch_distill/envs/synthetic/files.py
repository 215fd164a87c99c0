"""Synthetic-env files: save/load, format versions, shipped envs by name.

Files (format ``torch_distill.synthetic_env``; readable with ``safetensors.safe_open`` + ``json``): tensors
``genome [G]`` float32 plus, for reading without this library, every layer as ``{head}.{i}.weight [in, out]`` /
``{head}.{i}.bias`` (the names of :meth:`~torch_distill.envs.synthetic.base.SyntheticEnvBase.layout`); metadata key
``"torch_distill"``: JSON with ``format``, ``format_version`` (the lowest reader version that understands the file: 1
for ``"scb"`` without observation scaling, 2 for ``"scb"`` with it, ``"mdp"`` and ``"reward"``, 3 for an SCB with
the quadratic reward head), ``kind``, ``env`` (the real env's :class:`~torch_distill.envs.core.EnvSpec`),
``architecture`` (everything needed to rebuild the env: widths, activation, options, ``gamma``, the genome
``layout``), ``num_params`` and free-form fields (evaluation, command, created, ...). Kinds that need the real env
(MDP with real initial states, reward networks) rebuild it at load time with
:func:`~torch_distill.envs.vec.make_native` from the recorded ``env`` spec.

Shipped envs: :func:`load_synthetic_env` also takes the name of a file in ``torch_distill/synthetic_envs/``
(package data; :func:`shipped_synthetic_envs`), named ``<KIND>-<env id>`` (``SCB-CartPole-v1``,
``MDP-CartPole-v0``, ``RewardNet-CartPole-v1``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from torch_distill.envs.core import EnvSpec, FunctionalEnv
from torch_distill.envs.synthetic.base import SyntheticEnvBase
from torch_distill.envs.synthetic.mdp import SyntheticMDP
from torch_distill.envs.synthetic.reward_net import RewardNetworkEnv
from torch_distill.envs.synthetic.scb import SyntheticContextualBandit

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "SHIPPED_DIR",
    "SyntheticEnv",
    "SyntheticEnvFileError",
    "load_synthetic_env",
    "read_synthetic_env_metadata",
    "resolve_synthetic_env",
    "save_synthetic_env",
    "shipped_synthetic_envs",
]

FORMAT = "torch_distill.synthetic_env"
FORMAT_VERSION = 3

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "synthetic_envs"
"""Package-data directory of the shipped synthetic envs (``<name>.safetensors``)."""

SyntheticEnv = SyntheticContextualBandit | SyntheticMDP | RewardNetworkEnv

KINDS: dict[str, type[SyntheticEnvBase]] = {
    "scb": SyntheticContextualBandit,
    "mdp": SyntheticMDP,
    "reward": RewardNetworkEnv,
}
"""File ``kind`` -> class."""


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
    from torch_distill.files import atomic_write

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
    if not isinstance(meta.get("kind"), str) or meta["kind"] not in KINDS:
        raise SyntheticEnvFileError(f"{p}: kind {meta.get('kind')!r}, expected one of {', '.join(map(repr, KINDS))}")
    _check_recorded_config(p, meta.get("config"))
    return meta


_RECORDED_CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "inner_steps": (int,), "ppo_epochs": (int,), "ppo_minibatches": (int,), "dqn_train_frequency": (int,),
    "agent_hidden": (str,), "agent_activation": (str,),
}
"""Entries of the recorded search config that readers of the file use (``evaluate-env`` trains fresh agents
with them), and their JSON types."""


def _check_recorded_config(path: Path, config: Any) -> None:
    """The recorded search config (metadata ``config``), if any, must be an object whose entries that readers use
    have the right types."""
    if config is None:
        return
    if not isinstance(config, dict):
        raise SyntheticEnvFileError(f"{path}: metadata entry 'config' is a {type(config).__name__}, expected the "
                                    "object of the search options")
    for k, types in _RECORDED_CONFIG_TYPES.items():
        v = config.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, types)
                              or (types == (int,) and v < 1)):
            want = "a positive int" if types == (int,) else "a string"
            raise SyntheticEnvFileError(f"{path}: metadata config.{k} is {v!r}, expected {want}")


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
        except ValueError as e:
            raise SyntheticEnvFileError(f"{path}: the recorded real env spec cannot be rebuilt ({e})") from None
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
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise SyntheticEnvFileError(f"{path}: inconsistent metadata ({type(e).__name__}: {e})") from None
    real: FunctionalEnv | EnvSpec = spec
    if cls.needs_real_env(arch):
        real = real_env if real_env is not None else _native_real_env(spec, path)
        if real.spec != spec:
            raise SyntheticEnvFileError(f"{path}: the recorded real env spec {spec} differs from the real env's "
                                        f"{real.spec}")
    try:
        env = cls.from_architecture(real, arch, crn_period=period)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, IndexError) as e:
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
