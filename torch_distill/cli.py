"""The ``torch-distill`` command line.

::

    torch-distill hades --env CartPole-v1 [options]       # evolve a dataset (HaDES-F/R); --help lists options
    torch-distill direct-es --env CartPole-v1 [options]   # neuroevolution baseline on the policy weights
    torch-distill evaluate DATASET [options]              # retrain fresh policies on a saved dataset
    torch-distill sweep DATASET... [--hidden ... --lr ...] # retrain over a grid of learners: CSV + heatmap
    torch-distill merge A B [...] --out M                 # multi-task dataset (zero-padding merge) + comparison
    torch-distill distill-images --data fashion-mnist     # supervised distillation: one image per class
    torch-distill show DATASET                            # print (and optionally plot) a dataset
    torch-distill synth-env --env CartPole-v1 [options]   # evolve a synthetic contextual bandit (SCB)
    torch-distill evaluate-env FILE --algos ppo,dqn       # train fresh agents on a saved synthetic env
    torch-distill show-env SCB-CartPole-v1 --png s.png    # a synthetic env's metadata and learned states
    torch-distill convert-env SRC OUT                     # SCB -> quadratic-head SCB with real-like contexts
    torch-distill datasets                                # list the datasets shipped with the package
    torch-distill envs                                    # list native torch env ids

Every subcommand takes ``--config FILE`` (JSON or TOML with option names as keys); command-line options override
the file. Bad input ends with a one-line error and exit status 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tyro.conf import Positional

__all__ = ["main", "EvaluateConfig", "ShowConfig"]


@dataclass
class EvaluateConfig:
    """Retrain fresh policies on a saved dataset and report their real-env return (mean and spread)."""

    dataset: Positional[str]
    """Dataset file, or the name of a shipped dataset (see `torch-distill datasets`)."""
    hidden: str | None = None
    """Hidden widths of the policies to train, e.g. '256,256' (default: the architecture the dataset was evolved for)."""
    activation: str | None = None
    """Hidden activation (default: recorded)."""
    lr: float | None = None
    """BC Adam learning rate (default: recorded)."""
    bc_steps: int | None = None
    """BC steps (default: recorded)."""
    seeds: int = 5
    """Number of fresh random policy initialisations (one trained policy each)."""
    fixed_init: bool = False
    """Use the dataset's recorded HaDES-F initialisations instead of fresh random ones."""
    episodes: int = 100
    """Real-env episodes per policy."""
    env_seed: int = 12345
    """Seed of the evaluation episodes."""
    deterministic: bool = False
    """Act greedily instead of sampling actions."""
    device: str = "auto"
    """Torch device."""
    backend: Literal["auto", "native", "envpool", "gymnasium"] = "auto"
    """Env backend."""
    json_out: str | None = None
    """Also write the result as JSON to this path."""


@dataclass
class ShowConfig:
    """Print a dataset's metadata and pairs; optionally save a picture of it."""

    dataset: Positional[str]
    """Dataset file or shipped dataset name."""
    png: str | None = None
    """Write a picture of the pairs to this PNG path: each state drawn as its env's frame (classic control, MiniGrid,
    MinAtar, MuJoCo) titled with its action label, or per-dimension plots in raw units (see --plot)."""
    plot: Literal["auto", "frames", "dims"] = "auto"
    """Picture kind: frames (the env's frames), dims (one panel per observation dimension), auto (frames where the
    env kind is known, else dims)."""
    max_panels: int = 64
    """Frames: draw at most this many pairs."""


