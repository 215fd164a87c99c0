"""Looking at distilled artefacts: datasets (a text description and a picture) and learned synthetic envs (the
initial-state distribution of a synthetic contextual bandit against the states a real env visits)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from torch_distill.evaluation import ObsNormalizer
from torch_distill.io import Dataset, atomic_write

__all__ = [
    "OBS_NAMES",
    "describe_dataset",
    "obs_names",
    "plot_dataset",
    "plot_scb_states",
    "raw_states",
    "real_env_states",
    "scb_initial_states",
    "scb_state_stats",
]


def raw_states(ds: Dataset) -> torch.Tensor:
    """States mapped back to raw observation units through the stored normaliser ``[D, obs_dim]``."""
    n = ObsNormalizer.from_json(ds.metadata.get("obs_normalizer"))
    if n.mean is None:
        return ds.states.cpu()
    return ds.states.cpu() * torch.sqrt(n.var + n.eps) + n.mean


def describe_dataset(ds: Dataset) -> str:
    """A human-readable summary: env, provenance, evaluation and every (raw state, label) pair."""
    m = ds.metadata
    lines = [
        (f"{ds.spec.env_id}: {ds.size} pairs, {ds.labels} labels, {m.get('variant', '?')}, "
         f"library {m.get('library_version', '?')}"),
        (f"policy {m.get('policy', {}).get('hidden')} {m.get('policy', {}).get('activation')}; "
         f"BC {m.get('bc', {}).get('steps')} steps lr {m.get('bc', {}).get('lr')}"),
    ]
    for k, v in (m.get("eval") or {}).items():
        lines.append(f"eval [{k}]: return {v['return_mean']:.2f} over {v['policies']} policies x {v['episodes_per_policy']} episodes")
    if m.get("command"):
        lines.append(f"made by: {m['command']}")
    raw = raw_states(ds)
    for i in range(ds.size):
        a = ds.actions[i]
        label = str(int(a)) if a.dim() == 0 else "[" + ", ".join(f"{float(x):+.3f}" for x in a.flatten()) + "]"
        state = ", ".join(f"{float(x):+.3f}" for x in raw[i].flatten())
        lines.append(f"  #{i:<3} state [{state}] -> action {label}")
    return "\n".join(lines)


def plot_dataset(ds: Dataset, path: str | Path) -> None:
    """PNG: one panel per observation dimension (raw units) with the pairs coloured by label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raw = raw_states(ds).numpy()
    if ds.labels == "fixed":
        colour = ds.actions.cpu().numpy()
    elif ds.labels == "logits":
        colour = ds.actions.argmax(-1).cpu().numpy()
    else:
        colour = ds.actions[:, 0].cpu().numpy()
    dims = raw.shape[1]
    cols = min(dims, 4)
    rows = (dims + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.2 * rows), squeeze=False)
    for j in range(rows * cols):
        ax = axes[j // cols][j % cols]
        if j >= dims:
            ax.axis("off")
            continue
        sc = ax.scatter(raw[:, j], range(ds.size), c=colour, cmap="coolwarm", s=25)
        ax.set_title(f"obs[{j}]", fontsize=9)
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes, label="action" if ds.labels != "continuous" else "action[0]")
    fig.suptitle(f"{ds.spec.env_id}: {ds.size} distilled pairs")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------- synthetic envs
OBS_NAMES: dict[str, tuple[str, ...]] = {
    "CartPole": ("cart position", "cart velocity", "pole angle", "pole angular velocity"),
    "Acrobot": ("cos θ1", "sin θ1", "cos θ2", "sin θ2", "θ̇1", "θ̇2"),
    "Pendulum": ("cos θ", "sin θ", "θ̇"),
    "MountainCar": ("position", "velocity"),
    "MountainCarContinuous": ("position", "velocity"),
}
"""Observation names of the classic-control envs (gymnasium order), keyed by the id without its version."""

_SCB_COLOUR, _REAL_COLOUR, _AGENT_COLOUR = "tab:orange", "tab:blue", "tab:green"


