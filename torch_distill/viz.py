"""Looking at distilled artefacts: datasets (a text description and a picture: each state drawn as its env's frame
with its action label, or one panel per observation dimension) and learned synthetic envs (the initial-state
distribution of a synthetic contextual bandit against the states a real env visits)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from torch_distill.evaluation import ObsNormalizer
from torch_distill.io import Dataset, atomic_write

__all__ = [
    "OBS_NAMES",
    "FrameRenderError",
    "ShowLayout",
    "ShowPanel",
    "action_labels",
    "decode_minatar",
    "decode_minigrid",
    "describe_dataset",
    "frame_kind",
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


def plot_dataset(ds: Dataset, path: str | Path, mode: str = "auto", max_panels: int = 64) -> ShowLayout:
    """PNG of a dataset, written atomically; returns the :class:`ShowLayout` drawn.

    ``mode="frames"``: one panel per pair (the first ``max_panels``), the state drawn as its env's frame, titled
    with its action label (:func:`action_labels`): classic control drawn from the state vector as gymnasium draws
    it (CartPole, Pendulum, Acrobot, MountainCar, MountainCarContinuous), MiniGrid's egocentric view
    (:func:`decode_minigrid`, drawn by :func:`~torch_distill.envs.minigrid.render.render_view`), MinAtar's grid
    (:func:`decode_minatar`, drawn by :func:`~torch_distill.envs.minatar.render.render_rgb`), MuJoCo bodies
    rendered offscreen by ``mujoco.Renderer`` (EGL, else OSMesa; :class:`FrameRenderError` if neither works).
    Evolved states may lie outside the env's valid range: values are clamped / rounded for drawing and the panel
    says so in red (:attr:`ShowPanel.markers`). ``mode="dims"``: one panel per observation dimension (raw units)
    with the pairs coloured by label. ``mode="auto"``: frames where the env kind is known (:func:`frame_kind`),
    else dims.
    """
    if mode not in ("auto", "frames", "dims"):
        raise ValueError(f"mode={mode!r}: expected 'auto', 'frames' or 'dims'")
    max_panels = _positive_int("max_panels", max_panels)
    kind = frame_kind(ds.spec.env_id, ds.spec.obs_dim) if mode != "dims" else None
    if kind is None:
        if mode == "frames":
            raise ValueError(f"{ds.spec.env_id}: no frame drawing for this env (obs_dim {ds.spec.obs_dim}); known: "
                             f"classic control, MiniGrid, MinAtar, MuJoCo {', '.join(_MUJOCO)}; use mode='dims'")
        return _plot_dims(ds, path)
    return _plot_frames(ds, path, kind, max_panels)


def _plot_dims(ds: Dataset, path: str | Path) -> ShowLayout:
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
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    finally:
        plt.close(fig)
    panels = [ShowPanel(j, f"obs[{j}]") for j in range(dims)]
    return ShowLayout(str(path), ds.spec.env_id, "dims", "dims", rows, cols, panels, ds.size)


# ---------------------------------------------------------------------------------------------------- dataset frames
class FrameRenderError(ValueError):
    """A dataset's frames cannot be drawn here: a renderer or model asset is missing (the message says which and
    how to get it). A ``ValueError``, so the command line reports it in one line with exit status 2."""


@dataclass
class ShowPanel:
    """One panel of a dataset picture.

    Attributes:
        index: the pair's row in the dataset (frames) or the observation dim (``"dims"`` pictures).
        label: the panel title: the action label (``"right"``, ``"forward"``, ``"l"``, ``"right p=0.83"``,
            ``"[+0.29, +1.21, -0.80]"``) or ``obs[j]``.
        markers: what drawing changed about the state: ``"clipped ..."`` (a value clamped into the drawable
            range), ``"rounded"`` (codes away from integers), ``"off circle"`` (a ``(cos, sin)`` pair of norm far
            from 1); shown in red in the panel.
        drawn: what was drawn, per kind (e.g. CartPole ``x``, ``theta``, ``pivot``, ``tip``; MiniGrid the decoded
            ``image [7, 7, 3]`` and ``direction``; MinAtar ``obs [10, 10, C]`` bool; image kinds the ``frame``
            ``[H, W, 3]`` uint8 shown).
    """

    index: int
    label: str
    markers: tuple[str, ...] = ()
    drawn: dict[str, Any] = field(default_factory=dict)


@dataclass
class ShowLayout:
    """What :func:`plot_dataset` drew: ``mode`` ``"frames"`` or ``"dims"``, ``kind`` (``"cartpole"``,
    ``"pendulum"``, ``"acrobot"``, ``"mountaincar"``, ``"minigrid"``, ``"minatar"``, ``"mujoco"`` or ``"dims"``),
    the ``rows x cols`` grid, one :class:`ShowPanel` per panel drawn and ``total`` pairs in the dataset."""

    path: str
    env_id: str
    mode: str
    kind: str
    rows: int
    cols: int
    panels: list[ShowPanel]
    total: int


_CLASSIC = {"CartPole": ("cartpole", 4), "Pendulum": ("pendulum", 3), "Acrobot": ("acrobot", 6),
            "MountainCar": ("mountaincar", 2), "MountainCarContinuous": ("mountaincar", 2)}
_ACTION_NAMES: dict[str, tuple[str, ...]] = {
    "CartPole": ("left", "right"),
    "Acrobot": ("torque -1", "torque 0", "torque +1"),
    "MountainCar": ("left", "none", "right"),
    "MiniGrid": ("left", "right", "forward", "pickup", "drop", "toggle", "done"),
}
"""Discrete action names (gymnasium's / MiniGrid's order), keyed by the id without its version."""
_CONTINUOUS_NAMES = {"Pendulum": "torque", "MountainCarContinuous": "force"}

# MuJoCo ids: model file and how many leading qpos entries the observation leaves out (gymnasium / envpool v4:
# the root's x (and y) position); the observation starts with qpos[skip:], then qvel.
_MUJOCO: dict[str, tuple[str, int]] = {
    "Hopper": ("hopper.xml", 1), "Walker2d": ("walker2d.xml", 1), "HalfCheetah": ("half_cheetah.xml", 1),
    "Swimmer": ("swimmer.xml", 2), "Ant": ("ant.xml", 2), "Humanoid": ("humanoid.xml", 2),
    "HumanoidStandup": ("humanoidstandup.xml", 2), "InvertedPendulum": ("inverted_pendulum.xml", 0),
}
_MINIGRID_OBS_DIM = 7 * 7 * 3 + 4 + 4
_DIRECTIONS = ("east", "south", "west", "north")
_GL_BACKENDS = ("egl", "osmesa")
_gl_choice: dict[str, str] = {}


def frame_kind(env_id: str, obs_dim: int) -> str | None:
    """How :func:`plot_dataset` draws states of ``env_id`` as frames (see :class:`ShowLayout`), None when it cannot
    (unknown env or an observation size that is not the env's)."""
    base = env_id.split("-")[0]
    if base in _CLASSIC:
        kind, dim = _CLASSIC[base]
        return kind if obs_dim == dim else None
    if env_id.startswith("MiniGrid-") and obs_dim == _MINIGRID_OBS_DIM:
        return "minigrid"
    if base in _MUJOCO:
        return "mujoco"
    if obs_dim % 100 == 0:
        from torch_distill.envs.minatar import resolve

        try:
            resolve(env_id)
        except ValueError:
            return None
        return "minatar"
    return None


def _action_names(ds: Dataset, kind: str | None) -> tuple[str, ...] | None:
    base = ds.spec.env_id.split("-")[0]
    if kind == "minatar":
        from torch_distill.envs.minatar import FULL_ACTIONS, make

        return tuple(FULL_ACTIONS[a] for a in make(ds.spec.env_id).actions)
    names = _ACTION_NAMES.get("MiniGrid" if kind == "minigrid" else base)
    return names if names is not None and len(names) == ds.spec.n_actions else None


def action_labels(ds: Dataset, kind: str | None = None) -> list[str]:
    """One title per pair: the action's name where known (else its index); label logits: the argmax's name and
    its softmax probability (``"right p=0.83"``); continuous: the target vector rounded to 2 decimals (1-D with
    the env's name for it, ``"torque +1.16"``; the env clips actions to its box, the dataset's targets may lie
    outside)."""
    kind = frame_kind(ds.spec.env_id, ds.spec.obs_dim) if kind is None else kind
    acts = ds.actions.detach().cpu()
    if ds.labels == "continuous":
        name = _CONTINUOUS_NAMES.get(ds.spec.env_id.split("-")[0])
        out = []
        for a in acts.reshape(acts.shape[0], -1):
            if name is not None and a.numel() == 1:
                out.append(f"{name} {float(a[0]):+.2f}")
            else:
                out.append("[" + ", ".join(f"{float(x):+.2f}" for x in a) + "]")
        return out
    names = _action_names(ds, kind)
    if ds.labels == "logits":
        p = torch.softmax(acts.double(), dim=-1)
        best = p.argmax(-1)
        return [f"{names[int(b)] if names else int(b)} p={float(p[i, b]):.2f}" for i, b in enumerate(best)]
    return [names[int(a)] if names else str(int(a)) for a in acts]


def _clip(v: float, lo: float, hi: float, name: str, markers: list[str]) -> float:
    if v < lo or v > hi:
        markers.append(f"clipped {name}")
        return min(max(v, lo), hi)
    return v


def _arc_arrow(ax: Any, centre: tuple[float, float], radius: float, omega: float, omega_max: float,
               start_deg: float, colour: str = "tab:blue") -> None:
    """An arc arrow around ``centre``: counter-clockwise for ``omega > 0``, spanning up to 300 degrees at
    ``|omega| >= omega_max`` (nothing for ``omega == 0``)."""
    import numpy as np

    frac = max(-1.0, min(1.0, omega / omega_max))
    if abs(frac) < 1e-3:
        return
    span = math.radians(300.0 * frac)
    t = math.radians(start_deg) + np.linspace(0.0, span, 40)
    xs, ys = centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)
    ax.plot(xs[:-1], ys[:-1], color=colour, lw=1.2)
    ax.annotate("", xy=(xs[-1], ys[-1]), xytext=(xs[-4], ys[-4]),
                arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.2, "mutation_scale": 9})


