"""Run folders and the options every search run shares, independent of any method.

* :class:`RunOptions`: evaluation, seed, device, output and budget options of a run on a real env.
* :func:`make_run_dir`, :func:`resumed_config`, :data:`RESUME_OVERRIDABLE`: where a run writes and how a resumed
  run gets back exactly the options it started with.
* :func:`command_line`: the command recorded in run folders and saved files.
* :func:`read_config_file`, :func:`config_from_file`: option values from a JSON or TOML file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import sys
import time
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints


from torch_distill.io import write_json

__all__ = [
    "ConfigFileError",
    "RESUME_OVERRIDABLE",
    "check_field_types",
    "check_output_path",
    "RunOptions",
    "command_line",
    "config_from_file",
    "make_run_dir",
    "read_config_file",
    "resumed_config",
]

C = TypeVar("C")


class ConfigFileError(ValueError):
    """An option file (``--config FILE``) or a run folder's ``config.json`` that is not valid JSON / TOML or does
    not hold valid options of the method; the message names the file and what was expected."""


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(map(repr, get_args(tp)))
    args = [a for a in get_args(tp) if a is not type(None)]
    if args:
        return " or ".join(_type_name(a) for a in args) + (" or null" if type(None) in get_args(tp) else "")
    names = {int: "an int", float: "a number", str: "a string", bool: "true/false"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _fits(value: Any, tp: Any) -> bool:
    """Whether a JSON/TOML value fits the field type ``tp`` (int, float, str, bool, Literal, Optional, Positional)."""
    if get_origin(tp) is Literal:
        return any(value == a and type(value) is type(a) for a in get_args(tp))
    args = get_args(tp)
    if args and get_origin(tp) is not Literal:
        if hasattr(tp, "__metadata__"):  # Annotated[T, ...]
            return _fits(value, args[0])
        return any(_fits(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return True  # a type this check does not know: the config's own validation decides


def check_field_types(cls: type, data: dict[str, Any], where: str) -> None:
    """Raise :class:`ConfigFileError` (``where: option NAME is VALUE, expected TYPE``) for the first entry of
    ``data`` whose value does not fit the type of the dataclass field of that name."""
    hints = get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data and not _fits(data[f.name], hints[f.name]):
            raise ConfigFileError(f"{where}: option {f.name} is {data[f.name]!r}, expected "
                                  f"{_type_name(hints[f.name])}")


def check_output_path(option: str, path: str | os.PathLike, folder: bool = False) -> None:
    """Raise ``ValueError`` naming ``option`` when ``path`` (a file, or a ``folder``) cannot be created: the
    nearest existing ancestor must be a folder (``--out /dev/null/x`` fails before any work, instead of when the
    first file is written), and an existing ``folder`` must be one."""
    p = Path(path)
    if folder and p.exists() and not p.is_dir():
        raise ValueError(f"{option}={str(path)!r}: {p} is a file, expected a folder")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{option}={str(path)!r}: {parent} is not a folder")
            return


@dataclass
class RunOptions:
    """Options shared by every ES run on a real env: evaluation, seeds, devices, outputs and budgets."""

    episodes: int = 8
    """Real-env episodes per evaluated policy for fitness (common random numbers across the population)."""
    max_steps: int | None = None
    """Step budget per evaluation episode (default: the env's time limit)."""
    deterministic_eval: bool = False
    """Act greedily in evaluation (default: sample actions, as the HaDES reference)."""
    obs_norm: Literal["random", "none"] = "random"
    """Fixed observation normaliser: estimated once from random-action rollouts, or none."""
    eval_every: int = 10
    """Evaluate the ES mean with fresh seeds every N generations (the best one is kept too)."""
    eval_episodes: int = 32
    """Episodes per policy for the periodic ES-mean evaluation."""
    final_episodes: int = 100
    """Episodes per policy for the final evaluation."""
    seed: int = 0
    """Base seed; every random draw derives from (seed, generation, stream)."""
    device: str = "auto"
    """Torch device: auto, cpu, cuda, cuda:N (under torchrun: cuda:LOCAL_RANK)."""
    backend: Literal["auto", "native", "envpool", "gymnasium"] = "auto"
    """Env backend: native torch envs first, else envpool, else gymnasium."""
    out: str = "runs"
    """Parent folder of run folders."""
    name: str | None = None
    """Run folder name (default: <env>-<method>-s<seed>-<time>)."""
    checkpoint_every: int = 10
    """Write a checkpoint every N generations (and at the end)."""
    log_every: int = 1
    """Print a progress line every N generations."""
    max_minutes: float | None = None
    """Wall-clock budget: stop (and checkpoint) after this many minutes."""
    max_env_steps: float | None = None
    """Budget of env steps (within episodes) for fitness evaluation: stop once it is spent."""
    threads: int = 1
    """torch intra-op threads (torch.set_num_threads; 0 = torch's default). The inner loops are many small ops:
    on CPUs one thread per process is fastest unless the policy is wide; under torchrun use one process per core."""

    def validate_run_options(self) -> None:
        """Raise ``ValueError`` naming the first invalid run option."""
        for k in ["episodes", "eval_every", "eval_episodes", "final_episodes", "checkpoint_every", "log_every"]:
            v = getattr(self, k)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{k}={v!r}: expected a positive integer")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps}: expected a positive integer")
        for k in ["max_minutes", "max_env_steps"]:
            v = getattr(self, k)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{k}={v!r}: expected a positive number")
        if self.threads < 0:
            raise ValueError(f"threads={self.threads}: expected >= 0")
        if self.name is not None and (not self.name or self.name in (".", "..") or "/" in self.name
                                      or os.sep in self.name):
            raise ValueError(f"name={self.name!r}: expected a folder name (no path separators), made inside --out")
        check_output_path("out", self.out, folder=True)


