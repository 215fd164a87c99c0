"""Looking at distilled datasets: a text description and a picture."""

from __future__ import annotations

from pathlib import Path

import torch

from torch_distill.evaluation import ObsNormalizer
from torch_distill.io import Dataset, atomic_write

__all__ = ["describe_dataset", "raw_states", "plot_dataset"]


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
        f"{ds.spec.env_id}: {ds.size} pairs, {ds.labels} labels, {m.get('variant', '?')}, "
        f"library {m.get('library_version', '?')}",
        f"policy {m.get('policy', {}).get('hidden')} {m.get('policy', {}).get('activation')}; "
        f"BC {m.get('bc', {}).get('steps')} steps lr {m.get('bc', {}).get('lr')}",
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