def _arrow(ax: Any, start: tuple[float, float], delta: tuple[float, float], colour: str = "tab:blue") -> None:
    if abs(delta[0]) + abs(delta[1]) < 1e-6:
        return
    ax.annotate("", xy=(start[0] + delta[0], start[1] + delta[1]), xytext=start,
                arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.2, "mutation_scale": 9})


def _angle(c: float, s: float, name: str, markers: list[str]) -> float:
    """``atan2(s, c)``; a marker when the pair is far from the unit circle (an evolved state need not lie on it)."""
    r = math.hypot(c, s)
    if abs(r - 1.0) > 0.05:
        markers.append(f"off circle {name} r={r:.2f}")
    return math.atan2(s, c)


def _draw_cartpole(ax: Any, row: list[float], markers: list[str]) -> tuple[dict[str, Any], str]:
    """gymnasium's CartPole picture in world units: track at y = 0 over x in [-2.4, 2.4] (the termination bound),
    cart 0.4 x 0.24 centred on it, pole of length 1 (2 x half-length 0.5) from the axle 0.06 above the track;
    theta = 0 upright, theta > 0 leaning right (tip at ``x + sin theta``), as gymnasium rotates the pole by
    ``-theta`` in its flipped frame."""
    from matplotlib.patches import Circle, Rectangle

    x, v, th, w = row
    xd = _clip(x, -2.4, 2.4, "x", markers)
    ax.plot([-2.6, 2.6], [0, 0], color="black", lw=1)
    for b in (-2.4, 2.4):
        ax.plot([b, b], [-0.05, 0.05], color="grey", lw=1)
    ax.add_patch(Rectangle((xd - 0.2, -0.12), 0.4, 0.24, color="black", zorder=2))
    pivot = (xd, 0.06)
    tip = (xd + math.sin(th), 0.06 + math.cos(th))
    ax.plot([pivot[0], tip[0]], [pivot[1], tip[1]], color=(202 / 255, 152 / 255, 101 / 255), lw=4,
            solid_capstyle="butt", zorder=3)
    ax.add_patch(Circle(pivot, 0.04, color=(129 / 255, 132 / 255, 203 / 255), zorder=4))
    _arrow(ax, (xd, -0.25), (0.5 * max(-3.0, min(3.0, v)), 0.0))
    _arc_arrow(ax, tip, 0.15, -w, 3.0, 90.0 - math.degrees(th))  # theta grows clockwise
    ax.set_xlim(-2.7, 2.7)
    ax.set_ylim(-0.4, 1.3)
    return ({"x": xd, "theta": th, "pivot": pivot, "tip": tip, "velocity": v, "angular_velocity": w},
            f"x={x:+.2f} x'={v:+.2f} θ={th:+.3f} θ'={w:+.2f}")