def make_run_dir(out: str, name: str | None, default_name: str, resume: str | None) -> Path:
    """The run folder: ``resume`` if given (must hold a checkpoint), else ``out/name`` (must not exist yet)."""
    if resume:
        run_dir = Path(resume)
        if not (run_dir / "checkpoint.pt").is_file():
            raise FileNotFoundError(f"--resume {resume}: no checkpoint.pt in that folder")
        return run_dir
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(out) / (name or f"{default_name}-{stamp}")
    if (run_dir / "checkpoint.pt").exists():
        raise FileExistsError(f"run folder {run_dir} already holds a run; use --resume {run_dir} or another --name")
    return run_dir


RESUME_OVERRIDABLE = frozenset({"generations", "max_minutes", "max_env_steps", "eval_every", "checkpoint_every",
                                "log_every", "threads", "device", "final_seeds", "final_episodes"})
"""Options a resumed run may change (``--resume RUN --generations 200`` extends a run); every other option is the
stored one, so the resumed run computes what the uninterrupted run would have."""


def resumed_config(cls: type[C], config: Any, run_dir: Path, overrides: Collection[str] = ()) -> C:
    """The stored config of ``run_dir`` with the fields named in ``overrides`` (a subset of
    :data:`RESUME_OVERRIDABLE`) taken from ``config``; the device is taken from ``config`` unless it is "auto".
    When anything changed, ``config.json`` is rewritten (atomically) so a later resume sees the new values."""
    path = run_dir / "config.json"
    record = _read_run_config(cls, path)
    stored = record["config"]
    bad = sorted(set(overrides) - RESUME_OVERRIDABLE)
    if bad:
        raise ValueError(f"--resume: option(s) {bad} cannot change in a resumed run (they would change what it "
                         f"computes); options that can: {sorted(RESUME_OVERRIDABLE)}")
    new = dict(stored)
    for name in overrides:
        new[name] = getattr(config, name)
    if config.device != "auto":
        new["device"] = config.device
    if new != stored and os.environ.get("RANK", "0") == "0":
        record["config"] = new
        write_json(path, record)
    return cls(**new)


def _read_run_config(cls: type, path: Path) -> dict[str, Any]:
    """A run folder's ``config.json``, checked: a JSON object whose ``config`` object holds every option of
    ``cls`` (and no other) with values of the options' types; else :class:`ConfigFileError` naming the file."""
    hint = "the run folder's config.json is corrupt"
    if not path.is_file():
        raise FileNotFoundError(f"--resume {path.parent}: no config.json in that folder")
    try:
        record = json.loads(path.read_text())
    except UnicodeDecodeError as e:
        raise ConfigFileError(f"{path}: not valid JSON (not UTF-8 text: {e.reason}); {hint}") from None
    except ValueError as e:
        raise ConfigFileError(f"{path}: not valid JSON ({e}); {hint}") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        what = type(record).__name__ if not isinstance(record, dict) else "an object without a 'config' object"
        raise ConfigFileError(f"{path}: a JSON {what}, expected an object with the run's options under 'config'; "
                              f"{hint}")
    stored = record["config"]
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown, missing = sorted(set(stored) - names), sorted(names - set(stored))
    if unknown:
        raise ConfigFileError(f"{path}: option(s) {unknown} are not options of {cls.__name__} (a run of another "
                              f"method, or a corrupt file); resume it with the command that made it")
    if missing:
        raise ConfigFileError(f"{path}: option(s) {missing} missing; {hint}")
    check_field_types(cls, stored, str(path))
    return record


def command_line() -> str:
    """The command that started this process, as a user would type it (recorded in run folders and datasets)."""
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    if sys.argv and (sys.argv[0].endswith("torch-distill") or sys.argv[0].endswith("cli.py")):
        return f"torch-distill {args}"
    return f"{shlex.quote(sys.argv[0]) if sys.argv else 'python'} {args}".strip()


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Option values from a JSON file, or a TOML file (``.toml``), keyed by option (field) name."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {path}: no such file")
    try:
        data = tomllib.loads(p.read_text()) if p.suffix == ".toml" else json.loads(p.read_text())
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise ConfigFileError(f"config file {path}: cannot parse ({' '.join(str(e).split())})") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {path}: expected a table of option names, got {type(data).__name__}")
    return data


def config_from_file(cls: type[C], path: str | os.PathLike) -> C:
    """An instance of the dataclass ``cls`` with the values of the config file at ``path`` (every key must be a
    field of ``cls``) and the field defaults for the rest."""
    data = read_config_file(path)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigFileError(f"config file {path} has unknown option(s) {unknown}; valid: {sorted(names)}")
    check_field_types(cls, data, f"config file {path}")
    base = {f.name: f.default for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.default is not dataclasses.MISSING}
    try:
        return cls(**{**base, **data})
    except TypeError as e:
        raise ConfigFileError(f"config file {path}: {e}") from None


# ------------------------------------------------------------------------------------------ real-env evaluator
