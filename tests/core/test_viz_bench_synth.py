"""Pictures of synthetic envs (``torch_distill.viz.plot_scb_states``, ``real_env_states``) and the smoke run of
``scripts/bench_synth_env.py``."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torch_distill.envs.synthetic import SyntheticContextualBandit, save_synthetic_env
from torch_distill.envs.vec import UnknownEnvError, make_native
from torch_distill.log import format_table
from torch_distill.viz import (
    describe_dataset,
    obs_names,
    plot_dataset,
    plot_scb_states,
    real_env_states,
    scb_initial_states,
    scb_state_stats,
)

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _constant_scb(env_id: str, const: list[float]) -> SyntheticContextualBandit:
    """An SCB whose initial-state network outputs ``const`` for every latent: zero weights, last bias = const
    (the reward network keeps its default initialisation)."""
    spec = make_native(env_id).spec
    env = SyntheticContextualBandit(spec)
    genome = env.default_params().genome.clone()
    offset = 0
    for name, shape in env.layout():
        n = math.prod(shape)
        if name.startswith("initial_state."):
            last_bias = name == f"initial_state.{len(env.hidden)}.bias"
            genome[offset:offset + n] = torch.tensor(const) if last_bias else 0.0
        offset += n
    return SyntheticContextualBandit(spec, genome=genome)


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------------------------- real_env_states
def test_real_env_states_shapes_determinism_and_bounds() -> None:
    s = real_env_states("CartPole-v1", 100, seed=0)
    assert s.shape == (100, 4) and s.dtype == torch.float32 and s.device.type == "cpu"
    torch.testing.assert_close(s, real_env_states("CartPole-v1", 100, seed=0), rtol=0, atol=0)
    assert not torch.equal(s, real_env_states("CartPole-v1", 100, seed=1))
    # the first decision's observations are CartPole's initial states (uniform in [-0.05, 0.05])
    assert s[:32].abs().max() <= 0.05
    # every recorded observation is one an agent acts on: terminal states are replaced by the auto-reset ones
    many = real_env_states("CartPole-v1", 3000, seed=0)
    assert many[:, 2].abs().max() <= 12 * 2 * math.pi / 360 and many[:, 0].abs().max() <= 2.4
    assert many[:, 1].std() > 0.2  # the envs really moved
    # fewer states than envs, a continuous env, other batch sizes
    assert real_env_states("Pendulum-v1", 5, seed=0).shape == (5, 3)
    assert real_env_states("Acrobot-v1", 77, seed=0, num_envs=10).shape == (77, 6)
    assert real_env_states("MountainCarContinuous-v0", 40, seed=0, num_envs=7).shape == (40, 2)


def test_real_env_states_under_a_policy() -> None:
    seen: list[tuple[int, ...]] = []

    def push_left(obs: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(obs.shape))
        return torch.zeros(obs.shape[0], dtype=torch.int64)

    s = real_env_states("CartPole-v1", 64, seed=0, policy=push_left, num_envs=16)
    assert s.shape == (64, 4) and seen == [(16, 4)] * 3  # 4 decisions recorded, 3 actions taken
    # always pushing left accelerates every cart to the left
    assert (s[16:32, 1] < s[:16, 1]).all()
    cont = real_env_states("Pendulum-v1", 20, seed=0, policy=lambda o: torch.full((o.shape[0], 1), 2.0), num_envs=4)
    assert cont.shape == (20, 3)


def test_real_env_states_bad_input() -> None:
    with pytest.raises(UnknownEnvError, match="CartPol-v1"):
        real_env_states("CartPol-v1", 10)
    with pytest.raises(ValueError, match="num_states=0"):
        real_env_states("CartPole-v1", 0)
    with pytest.raises(ValueError, match="num_envs=-1"):
        real_env_states("CartPole-v1", 10, num_envs=-1)
    with pytest.raises(TypeError, match="policy"):
        real_env_states("CartPole-v1", 10, policy="greedy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="action shape"):  # the env names the bad action
        real_env_states("CartPole-v1", 64, policy=lambda o: torch.zeros(o.shape[0], 2, dtype=torch.int64))


# ---------------------------------------------------------------------------------------------------- stats, names
def test_obs_names() -> None:
    assert obs_names("CartPole-v1", 4) == ["cart position", "cart velocity", "pole angle", "pole angular velocity"]
    assert obs_names("SCB-CartPole-v1", 4)[2] == "pole angle"
    assert obs_names("Acrobot-v1", 6) == ["cos θ1", "sin θ1", "cos θ2", "sin θ2", "θ̇1", "θ̇2"]
    assert obs_names("Pendulum-v1", 3) == ["cos θ", "sin θ", "θ̇"]
    assert obs_names("MountainCar-v0", 2) == obs_names("MountainCarContinuous-v0", 2) == ["position", "velocity"]
    assert obs_names("Hopper-v4", 3) == ["obs[0]", "obs[1]", "obs[2]"]
    assert obs_names("CartPole-v1", 5) == [f"obs[{i}]" for i in range(5)]  # names that do not fit are not used


def test_scb_state_stats_by_hand() -> None:
    scb = torch.tensor([[0.0, 10.0], [1.0, 10.0], [2.0, 10.0], [3.0, 10.0]])
    real = torch.tensor([[1.0, 9.0], [2.0, 11.0], [1.5, 10.0]])
    st = scb_state_stats(scb, real, ["a", "b"])
    assert st["names"] == ["a", "b"] and st["scb"]["n"] == 4 and st["real"]["n"] == 3
    assert st["scb"]["mean"] == [1.5, 10.0] and st["scb"]["std"][1] == 0.0
    assert st["scb"]["std"][0] == pytest.approx(math.sqrt(1.25))  # population std
    assert st["real"]["min"] == [1.0, 9.0] and st["real"]["max"] == [2.0, 11.0]
    assert st["inside_real_range"] == [0.5, 1.0] and st["inside_real_box"] == 0.5
    assert [r["dim"] for r in st["rows"]] == ["a", "b"] and st["rows"][0]["SCB in real range"] == 0.5
    assert "SCB mean" in format_table(st["rows"])
    json.dumps(st)  # JSON-able
    with pytest.raises(ValueError, match="real_states: shape"):
        scb_state_stats(scb, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="NaN"):
        scb_state_stats(scb, torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="names"):
        scb_state_stats(scb, real, ["a"])


# ---------------------------------------------------------------------------------------------------- plot_scb_states
def test_plot_scb_states_constant_initial_states(tmp_path: Path) -> None:
    """An initial-state network with zero weights outputs its last bias: the stats see a point mass there."""
    real = real_env_states("CartPole-v1", 2000, seed=0)
    inside = [0.01, -0.02, 0.03, 0.1]
    env = _constant_scb("CartPole-v1", inside)
    torch.testing.assert_close(scb_initial_states(env, 50, seed=3), torch.tensor(inside).expand(50, 4))
    out = tmp_path / "pics" / "scb.png"
    st = plot_scb_states(env, out, real_states=real, num_samples=300, seed=0)
    assert out.read_bytes()[:8] == PNG_MAGIC and _no_temp_files(out.parent)
    assert st["path"] == str(out) and st["env_id"] == "CartPole-v1" and st["real_source"] == "given"
    assert st["names"][0] == "cart position" and st["dims_plotted"] == [0, 1, 2, 3]
    assert st["scb"]["n"] == 300 and st["real"]["n"] == 2000
    assert st["scb"]["mean"] == pytest.approx(inside) and st["scb"]["std"] == [0.0] * 4
    assert st["real"]["mean"] == pytest.approx(real.mean(0).tolist())
    assert st["inside_real_range"] == [1.0] * 4 and st["inside_real_box"] == 1.0

    outside = [0.01, -0.02, 1.0, 0.1]  # a pole angle of 57 degrees: CartPole terminates beyond 12
    st = plot_scb_states(_constant_scb("CartPole-v1", outside), tmp_path / "out.png", real_states=real, num_samples=300)
    assert st["inside_real_range"] == [1.0, 1.0, 0.0, 1.0] and st["inside_real_box"] == 0.0
    assert (tmp_path / "out.png").read_bytes()[:8] == PNG_MAGIC


def test_plot_scb_states_defaults_agents_files_and_dims(tmp_path: Path) -> None:
    env = SyntheticContextualBandit(make_native("Acrobot-v1").spec)  # default-initialised SCB
    # default real states: the native env under uniform random actions, as many as SCB samples
    st = plot_scb_states(env, tmp_path / "a.png", num_samples=400, seed=1, dims=[0, 4], title="two dims")
    assert st["real"]["n"] == 400 and "uniform random actions" in st["real_source"] and st["dims_plotted"] == [0, 4]
    assert len(st["rows"]) == 6 and st["names"][4] == "θ̇1"  # statistics cover every dim
    assert 0.0 <= st["inside_real_box"] <= min(st["inside_real_range"]) <= 1.0
    torch.testing.assert_close(torch.tensor(st["real"]["mean"]), real_env_states("Acrobot-v1", 400, 1).mean(0))
    assert (tmp_path / "a.png").read_bytes()[:8] == PNG_MAGIC

    # a saved env by path, with the states an agent visits drawn in a third colour
    pend = SyntheticContextualBandit(make_native("Pendulum-v1").spec)
    save_synthetic_env(tmp_path / "env.safetensors", pend, pend.default_params().genome)
    agent = real_env_states("Pendulum-v1", 100, 0, policy=lambda o: torch.zeros(o.shape[0], 1))
    st = plot_scb_states(str(tmp_path / "env.safetensors"), tmp_path / "p.png", num_samples=200, agent_states=agent)
    assert st["agent"]["n"] == 100 and "agent mean" in st["rows"][0] and st["names"] == ["cos θ", "sin θ", "θ̇"]
    torch.testing.assert_close(torch.tensor(st["scb"]["mean"]), scb_initial_states(pend, 200, 0).mean(0))
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_MAGIC and _no_temp_files(tmp_path)


def test_plot_scb_states_bad_input(tmp_path: Path) -> None:
    env = SyntheticContextualBandit(make_native("CartPole-v1").spec)
    out = tmp_path / "x.png"
    with pytest.raises(TypeError, match="SyntheticContextualBandit.*no learned initial-state"):
        plot_scb_states(make_native("CartPole-v1"), out)
    with pytest.raises(ValueError, match=r"real_states: shape \(10, 3\), expected \[N, 4\]"):
        plot_scb_states(env, out, real_states=torch.zeros(10, 3), num_samples=10)
    with pytest.raises(ValueError, match="agent_states: contains NaN"):
        plot_scb_states(env, out, real_states=torch.zeros(10, 4), agent_states=torch.full((2, 4), float("nan")),
                        num_samples=10)
    with pytest.raises(ValueError, match="num_samples=0"):
        plot_scb_states(env, out, num_samples=0)
    with pytest.raises(ValueError, match=r"dims=\[0, 4\]"):
        plot_scb_states(env, out, real_states=torch.zeros(10, 4), num_samples=10, dims=[0, 4])
    with pytest.raises(ValueError, match="no such synthetic-env file"):
        plot_scb_states(tmp_path / "missing.safetensors", out)
    assert not out.exists() and _no_temp_files(tmp_path)


def test_plot_dataset_still_works(tmp_path: Path) -> None:
    from torch_distill.io import load_dataset

    ds = load_dataset("CartPole-v1")
    assert describe_dataset(ds).startswith("CartPole-v1:")
    plot_dataset(ds, tmp_path / "ds.png")
    assert (tmp_path / "ds.png").read_bytes()[:8] == PNG_MAGIC


# ---------------------------------------------------------------------------------------------------- benchmark script
def test_bench_synth_env_script_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "bench_synth_env.py"), "--envs", "CartPole-v1", "Pendulum-v1",
           "--popsizes", "2", "3", "--inner-steps", "200", "--generations", "1", "--agents", "2", "--episodes", "2",
           "--max-steps", "20", "--threads", "1", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())
    rows = data["results"]
    assert sorted((r["env"], r["algo"], r["P"]) for r in rows) == sorted(
        (e, a, p) for e, algos in [("CartPole-v1", ["ppo", "dqn"]), ("Pendulum-v1", ["ppo", "td3"])]
        for a in algos for p in (2, 3))
    for r in rows:
        p = r["P"]
        assert r["s_per_gen"] > 0 and r["warmup_s"] > 0 and len(r["times_s"]) == r["generations"] == 1
        # the greedy evaluation steps P x agents x episodes envs for the whole horizon
        assert r["real_env_steps_per_gen"] == p * 2 * 2 * 20
        assert 0 < r["episode_steps_per_gen"] <= r["real_env_steps_per_gen"]
        assert r["synthetic_steps_per_gen"] == p * 2 * 200
        assert r["synthetic_steps_per_s"] == pytest.approx(r["synthetic_steps_per_gen"] / r["s_per_gen"])
        assert math.isfinite(r["last_fitness_mean"])
    m = data["machine"]
    assert m["cpu_count"] >= 1 and m["threads"] == 1 and m["torch"] == torch.__version__
    assert len(m["loadavg_before"]) == len(m["loadavg_after"]) == 3
    assert "synthetic_steps_per_s" in res.stdout and "| CartPole-v1 | scb  | ppo" in res.stdout


def test_bench_synth_env_bad_args(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_synth_env", ROOT / "scripts" / "bench_synth_env.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(SystemExit):
        mod.main(["--popsizes", "0", "4"])
    assert "--popsizes [0, 4]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mod.main(["--inner-steps", "0"])
    assert "--inner-steps=0" in capsys.readouterr().err
