"""Files: distilled datasets (safetensors + JSON metadata), checkpoints, atomic writes, shipped datasets.

Dataset file format (version 1), readable without this library (``safetensors.safe_open`` + ``json``):

* tensors: ``states`` float32 ``[D, obs_dim]`` (in the normalised observation space the policy sees);
  ``actions``: continuous float32 ``[D, action_dim]``; discrete int64 ``[D]`` labels or float32 ``[D, n_actions]``
  label logits (train with soft cross-entropy to ``softmax(actions)``).
* metadata key ``"torch_distill"``: a JSON object with ``format`` ("torch_distill.dataset"), ``format_version``,
  ``env`` (the :class:`~torch_distill.envs.core.EnvSpec` fields: id, observation shape, action-space type, bounds,
  time limit), ``obs_normalizer`` (``null`` or ``{"type": "affine", "obs_mean": [...], "obs_var": [...], "eps"}``:
  a policy sees ``(obs - obs_mean) / sqrt(obs_var + eps)``), ``policy`` (hidden widths, activation, init,
  log_std_init), ``bc`` (steps, lr, eps, betas, max_grad_norm, loss), ``labels`` ("fixed", "logits",
  "continuous"), ``variant`` (HaDES-F/R), ``init_seeds`` (HaDES-F policy-init seeds), ``eval`` (return mean/std,
  episodes), ``seed``, ``library_version``, ``created``, ``command``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import torch_distill
from torch_distill.envs.core import EnvSpec
from torch_distill.files import atomic_write

__all__ = [
    "DatasetFileError",
    "Dataset",
    "dataset_replay_buffer",
    "atomic_write",
    "save_dataset",
    "load_dataset",
    "shipped_datasets",
    "resolve_dataset",
    "save_checkpoint",
    "load_checkpoint",
    "CheckpointFileError",
]

FORMAT = "torch_distill.dataset"
FORMAT_VERSION = 1
SHIPPED_DIR = Path(__file__).parent / "datasets"


class DatasetFileError(ValueError):
    """A dataset file that is missing, corrupt or inconsistent with its metadata."""


class CheckpointFileError(ValueError):
    """A run checkpoint (``checkpoint.pt``) that is corrupt, unreadable or not the checkpoint of this run."""


@dataclass
class Dataset:
    """A distilled dataset and everything needed to use it (see the module docstring for the file format)."""

    states: Tensor  # [D, obs_dim] float32
    actions: Tensor  # [D] int64 | [D, n_actions] float32 | [D, action_dim] float32
    spec: EnvSpec
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.states.shape[0])

    @property
    def labels(self) -> str:
        if not self.spec.discrete:
            return "continuous"
        return "fixed" if self.actions.dtype == torch.int64 else "logits"

    def validate(self, where: str = "dataset") -> None:
        d = self.states.shape[0] if self.states.dim() == 2 else -1
        if self.states.dim() != 2 or self.states.shape[1] != self.spec.obs_dim:
            raise DatasetFileError(f"{where}: states have shape {tuple(self.states.shape)}, expected [D, {self.spec.obs_dim}]")
        if self.states.dtype != torch.float32:
            raise DatasetFileError(f"{where}: states dtype {self.states.dtype}, expected float32")
        if self.spec.discrete:
            ok = (self.actions.dtype == torch.int64 and tuple(self.actions.shape) == (d,)) or (
                self.actions.dtype == torch.float32 and tuple(self.actions.shape) == (d, self.spec.n_actions)
            )
            if not ok:
                raise DatasetFileError(
                    f"{where}: discrete actions have shape {tuple(self.actions.shape)} dtype {self.actions.dtype}, "
                    f"expected int64 [{d}] labels or float32 [{d}, {self.spec.n_actions}] logits"
                )
            if self.actions.dtype == torch.int64 and self.actions.numel() and (
                int(self.actions.min()) < 0 or int(self.actions.max()) >= self.spec.n_actions
            ):
                raise DatasetFileError(f"{where}: action labels outside [0, {self.spec.n_actions})")
        elif self.actions.dtype != torch.float32 or tuple(self.actions.shape) != (d, self.spec.action_dim):
            raise DatasetFileError(
                f"{where}: continuous actions have shape {tuple(self.actions.shape)} dtype {self.actions.dtype}, "
                f"expected float32 [{d}, {self.spec.action_dim}]"
            )
        if not (torch.isfinite(self.states).all() and (self.actions.dtype == torch.int64 or torch.isfinite(self.actions).all())):
            raise DatasetFileError(f"{where}: contains NaN or inf values")

    def to_tensordict(self) -> Any:
        """The (state, label) pairs as a ``tensordict.TensorDict`` of ``batch_size [D]``, on the dataset's device.

        Keys: ``"observation"`` float32 ``[D, obs_dim]`` (normalised observations, as stored) and ``"action"`` as
        the file stores the labels: int64 ``[D]`` (discrete labels), float32 ``[D, n_actions]`` (label logits) or
        float32 ``[D, action_dim]`` (continuous). The tensors are shared, not copied. Needs ``tensordict``.
        """
        try:
            from tensordict import TensorDict
        except ImportError as e:
            raise ImportError("Dataset.to_tensordict needs the optional dependency tensordict "
                              "(pip install tensordict)") from e
        self.validate()
        return TensorDict({"observation": self.states, "action": self.actions}, batch_size=[self.size],
                          device=self.states.device)


def dataset_replay_buffer(path_or_dataset: Dataset | str | os.PathLike, batch_size: int | None = None,
                          sampler: Any = None, device: torch.device | str | None = None) -> Any:
    """A torchrl ``TensorDictReplayBuffer`` holding the (observation, action) pairs of a dataset.

    Args:
        path_or_dataset: a :class:`Dataset`, a dataset file or a shipped dataset's name (``"CartPole-v1"``).
        batch_size: default size of ``sample()`` (None: the whole dataset, i.e. full-batch BC as HaDES trains).
        sampler: a torchrl sampler (None: ``SamplerWithoutReplacement``, so consecutive samples run through the
            dataset in epochs).
        device: where the storage lives (None: the dataset's device).

    The buffer's storage is a ``LazyTensorStorage`` of capacity ``D`` filled with :meth:`Dataset.to_tensordict`;
    samples carry the keys ``"observation"`` and ``"action"`` (plus torchrl's ``"index"``). Needs ``torchrl``.
    Raises ``ValueError`` for an empty dataset (there is nothing to sample).
    """
    try:
        from torchrl.data import LazyTensorStorage, SamplerWithoutReplacement, TensorDictReplayBuffer
    except ImportError as e:
        raise ImportError("dataset_replay_buffer needs the optional dependency torchrl (pip install torchrl)") from e
    ds = path_or_dataset if isinstance(path_or_dataset, Dataset) else load_dataset(path_or_dataset)
    if ds.size == 0:
        raise ValueError(f"dataset for {ds.spec.env_id} has no (state, action) pairs: "
                         "nothing to put in a replay buffer")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
    td = ds.to_tensordict()
    if device is not None:
        td = td.to(device)
    buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(ds.size, device=td.device),
                                    sampler=sampler if sampler is not None else SamplerWithoutReplacement(),
                                    batch_size=batch_size if batch_size is not None else ds.size)
    buffer.extend(td)
    return buffer


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str) + "\n"))


def save_dataset(path: str | os.PathLike, dataset: Dataset) -> None:
    """Write ``dataset`` atomically as safetensors with JSON metadata (see module docstring)."""
    from safetensors.torch import save_file

    dataset.validate(str(path))
    meta = dict(dataset.metadata)
    meta.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        env=dataset.spec.to_json(),
        labels=dataset.labels,
        dataset_size=dataset.size,
    )
    meta.setdefault("library_version", torch_distill.__version__)
    tensors = {"states": dataset.states.detach().cpu().contiguous(), "actions": dataset.actions.detach().cpu().contiguous()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"torch_distill": json.dumps(meta)}))


def load_dataset(path_or_name: str | os.PathLike, device: torch.device | str = "cpu") -> Dataset:
    """Load a dataset file (or a shipped dataset by name, e.g. ``"CartPole-v1"``), checking it thoroughly."""
    from safetensors import SafetensorError
    from safetensors import safe_open

    path = resolve_dataset(path_or_name)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw_meta = (f.metadata() or {}).get("torch_distill")
            keys = set(f.keys())
            if not {"states", "actions"} <= keys:
                raise DatasetFileError(f"{path}: expected tensors 'states' and 'actions', found {sorted(keys)}")
            states, actions = f.get_tensor("states"), f.get_tensor("actions")
    except (SafetensorError, OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetFileError(f"{path}: not a readable safetensors dataset file ({e})") from None
    except Exception as e:  # safetensors raises various errors on garbage headers
        if isinstance(e, DatasetFileError):
            raise
        raise DatasetFileError(f"{path}: not a readable safetensors dataset file ({type(e).__name__}: {e})") from None
    if raw_meta is None:
        raise DatasetFileError(f"{path}: no 'torch_distill' metadata; not a torch_distill dataset")
    try:
        meta = json.loads(raw_meta)
        if not isinstance(meta, dict):
            raise DatasetFileError(f"{path}: metadata is a JSON {type(meta).__name__}, expected an object")
        if meta.get("format") != FORMAT:
            raise DatasetFileError(f"{path}: metadata format {meta.get('format')!r}, expected {FORMAT!r}")
        if int(meta.get("format_version", -1)) > FORMAT_VERSION:
            raise DatasetFileError(
                f"{path}: format_version {meta.get('format_version')} is newer than this library supports ({FORMAT_VERSION})"
            )
        spec = EnvSpec.from_json(meta["env"])
        _check_dataset_metadata(meta, spec)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        if isinstance(e, DatasetFileError):
            raise
        raise DatasetFileError(f"{path}: corrupt metadata ({type(e).__name__}: {e})") from None
    ds = Dataset(states.to(device), actions.to(device), spec, meta)
    ds.validate(str(path))
    return ds


def _check_dataset_metadata(meta: dict[str, Any], spec: EnvSpec) -> None:
    """Raise ``ValueError`` naming the first metadata entry of a dataset file that its readers (``evaluate``,
    ``show``, :func:`~torch_distill.algorithms.hades.evaluate_dataset`) could not use: the env spec, the observation
    normaliser, the recorded policy and BC settings, the HaDES-F init seeds and the recorded evaluations."""

    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x and abs(x) != float("inf")

    def count(x: Any, low: int) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x >= low

    def entry(name: str, what: str) -> ValueError:
        return ValueError(f"metadata entry {name!r} is {json.dumps(meta.get(name), default=str)[:80]}, expected {what}")

    if not spec.env_id or spec.obs_dim < 1 or spec.max_episode_steps < 1 or (
            spec.n_actions < 1 if spec.discrete else (spec.action_dim < 1 or len(spec.action_low) != spec.action_dim
                                                      or len(spec.action_high) != spec.action_dim)):
        raise entry("env", "an env spec with an id, positive sizes and a positive time limit")
    norm = meta.get("obs_normalizer")
    if norm is not None and not (isinstance(norm, dict) and norm.get("type", "affine") == "affine"
                                 and all(isinstance(norm.get(k), list) and len(norm[k]) == len(norm["obs_mean"])
                                         and all(number(x) for x in norm[k]) for k in ("obs_mean", "obs_var"))
                                 and all(x >= 0 for x in norm["obs_var"]) and number(norm.get("eps", 1e-8))
                                 and norm.get("eps", 1e-8) >= 0):
        raise entry("obs_normalizer", "null or an affine normaliser (as many means as variances >= 0)")
    policy = meta.get("policy")
    if policy is not None and not (isinstance(policy, dict)
                                   and isinstance(policy.get("hidden", []), list)
                                   and all(count(h, 1) for h in policy.get("hidden", []))
                                   and isinstance(policy.get("activation", "relu"), str)
                                   and number(policy.get("log_std_init", 0.0))):
        raise entry("policy", "{hidden: [positive widths], activation: name, log_std_init: number}")
    bc = meta.get("bc")
    if bc is not None and not (isinstance(bc, dict) and count(bc.get("steps", 0), 0)
                               and all(number(bc.get(k, 0.0)) for k in ("lr", "eps", "beta1", "beta2", "max_grad_norm"))):
        raise entry("bc", "{steps: int >= 0, lr, eps, beta1, beta2, max_grad_norm: numbers}")
    seeds = meta.get("init_seeds")
    if seeds is not None and not (isinstance(seeds, dict) and count(seeds.get("generator_seed"), 0)
                                  and count(seeds.get("inits"), 1)):
        raise entry("init_seeds", "null or {generator_seed: int >= 0, inits: int >= 1}")
    ev = meta.get("eval")
    if ev is not None and not (isinstance(ev, dict) and all(
            isinstance(v, dict) and number(v.get("return_mean")) and count(v.get("policies", 1), 0)
            and count(v.get("episodes_per_policy", 1), 0) for v in ev.values())):
        raise entry("eval", "{name: {return_mean: number, policies: int, episodes_per_policy: int}}")


def shipped_datasets() -> dict[str, Path]:
    """Datasets shipped inside the package, by name (file stem), e.g. ``{"CartPole-v1": .../CartPole-v1.safetensors}``."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.safetensors"))}


