"""``scripts/gpu_check.py --tiny --device cpu``: every section present, timings numeric, sync checks skipped on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_tiny_cpu_writes_every_section(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--tiny", "--device", "cpu",
                           "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rec = json.loads(out.read_text())
    assert set(rec) == {"meta", "tests", "sync_checks", "timings"}
    assert rec["meta"]["device"] == "cpu" and rec["meta"]["tiny"] is True
    assert rec["tests"]["status"] == "skipped (cpu)"

    checks = {c["name"]: c for c in rec["sync_checks"]}
    ran = [c for c in checks.values() if not c["status"].startswith("skipped (missing")]
    for part in ("hades CartPole-v1", "synth-env SCB CartPole-v1 ppo", "synth-env SCB CartPole-v1 dqn",
                 "classic control CartPole-v1", "classic control Pendulum-v1", "MiniGrid DoorKey-8x8"):
        assert any(n.startswith(part) for n in checks), (part, list(checks))
    for c in ran:  # on CPU the mode does not apply: recorded as skipped, never as a pass
        assert c["status"] == "skipped (cpu)", c
        assert c["seconds"] > 0 and "sites" not in c
    for c in checks.values():
        assert c["status"] != "pass"
    assert any(n.startswith("hades MinAtar") for n in checks) and any("Hopper" in n for n in checks)

    timings = {t["metric"] + " " + t["name"]: t for t in rec["timings"]}
    assert len(timings) == 5
    for name, t in timings.items():
        assert t["status"] == "ok", t
        assert isinstance(t["value"], float) and t["value"] > 0, name
    compiled = [t for t in rec["timings"] if t["metric"] == "steps_per_s"]
    assert sorted(t["size"]["compile"] for t in compiled) == [False, True]
    assert "| timing" in proc.stdout and "| sync" in proc.stdout  # the printed table