@dataclass
class SweepConfig:
    """Retrain fresh policies on datasets over a grid of learners (architecture x activation x init x BC lr x BC
    steps) and score them on the real env: a CSV and a heatmap per dataset; with several datasets, the THC
    hyperparameter-consistency score of the BC hyperparameters across them."""

    datasets: Positional[tuple[str, ...]]
    """Dataset files or shipped dataset names (one or more)."""
    hidden: tuple[str, ...] = ("16,16", "32,32", "64,64", "256,256", "512,512")
    """Architectures: hidden widths of each, e.g. --hidden 16,16 64,64 512,512."""
    activation: tuple[str, ...] = ("relu", "tanh")
    """Hidden activations."""
    init: tuple[str, ...] = ("orthogonal", "torch")
    """Init schemes: orthogonal (the HaDES reference) and torch (nn.Linear's default)."""
    lr: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    """BC Adam learning rates."""
    steps: tuple[int, ...] = (32, 100, 500, 1000)
    """BC steps."""
    seeds: int = 3
    """Fresh policy inits per cell."""
    episodes: int = 20
    """Real-env episodes per policy."""
    env_seed: int = 12345
    """Seed of the evaluation episodes (the same for every cell)."""
    seed: int = 0
    """Seed of the policy inits (the same for every cell of one architecture)."""
    threshold: float | None = None
    """Outline the cells whose mean return is below this in the heatmap, and count them."""
    out: str = "sweep"
    """Output prefix: writes PREFIX-<dataset>.csv and .png, and PREFIX.json (all rows, THC scores)."""
    device: str = "auto"
    """Torch device."""


@dataclass
class MergeConfig:
    """Merge single-task datasets into one multi-task dataset (zero-padded states and actions; the file records which
    env each pair and each dimension belongs to), then train fresh policies on it and on each source and compare
    their per-env returns."""

    datasets: Positional[tuple[str, ...]]
    """Two or more dataset files or shipped dataset names (same kind of action space)."""
    out: str
    """Merged dataset file (.safetensors; written to a temporary file, then renamed)."""
    seeds: int = 5
    """Fresh policies trained on the merged and on each single-task dataset (0 skips the comparison)."""
    episodes: int = 20
    """Real-env episodes per policy and env."""
    env_seed: int = 12345
    """Seed of the evaluation episodes."""
    device: str = "auto"
    """Torch device."""


@dataclass
class EvaluateEnvConfig:
    """Train fresh agents with random hyperparameters on a saved synthetic env; report real-env returns."""

    env_file: Positional[str]
    """Synthetic env file (.safetensors)."""
    algos: str = "auto"
    """Comma-separated inner algorithms: ppo, dqn, sac, td3, ddpg, bandit, dpg, critic (auto: ppo,dqn discrete; ppo,td3
    continuous)."""
    seeds: int = 8
    """Agents per algorithm."""
    episodes: int = 100
    """Real-env episodes per agent."""
    inner_steps: int | None = None
    """Synthetic steps per agent (default: recorded)."""
    seed: int = 12345
    """Seed of hyperparameters, agent keys and evaluation episodes."""
    device: str = "cpu"
    """Torch device."""
    json_out: str | None = None
    """Also write the result as JSON to this path."""
    deterministic: bool = False
    """Act greedily on the real env (default: sample from the agents' policies, as the SCB reference; DQN and
    TD3/DDPG are greedy either way)."""


@dataclass
class ConvertEnvConfig:
    """Re-express a saved continuous-action SCB as a quadratic-head SCB whose contexts match real states, keeping the
    policy its best-response learner fits (torch_distill.algorithms.scb_convert); a start for further search."""

    env_file: Positional[str]
    """Source SCB file or shipped name."""
    out: Positional[str]
    """Output file (.safetensors; written to a temporary file, then renamed)."""
    learner: Literal["bandit", "dpg", "critic"] = "bandit"
    """Best-response learner whose policy the new SCB keeps."""
    obs_scaling: Literal["box", "bounds"] = "box"
    """Observation scaling of the new SCB (box: contexts squashed into the real observation box)."""
    episodes: int = 64
    """Real-env episodes of the policy (with exploration noise) whose states the contexts are fitted to."""
    noise: float = 0.3
    """Exploration noise of those episodes (Gaussian, times the action half-range)."""
    curvature: float = 1.0
    """Curvature of the new reward around its maximum (softplus(c) in units of the action half-range)."""
    steps: int = 3000
    """Adam steps of each fit (contexts, then reward)."""
    seed: int = 0
    """Seed of the learner, the episodes and the fits."""
    device: str = "cpu"
    """Torch device."""


