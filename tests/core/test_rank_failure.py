"""A rank that dies or hangs mid-run ends the run on every rank with a named error (``RankFailure``, exit status 2)
instead of a hang, and the last checkpoint resumes to the result of an uninterrupted run.

The ranks are started as plain processes with the torchrun environment (``RANK``, ``WORLD_SIZE``, ``MASTER_*``),
so each rank's exit status and stderr are its own; the failure is injected with the runner's test-only hook
``TORCH_DISTILL_TEST_RANK_FAILURE`` (``RANK:GENERATION:exit|hang``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

from torch_distill.distributed import COLLECTIVE_TIMEOUT_ENV
from torch_distill.runner import TEST_RANK_FAILURE_ENV

REPO = Path(__file__).resolve().parents[2]
ARGS = ["hades", "--env", "CartPole-v1", "--popsize", "4", "--generations", "4", "--episodes", "2", "--max-steps",
        "40", "--bc-steps", "4", "--hidden", "8", "--eval-every", "2", "--eval-episodes", "2", "--checkpoint-every",
        "1", "--final-episodes", "2", "--final-seeds", "0", "--threads", "1", "--device", "cpu"]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", TEST_RANK_FAILURE_ENV,
              COLLECTIVE_TIMEOUT_ENV):
        env.pop(k, None)
    return {**env, **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_ranks(args: list[str], hook: str, timeout_s: str) -> tuple[list[subprocess.CompletedProcess], float]:
    """Run ``torch-distill ARGS`` as ranks 0 and 1 of a gloo world of 2; returns both results and rank 0's wall time."""
    port = str(_free_port())
    procs = []
    t0 = time.perf_counter()
    for rank in (0, 1):
        env = _env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                   **{TEST_RANK_FAILURE_ENV: hook, COLLECTIVE_TIMEOUT_ENV: timeout_s})
        procs.append(subprocess.Popen([sys.executable, "-m", "torch_distill.cli", *args], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    out0, err0 = procs[0].communicate(timeout=120)
    wall = time.perf_counter() - t0
    if procs[1].poll() is None:  # a hanging rank: what a launcher would do once rank 0 has failed
        procs[1].kill()
    out1, err1 = procs[1].communicate(timeout=60)
    return ([subprocess.CompletedProcess(p.args, p.returncode, o, e)
             for p, o, e in ((procs[0], out0, err0), (procs[1], out1, err1))], wall)


def _rows(run: Path) -> list[dict]:
    drop = {"wall_time", "gens_per_s", "env_steps_per_s", "env_steps"}  # env_steps depends on the world size
    return [{k: v for k, v in json.loads(x).items() if k not in drop}
            for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_dead_rank_ends_the_run_with_a_named_error_and_the_checkpoint_resumes(tmp_path):
    out = ["--out", str(tmp_path)]
    (r0, r1), wall = _two_ranks([*ARGS, *out, "--name", "w2"], "1:2:exit", "60")
    assert r1.returncode == 1  # the injected death, at the start of generation 3
    assert r0.returncode == 2, r0.stdout[-2000:] + r0.stderr[-2000:]
    assert wall < 60  # the closed connection is seen at once, no waiting for the timeout
    err = r0.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r0.stderr, r0.stderr
    assert err[0].startswith("torch-distill hades: error: rank 0 of 2: the distributed run failed in generation 3")
    run = tmp_path / "w2"
    assert f"resume with --resume {run} (its checkpoint.pt holds generation 2)" in err[0]
    assert torch.load(run / "checkpoint.pt", weights_only=True)["generation"] == 2
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temp file of a half-written checkpoint

    resumed = subprocess.run([sys.executable, "-m", "torch_distill.cli", "hades", "--resume", str(run)], env=_env(),
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "torch_distill.cli", *ARGS, *out, "--name", "w1"], env=_env(),
                            capture_output=True, text=True, timeout=120)
    assert single.returncode == 0, single.stderr[-3000:]
    a = torch.load(tmp_path / "w1" / "checkpoint.pt", weights_only=True)
    b = torch.load(run / "checkpoint.pt", weights_only=True)
    assert a["generation"] == b["generation"] == 4
    for k in ("mean", "sigma"):
        torch.testing.assert_close(a["es_state"][k], b["es_state"][k], rtol=0, atol=0)
    assert _rows(tmp_path / "w1") == _rows(run) and len(_rows(run)) == 4
    fa, fb = (json.loads((tmp_path / w / "summary.json").read_text())["final_eval"] for w in ("w1", "w2"))
    assert fa == fb


def test_hanging_rank_times_out_with_a_named_error(tmp_path):
    (r0, _), wall = _two_ranks([*ARGS, "--out", str(tmp_path), "--name", "hang"], "1:1:hang", "4")
    assert r0.returncode == 2, r0.stdout[-2000:] + r0.stderr[-2000:]
    err = r0.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r0.stderr, r0.stderr
    assert "rank 0 of 2: the distributed run failed in generation 2" in err[0]
    assert f"timed out after 4 s (a rank hangs; {COLLECTIVE_TIMEOUT_ENV} sets the timeout)" in err[0]
    assert "its checkpoint.pt holds generation 1" in err[0]
    assert wall < 45
    assert torch.load(tmp_path / "hang" / "checkpoint.pt", weights_only=True)["generation"] == 1


def test_bad_collective_timeout_setting_is_a_named_error(monkeypatch):
    import pytest

    from torch_distill.distributed import collective_timeout

    monkeypatch.setenv(COLLECTIVE_TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match=f"{COLLECTIVE_TIMEOUT_ENV}='soon': expected a positive number"):
        collective_timeout()
    monkeypatch.setenv(COLLECTIVE_TIMEOUT_ENV, "2.5")
    assert collective_timeout().total_seconds() == 2.5
