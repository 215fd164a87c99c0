"""HaDES end to end: learning thresholds, determinism, resume after a kill, torchrun sharding."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from torch_distill.algorithms.hades import HadesConfig, evaluate_dataset, run_hades
from torch_distill.io import load_dataset

FAST = dict(popsize=32, generations=6, eval_every=3, checkpoint_every=3, final_episodes=10, final_seeds=2,
            episodes=4, threads=1, device="cpu")


def _run(tmp_path: Path, name: str, **kw) -> dict:
    cfg = HadesConfig(out=str(tmp_path), name=name, **{**FAST, **kw})
    return run_hades(cfg)


def test_hades_f_cartpole_default_config_solves(tmp_path):
    """The README's main job: default CLI config (CartPole-v1, D=4, HaDES-F) -> >= 475 over 100 episodes."""
    summary = run_hades(HadesConfig(out=str(tmp_path), name="default", threads=1, device="cpu"))
    fixed = summary["final_eval"]["fixed inits (as evolved)"]
    assert fixed["episodes"] == 100
    assert fixed["return_mean"] >= 475, summary
    ds = load_dataset(summary["dataset"])
    assert ds.states.shape == (4, 4) and ds.actions.dtype == torch.int64
    run_dir = Path(summary["dataset"]).parent
    for f in ["config.json", "metrics.jsonl", "checkpoint.pt", "curves.png", "summary.json"]:
        assert (run_dir / f).is_file(), f
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == list(range(1, len(rows) + 1))
    assert any("es_mean_return" in r for r in rows)


def test_hades_r_dataset_transfers_across_widths(tmp_path):
    """HaDES-R on CartPole: the dataset trains fresh random-init policies of widths 32, 256, 512."""
    summary = _run(tmp_path, "r", variant="R", generations=20, popsize=64, episodes=8, eval_every=10)
    ds = load_dataset(summary["dataset"])
    for width in (32, 256, 512):
        from torch_distill.policies import PolicyConfig

        res = evaluate_dataset(ds, PolicyConfig((width, width), "relu"), seeds=[100, 101, 102], episodes=20, env_seed=7)
        assert res.return_mean >= 400, (width, res.per_policy)


def test_same_seed_same_dataset_different_seed_differs(tmp_path):
    a = load_dataset(_run(tmp_path, "a", seed=3)["dataset"])
    b = load_dataset(_run(tmp_path, "b", seed=3)["dataset"])
    c = load_dataset(_run(tmp_path, "c", seed=4)["dataset"])
    assert torch.equal(a.states, b.states)
    assert not torch.equal(a.states, c.states)


def test_continuous_and_logits_variants_run(tmp_path):
    s = _run(tmp_path, "pend", env="Pendulum-v1", dataset_size=3, popsize=8, generations=2, bc_steps=5)
    ds = load_dataset(s["dataset"])
    assert ds.actions.shape == (3, 1) and ds.actions.dtype == torch.float32
    assert ds.metadata["obs_normalizer"]["type"] == "affine"
    s = _run(tmp_path, "logits", env="Acrobot-v1", labels="logits", dataset_size=3, popsize=8, generations=2, max_steps=50)
    ds = load_dataset(s["dataset"])
    assert ds.actions.shape == (3, 3) and ds.labels == "logits"