def _draw_pendulum(ax: Any, row: list[float], markers: list[str]) -> tuple[dict[str, Any], str]:
    """gymnasium's Pendulum picture: rod of length 1 from the pivot to ``(-sin theta, cos theta)`` (theta = 0
    upright, positive counter-clockwise: gymnasium draws the rod end at angle ``theta + pi / 2``); the angular
    velocity (|theta dot| <= 8) as an arc arrow, counter-clockwise when positive."""
    from matplotlib.patches import Circle

    c, s, w = row
    th = _angle(c, s, "θ", markers)
    wd = _clip(w, -8.0, 8.0, "θ'", markers)
    tip = (-math.sin(th), math.cos(th))
    ax.plot([0, tip[0]], [0, tip[1]], color=(204 / 255, 77 / 255, 77 / 255), lw=6, solid_capstyle="round")
    ax.add_patch(Circle((0, 0), 0.05, color="black", zorder=3))
    _arc_arrow(ax, (0.0, 0.0), 0.35, wd, 8.0, math.degrees(th) + 90.0)
    ax.set_xlim(-1.2, 1.2)
    ax.set_ylim(-1.2, 1.2)
    return {"theta": th, "tip": tip, "angular_velocity": wd}, f"θ={th:+.2f} θ'={w:+.2f}"