@dataclass
class ShowEnvConfig:
    """Print a synthetic env's metadata (kind, real env, size, how it was made, its evaluation); for an SCB optionally
    plot its learned state distribution against real-env states."""

    env_file: Positional[str]
    """Synthetic env file or shipped synthetic env name (see `torch-distill envs`)."""
    png: str | None = None
    """SCB only: write the learned initial-state distribution vs states visited by random actions in the real env."""
    samples: int = 5000
    """States drawn from the SCB and from the real env for the picture."""
    seed: int = 0
    """Seed of the drawn states."""


class CLIError(Exception):
    pass


def _positive(cfg: Any, names: list[str], allow_zero: tuple[str, ...] = ()) -> None:
    """CLIError naming the first option of ``names`` that is not a positive int (or >= 0 for ``allow_zero``);
    None values are unset options."""
    for n in names:
        v = getattr(cfg, n)
        low = 0 if n in allow_zero else 1
        if v is not None and v < low:
            raise CLIError(f"--{n.replace('_', '-')} {v}: expected {'>= 0' if low == 0 else 'a positive integer'}")


def _finite(cfg: Any, names: list[str], positive: tuple[str, ...] = ()) -> None:
    """CLIError naming the first option of ``names`` that is NaN or infinite (or not > 0 for ``positive``)."""
    for n in names:
        v = getattr(cfg, n)
        if v is not None and not (math.isfinite(v) and (v > 0 if n in positive else True)):
            raise CLIError(f"--{n.replace('_', '-')} {v}: expected a {'positive ' if n in positive else ''}finite "
                           "number")


def _check_common(cfg: Any, outputs: tuple[str, ...] = ()) -> None:
    """The device option names an available device; output files can be created."""
    from torch_distill.distributed import resolve_device
    from torch_distill.runs import check_output_path

    if hasattr(cfg, "device"):
        resolve_device(cfg.device)
    for n in outputs:
        if getattr(cfg, n) is not None:
            check_output_path(n, getattr(cfg, n))


def _no_args(cmd: str, args: list[str]) -> None:
    """Subcommands without options reject any argument (``-h``/``--help`` excepted)."""
    extra = [a for a in args if a not in ("-h", "--help")]
    if extra:
        raise CLIError(f"unexpected argument(s) {extra}: `torch-distill {cmd}` takes no options")


def _tyro_message(text: str) -> str:
    """tyro's error text (a box on terminals, plain rules otherwise) reduced to one line: the title and the first
    section, e.g. ``Value error: Error parsing --popsize: invalid literal for int() with base 10: 'x'``."""
    title, sections = "", [[]]
    for raw in text.splitlines():
        line = raw.strip()
        if line[:1] in ("╭", "┌"):
            title = line.strip("╭╮┌┐─ ")
            continue
        if line[:1] in ("╰", "└"):
            break
        body = line.strip("│|").strip()
        if not body:
            continue
        if set(body) <= set("─-━="):
            sections.append([])
            continue
        sections[-1].append(body)
    sections = [" ".join(" ".join(sec).split()) for sec in sections if sec]
    if not title and sections:
        title = sections.pop(0)
    msg = sections[0] if sections else ""
    if title and msg.lower().startswith(title.lower()):
        title = ""
    return f"{title}: {msg}" if title and msg else (title or msg or " ".join(text.split()))


def _explicit_options(args: list[str]) -> set[str]:
    """Config field names given explicitly on the command line (``--max-minutes 5`` -> ``max_minutes``)."""
    out = set()
    for a in args:
        if a.startswith("--") and len(a) > 2:
            name = a[2:].split("=", 1)[0]
            if name.startswith("no-"):
                name = name[3:]
            out.add(name.replace("-", "_"))
    return out - {"config"}


