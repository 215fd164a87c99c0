"""Batched layout generators vs MiniGrid's ``_gen_grid``: same distribution of layouts.

For each id we draw ``N_REF`` MiniGrid resets (seeds 0..N_REF-1) and ``N_OURS`` batched resets, and compare
marginal distributions of: agent cell, agent direction, goal cell, door cell, key cell, and the wall
indicator of every cell. Categorical marginals use a chi-square test of homogeneity (two samples); the
statistic is turned into a z-score with the Wilson-Hilferty approximation and must stay below ``Z_MAX``
(one-sided; z = 4.5 is p ~ 3e-6, so the fixed-seed test is not flaky, while a wrong rule such as
``door_y ~ U{1..H-2}`` or a key allowed on the agent's cell gives z > 10). Per-cell wall frequencies use a
two-proportion z-test with the same bound. We also check supports exactly: every category we generate
must occur in the reference sample unless it is rare (frequency < 4 / N_REF).
"""

from __future__ import annotations

import gymnasium as gym
import minigrid  # noqa: F401
import numpy as np
import pytest
import torch

from torch_distill.envs.minigrid import OBJ, make

N_REF = 3000
N_OURS = 20000
Z_MAX = 4.5
MIN_POOLED = 50  # categories with fewer pooled observations are merged into one bin

IDS = [
    "MiniGrid-Empty-Random-5x5-v0",
    "MiniGrid-Empty-Random-6x6-v0",
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-DoorKey-6x6-v0",
    "MiniGrid-DoorKey-8x8-v0",
    "MiniGrid-DoorKey-16x16-v0",
    "MiniGrid-FourRooms-v0",
]


def _features(grid: np.ndarray, pos: np.ndarray, direc: np.ndarray) -> dict[str, np.ndarray]:
    """grid ``[N, H, W, 3]``, pos ``[N, 2]`` (x, y), dir ``[N]`` -> categorical features ``[N]`` and walls."""
    n, h, w, _ = grid.shape
    t = grid[..., 0].reshape(n, h * w)
    feats: dict[str, np.ndarray] = {
        "agent_cell": pos[:, 1] * w + pos[:, 0],
        "agent_dir": direc.astype(np.int64),
        "walls": (t == OBJ["wall"]),
    }
    for name in ("goal", "door", "key"):
        has = t == OBJ[name]
        if has.any():
            assert (has.sum(1) == 1).all(), f"expected exactly one {name}"
            feats[f"{name}_cell"] = has.argmax(1)
    return feats


def _minigrid_sample(env_id: str) -> dict[str, np.ndarray]:
    env = gym.make(env_id).unwrapped
    grids, pos, dirs = [], [], []
    for seed in range(N_REF):
        env.reset(seed=seed)
        grids.append(env.grid.encode().transpose(1, 0, 2))
        pos.append(tuple(env.agent_pos))
        dirs.append(env.agent_dir)
    return _features(np.stack(grids), np.array(pos), np.array(dirs))


def _our_sample(env_id: str) -> dict[str, np.ndarray]:
    env = make(env_id)
    state, _ = env.reset(N_OURS, torch.Generator().manual_seed(1234))
    return _features(state.grid.numpy(), state.agent_pos.numpy(), state.agent_dir.numpy())


def chi2_homogeneity_z(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample chi-square homogeneity statistic of categorical samples ``a``, ``b`` as a z-score."""
    cats = np.union1d(a, b)
    ca = np.array([(a == c).sum() for c in cats], dtype=np.float64)
    cb = np.array([(b == c).sum() for c in cats], dtype=np.float64)
    rare = (ca + cb) < MIN_POOLED  # pool rare categories into one bin (chi-square needs expected counts)
    if rare.any():
        ca = np.append(ca[~rare], ca[rare].sum())
        cb = np.append(cb[~rare], cb[rare].sum())
    k = len(cats) - 1
    if k == 0:
        return 0.0
    na, nb = ca.sum(), cb.sum()
    tot = ca + cb
    ea, eb = tot * na / (na + nb), tot * nb / (na + nb)
    stat = float((((ca - ea) ** 2) / ea).sum() + (((cb - eb) ** 2) / eb).sum())
    # Wilson-Hilferty: (X/k)^(1/3) ~ N(1 - 2/(9k), 2/(9k))
    return ((stat / k) ** (1 / 3) - (1 - 2 / (9 * k))) / np.sqrt(2 / (9 * k))


@pytest.fixture(scope="module", params=IDS)
def samples(request: pytest.FixtureRequest) -> tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]:
    return request.param, _minigrid_sample(request.param), _our_sample(request.param)


def test_layout_distribution_matches_minigrid(samples: tuple[str, dict, dict]) -> None:
    env_id, ref, ours = samples
    assert set(ref) == set(ours), (env_id, set(ref) ^ set(ours))
    report = {}
    for name in ref:
        if name == "walls":
            p1, p2 = ref[name].mean(0), ours[name].mean(0)
            pooled = (p1 * N_REF + p2 * N_OURS) / (N_REF + N_OURS)
            se = np.sqrt(pooled * (1 - pooled) * (1 / N_REF + 1 / N_OURS))
            var = se > 0
            z = np.abs(p1[var] - p2[var]) / se[var] if var.any() else np.zeros(1)
            assert np.array_equal(p1[~var], p2[~var]), f"{env_id}: a cell is always/never a wall in one only"
            report[name] = float(z.max()) if z.size else 0.0
        else:
            # values MiniGrid never produced in N_REF resets must be rare in ours too (e.g. FourRooms gaps)
            extra = np.setdiff1d(np.unique(ours[name]), np.unique(ref[name]))
            freq = np.array([(ours[name] == v).mean() for v in extra])
            assert (freq < 4.0 / N_REF).all(), f"{env_id}: {name} often takes values MiniGrid never produced: {extra}"
            report[name] = chi2_homogeneity_z(ref[name], ours[name])
    bad = {k: v for k, v in report.items() if v > Z_MAX}
    assert not bad, f"{env_id}: distributions differ (z-scores) {report}"


def test_chi2_detects_a_wrong_distribution() -> None:
    """The statistic has power: door_y drawn from U{1..H-2} instead of MiniGrid's U{1..H-3} is rejected."""
    rng = np.random.default_rng(0)
    right = rng.integers(1, 6, size=N_REF)  # DoorKey-8x8: door_y in 1..5
    wrong = rng.integers(1, 7, size=N_OURS)  # off by one: 1..6
    also_right = rng.integers(1, 6, size=N_OURS)
    assert chi2_homogeneity_z(right, wrong) > 10
    assert chi2_homogeneity_z(right, also_right) < Z_MAX