def _draw_acrobot(ax: Any, row: list[float], markers: list[str]) -> tuple[dict[str, Any], str]:
    """gymnasium's Acrobot picture: links of length 1 from the pivot, theta1 = 0 hanging down, positive
    counter-clockwise (``p1 = (sin theta1, -cos theta1)``, ``p2 = p1 + (sin(theta1 + theta2), -cos(theta1 +
    theta2))``); the goal line at height 1; joint velocities (|dtheta1| <= 4 pi, |dtheta2| <= 9 pi) as arcs."""
    from matplotlib.patches import Circle

    c1, s1, c2, s2, w1, w2 = row
    t1 = _angle(c1, s1, "θ1", markers)
    t2 = _angle(c2, s2, "θ2", markers)
    w1d = _clip(w1, -4 * math.pi, 4 * math.pi, "θ1'", markers)
    w2d = _clip(w2, -9 * math.pi, 9 * math.pi, "θ2'", markers)
    p1 = (math.sin(t1), -math.cos(t1))
    p2 = (p1[0] + math.sin(t1 + t2), p1[1] - math.cos(t1 + t2))
    ax.plot([-2.2, 2.2], [1, 1], color="black", lw=1)
    ax.plot([0, p1[0], p2[0]], [0, p1[1], p2[1]], color=(0, 0.8, 0.8), lw=5, solid_capstyle="round")
    for p in ((0.0, 0.0), p1):
        ax.add_patch(Circle(p, 0.07, color=(0.8, 0.8, 0), zorder=3))
    _arc_arrow(ax, (0.0, 0.0), 0.3, w1d, 4 * math.pi, math.degrees(t1) - 90.0)
    _arc_arrow(ax, p1, 0.3, w2d, 9 * math.pi, math.degrees(t1 + t2) - 90.0, colour="tab:purple")
    ax.set_xlim(-2.2, 2.2)
    ax.set_ylim(-2.2, 2.2)
    return ({"theta1": t1, "theta2": t2, "p1": p1, "p2": p2},
            f"θ1={t1:+.2f} θ2={t2:+.2f} θ1'={w1:+.2f} θ2'={w2:+.2f}")


