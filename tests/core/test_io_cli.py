"""Dataset files (format, validation, corrupt input) and CLI behaviour on bad input."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from torch_distill.envs.core import EnvSpec
from torch_distill.envs.vec import UnknownEnvError, make_vec_env
from torch_distill.io import Dataset, DatasetFileError, load_dataset, save_dataset, shipped_datasets

CARTPOLE = EnvSpec("CartPole-v1", (4,), True, n_actions=2, max_episode_steps=500)
PENDULUM = EnvSpec("Pendulum-v1", (3,), False, action_dim=1, action_low=(-2.0,), action_high=(2.0,), max_episode_steps=200)


def _ds(spec=CARTPOLE, d=4):
    states = torch.randn(d, spec.obs_dim)
    actions = torch.arange(d) % spec.n_actions if spec.discrete else torch.randn(d, spec.action_dim)
    meta = {"obs_normalizer": {"type": "affine", "obs_mean": [0.0] * spec.obs_dim, "obs_var": [1.0] * spec.obs_dim, "eps": 1e-8},
            "policy": {"hidden": [16], "activation": "relu", "log_std_init": 0.0},
            "bc": {"steps": 8, "lr": 0.03, "eps": 1e-5, "beta1": 0.9, "beta2": 0.999, "max_grad_norm": 0.5}}
    return Dataset(states, actions, spec, meta)


@pytest.mark.parametrize("spec", [CARTPOLE, PENDULUM])
def test_roundtrip_and_readable_without_the_library(tmp_path, spec):
    ds = _ds(spec)
    path = tmp_path / "d.safetensors"
    save_dataset(path, ds)
    back = load_dataset(path)
    assert torch.equal(back.states, ds.states) and torch.equal(back.actions, ds.actions)
    assert back.spec == spec
    # plain safetensors + json: everything needed to use the dataset without torch_distill
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["torch_distill"])
        assert set(f.keys()) == {"states", "actions"}
    assert meta["env"]["env_id"] == spec.env_id
    assert meta["obs_normalizer"]["obs_mean"] == [0.0] * spec.obs_dim
    assert meta["dataset_size"] == 4 and meta["format_version"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_corrupt_and_mismatched_files(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a safetensors file at all")
    with pytest.raises(DatasetFileError, match="garbage.safetensors"):
        load_dataset(garbage)
    truncated = tmp_path / "trunc.safetensors"
    save_dataset(truncated, _ds())
    truncated.write_bytes(truncated.read_bytes()[:-7])
    with pytest.raises(DatasetFileError):
        load_dataset(truncated)
    nometa = tmp_path / "nometa.safetensors"
    save_file({"states": torch.zeros(2, 4), "actions": torch.zeros(2, dtype=torch.int64)}, str(nometa))
    with pytest.raises(DatasetFileError, match="metadata"):
        load_dataset(nometa)
    wrong = tmp_path / "wrong.safetensors"
    meta = {"format": "torch_distill.dataset", "format_version": 1, "env": CARTPOLE.to_json()}
    save_file({"states": torch.zeros(2, 5), "actions": torch.zeros(2, dtype=torch.int64)}, str(wrong),
              metadata={"torch_distill": json.dumps(meta)})
    with pytest.raises(DatasetFileError, match=r"expected \[D, 4\]"):
        load_dataset(wrong)
    with pytest.raises(DatasetFileError, match="no such file"):
        load_dataset(tmp_path / "missing.safetensors")
    bad = _ds()
    bad.states[0, 0] = float("nan")
    with pytest.raises(DatasetFileError, match="NaN"):
        save_dataset(tmp_path / "nan.safetensors", bad)
    assert not (tmp_path / "nan.safetensors").exists()


def test_unknown_env_id_suggests():
    with pytest.raises(UnknownEnvError, match="CartPole-v1"):
        make_vec_env("CartPol-v1", 2)


def test_shipped_datasets_load_and_reach_their_recorded_return():
    from torch_distill.algorithms.hades import evaluate_dataset

    shipped = shipped_datasets()
    assert {"CartPole-v1", "Acrobot-v1", "Pendulum-v1", "Hopper-v4"} <= set(shipped)
    for name in shipped:
        d = load_dataset(name)
        assert d.spec.env_id == name and d.metadata["command"].startswith("torch-distill hades")
        assert d.metadata["eval"] and d.metadata["obs_normalizer"]["type"] == "affine"
    ds = load_dataset("CartPole-v1")
    fixed = bool(ds.metadata.get("init_seeds"))
    res = evaluate_dataset(ds, fixed_init=fixed, seeds=[0, 1], episodes=20, env_seed=99)
    assert res.return_mean >= 450


def _cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch_distill.cli", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["hades", "--env", "CartPol-v1"], "unknown env id 'CartPol-v1'"),
        (["hades", "--popsize", "0"], "popsize=0"),
        (["hades", "--hidden", "64,x"], "hidden"),
        (["hades", "--env", "Pendulum-v1", "--labels", "logits"], "labels='logits'"),
        (["hades", "--resume", "/nonexistent/run"], "no checkpoint.pt"),
        (["evaluate", "/nonexistent.safetensors"], "no such file"),
        (["frobnicate"], "unknown command"),
        (["show-env", "SCB-Nonexistent-v0"], "no shipped synthetic env of that name"),
        (["synth-env", "--env", "CartPole-v1", "--kind", "mdp", "--algos", "td3"], "cannot act in a discrete"),
        (["synth-env", "--resume", "/nonexistent/run"], "no checkpoint.pt"),
    ],
)
def test_cli_bad_input_is_one_clear_line(tmp_path, args, needle):
    r = _cli(*args, *(["--out", str(tmp_path)] if args[0] in ("hades", "synth-env") else []))
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_cli_evaluate_mismatched_and_corrupt_dataset(tmp_path):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(b"garbage")
    r = _cli("evaluate", str(p))
    assert r.returncode == 2 and "not a readable safetensors" in r.stderr and "Traceback" not in r.stderr
    ds = _ds()
    ds = Dataset(ds.states[:, :3], ds.actions, EnvSpec("Pendulum-v1", (3,), True, n_actions=2), ds.metadata)
    save_dataset(tmp_path / "mismatch.safetensors", ds)
    r = _cli("evaluate", str(tmp_path / "mismatch.safetensors"), "--seeds", "1", "--episodes", "2")
    assert r.returncode == 2 and "dataset was made for" in r.stderr


def test_cli_config_file_and_help(tmp_path):
    r = _cli("hades", "--help")
    assert r.returncode == 0 and "--dataset-size" in r.stdout and "HaDES-F" in r.stdout
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"popsize": 8, "generations": 1, "episodes": 2, "final_episodes": 2, "final_seeds": 1}))
    r = _cli("hades", "--config", str(cfg), "--out", str(tmp_path), "--name", "x", "--device", "cpu", "--threads", "1")
    assert r.returncode == 0, r.stderr
    stored = json.loads((tmp_path / "x" / "config.json").read_text())["config"]
    assert stored["popsize"] == 8 and stored["generations"] == 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"popsize": 8, "not_an_option": 1}))
    r = _cli("hades", "--config", str(bad))
    assert r.returncode == 2 and "not_an_option" in r.stderr


def test_metrics_with_a_torn_last_line_are_read_and_truncated(tmp_path):
    from torch_distill.log import RunLogger

    log = RunLogger(tmp_path)
    for g in (1, 2, 3):
        log.log({"generation": g, "fitness_mean": float(g)})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"generation": 4, "fitn')  # killed mid-write
    assert [r["generation"] for r in log.read_metrics()] == [1, 2, 3]
    log.truncate_after(2)
    assert [r["generation"] for r in log.read_metrics()] == [1, 2]
    log.log({"generation": 3, "fitness_mean": 3.0})
    assert [r["generation"] for r in log.read_metrics()] == [1, 2, 3]


def test_cli_show_env_prints_evaluation_and_draws_states(tmp_path):
    png = tmp_path / "states.png"
    r = _cli("show-env", "SCB-CartPole-v1", "--png", str(png), "--samples", "500")
    assert r.returncode == 0, r.stderr
    assert "kind scb, real env CartPole-v1, 549 parameters" in r.stdout and "| sac" in r.stdout
    assert "pole angle" in r.stdout and png.stat().st_size > 10_000
    r = _cli("envs")
    assert "SCB-CartPole-v1" in r.stdout