def obs_names(env_id: str, obs_dim: int) -> list[str]:
    """Names of the ``obs_dim`` observation entries of ``env_id`` (``SCB-`` prefix ignored), else ``obs[i]``."""
    base = env_id.removeprefix("SCB-").split("-")[0]
    names = OBS_NAMES.get(base)
    if names is None or len(names) != obs_dim:
        return [f"obs[{i}]" for i in range(obs_dim)]
    return list(names)


def _tex(name: str) -> str:
    """Plot label of an observation name: ``θ̇1`` -> mathtext (Agg draws combining dots badly)."""
    import re

    name = re.sub(r"θ̇(\d?)", lambda m: rf"$\dot{{\theta}}_{{{m.group(1)}}}$" if m.group(1) else r"$\dot{\theta}$", name)
    return re.sub(r"θ(\d?)", lambda m: rf"$\theta_{{{m.group(1)}}}$" if m.group(1) else r"$\theta$", name)


def _positive_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name}={v!r}: expected a positive int")
    return v


def real_env_states(
    env_id: str,
    num_states: int,
    seed: int = 0,
    policy: Callable[[Tensor], Tensor] | None = None,
    num_envs: int = 32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Observations ``[num_states, obs_dim]`` float32 (CPU) that the native real env ``env_id`` visits.

    A batch of ``min(num_envs, num_states)`` envs is reset with ``seed`` and stepped (auto-reset) for
    ``ceil(num_states / num_envs)`` decisions; every observation an agent acts on is recorded (time-major, the last
    decision's extra rows dropped). Actions are uniform random (discrete: uniform over ``n_actions``; continuous:
    uniform in ``[action_low, action_high]``) or ``policy(obs [B, obs_dim]) -> actions`` (``[B]`` int64 /
    ``[B, action_dim]`` float), e.g. ``lambda o: algo.act(params[:1], o.unsqueeze(0))[0]`` for a trained
    inner agent of :mod:`torch_distill.algorithms.synthetic_env`. All randomness comes from ``seed``.
    """
    from torch_distill.envs.vec import NativeVecEnv, make_native
    from torch_distill.evaluation import collect_observations, uniform_actions

    num_states = _positive_int("num_states", num_states)
    num_envs = _positive_int("num_envs", num_envs)
    if policy is not None and not callable(policy):
        raise TypeError(f"policy={policy!r}: expected None or a callable obs [B, obs_dim] -> actions")
    env = make_native(env_id)
    spec = env.spec
    if len(spec.obs_shape) != 1:
        raise ValueError(f"{env_id}: expected vector observations, got obs_shape {spec.obs_shape}")
    b = min(num_envs, num_states)
    steps = math.ceil(num_states / b)
    gen = torch.Generator(device=device).manual_seed(int(seed))
    venv = NativeVecEnv(env, b, device, generator=gen)
    obs = venv.reset(None)
    act = policy if policy is not None else (lambda o: uniform_actions(spec, b, gen, o.device))
    out = collect_observations(venv, obs, act, steps - 1)
    return out.reshape(-1, spec.obs_dim)[:num_states].cpu()


def _check_states(x: Any, obs_dim: int, what: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor [N, {obs_dim}], got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != obs_dim or x.shape[0] < 1:
        raise ValueError(f"{what}: shape {tuple(x.shape)}, expected [N, {obs_dim}] with N >= 1")
    x = x.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: contains NaN or inf values")
    return x


def _summary(x: Tensor) -> dict[str, Any]:
    return {"n": int(x.shape[0]), "mean": x.mean(0).tolist(), "std": x.std(0, correction=0).tolist(),
            "min": x.min(0).values.tolist(), "max": x.max(0).values.tolist()}


def scb_state_stats(scb_states: Tensor, real_states: Tensor, names: Sequence[str] | None = None,
                    agent_states: Tensor | None = None) -> dict[str, Any]:
    """Summary of SCB observations ``[N, d]`` against real-env states ``[M, d]`` (optionally agent states ``[K, d]``).

    Returns a JSON-able dict: ``names``; ``scb`` / ``real`` (/ ``agent``): ``{"n", "mean", "std", "min", "max"}``
    (per-dim lists, population std); ``inside_real_range``: per dim, the fraction of SCB samples inside the real
    states' ``[min, max]``; ``inside_real_box``: fraction inside it in every dim at once; ``rows``: one dict per
    dim for :func:`torch_distill.log.format_table`.
    """
    if not isinstance(scb_states, Tensor) or scb_states.dim() != 2:
        raise ValueError(f"scb_states: expected a [N, d] tensor, got {getattr(scb_states, 'shape', type(scb_states))}")
    d = scb_states.shape[1]
    scb = _check_states(scb_states, d, "scb_states")
    real = _check_states(real_states, d, "real_states")
    agent = None if agent_states is None else _check_states(agent_states, d, "agent_states")
    names = list(names) if names is not None else [f"obs[{i}]" for i in range(d)]
    if len(names) != d:
        raise ValueError(f"names: {len(names)} names for {d} observation dims")
    lo, hi = real.min(0).values, real.max(0).values
    inside = (scb >= lo) & (scb <= hi)
    per_dim = inside.float().mean(0)
    out: dict[str, Any] = {"names": names, "scb": _summary(scb), "real": _summary(real),
                           "inside_real_range": per_dim.tolist(), "inside_real_box": float(inside.all(1).float().mean())}
    if agent is not None:
        out["agent"] = _summary(agent)
    rows = []
    for i, name in enumerate(names):
        row: dict[str, Any] = {"dim": name, "SCB mean": out["scb"]["mean"][i], "SCB std": out["scb"]["std"][i],
                               "real mean": out["real"]["mean"][i], "real std": out["real"]["std"][i],
                               "real min": out["real"]["min"][i], "real max": out["real"]["max"][i]}
        if agent is not None:
            row.update({"agent mean": out["agent"]["mean"][i], "agent std": out["agent"]["std"][i]})
        row["SCB in real range"] = out["inside_real_range"][i]
        rows.append(row)
    out["rows"] = rows
    return out


def scb_initial_states(env: Any, num_samples: int, seed: int = 0) -> Tensor:
    """``num_samples`` observations ``[N, obs_dim]`` (CPU) from the SCB's initial-state network: ``reset`` with the
    env's own params (a loaded env's genome, else the default initialisation) and latents drawn with ``seed``."""
    from torch_distill.envs.synthetic import SyntheticContextualBandit

    if not isinstance(env, SyntheticContextualBandit):
        raise TypeError(f"env: expected a SyntheticContextualBandit (a synthetic env with a learned initial-state "
                        f"network) or the path of a saved one, got {type(env).__name__}; real envs have no learned "
                        f"initial-state distribution")
    num_samples = _positive_int("num_samples", num_samples)
    device = env.genome.device if env.genome is not None else torch.device("cpu")
    gen = torch.Generator(device=device).manual_seed(int(seed))
    with torch.no_grad():
        _, obs = env.with_latent_period(None).reset(num_samples, gen, env.default_params(device))
    obs = obs.cpu()
    if not torch.isfinite(obs).all():
        raise ValueError(f"{env.spec.env_id}: the initial-state network produced NaN or inf observations")
    return obs


def plot_scb_states(
    env: Any,
    out_path: str | os.PathLike,
    real_states: Tensor | None = None,
    num_samples: int = 5000,
    seed: int = 0,
    agent_states: Tensor | None = None,
    title: str | None = None,
    dims: Sequence[int] | None = None,
    max_points: int = 1500,
) -> dict[str, Any]:
    """PNG of a synthetic contextual bandit's learned initial-state distribution against real-env states, as in
    Liesen et al. 2024 (arXiv 2406.12589), "learned state distribution vs states visited" figure.

    A ``k x k`` grid over the plotted observation dims: per-dim histograms on the diagonal (fraction of samples per
    bin, shared bins), pairwise scatter plots off the diagonal (``x``: column dim, ``y``: row dim; at most
    ``max_points`` random points per set); SCB in orange, real states in blue, optional ``agent_states`` (e.g.
    :func:`real_env_states` under a trained agent's ``policy``) in green. Axes carry the observation names
    (:data:`OBS_NAMES`) when known. Written atomically.

    Args:
        env: a :class:`~torch_distill.envs.synthetic.SyntheticContextualBandit` (its :meth:`default_params`: the
            loaded genome, else the default initialisation) or the path of a saved one.
        out_path: PNG file to write.
        real_states: ``[M, obs_dim]`` real-env observations; default :func:`real_env_states` of the env's real id
            with ``num_samples`` states under uniform random actions and ``seed``.
        num_samples: SCB observations drawn (latents from ``seed``).
        dims: observation dims to plot (default: all, at most the first 8); statistics cover every dim.
    Returns:
        :func:`scb_state_stats` plus ``env_id``, ``path``, ``dims_plotted`` and ``real_source``.
    """
    import numpy as np

    from torch_distill.envs.synthetic import load_synthetic_env

    if isinstance(env, (str, os.PathLike)):
        env = load_synthetic_env(env)
    scb = scb_initial_states(env, num_samples, seed)
    d = env.spec.obs_dim
    env_id = env.real_spec.env_id
    if real_states is None:
        real = real_env_states(env_id, num_samples, seed)
        source = f"native {env_id}, uniform random actions, seed {seed}"
    else:
        real = _check_states(real_states, d, "real_states")
        source = "given"
    agent = None if agent_states is None else _check_states(agent_states, d, "agent_states")
    max_points = _positive_int("max_points", max_points)
    if dims is None:
        dims = list(range(min(d, 8)))
    else:
        dims = [int(i) for i in dims]
        if not dims or any(i < 0 or i >= d for i in dims) or len(set(dims)) != len(dims):
            raise ValueError(f"dims={dims}: expected distinct observation indices in [0, {d})")
    names = obs_names(env_id, d)
    stats = scb_state_stats(scb, real, names, agent)
    stats.update(env_id=env_id, path=str(out_path), dims_plotted=dims, real_source=source)

    gen = torch.Generator().manual_seed(int(seed))
    sets = [("real env", real, _REAL_COLOUR), ("SCB", scb, _SCB_COLOUR)]
    if agent is not None:
        sets.insert(1, ("agent", agent, _AGENT_COLOUR))
    shown = [(lab, x[torch.randperm(x.shape[0], generator=gen)[:max_points]].numpy(), x.numpy(), c) for lab, x, c in sets]
    lo = np.min([x.min(0) for _, _, x, _ in shown], axis=0)
    hi = np.max([x.max(0) for _, _, x, _ in shown], axis=0)
    pad = np.where(hi - lo > 1e-9, 0.03 * (hi - lo), 0.5)
    lo, hi = lo - pad, hi + pad

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    k = len(dims)
    side = max(2.1 * k + 0.6, 5.0)
    fig, axes = plt.subplots(k, k, figsize=(side, side + 0.4), squeeze=False, layout="constrained")
    try:
        for r, i in enumerate(dims):
            for c, j in enumerate(dims):
                ax = axes[r][c]
                if r == c:
                    bins = np.linspace(lo[i], hi[i], 41)
                    for _, _, x, col in shown:
                        ax.hist(x[:, i], bins=bins, weights=np.full(x.shape[0], 1.0 / x.shape[0]), color=col,
                                alpha=0.45, histtype="stepfilled", edgecolor=col, linewidth=0.8)
                    ax.set_title(_tex(names[i]), fontsize=8)
                    ax.set_yticks([])
                    if k == 1:
                        ax.set_ylabel("fraction of samples", fontsize=8)
                else:
                    for _, x, _, col in shown:
                        ax.scatter(x[:, j], x[:, i], s=2, alpha=0.35, color=col, linewidths=0, rasterized=True)
                    ax.set_ylim(lo[i], hi[i])
                    if c == 0:
                        ax.set_ylabel(_tex(names[i]), fontsize=8)
                    else:
                        ax.tick_params(labelleft=False)
                ax.set_xlim(lo[j], hi[j])
                ax.tick_params(labelsize=6)
                if r == k - 1:
                    ax.set_xlabel(_tex(names[j]), fontsize=8)
                else:
                    ax.tick_params(labelbottom=False)
        handles = [Patch(color=col, alpha=0.6, label=f"{lab} ({x.shape[0]})") for lab, _, x, col in shown]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
        more = f" ({k} of {d} dims)" if k < d else ""
        fig.suptitle(title or f"{env_id}: SCB initial states vs real-env states{more}", fontsize=10)
        atomic_write(out_path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    finally:
        plt.close(fig)
    return stats