def _draw_mountaincar(ax: Any, row: list[float], markers: list[str], goal: float) -> tuple[dict[str, Any], str]:
    """gymnasium's MountainCar picture: the hill ``y = 0.45 sin(3x) + 0.55`` over ``[-1.2, 0.6]``, the goal flag,
    the car (0.12 x 0.06, gymnasium's 40 x 20 pixels at 600 / 1.8 pixels per unit) on the hill at ``position``
    tilted along the slope (its true angle ``atan(1.35 cos 3x)``; gymnasium tilts by ``cos 3x`` radians, an
    approximation), and the velocity (|v| <= 0.07) as an arrow along it."""
    import numpy as np
    from matplotlib.patches import Circle, Polygon

    pos, vel = row
    p = _clip(pos, -1.2, 0.6, "position", markers)
    vd = _clip(vel, -0.07, 0.07, "velocity", markers)
    xs = np.linspace(-1.2, 0.6, 100)
    ax.plot(xs, 0.45 * np.sin(3 * xs) + 0.55, color="black", lw=1)
    gy = 0.45 * math.sin(3 * goal) + 0.55
    ax.plot([goal, goal], [gy, gy + 0.15], color="black", lw=1)
    ax.add_patch(Polygon([(goal, gy + 0.15), (goal, gy + 0.11), (goal + 0.075, gy + 0.13)], color=(0.8, 0.8, 0)))
    h = 0.45 * math.sin(3 * p) + 0.55
    ang = math.atan(1.35 * math.cos(3 * p))  # the slope's angle
    ca, sa = math.cos(ang), math.sin(ang)
    nx, ny = -sa, ca  # normal of the slope

    def at(u: float, n: float) -> tuple[float, float]:
        return p + u * ca + n * nx, h + u * sa + n * ny

    clear = 0.03
    ax.add_patch(Polygon([at(-0.06, clear), at(0.06, clear), at(0.06, clear + 0.06), at(-0.06, clear + 0.06)],
                         color="black", zorder=2))
    for u in (-0.03, 0.03):
        ax.add_patch(Circle(at(u, clear), 0.024, color=(0.5, 0.5, 0.5), zorder=3))
    length = 0.25 * vd / 0.07
    start = at(0.0, clear + 0.12)
    _arrow(ax, start, (length * ca, length * sa))
    ax.set_xlim(-1.25, 0.65)
    ax.set_ylim(0.0, 1.2)
    return {"position": p, "height": h, "velocity": vd}, f"x={pos:+.3f} v={vel:+.4f}"


def decode_minigrid(row: Tensor) -> tuple[Tensor, int, Tensor, tuple[str, ...]]:
    """Inverse of :class:`~torch_distill.envs.wrappers.FlatSymbolicObs` for one raw flat vector ``[155]``:
    ``(image [7, 7, 3] uint8 (view_x, view_y, channel), direction, mission [4] uint8, markers)``. Codes are
    rounded and clamped into MiniGrid's ranges (type 0..10, colour 0..5, state 0..2; mission likewise); the
    direction is the argmax of its one-hot block. Markers say what was changed."""
    from torch_distill.envs.minigrid.render import _N_COLORS, _N_STATES, _N_TYPES

    row = row.detach().cpu().double()
    markers: list[str] = []
    codes = row[:147].reshape(7, 7, 3)
    mission = row[151:155].reshape(2, 2)
    hi = torch.tensor([_N_TYPES - 1, _N_COLORS - 1, _N_STATES - 1], dtype=torch.float64)
    rounded = codes.round()
    clamped = torch.minimum(torch.maximum(rounded, torch.zeros(3, dtype=torch.float64)), hi)
    m_clamped = torch.minimum(torch.maximum(mission.round(), torch.zeros(2, dtype=torch.float64)), hi[:2])
    if not (torch.equal(clamped, rounded) and torch.equal(m_clamped, mission.round())):
        markers.append("clipped codes")
    if float((codes - rounded).abs().max()) > 0.1 or float((mission - mission.round()).abs().max()) > 0.1:
        markers.append("rounded")
    onehot = row[147:151]
    direction = int(onehot.argmax())
    if not torch.allclose(onehot, torch.nn.functional.one_hot(torch.tensor(direction), 4).double(), atol=0.1):
        markers.append("direction = argmax")
    return clamped.to(torch.uint8), direction, m_clamped.reshape(4).to(torch.uint8), tuple(markers)


