"""Direct-ES neuroevolution baseline: learns, writes its outputs, resumes."""

import json
from pathlib import Path

import torch
from safetensors import safe_open

from torch_distill.algorithms.direct_es import DirectESConfig, run_direct_es


def test_direct_es_learns_cartpole(tmp_path):
    cfg = DirectESConfig(out=str(tmp_path), name="d", generations=30, eval_every=10, final_episodes=50, threads=1,
                         device="cpu")
    summary = run_direct_es(cfg)
    rows = [json.loads(x) for x in (tmp_path / "d" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["fitness_mean"] > 2 * rows[0]["fitness_mean"]
    assert summary["final_eval"]["return_mean"] >= 150, summary  # random policies score ~20
    with safe_open(str(tmp_path / "d" / "policy.safetensors"), "pt") as f:
        meta = json.loads(f.metadata()["torch_distill"])
        assert "layers.0.weight" in f.keys()
    assert meta["env"]["env_id"] == "CartPole-v1" and meta["obs_normalizer"]["type"] == "affine"


def test_direct_es_step_budget_and_resume(tmp_path):
    cfg = DirectESConfig(out=str(tmp_path), name="b", generations=100, max_env_steps=20_000, eval_every=2,
                         final_episodes=5, episodes=4, popsize=16, threads=1, device="cpu")
    summary = run_direct_es(cfg)
    assert summary["episode_steps"] >= 20_000 and summary["generations"] < 100
    ckpt = torch.load(Path(tmp_path) / "b" / "checkpoint.pt", weights_only=True)
    assert ckpt["generation"] == summary["generations"]
