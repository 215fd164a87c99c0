"""Fully observable grid and RGB rendering, compared with Farama MiniGrid's own wrapper and renderer."""

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid ids)
import numpy as np
import pytest
import torch
from minigrid.wrappers import FullyObsWrapper

from torch_distill.envs.minigrid import make, state_from_minigrid
from torch_distill.envs.minigrid.render import full_observation, render_rgb

IDS = ["MiniGrid-DoorKey-6x6-v0", "MiniGrid-LavaGapS5-v0", "MiniGrid-Fetch-5x5-N2-v0", "MiniGrid-UnlockPickup-v0",
       "MiniGrid-Dynamic-Obstacles-5x5-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_full_observation_and_rgb_match_minigrid(env_id):
    envs = [FullyObsWrapper(gym.make(env_id)) for _ in range(2)]
    rng = np.random.default_rng(0)
    obs = [e.reset(seed=s)[0] for s, e in enumerate(envs)]
    for step in range(12):
        state = state_from_minigrid([e.unwrapped for e in envs])
        full = full_observation(state)
        frames = render_rgb(state, tile_size=8)
        for i, e in enumerate(envs):
            np.testing.assert_array_equal(full[i].numpy(), obs[i]["image"])
            np.testing.assert_array_equal(frames[i].numpy(), e.unwrapped.get_full_render(False, 8))
        for i, e in enumerate(envs):
            obs[i], _, term, trunc, _ = e.step(int(rng.integers(0, 3)))
            if term or trunc:
                obs[i] = e.reset(seed=100 + step)[0]


def test_render_batched_env_shapes():
    env = make("MiniGrid-Empty-5x5-v0")
    state, _ = env.reset(3, torch.Generator().manual_seed(0), env.default_params())
    frames = render_rgb(state, tile_size=4)
    assert frames.shape == (3, 20, 20, 3) and frames.dtype == torch.uint8
    assert full_observation(state).shape == (3, 5, 5, 3)