def decode_minatar(row: Tensor) -> tuple[Tensor, tuple[str, ...]]:
    """Inverse of :class:`~torch_distill.envs.wrappers.FlatMinAtarObs` for one raw flat vector ``[100 * C]``:
    ``(obs [10, 10, C] bool, markers)``, each value thresholded at 0.5; the marker counts values outside
    ``[0, 1]`` (clamped by the threshold)."""
    row = row.detach().cpu()
    outside = int(((row < -0.05) | (row > 1.05)).sum())
    obs = (row > 0.5).reshape(10, 10, -1)
    return obs, ((f"clipped {outside} values",) if outside else ())


def _mujoco_model(env_id: str) -> Any:
    """The MuJoCo model of a gymnasium / envpool MuJoCo id (gymnasium's XML assets, else envpool's)."""
    import importlib.util

    fname = _MUJOCO[env_id.split("-")[0]][0]
    try:
        import mujoco
    except ImportError:
        raise FrameRenderError(f"{env_id}: drawing MuJoCo frames needs the mujoco package "
                               "(pip install mujoco)") from None
    tried = []
    for pkg, sub in (("gymnasium", ("envs", "mujoco", "assets")), ("envpool_assets", ("mujoco", "assets_gym"))):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            tried.append(f"{pkg} (not installed)")
            continue
        path = Path(list(spec.submodule_search_locations)[0], *sub, fname)
        if not path.exists():
            tried.append(f"{path.name} of {pkg} (missing)")
            continue
        try:
            return mujoco.MjModel.from_xml_path(str(path))
        except Exception as e:  # an asset this mujoco cannot read
            tried.append(f"{path.name} of {pkg} ({' '.join(str(e).split())[:80]})")
    raise FrameRenderError(f"{env_id}: no loadable MuJoCo model {fname}: tried {'; '.join(tried)}; "
                           f"install gymnasium's MuJoCo assets (pip install 'gymnasium[mujoco]')")


def _probe_gl(backend: str) -> str | None:
    """None if ``MUJOCO_GL=backend`` gives a working offscreen OpenGL context (tried in a fresh interpreter: the
    backend is fixed when mujoco is imported), else the last line of its error."""
    import subprocess
    import sys

    env = {**os.environ, "MUJOCO_GL": backend}
    if backend in _GL_BACKENDS:
        env["PYOPENGL_PLATFORM"] = backend
    code = "import mujoco; c = mujoco.GLContext(8, 8); c.make_current(); c.free()"
    try:
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{type(e).__name__}: {e}"
    if r.returncode == 0:
        return None
    lines = [ln.strip() for ln in r.stderr.splitlines() if ln.strip()]
    return (lines[-1] if lines else f"exit status {r.returncode}")[:160]


def _select_gl(env_id: str, environ: Any = None) -> str:
    """The OpenGL backend MuJoCo frames are drawn with, set in ``os.environ`` (``MUJOCO_GL``, and
    ``PYOPENGL_PLATFORM`` for egl / osmesa) before mujoco is imported: the user's ``MUJOCO_GL`` if set, else the
    first of egl, osmesa that works. Once mujoco is imported its backend is fixed and used as it is. Raises
    :class:`FrameRenderError` naming what is missing."""
    import importlib.util
    import sys

    if importlib.util.find_spec("mujoco") is None:
        raise FrameRenderError(f"{env_id}: drawing MuJoCo frames needs the mujoco package (pip install mujoco)")
    environ = os.environ if environ is None else environ
    if "mujoco" in sys.modules and environ is os.environ:
        return environ.get("MUJOCO_GL", "default")
    wanted = environ.get("MUJOCO_GL")
    candidates = (wanted,) if wanted else _GL_BACKENDS
    errors = []
    for gl in candidates:
        if gl in _gl_choice:
            return gl
        err = _probe_gl(gl)
        if err is None:
            _gl_choice[gl] = gl
            environ["MUJOCO_GL"] = gl
            if gl in _GL_BACKENDS:
                environ.setdefault("PYOPENGL_PLATFORM", gl)
            return gl
        errors.append(f"MUJOCO_GL={gl}: {err}")
    raise FrameRenderError(
        f"{env_id}: drawing MuJoCo frames needs an offscreen OpenGL backend for mujoco.Renderer and none works "
        f"here ({'; '.join(errors)}); install EGL (e.g. apt-get install libegl1) or OSMesa (apt-get install "
        f"libosmesa6) and set MUJOCO_GL=egl or MUJOCO_GL=osmesa before starting")