def _pop_resume(args: list[str]) -> tuple[str | None, list[str]]:
    """Split ``--resume RUN_DIR`` off the arguments."""
    if "--resume" not in args:
        return None, args
    i = args.index("--resume")
    if i + 1 >= len(args) or args[i + 1].startswith("--"):
        raise CLIError("--resume needs a run folder")
    return args[i + 1], args[:i] + args[i + 2 :]


def _parse(cls: type, args: list[str], prog: str) -> Any:
    """tyro parse of ``cls`` with ``--config FILE`` defaults (file keys must be field names)."""
    import tyro

    from torch_distill.runs import config_from_file

    defaults = None
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args) or args[i + 1].startswith("--"):
            raise CLIError("--config needs a file path")
        defaults = config_from_file(cls, args[i + 1])
        args = args[:i] + args[i + 2 :]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return tyro.cli(cls, args=args, default=defaults, prog=prog)
    except SystemExit as e:
        if e.code in (0, None):  # --help
            raise
        raise CLIError(f"{_tyro_message(err.getvalue())} (see {prog} --help)") from None


def _search(cls: type, run: Callable[..., dict[str, Any]], args: list[str], prog: str) -> int:
    """A search subcommand: parse ``cls`` (plus ``--resume RUN_DIR``) and call ``run``."""
    resume, args = _pop_resume(args)
    cfg = _parse(cls, args, prog)
    run(cfg, resume=resume, resume_overrides=_explicit_options(args) if resume else ())
    return 0


def _cmd_hades(args: list[str]) -> int:
    from torch_distill.algorithms.hades import HadesConfig, run_hades

    return _search(HadesConfig, run_hades, args, "torch-distill hades")


def _cmd_direct_es(args: list[str]) -> int:
    from torch_distill.algorithms.direct_es import DirectESConfig, run_direct_es

    return _search(DirectESConfig, run_direct_es, args, "torch-distill direct-es")


def _cmd_distill_images(args: list[str]) -> int:
    from torch_distill.algorithms.distill_images import DistillImagesConfig, run_distill_images

    return _search(DistillImagesConfig, run_distill_images, args, "torch-distill distill-images")


def _cmd_synth_env(args: list[str]) -> int:
    from torch_distill.algorithms.synthetic_env import SynthEnvConfig, run_synth_env

    return _search(SynthEnvConfig, run_synth_env, args, "torch-distill synth-env")


def _cmd_evaluate_env(args: list[str]) -> int:
    from torch_distill.algorithms.synthetic_env import evaluate_synthetic_env
    from torch_distill.io import write_json
    from torch_distill.log import format_table

    from torch_distill.algorithms.synthetic_env import parse_algos
    from torch_distill.envs.synthetic import load_synthetic_env

    cfg: EvaluateEnvConfig = _parse(EvaluateEnvConfig, args, "torch-distill evaluate-env")
    _positive(cfg, ["seeds", "episodes", "inner_steps"])
    _check_common(cfg, ("json_out",))
    env = load_synthetic_env(cfg.env_file, cfg.device)
    parse_algos(cfg.algos, env.real_spec.discrete, env.kind)
    res = evaluate_synthetic_env(env, cfg.algos, cfg.seeds, cfg.episodes, cfg.inner_steps, seed=cfg.seed,
                                 device=cfg.device, deterministic=cfg.deterministic)
    print(format_table([{"algo": k, "agents": len(v.per_agent), "IQM": v.iqm, "mean": v.return_mean,
                         "spread (std)": v.return_std, "worst agent": v.return_min,
                         "synthetic steps": v.synthetic_steps_per_agent, "real eval steps": v.real_eval_steps}
                        for k, v in res.items()]))
    if cfg.json_out:
        write_json(cfg.json_out, {k: v.to_json() for k, v in res.items()})
    return 0