def shipped_multitask_datasets() -> dict[str, Path]:
    """Merged multi-task datasets shipped inside the package (``datasets/multitask/``), by name, e.g.
    ``"CartPole-v1+Acrobot-v1"``; :func:`load_dataset` loads them by name too."""
    return {p.stem: p for p in sorted((SHIPPED_DIR / "multitask").glob("*.safetensors"))}


def shipped_invariant_datasets() -> dict[str, Path]:
    """Learner-invariant datasets shipped inside the package (``datasets/invariant/``: evolved with a new random
    learner every generation), by name ``"invariant/<env id>"``, e.g. ``load_dataset("invariant/CartPole-v1")``."""
    return {f"invariant/{p.stem}": p for p in sorted((SHIPPED_DIR / "invariant").glob("*.safetensors"))}


def resolve_dataset(path_or_name: str | os.PathLike) -> Path:
    """A path to an existing file, or the shipped dataset of that name."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    shipped = {**shipped_datasets(), **shipped_multitask_datasets(), **shipped_invariant_datasets()}
    if str(path_or_name) in shipped:
        return shipped[str(path_or_name)]
    names = ", ".join(shipped) or "(none)"
    raise DatasetFileError(f"dataset {str(path_or_name)!r}: no such file and no shipped dataset of that name (shipped: {names})")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Atomically ``torch.save`` a checkpoint (tensors moved to CPU)."""

    def cpu(x: Any) -> Any:
        if isinstance(x, Tensor):
            return x.detach().cpu()
        if isinstance(x, dict):
            return {k: cpu(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
            return type(x)(cpu(v) for v in x)
        if hasattr(x, "_fields"):
            return {k: cpu(v) for k, v in x._asdict().items()}
        return x

    atomic_write(path, lambda tmp: torch.save(cpu(payload), tmp))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a checkpoint; a corrupt file raises :class:`CheckpointFileError` (one
    line naming the file), a missing one ``FileNotFoundError``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {path} not found") from None
    except Exception as e:
        detail = " ".join(str(e).split())[:200]
        raise CheckpointFileError(f"{path}: corrupt or unreadable checkpoint ({type(e).__name__}: {detail}); "
                                  "expected a torch.save file written by a torch_distill run") from None
