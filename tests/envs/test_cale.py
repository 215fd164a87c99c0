"""CALE (envs/cale.py): continuous-action Atari through ale-py as an evaluation backend.

The backend exposes ale-py's continuous action box ``[0, -pi, 0] .. [1, pi, 1]``; stepping a batch agrees with
ale-py's own env under the same seed and actions; the evaluator accepts it for a Gaussian policy on pixels; bad ids
and options get clear errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

ale_py = pytest.importorskip("ale_py")

from torch_distill.envs.cale import CALEVecEnv, cale_ids  # noqa: E402
from torch_distill.envs.vec import UnknownEnvError, make_vec_env, resolve_backend  # noqa: E402
from torch_distill.evaluation import evaluate_policies  # noqa: E402
from torch_distill.policies import PolicyConfig, PolicyNet  # noqa: E402


def test_ids_and_backend():
    ids = cale_ids()
    assert "CALE/Breakout-v5" in ids and "CALE/Pong-v5" in ids and len(ids) > 50
    assert resolve_backend("CALE/Breakout-v5") == "cale"


def test_action_space_and_spec():
    venv = make_vec_env("CALE/Breakout-v5", 2, obs_type="grayscale")
    assert isinstance(venv, CALEVecEnv)
    space = venv.env.single_action_space
    np.testing.assert_allclose(space.low, [0.0, -math.pi, 0.0], rtol=1e-6)
    np.testing.assert_allclose(space.high, [1.0, math.pi, 1.0], rtol=1e-6)
    spec = venv.spec
    assert spec.env_id == "CALE/Breakout-v5" and not spec.discrete and spec.action_dim == 3
    assert spec.obs_shape == (210, 160) and spec.max_episode_steps == 27000
    venv.close()


def test_steps_match_ale_py():
    import gymnasium as gym

    gym.register_envs(ale_py)
    venv = CALEVecEnv("CALE/Breakout-v5", 2, obs_type="grayscale", repeat_action_probability=0.0)
    obs = venv.reset(seed=3)
    refs = [gym.make("ALE/Breakout-v5", continuous=True, obs_type="grayscale", repeat_action_probability=0.0)
            for _ in range(2)]
    ref_obs = [r.reset(seed=3 + i)[0] for i, r in enumerate(refs)]
    assert obs.shape == (2, 210, 160) and obs.dtype == torch.float32
    np.testing.assert_array_equal(obs.numpy(), np.stack(ref_obs).astype(np.float32))
    rng = np.random.default_rng(0)
    for _ in range(60):
        a = np.stack([rng.uniform([0, -math.pi, 0], [1, math.pi, 1]) for _ in range(2)]).astype(np.float32)
        out = venv.step(torch.as_tensor(a))
        for i, r in enumerate(refs):
            o, rew, term, trunc, _ = r.step(a[i])
            np.testing.assert_array_equal(out.obs[i].numpy(), o.astype(np.float32))
            assert out.reward[i].item() == rew and bool(out.terminated[i]) == term and bool(out.truncated[i]) == trunc
    # out-of-box actions are clipped to the box, not an emulator error
    venv.step(torch.tensor([[5.0, 10.0, -1.0], [-1.0, -10.0, 2.0]]))
    venv.close()


def test_evaluator_accepts_cale_for_a_gaussian_pixel_policy():
    venv = make_vec_env("CALE/Pong-v5", 2, obs_type="grayscale", max_steps=40)
    net = PolicyNet(venv.spec, PolicyConfig(hidden=(4,)))
    params = net.init(2, torch.Generator().manual_seed(0))
    res = evaluate_policies(net, params, venv, episodes=1, seed=0)
    assert res.returns.shape == (2, 1) and torch.isfinite(res.returns).all()
    assert (res.lengths == 40).all()  # Pong never ends in 40 steps: truncated by the time limit
    venv.close()


def test_bad_input():
    with pytest.raises(UnknownEnvError, match="NoSuchGame"):
        CALEVecEnv("CALE/NoSuchGame-v5", 1)
    with pytest.raises(UnknownEnvError, match="not a CALE id"):
        CALEVecEnv("ALE/Breakout-v5", 1)
    with pytest.raises(ValueError, match="obs_type='ram'"):
        CALEVecEnv("CALE/Breakout-v5", 1, obs_type="ram")
    with pytest.raises(ValueError, match="threshold=1.5"):
        CALEVecEnv("CALE/Breakout-v5", 1, threshold=1.5)