def _cmd_convert_env(args: list[str]) -> int:
    from torch_distill.algorithms.scb_convert import convert_scb
    from torch_distill.envs.synthetic import load_synthetic_env, save_synthetic_env

    cfg: ConvertEnvConfig = _parse(ConvertEnvConfig, args, "torch-distill convert-env")
    _positive(cfg, ["episodes", "steps"])
    _finite(cfg, ["noise", "curvature"], positive=("curvature",))
    if cfg.noise < 0:
        raise CLIError(f"--noise {cfg.noise}: expected a finite number >= 0")
    _check_common(cfg, ("out",))
    src = load_synthetic_env(cfg.env_file, cfg.device)
    print(f"converting {cfg.env_file} ({src!r}): {cfg.learner} learner's policy, {cfg.episodes} real episodes, "
          f"{cfg.steps} fit steps ...", flush=True)
    dst, genome, stats = convert_scb(src, cfg.learner, cfg.obs_scaling, cfg.episodes, cfg.noise, cfg.curvature,
                                     cfg.steps, seed=cfg.seed, device=cfg.device)
    meta = {"converted_from": str(cfg.env_file), "conversion": {**dataclasses.asdict(cfg), **stats},
            "command": "torch-distill convert-env " + " ".join(args)}
    save_synthetic_env(cfg.out, dst, genome, meta)
    print(f"{cfg.out}: {dst!r}; contexts vs real states: sliced Wasserstein {stats['context_sliced_wasserstein']:.4f}; "
          f"mean |mu - policy| / half-range on real states {stats['mu_abs_error_real_states']:.4f}")
    return 0


def _cmd_evaluate(args: list[str]) -> int:
    from torch_distill.algorithms.hades import evaluate_dataset, recorded_bc, recorded_policy
    from torch_distill.distributed import resolve_device
    from torch_distill.io import load_dataset, write_json
    from torch_distill.log import format_table

    cfg: EvaluateConfig = _parse(EvaluateConfig, args, "torch-distill evaluate")
    if cfg.seeds < 1 and not cfg.fixed_init:
        raise CLIError(f"--seeds {cfg.seeds}: expected a positive number of policies")
    _positive(cfg, ["seeds", "episodes", "bc_steps"], allow_zero=("seeds", "bc_steps"))
    _finite(cfg, ["lr"], positive=("lr",))
    _check_common(cfg, ("json_out",))
    device = resolve_device(cfg.device)
    ds = load_dataset(cfg.dataset, device)
    policy = recorded_policy(ds, cfg.hidden, cfg.activation)
    bc = recorded_bc(ds, lr=cfg.lr, steps=cfg.bc_steps)
    from torch_distill.algorithms.multitask import evaluate_multitask, is_multitask

    if is_multitask(ds):
        if cfg.fixed_init:
            raise CLIError(f"--fixed-init: {cfg.dataset} is a merged dataset; it records no HaDES-F inits")
        mres = evaluate_multitask(ds, policy, bc, seeds=range(cfg.seeds), episodes=cfg.episodes, env_seed=cfg.env_seed,
                                  device=device, deterministic=cfg.deterministic)
        print(f"{ds.spec.env_id}: merged dataset of {ds.size} pairs; policy {','.join(map(str, policy.hidden))} "
              f"{policy.activation}, BC {bc.steps} steps lr {bc.lr}; {cfg.seeds} policies x {cfg.episodes} episodes per env")
        print(format_table(mres.rows))
        if cfg.json_out:
            write_json(cfg.json_out, {"dataset": str(cfg.dataset), "policy": policy.to_json(), "bc": bc.to_json(),
                                      **mres.to_json()})
        return 0
    res = evaluate_dataset(ds, policy, bc, seeds=list(range(cfg.seeds)), fixed_init=cfg.fixed_init, episodes=cfg.episodes,
                           env_seed=cfg.env_seed, device=device, backend=cfg.backend, deterministic=cfg.deterministic)
    print(f"{ds.spec.env_id}: dataset of {ds.size} pairs; policy {','.join(map(str, policy.hidden))} {policy.activation}, "
          f"BC {bc.steps} steps lr {bc.lr}; {cfg.episodes} episodes per policy")
    print(format_table(res.per_policy))
    print(f"return over policies: mean {res.return_mean:.2f}, std {res.return_std:.2f}")
    if cfg.json_out:
        write_json(cfg.json_out, {"dataset": str(cfg.dataset), "policy": policy.to_json(), "bc": bc.to_json(), **res.to_json()})
    return 0


