"""SCB conversion (algorithms/scb_convert.py, ``torch-distill convert-env``).

The hand-built Pendulum SCB of agent_envs.py (reward ``-|a - s0 / 2|``, contexts ``z ~ N(0, I)`` far outside the
real box in the angular velocity) converts into a box-scaled quadratic-head SCB whose maximiser is the learner's
policy ``clip(cos(theta) / 2)`` on real states and whose contexts stay inside the real observation box; bad input
gets clear errors; the CLI writes a loadable file.
"""

from __future__ import annotations

import pytest
import torch
from agent_envs import half_s0_scb as _half_s0_scb

from torch_distill.algorithms.scb_convert import convert_scb
from torch_distill.cli import main
from torch_distill.envs.synthetic import (
    SyntheticContextualBandit,
    SyntheticMDP,
    load_synthetic_env,
    read_synthetic_env_metadata,
    save_synthetic_env,
)
from torch_distill.envs.vec import make_native


def test_convert_keeps_the_best_response_and_fits_contexts_to_real_states():
    scb, genome = _half_s0_scb()
    src = SyntheticContextualBandit(scb.real_spec, genome=genome)
    dst, g, stats = convert_scb(src, episodes=8, steps=600, seed=1)
    assert dst.reward_head == "quadratic" and dst.obs_squash == (True, True, True)
    assert g.shape == (dst.num_params,) and stats["real_states"] == 8 * 200
    th = torch.linspace(-3.1, 3.1, 64)
    real = torch.stack([th.cos(), th.sin(), torch.linspace(-6, 6, 64)], -1)
    err = (dst.best_action(g, real)[:, 0] - th.cos() / 2).abs()
    assert err.mean() < 0.1, err.mean()
    ctx = dst.initial_obs(g, torch.randn(4000, 3, generator=torch.Generator().manual_seed(2)))
    assert ctx[:, :2].abs().max() <= 1 + 1e-5 and ctx[:, 2].abs().max() <= 8 + 1e-4
    # the contexts look like real states: on (near) the unit circle, unlike the source's z ~ N(0, I)
    radius = ctx[:, :2].norm(dim=-1)
    assert (radius - 1).abs().mean() < 0.15, radius.mean()
    assert stats["context_sliced_wasserstein"] < 0.05


def test_convert_bad_input():
    scb, genome = _half_s0_scb()
    src = SyntheticContextualBandit(scb.real_spec, genome=genome)
    with pytest.raises(ValueError, match="learner='ppo'"):
        convert_scb(src, learner="ppo")
    with pytest.raises(ValueError, match="obs_scaling='none'"):
        convert_scb(src, obs_scaling="none")
    with pytest.raises(ValueError, match="episodes=0"):
        convert_scb(src, episodes=0)
    with pytest.raises(ValueError, match="carries no genome"):
        convert_scb(SyntheticContextualBandit(scb.real_spec))
    cart = SyntheticContextualBandit(make_native("CartPole-v1").spec)
    with pytest.raises(ValueError, match="needs continuous actions"):
        convert_scb(SyntheticContextualBandit(cart.real_spec, genome=cart.init_genome(torch.Generator())[0]))
    with pytest.raises(ValueError, match="expected a synthetic contextual bandit"):
        convert_scb(SyntheticMDP(make_native("CartPole-v0")))


def test_convert_env_cli(tmp_path, capsys):
    scb, genome = _half_s0_scb()
    save_synthetic_env(tmp_path / "src.safetensors", scb, genome)
    out = tmp_path / "dst.safetensors"
    assert main(["convert-env", str(tmp_path / "src.safetensors"), str(out), "--episodes", "4", "--steps", "100"]) == 0
    meta = read_synthetic_env_metadata(out)
    assert meta["format_version"] == 3 and meta["conversion"]["learner"] == "bandit"
    assert load_synthetic_env(out).reward_head == "quadratic"
    assert "sliced Wasserstein" in capsys.readouterr().out
    assert main(["convert-env", str(tmp_path / "missing.safetensors"), str(out)]) == 2
