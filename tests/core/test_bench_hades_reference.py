"""Smoke test of scripts/bench_hades_reference.py at a tiny size: it runs the real command and pairs the
reference's figures (read as data) with ours."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_hades_reference_smoke(tmp_path):
    ref = tmp_path / "ref.jsonl"
    ref.write_text(json.dumps({"width": 8, "s_per_gen": 2.0, "rollout_len": 1024}) + "\n")
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_hades_reference.py"), "--widths", "8",
                          "--generations", "3", "--reference-json", str(ref), "--out", str(out)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["width"] == 8 and row["reference"][0]["s_per_gen"] == 2.0
    assert row["ours"]["generations"] == 3 and row["ours"]["env_steps_per_gen"] > 0
    assert abs(row["ratio_s_per_gen"][0] - row["ours"]["s_per_gen"] / 2.0) < 1e-12
    assert "--popsize 256" in row["ours"]["command"] and "| ours" in res.stdout and "ref T=1024" in res.stdout


def test_bench_hades_reference_rejects_bad_reference(tmp_path):
    ref = tmp_path / "ref.jsonl"
    ref.write_text('{"width": 64}\n')
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_hades_reference.py"), "--widths", "8",
                          "--generations", "3", "--reference-json", str(ref)], capture_output=True, text=True)
    assert res.returncode != 0 and "s_per_gen" in res.stderr