def _cmd_sweep(args: list[str]) -> int:
    from pathlib import Path

    from torch_distill.algorithms.sweep import SweepGrid, plot_sweep, sweep_dataset, thc_scores, write_sweep
    from torch_distill.distributed import resolve_device
    from torch_distill.io import load_dataset, write_json
    from torch_distill.log import format_table

    cfg: SweepConfig = _parse(SweepConfig, args, "torch-distill sweep")
    _check_common(cfg, ("out",))
    if cfg.episodes < 1:
        raise CLIError(f"--episodes {cfg.episodes}: expected a positive number of episodes")
    if cfg.threshold is not None and not math.isfinite(cfg.threshold):
        raise CLIError(f"--threshold {cfg.threshold}: expected a finite return")
    grid = SweepGrid(cfg.hidden, cfg.activation, cfg.init, cfg.lr, cfg.steps, cfg.seeds)
    device = resolve_device(cfg.device)
    datasets = {Path(d).stem if d.endswith(".safetensors") else d: load_dataset(d, device) for d in cfg.datasets}
    sweeps: dict[str, list[dict[str, Any]]] = {}
    for name, ds in datasets.items():
        print(f"{name} ({ds.spec.env_id}, {ds.size} pairs): {grid.cells} cells x {grid.seeds} seeds x {cfg.episodes} "
              "episodes", flush=True)
        rows = sweep_dataset(ds, grid, cfg.episodes, cfg.env_seed, device, seed=cfg.seed)
        sweeps[name] = rows
        stem = f"{cfg.out}-{name.replace('/', '_')}"
        write_sweep(rows, stem + ".csv")
        plot_sweep(rows, stem + ".png", f"{name}: mean return of fresh policies ({grid.seeds} seeds x {cfg.episodes} "
                   "episodes)", cfg.threshold)
        worst = min(rows, key=lambda r: r["return_mean"])
        below = sum(r["return_mean"] < cfg.threshold for r in rows) if cfg.threshold is not None else None
        print(format_table([{"cells": len(rows), "mean over cells": sum(r["return_mean"] for r in rows) / len(rows),
                             "worst cell": worst["return_mean"],
                             "worst learner": f"{worst['hidden']} {worst['activation']} {worst['init']} lr {worst['lr']:g} "
                                              f"{worst['steps']} steps",
                             **({f"cells < {cfg.threshold:g}": below} if below is not None else {})}]))
        print(f"table: {stem}.csv\nheatmap: {stem}.png", flush=True)
    record: dict[str, Any] = {"command": "torch-distill sweep " + " ".join(args), "sweeps": sweeps}
    if len(sweeps) > 1:
        record["thc"] = thc_scores(sweeps)
        print("THC hyperparameter consistency across datasets (0 = same ranking everywhere): "
              + ", ".join(f"{k} {v:.3f}" for k, v in record["thc"].items()))
    write_json(cfg.out + ".json", record)
    return 0