def _mujoco_frames(env_id: str, raw: Tensor,
                   size: int = 240) -> tuple[list[Any], list[dict[str, Any]], list[list[str]]]:
    """Frames ``[size, size, 3]`` uint8 of MuJoCo observations ``raw [N, obs_dim]``: ``qpos = (0,) * skip +
    obs[:nq - skip]`` (the unobserved root x (, y) set to 0), ``qvel = obs[nq - skip : nq - skip + nv]``; limited
    joints clamped into their range (marker ``clipped <joint>``); the camera tracks the root body from the side
    (its centre of mass; gymnasium's Hopper view: distance 3, elevation -20)."""
    import numpy as np

    gl = _select_gl(env_id)  # before mujoco is imported: its OpenGL backend is fixed then
    model = _mujoco_model(env_id)
    skip = _MUJOCO[env_id.split("-")[0]][1]
    nobs = model.nq - skip + model.nv
    if raw.shape[1] < nobs:
        raise ValueError(f"{env_id}: observations have {raw.shape[1]} entries, the model needs qpos[{skip}:] and qvel "
                         f"({nobs})")
    import mujoco

    data = mujoco.MjData(model)
    try:
        renderer = mujoco.Renderer(model, size, size)
    except Exception as e:
        why = " ".join(str(e).split())[:160]
        raise FrameRenderError(f"{env_id}: mujoco.Renderer failed with MUJOCO_GL={gl} ({why});"
                               f" set MUJOCO_GL=egl or osmesa before mujoco is imported, with EGL (apt-get install "
                               f"libegl1) or OSMesa (apt-get install libosmesa6) installed") from None
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.distance, cam.elevation, cam.azimuth = 3.0, -20.0, 90.0
    frames, drawn, markers = [], [], []
    try:
        for row in raw.double().numpy():
            mk: list[str] = []
            qpos = np.concatenate([np.zeros(skip), row[: model.nq - skip]])
            qvel = row[model.nq - skip: nobs]
            for j in range(model.njnt):
                if model.jnt_limited[j] and model.jnt_type[j] in (mujoco.mjtJoint.mjJNT_HINGE,
                                                                    mujoco.mjtJoint.mjJNT_SLIDE):
                    a = model.jnt_qposadr[j]
                    lo, hi = model.jnt_range[j]
                    if not lo <= qpos[a] <= hi:
                        mk.append(f"clipped {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)}")
                        qpos[a] = min(max(qpos[a], lo), hi)
            mujoco.mj_resetData(model, data)
            data.qpos[:], data.qvel[:] = qpos, qvel
            mujoco.mj_forward(model, data)
            cam.lookat[:] = data.subtree_com[1]  # the body's centre of mass
            renderer.update_scene(data, camera=cam)
            frames.append(renderer.render().copy())
            drawn.append({"qpos": qpos, "qvel": qvel})
            markers.append(mk)
    finally:
        renderer.close()
    return frames, drawn, markers