def _cli(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "torch_distill.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


CLI_FAST = ["--popsize", "16", "--episodes", "4", "--checkpoint-every", "2", "--eval-every", "4",
            "--final-episodes", "5", "--final-seeds", "1", "--threads", "1", "--device", "cpu"]


def test_killed_run_resumes_to_the_same_state(tmp_path):
    """SIGKILL a run after a checkpoint, resume it, and compare with an uninterrupted run of the same seed."""
    full = _cli("hades", "--generations", "8", "--out", str(tmp_path), "--name", "full", *CLI_FAST)
    out, _ = full.communicate(timeout=600)
    assert full.returncode == 0, out
    killed = _cli("hades", "--generations", "8", "--out", str(tmp_path), "--name", "killed", *CLI_FAST)
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 5:
            break
        if killed.poll() is not None:
            pytest.fail("run ended before it could be killed")
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert not (tmp_path / "killed" / "dataset.safetensors").exists()
    ckpt_gen = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["generation"]
    assert 2 <= ckpt_gen < 8
    resumed = _cli("hades", "--resume", str(tmp_path / "killed"))
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    assert "resumed from" in out
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert a["generation"] == b["generation"] == 8
    for k in a["es_state"]:
        if isinstance(a["es_state"][k], torch.Tensor):
            assert torch.equal(a["es_state"][k], b["es_state"][k]), k
    da = load_dataset(tmp_path / "full" / "dataset.safetensors")
    db = load_dataset(tmp_path / "killed" / "dataset.safetensors")
    assert torch.equal(da.states, db.states)
    rows = [json.loads(x) for x in metrics.read_text().splitlines()]
    assert [r["generation"] for r in rows] == list(range(1, 9))
    # a finished run can be extended: --resume with a larger --generations continues it (and records the new value)
    extended = _cli("hades", "--resume", str(tmp_path / "killed"), "--generations", "10", "--final-seeds", "0")
    out, _ = extended.communicate(timeout=600)
    assert extended.returncode == 0, out
    assert torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["generation"] == 10
    rows = [json.loads(x) for x in metrics.read_text().splitlines()]
    assert [r["generation"] for r in rows] == list(range(1, 11))
    assert json.loads((tmp_path / "killed" / "config.json").read_text())["config"]["generations"] == 10
    # options that change what the run computes cannot be changed on resume
    bad = _cli("hades", "--resume", str(tmp_path / "killed"), "--popsize", "8")
    out, _ = bad.communicate(timeout=600)
    assert bad.returncode == 2 and "popsize" in out and "cannot change" in out and "Traceback" not in out


def test_torchrun_two_processes_match_one(tmp_path):
    """World size 1 and 2 (gloo on CPU) give the same ES state for the same seed."""
    one = _cli("hades", "--generations", "4", "--out", str(tmp_path), "--name", "w1", *CLI_FAST)
    out1, _ = one.communicate(timeout=600)
    assert one.returncode == 0, out1
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
         "-m", "torch_distill.cli", "hades", "--generations", "4", "--out", str(tmp_path), "--name", "w2", *CLI_FAST],
        env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stdout + two.stderr
    assert "world size 2" in two.stdout
    a = torch.load(tmp_path / "w1" / "checkpoint.pt", weights_only=True)["es_state"]
    b = torch.load(tmp_path / "w2" / "checkpoint.pt", weights_only=True)["es_state"]
    for k in ("mean", "sigma"):
        torch.testing.assert_close(a[k], b[k])


@pytest.mark.slow
def test_bar_hades_r_widths_100_episodes(tmp_path):
    """Issue bar: a HaDES-R CartPole dataset trains widths 32, 256, 512 to >= 450 each (5 inits x 100 episodes)."""
    from torch_distill.policies import PolicyConfig

    summary = _run(tmp_path, "r", variant="R", generations=40, popsize=64, episodes=8, eval_every=10, final_episodes=100)
    ds = load_dataset(summary["dataset"])
    for width in (32, 256, 512):
        res = evaluate_dataset(ds, PolicyConfig((width, width), "relu"), seeds=list(range(5)), episodes=100)
        assert res.return_mean >= 450, (width, res.per_policy)


@pytest.mark.slow
def test_hades_pendulum_learns(tmp_path):
    """HaDES-F, D=16, SNES on Pendulum-v1: 150 generations reach better than -300 (random actions: about -1200)."""
    s = _run(tmp_path, "pend", env="Pendulum-v1", dataset_size=16, popsize=64, generations=150, episodes=8,
             eval_every=25, final_episodes=50, final_seeds=2)
    best = max(v["return_mean"] for d in s["datasets"].values() for v in d["eval"].values())
    assert best > -300, s["datasets"]