def _cmd_merge(args: list[str]) -> int:
    from torch_distill.algorithms.hades import evaluate_dataset
    from torch_distill.algorithms.multitask import evaluate_multitask, merge_datasets
    from torch_distill.distributed import resolve_device
    from torch_distill.io import load_dataset, save_dataset
    from torch_distill.log import format_table

    cfg: MergeConfig = _parse(MergeConfig, args, "torch-distill merge")
    _check_common(cfg, ("out",))
    if cfg.seeds < 0 or cfg.episodes < 1:
        raise CLIError(f"--seeds {cfg.seeds} --episodes {cfg.episodes}: expected seeds >= 0 and episodes >= 1")
    device = resolve_device(cfg.device)
    sources = [load_dataset(d, device) for d in cfg.datasets]
    merged = merge_datasets(sources)
    merged.metadata["command"] = "torch-distill merge " + " ".join(args)
    print(f"{merged.spec.env_id}: {merged.size} pairs, obs {merged.spec.obs_dim}, actions {merged.spec.act_dim}")
    if cfg.seeds:
        seeds = list(range(cfg.seeds))
        res = evaluate_multitask(merged, seeds=seeds, episodes=cfg.episodes, env_seed=cfg.env_seed, device=device)
        rows = []
        for src, row in zip(sources, res.rows):
            single = evaluate_dataset(src, seeds=seeds, episodes=cfg.episodes, env_seed=cfg.env_seed, device=device)
            rows.append({"env": row["env"], "pairs": row["pairs"], "merged: return": row["return_mean"],
                         "merged: worst policy": row["return_min"], "single-task: return": single.return_mean,
                         "single-task: worst policy": min(r["return_mean"] for r in single.per_policy)})
        merged.metadata["eval"] = {f"{r['env']} (merged)": {"return_mean": r["merged: return"], "policies": cfg.seeds,
                                                            "episodes_per_policy": cfg.episodes} for r in rows}
        merged.metadata["single_task_eval"] = {r["env"]: r["single-task: return"] for r in rows}
        print(f"fresh policies ({cfg.seeds} seeds x {cfg.episodes} episodes), one trained on the merged set vs one per "
              "single-task dataset:")
        print(format_table(rows))
    save_dataset(cfg.out, merged)
    print(f"merged dataset: {cfg.out}")
    return 0


def _cmd_show(args: list[str]) -> int:
    from torch_distill.io import load_dataset
    from torch_distill.viz import describe_dataset, plot_dataset

    cfg: ShowConfig = _parse(ShowConfig, args, "torch-distill show")
    _check_common(cfg, ("png",))
    ds = load_dataset(cfg.dataset)
    print(describe_dataset(ds))
    if cfg.max_panels < 1:
        raise CLIError(f"--max-panels {cfg.max_panels}: expected a positive number of panels")
    if cfg.png:
        layout = plot_dataset(ds, cfg.png, cfg.plot, cfg.max_panels)
        print(f"picture ({layout.kind}): {cfg.png}")
    return 0


def _cmd_show_env(args: list[str]) -> int:
    from torch_distill.envs.synthetic import load_synthetic_env
    from torch_distill.log import format_table

    cfg: ShowEnvConfig = _parse(ShowEnvConfig, args, "torch-distill show-env")
    _positive(cfg, ["samples"])
    _check_common(cfg, ("png",))
    env = load_synthetic_env(cfg.env_file)
    meta = env.metadata  # type: ignore[attr-defined]
    print(f"{env!r}\nkind {env.kind}, real env {env.real_spec.env_id}, {env.num_params} parameters, "
          f"generation {meta.get('generations', '?')} ({meta.get('selected_as', '')}), library {meta.get('library_version')}")
    if meta.get("command"):
        print(f"made by: {meta['command']}")
    shipped = _obj(meta.get("shipped_evaluation"))
    evals = {k: v for k, v in (_obj(shipped.get("result")) or _obj(meta.get("eval"))).items() if isinstance(v, dict)}
    if evals:  # free-form provenance: shown as far as it has the usual shape
        if shipped.get("command"):
            print(f"evaluation: {shipped['command']}")
        print(format_table([{"algo": k, "agents": len(v["per_agent"]) if isinstance(v.get("per_agent"), list)
                             else v.get("agents"), "IQM": v.get("iqm"), "mean": v.get("return_mean")}
                            for k, v in evals.items()]))
    solve = _obj(meta.get("steps_to_solve"))
    sts = _obj(solve.get("result"))
    if sts:
        print(f"steps to solve the real env: {solve.get('command', '')}")
        print(format_table([{"trained on": k, "agents": len(v["steps_to_solve"]), "solved": v.get("solved_fraction"),
                             "median steps": v.get("median_steps"), "threshold": v.get("threshold")}
                            for k, v in sts.items() if isinstance(v, dict) and isinstance(v.get("steps_to_solve"), list)]))
    if cfg.png:
        from torch_distill.viz import plot_scb_states

        if env.kind != "scb":
            raise CLIError(f"--png: {cfg.env_file} is a {env.kind} env; the state picture is for SCBs (learned "
                           "initial states)")
        stats = plot_scb_states(env, cfg.png, num_samples=cfg.samples, seed=cfg.seed)
        print(format_table(stats["rows"]))
        print(f"{100 * stats['inside_real_box']:.1f}% of SCB states lie inside the box of real states\npicture: {cfg.png}")
    return 0


