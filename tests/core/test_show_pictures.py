"""Dataset pictures of ``torch-distill show --png``: every state drawn as its env's frame with its action label
(``torch_distill.viz.plot_dataset``), checked through the returned layout, not by reading pixels back."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
from pathlib import Path

import pytest
import torch

from torch_distill import cli
from torch_distill.envs.core import EnvSpec
from torch_distill.envs.vec import make_native
from torch_distill.evaluation import ObsNormalizer
from torch_distill.io import Dataset, load_dataset, save_dataset
from torch_distill.viz import (
    FrameRenderError,
    ShowLayout,
    _select_gl,
    action_labels,
    frame_kind,
    plot_dataset,
    raw_states,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HAS_MINIGRID = importlib.util.find_spec("minigrid") is not None


def _written(layout: ShowLayout, path: Path, panels: int) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert len(layout.panels) == panels and layout.rows * layout.cols >= panels
    assert [p.index for p in layout.panels] == list(range(panels))
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # written atomically


def _native(env_id: str, n: int, steps: int, seed: int = 0) -> tuple[Dataset, object]:
    """``n`` observations of the native env after ``steps`` random steps; labels random; no normaliser."""
    env = make_native(env_id)
    gen = torch.Generator().manual_seed(seed)
    state, obs = env.reset(n, gen)
    spec = env.spec
    for _ in range(steps):
        a = (torch.randint(spec.n_actions, (n,), generator=gen) if spec.discrete
             else torch.rand(n, spec.action_dim, generator=gen) * 2 - 1)
        state, obs, *_ = env.step(state, a, gen)
    acts = (torch.randint(spec.n_actions, (n,), generator=gen) if spec.discrete
            else torch.rand(n, spec.action_dim, generator=gen) * 2 - 1)
    return Dataset(obs.float().clone(), acts, spec, {}), state


def _classic(env_id: str, raw: list[list[float]], actions: torch.Tensor) -> Dataset:
    spec = make_native(env_id).spec
    return Dataset(torch.tensor(raw, dtype=torch.float32), actions, spec, {})


# ---------------------------------------------------------------------------------------------------- classic control
def test_cartpole_shipped_frames(tmp_path: Path) -> None:
    ds = load_dataset("CartPole-v1")
    out = tmp_path / "cp.png"
    lay = plot_dataset(ds, out)
    assert (lay.mode, lay.kind, lay.total) == ("frames", "cartpole", ds.size)
    _written(lay, out, ds.size)
    raw = raw_states(ds)
    for p in lay.panels:
        assert p.label == ("left", "right")[int(ds.actions[p.index])]
        th = float(raw[p.index, 2])
        d = p.drawn
        assert d["theta"] == pytest.approx(th)
        # gymnasium: theta > 0 leans the pole right (tip at x + sin theta), pole length 1 from the axle
        assert math.copysign(1, d["tip"][0] - d["pivot"][0]) == math.copysign(1, th)
        assert math.dist(d["tip"], d["pivot"]) == pytest.approx(1.0)
        assert d["tip"][1] > d["pivot"][1]


def test_cartpole_clips_off_track_states(tmp_path: Path) -> None:
    ds = _classic("CartPole-v1", [[5.0, 0.0, 0.3, 0.0], [-1.0, 1.0, -0.2, 0.5]], torch.tensor([1, 0]))
    lay = plot_dataset(ds, tmp_path / "cp.png")
    first, second = lay.panels
    assert first.markers == ("clipped x",) and first.drawn["x"] == 2.4 and first.drawn["tip"][0] > 2.4
    assert second.markers == () and second.drawn["tip"][0] < -1.0


def test_pendulum_and_acrobot_geometry(tmp_path: Path) -> None:
    lay = plot_dataset(load_dataset("Pendulum-v1"), tmp_path / "p.png")
    _written(lay, tmp_path / "p.png", 16)
    assert all(p.label.startswith("torque ") for p in lay.panels)
    # theta = 0 upright, positive counter-clockwise: theta = +0.5 puts the tip up and to the left
    th = 0.5
    ds = _classic("Pendulum-v1", [[math.cos(th), math.sin(th), 9.0], [3.0, 0.0, 1.0]],
                  torch.tensor([[1.234], [-3.0]]))
    lay = plot_dataset(ds, tmp_path / "p2.png")
    a, b = lay.panels
    assert a.label == "torque +1.23" and a.drawn["tip"] == pytest.approx((-math.sin(th), math.cos(th)))
    assert a.markers == ("clipped θ'",) and a.drawn["angular_velocity"] == 8.0
    assert b.markers == ("off circle θ r=3.00",) and b.drawn["tip"] == pytest.approx((0.0, 1.0))

    lay = plot_dataset(load_dataset("Acrobot-v1"), tmp_path / "a.png")
    _written(lay, tmp_path / "a.png", 6)
    assert {p.label for p in lay.panels} == {"torque -1", "torque 0", "torque +1"}
    # theta1 = 0 hangs down; theta1 = +pi/2 points right, theta2 relative to link 1
    ds = _classic("Acrobot-v1", [[1, 0, 1, 0, 0, 0], [0, 1, 0, 1, 1, -1]], torch.tensor([0, 2]))
    down, bent = plot_dataset(ds, tmp_path / "a2.png").panels
    assert down.drawn["p1"] == pytest.approx((0, -1)) and down.drawn["p2"] == pytest.approx((0, -2))
    assert bent.drawn["p1"] == pytest.approx((1, 0)) and bent.drawn["p2"] == pytest.approx((1, 1))


@pytest.mark.parametrize("env_id", ["MountainCar-v0", "MountainCarContinuous-v0"])
def test_mountain_car_frames(tmp_path: Path, env_id: str) -> None:
    ds, _ = _native(env_id, 5, 30)
    ds.states[0, 0] = -2.0  # off the hill
    if ds.spec.discrete:  # label logits
        ds.actions = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0, 1.0, 0], [0, 0, 0], [1.0, 0, 0]])
    out = tmp_path / "mc.png"
    lay = plot_dataset(ds, out)
    assert lay.kind == "mountaincar"
    _written(lay, out, 5)
    first = lay.panels[0]
    assert "clipped position" in first.markers and first.drawn["position"] == -1.2
    for p in lay.panels:
        assert p.drawn["height"] == pytest.approx(math.sin(3 * p.drawn["position"]) * 0.45 + 0.55)
    if ds.spec.discrete:
        assert lay.panels[0].label == f"left p={math.exp(3) / (math.exp(3) + 2):.2f}"
        assert [p.label.split()[0] for p in lay.panels[1:]] == ["right", "none", "left", "left"]
    else:
        assert all(p.label.startswith("force ") for p in lay.panels)


# ---------------------------------------------------------------------------------------------------- grids
@pytest.mark.skipif(not HAS_MINIGRID, reason="MiniGrid tiles are drawn by minigrid")
def test_minigrid_decodes_the_view(tmp_path: Path) -> None:
    from torch_distill.envs.minigrid.render import render_view

    env_id = "MiniGrid-DoorKey-5x5-v0"
    wrapped = make_native(env_id)
    gen = torch.Generator().manual_seed(3)
    state, obs = wrapped.env.reset(6, gen)
    for _ in range(4):
        state, obs, *_ = wrapped.env.step(state, torch.randint(3, (6,), generator=gen), gen)
    flat = wrapped._flat(obs)
    norm = ObsNormalizer(flat.mean(0), flat.var(0) + 0.5)
    ds = Dataset(norm(flat), torch.tensor([0, 1, 2, 3, 5, 6]), wrapped.spec, {"obs_normalizer": norm.to_json()})
    out = tmp_path / "mg.png"
    lay = plot_dataset(ds, out)
    assert lay.kind == "minigrid"
    _written(lay, out, 6)
    assert [p.label for p in lay.panels] == ["left", "right", "forward", "pickup", "toggle", "done"]
    frames = render_view(obs.image, 16)
    for p in lay.panels:
        assert torch.equal(p.drawn["image"], obs.image[p.index])  # the inverse of FlatSymbolicObs
        assert p.drawn["direction"] == int(obs.direction[p.index])
        assert torch.equal(torch.from_numpy(p.drawn["frame"]), frames[p.index])
        assert p.markers == ()
    # an evolved state off the codes: rounded and clamped for drawing, and the panel says so
    ds.states[0] += 40.0
    p = plot_dataset(ds, out).panels[0]
    assert "clipped codes" in p.markers and int(p.drawn["image"][..., 0].max()) <= 10


@pytest.mark.skipif(not HAS_MINIGRID, reason="needs minigrid")
def test_render_view_matches_minigrid_pov_render() -> None:
    import gymnasium as gym
    import minigrid  # noqa: F401  (registers the ids)
    import numpy as np

    from torch_distill.envs.minigrid.render import render_view

    env = gym.make("MiniGrid-DoorKey-5x5-v0")
    obs, _ = env.reset(seed=1)
    for _ in range(8):
        ref = env.unwrapped.get_pov_render(16)
        got = render_view(torch.from_numpy(obs["image"])[None], 16)[0].numpy()
        seen = np.repeat(np.repeat(obs["image"][..., 0].T != 0, 16, 0), 16, 1)
        assert np.array_equal(ref[seen], got[seen])  # MiniGrid also draws unseen cells' contents, dimmed
        obs, *_ = env.step(int(env.action_space.sample()))


@pytest.mark.parametrize("env_id", ["Breakout-MinAtar", "MinAtar-Seaquest-v0"])
def test_minatar_frames_equal_render_rgb(tmp_path: Path, env_id: str) -> None:
    from torch_distill.envs.minatar import FULL_ACTIONS, make, render_rgb

    ds, _ = _native(env_id, 5, 20)
    ds.states[1] = ds.states[1] * 1.7 - 0.3  # outside [0, 1]: thresholded at 0.5
    out = tmp_path / "ma.png"
    lay = plot_dataset(ds, out)
    assert lay.kind == "minatar"
    _written(lay, out, 5)
    letters = [FULL_ACTIONS[a] for a in make(env_id).actions]
    c = ds.spec.obs_dim // 100
    for p in lay.panels:
        assert p.label == letters[int(ds.actions[p.index])]
        obs = (ds.states[p.index] > 0.5).reshape(1, 10, 10, c)
        assert torch.equal(p.drawn["obs"], obs[0])
        assert torch.equal(torch.from_numpy(p.drawn["frame"]), render_rgb(obs)[0])
    assert lay.panels[1].markers == (f"clipped {ds.spec.obs_dim} values",) and lay.panels[0].markers == ()


# ---------------------------------------------------------------------------------------------------- MuJoCo
def test_mujoco_renders_or_names_what_is_missing(tmp_path: Path) -> None:
    ds = load_dataset("Hopper-v4")
    assert frame_kind("Hopper-v4", 11) == "mujoco"
    out = tmp_path / "hopper.png"
    try:
        lay = plot_dataset(ds, out)
    except FrameRenderError as e:  # no GL backend here: one line naming it
        assert "\n" not in str(e) and ("MUJOCO_GL" in str(e) or "pip install" in str(e))
        assert not out.exists()
        return
    _written(lay, out, ds.size)
    raw = raw_states(ds).double().numpy()
    for p in lay.panels:
        f = p.drawn["frame"]
        assert f.shape[2] == 3 and f.dtype.name == "uint8" and f.std() > 10
        assert p.drawn["qpos"][0] == 0.0 and p.drawn["qpos"][1:] == pytest.approx(raw[p.index, :5])
        assert p.label.startswith("[") and p.label.count(",") == 2


def test_missing_gl_backend_is_a_named_error() -> None:
    pytest.importorskip("mujoco")
    with pytest.raises(FrameRenderError, match=r"MUJOCO_GL=no-such-backend.*apt-get install libegl1"):
        _select_gl("Hopper-v4", {"MUJOCO_GL": "no-such-backend"})
    assert issubclass(FrameRenderError, ValueError)  # the command line's error path: one line, exit status 2


# ---------------------------------------------------------------------------------------------------- fallback, CLI
def test_unknown_env_falls_back_to_dims(tmp_path: Path) -> None:
    spec = EnvSpec("Mystery-v0", (3,), True, n_actions=2)
    ds = Dataset(torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1]), spec, {})
    lay = plot_dataset(ds, tmp_path / "d.png")
    assert (lay.mode, lay.kind) == ("dims", "dims")
    _written(lay, tmp_path / "d.png", 3)
    assert action_labels(ds) == ["0", "1", "0", "1", "1"]
    with pytest.raises(ValueError, match="no frame drawing"):
        plot_dataset(ds, tmp_path / "f.png", mode="frames")
    # the per-dimension picture stays available for known envs too
    lay = plot_dataset(load_dataset("CartPole-v1"), tmp_path / "cd.png", mode="dims")
    assert lay.mode == "dims" and len(lay.panels) == 4


def test_max_panels(tmp_path: Path) -> None:
    ds, _ = _native("CartPole-v1", 10, 3)
    lay = plot_dataset(ds, tmp_path / "c.png", max_panels=4)
    assert len(lay.panels) == 4 and lay.total == 10


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(args)
    return rc, out.getvalue(), err.getvalue()


def test_cli_show_png(tmp_path: Path) -> None:
    png = tmp_path / "cp.png"
    rc, out, err = _run(["show", "CartPole-v1", "--png", str(png)])
    assert rc == 0, err
    assert png.read_bytes()[:8] == PNG_MAGIC and f"{png}" in out
    ds, _ = _native("Breakout-MinAtar", 3, 5)
    save_dataset(tmp_path / "breakout.safetensors", ds)
    png = tmp_path / "b.png"
    rc, out, err = _run(["show", str(tmp_path / "breakout.safetensors"), "--png", str(png)])
    assert rc == 0, err
    assert png.read_bytes()[:8] == PNG_MAGIC