def _frame_panels(ds: Dataset, kind: str, raw: Tensor) -> list[tuple[dict[str, Any], list[str], str, Any]]:
    """Per pair: ``(drawn, markers, caption, draw)`` where ``draw(ax)`` draws the panel (vector kinds) or is None
    and ``drawn["frame"]`` is the image to show."""
    out: list[tuple[dict[str, Any], list[str], str, Any]] = []
    if kind == "mujoco":
        frames, drawn, markers = _mujoco_frames(ds.spec.env_id, raw)
        for f, d, m in zip(frames, drawn, markers):
            d["frame"] = f
            base = ds.spec.env_id.split("-")[0]
            z = "" if base in ("Swimmer", "InvertedPendulum") else f"root z={d['qpos'][_MUJOCO[base][1]]:+.2f}"
            out.append((d, m, z, None))
        return out
    if kind == "minigrid":
        from torch_distill.envs.minigrid.core import COLOR, OBJ
        from torch_distill.envs.minigrid.render import render_view

        obj_names = {v: k for k, v in OBJ.items()}
        colour_names = {v: k for k, v in COLOR.items()}
        decoded = [decode_minigrid(r) for r in raw]
        views = render_view(torch.stack([d[0] for d in decoded]), 16).numpy()
        for (image, direction, mission, mk), frame in zip(decoded, views):
            caption = f"facing {_DIRECTIONS[direction]}"
            if int(mission[0]) > 1:
                caption += f", mission {colour_names[int(mission[1])]} {obj_names[int(mission[0])]}"
            out.append(({"image": image, "direction": direction, "mission": mission, "frame": frame}, list(mk),
                        caption, None))
        return out
    if kind == "minatar":
        from torch_distill.envs.minatar import render_rgb

        for r in raw:
            obs, mk = decode_minatar(r)
            frame = render_rgb(obs.unsqueeze(0))[0].numpy()
            out.append(({"obs": obs, "frame": frame}, list(mk), f"{int(obs.any(-1).sum())} cells on", None))
        return out
    goal = 0.45 if ds.spec.env_id.startswith("MountainCarContinuous") else 0.5
    draw_fn = {"cartpole": _draw_cartpole, "pendulum": _draw_pendulum, "acrobot": _draw_acrobot,
               "mountaincar": lambda ax, row, mk: _draw_mountaincar(ax, row, mk, goal)}[kind]
    for r in raw:
        row = [float(x) for x in r]
        out.append(({}, [], "", lambda ax, mk, row=row, f=draw_fn: f(ax, row, mk)))
    return out


_PANEL_SIZE = {"cartpole": (3.6, 1.6), "mountaincar": (2.6, 1.9), "minigrid": (2.0, 2.3), "minatar": (2.0, 2.3),
               "mujoco": (2.2, 2.5)}


def _plot_frames(ds: Dataset, path: str | Path, kind: str, max_panels: int) -> ShowLayout:
    from matplotlib.figure import Figure

    raw = raw_states(ds).double()
    n = min(ds.size, max_panels)
    labels = action_labels(ds, kind)
    panels_in = _frame_panels(ds, kind, raw[:n])
    cols = max(1, min(n, math.ceil(math.sqrt(n * (1.0 if kind != "cartpole" else 0.5)))))
    rows = max(1, math.ceil(n / cols))
    w, h = _PANEL_SIZE.get(kind, (2.2, 2.2))
    fig = Figure(figsize=(w * cols, h * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    panels: list[ShowPanel] = []
    for k in range(rows * cols):
        ax = axes[k // cols][k % cols]
        if k >= n:
            ax.axis("off")
            continue
        drawn, markers, caption, draw = panels_in[k]
        if draw is not None:
            drawn, caption = draw(ax, markers)
            ax.set_aspect("equal")
        else:
            ax.imshow(drawn["frame"], interpolation="nearest")
            if kind == "minatar":  # cell borders: MinAtar's darkest colours are hard to tell from empty cells
                for b in range(1, 10):
                    ax.axhline(b - 0.5, color="white", lw=0.3, alpha=0.3)
                    ax.axvline(b - 0.5, color="white", lw=0.3, alpha=0.3)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"#{k}: {labels[k]}", fontsize=9)
        ax.set_xlabel(caption, fontsize=6.5)
        if markers:
            ax.text(0.02, 0.97, "\n".join(markers), transform=ax.transAxes, va="top", ha="left", fontsize=6.5,
                    color="red", bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})
        panels.append(ShowPanel(k, labels[k], tuple(markers), drawn))
    more = f" (first {n} of {ds.size})" if n < ds.size else ""
    fig.suptitle(f"{ds.spec.env_id}: {ds.size} distilled pairs{more}, {ds.labels} labels", fontsize=10)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    return ShowLayout(str(path), ds.spec.env_id, "frames", kind, rows, cols, panels, ds.size)


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