def _obj(x: Any) -> dict[str, Any]:
    """``x`` if it is a JSON object, else ``{}`` (free-form metadata of saved files)."""
    return x if isinstance(x, dict) else {}


def _cmd_datasets(args: list[str]) -> int:
    from torch_distill.io import load_dataset, shipped_datasets, shipped_invariant_datasets, shipped_multitask_datasets

    _no_args("datasets", args)
    for name, path in {**shipped_datasets(), **shipped_invariant_datasets(), **shipped_multitask_datasets()}.items():
        ds = load_dataset(path)
        ev = ds.metadata.get("eval") or {}
        best = max((v["return_mean"] for v in ev.values()), default=float("nan"))
        print(f"{name:<28} D={ds.size:<4} {ds.metadata.get('variant', '?'):<9} eval return {best:.1f}   {path}")
    return 0


def _cmd_envs(args: list[str]) -> int:
    from torch_distill.envs.vec import native_env_ids

    _no_args("envs", args)
    from torch_distill.envs.synthetic import shipped_synthetic_envs

    print("native torch envs:", ", ".join(native_env_ids()))
    print("shipped synthetic envs (torch-distill show-env NAME):", ", ".join(shipped_synthetic_envs()) or "none")
    print("any envpool id (e.g. Hopper-v4) or gymnasium id also works (slower: host round trips).")
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "hades": _cmd_hades,
    "direct-es": _cmd_direct_es,
    "evaluate": _cmd_evaluate,
    "sweep": _cmd_sweep,
    "merge": _cmd_merge,
    "distill-images": _cmd_distill_images,
    "synth-env": _cmd_synth_env,
    "evaluate-env": _cmd_evaluate_env,
    "show": _cmd_show,
    "show-env": _cmd_show_env,
    "convert-env": _cmd_convert_env,
    "datasets": _cmd_datasets,
    "envs": _cmd_envs,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"torch-distill: unknown command {cmd!r}; expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    from torch_distill.distributed import RankFailure
    from torch_distill.envs.vec import UnknownEnvError
    from torch_distill.io import DatasetFileError

    try:
        return COMMANDS[cmd](rest)
    except SystemExit as e:  # tyro's --help
        return e.code if isinstance(e.code, int) else 0
    except RankFailure as e:
        print(f"torch-distill {cmd}: error: {' '.join(str(e).splitlines())}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # a process group that lost a rank cannot be torn down: gloo would wait at interpreter exit for the lost
        # rank's share of the pending collective, so leave at once
        os._exit(2)
    except (CLIError, UnknownEnvError, DatasetFileError, ValueError, OSError) as e:
        if isinstance(e, BrokenPipeError):  # e.g. `torch-distill show X | head`
            sys.stdout = open(os.devnull, "w")
            return 0
        # one line: bad input, a corrupt file, a file system error or a lost rank (never a traceback)
        print(f"torch-distill {cmd}: error: {' '.join(str(e).splitlines())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"torch-distill {cmd}: interrupted (resume with --resume RUN_DIR if a checkpoint was written)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
