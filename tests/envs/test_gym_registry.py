"""gymnasium faces of every native env: ``gymnasium.make`` / ``make_vec`` under the ``torch_distill/`` namespace."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import torch_distill  # noqa: F401  (registers the ids)
from torch_distill.envs.gym_adapter import FunctionalVectorEnv
from torch_distill.envs.gym_registry import NAMESPACE, SYNTHETIC_FILE_ID, registered_ids
from torch_distill.envs.synthetic.files import shipped_synthetic_envs

SHIPPED_FILE = str(shipped_synthetic_envs()["MDP-CartPole-v0"])
IDS = registered_ids()


def _kwargs(name: str) -> dict:
    return {"path": SHIPPED_FILE} if name == SYNTHETIC_FILE_ID else {}


def test_every_native_and_shipped_id_is_registered():
    names = set(IDS)
    assert {"CartPole-v1", "Pendulum-v1", "MiniGrid-DoorKey-8x8-v0", "MiniGrid-FourRooms-v0", "SCB-CartPole-v1",
            "MDP-CartPole-v0", "RewardNet-CartPole-v1", SYNTHETIC_FILE_ID} <= names
    assert set(shipped_synthetic_envs()) <= names and len([n for n in IDS if n.startswith("MiniGrid-")]) >= 60
    assert all(f"{NAMESPACE}/{n}" in gym.registry for n in IDS)


@pytest.mark.parametrize("name", IDS)
def test_make_gives_a_single_env_that_passes_check_env(name):
    env = gym.make(f"{NAMESPACE}/{name}", **_kwargs(name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded Box observations and non-[-1, 1] action boxes: advice only
        check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and info == {}
    again, _ = env.reset(seed=3)
    if isinstance(obs, dict):
        assert all(np.array_equal(obs[k], again[k]) for k in obs)
    else:
        assert np.array_equal(obs, again)
    env.action_space.seed(0)
    for _ in range(5):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and isinstance(reward, float)
        if terminated or truncated:
            env.reset()
    env.close()


@pytest.mark.parametrize("name", IDS)
def test_make_vec_gives_the_batched_torch_env(name):
    venv = gym.make_vec(f"{NAMESPACE}/{name}", num_envs=16, vectorization_mode="vector_entry_point", **_kwargs(name))
    assert isinstance(venv, FunctionalVectorEnv) and venv.num_envs == 16
    obs, _ = venv.reset(seed=0)
    first = obs if isinstance(obs, np.ndarray) else obs["image"]
    assert first.shape[0] == 16 and venv.observation_space.contains(obs)
    venv.action_space.seed(0)
    obs, reward, terminated, truncated, _ = venv.step(venv.action_space.sample())
    assert reward.shape == (16,) and terminated.dtype == np.bool_ and truncated.shape == (16,)
    venv.close()


def test_seeding_follows_gymnasium():
    env = gym.make(f"{NAMESPACE}/CartPole-v1")
    a, _ = env.reset(seed=1)
    b, _ = env.reset(seed=2)
    c, _ = env.reset()  # continues the generator seeded with 2
    d, _ = env.reset(seed=1)
    assert np.array_equal(a, d) and not np.array_equal(a, b) and not np.array_equal(b, c)


def test_episode_end_returns_the_last_observation_and_the_horizon():
    env = gym.make(f"{NAMESPACE}/Pendulum-v1")
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        obs, _, terminated, truncated, _ = env.step(np.zeros(1, dtype=np.float32))
        steps += 1
        assert not terminated
    assert steps == 200 and np.isfinite(obs).all()


def test_bad_options_are_named():
    with pytest.raises(ValueError, match=r"SyntheticEnv-v0 needs path=FILE"):
        gym.make(f"{NAMESPACE}/{SYNTHETIC_FILE_ID}")
    with pytest.raises(ValueError, match=r"path='x.safetensors': only torch_distill/SyntheticEnv-v0 takes a file"):
        gym.make(f"{NAMESPACE}/CartPole-v1", path="x.safetensors")
    with pytest.raises(ValueError, match=r"render_mode='human'"):
        gym.make(f"{NAMESPACE}/CartPole-v1", render_mode="human")
    with pytest.raises(ValueError, match=r"max_episode_steps=100: CartPole-v1 truncates its episodes itself at 500"):
        gym.make_vec(f"{NAMESPACE}/CartPole-v1", num_envs=2, vectorization_mode="vector_entry_point",
                     max_episode_steps=100)
    with pytest.raises(ValueError, match=r"no such synthetic-env file"):
        gym.make(f"{NAMESPACE}/{SYNTHETIC_FILE_ID}", path="missing.safetensors")
