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
from torch_distill.envs.minigrid.interop import mission_of

N_REF = 3000
N_OURS = 20000
Z_MAX = 4.5
MIN_POOLED = 50  # categories with fewer pooled observations are merged into one bin

# ids of the first kernel (N_REF MiniGrid resets) and later ids (N_REF_NEW resets, to keep the suite short)
IDS_NEW = [
    "MiniGrid-LavaGapS5-v0",
    "MiniGrid-LavaGapS6-v0",
    "MiniGrid-LavaGapS7-v0",
    "MiniGrid-SimpleCrossingS9N1-v0",
    "MiniGrid-SimpleCrossingS9N2-v0",
    "MiniGrid-SimpleCrossingS9N3-v0",
    "MiniGrid-SimpleCrossingS11N5-v0",
    "MiniGrid-LavaCrossingS9N1-v0",
    "MiniGrid-LavaCrossingS9N2-v0",
    "MiniGrid-LavaCrossingS9N3-v0",
    "MiniGrid-LavaCrossingS11N5-v0",
    "MiniGrid-DistShift1-v0",
    "MiniGrid-DistShift2-v0",
    "MiniGrid-Dynamic-Obstacles-5x5-v0",
    "MiniGrid-Dynamic-Obstacles-6x6-v0",
    "MiniGrid-Dynamic-Obstacles-8x8-v0",
    "MiniGrid-Dynamic-Obstacles-16x16-v0",
    "MiniGrid-Dynamic-Obstacles-Random-5x5-v0",
    "MiniGrid-Dynamic-Obstacles-Random-6x6-v0",
    "MiniGrid-GoToDoor-5x5-v0",
    "MiniGrid-GoToDoor-6x6-v0",
    "MiniGrid-GoToDoor-8x8-v0",
    "MiniGrid-Fetch-5x5-N2-v0",
    "MiniGrid-Fetch-6x6-N2-v0",
    "MiniGrid-Fetch-8x8-N3-v0",
    "MiniGrid-GoToObject-6x6-N2-v0",
    "MiniGrid-GoToObject-8x8-N2-v0",
    "MiniGrid-PutNear-6x6-N2-v0",
    "MiniGrid-PutNear-8x8-N3-v0",
    "MiniGrid-RedBlueDoors-6x6-v0",
    "MiniGrid-RedBlueDoors-8x8-v0",
    "MiniGrid-Unlock-v0",
    "MiniGrid-UnlockPickup-v0",
    "MiniGrid-BlockedUnlockPickup-v0",
    "MiniGrid-KeyCorridorS3R1-v0",
    "MiniGrid-KeyCorridorS3R2-v0",
    "MiniGrid-KeyCorridorS3R3-v0",
    "MiniGrid-KeyCorridorS4R3-v0",
    "MiniGrid-KeyCorridorS5R3-v0",
    "MiniGrid-KeyCorridorS6R3-v0",
    "MiniGrid-LockedRoom-v0",
    "MiniGrid-MemoryS7-v0",
    "MiniGrid-MemoryS11-v0",
    "MiniGrid-MemoryS13Random-v0",
    "MiniGrid-MemoryS17Random-v0",
    "MiniGrid-MultiRoom-N2-S4-v0",
    "MiniGrid-MultiRoom-N4-S5-v0",
    "MiniGrid-MultiRoom-N4-S5-v1",
    "MiniGrid-MultiRoom-N6-v0",
]
N_REF_NEW = 1200

IDS = [
    "MiniGrid-Empty-Random-5x5-v0",
    "MiniGrid-Empty-Random-6x6-v0",
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-DoorKey-6x6-v0",
    "MiniGrid-DoorKey-8x8-v0",
    "MiniGrid-DoorKey-16x16-v0",
    "MiniGrid-FourRooms-v0",
]


_HASH_W = np.random.default_rng(12345).integers(1, 2**62, size=4096, dtype=np.int64) | 1


def _hash_rows(a: np.ndarray) -> np.ndarray:
    """One int64 category per row of ``a [N, ...]``, comparable across samples: a fixed random linear hash
    modulo 2**64 (collisions have probability ~2**-64 per pair)."""
    flat = a.reshape(a.shape[0], -1).astype(np.int64)
    with np.errstate(over="ignore"):
        return (flat * _HASH_W[: flat.shape[1]]).sum(1)


def _features(
    grid: np.ndarray,
    pos: np.ndarray,
    direc: np.ndarray,
    mission: np.ndarray | None = None,
    target: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """grid ``[N, H, W, 3]``, pos ``[N, 2]`` (x, y), dir ``[N]`` -> categorical features ``[N]`` and
    per-cell indicators ``[N, H * W]`` (keys ending in ``s``)."""
    n, h, w, _ = grid.shape
    t = grid[..., 0].reshape(n, h * w)
    feats: dict[str, np.ndarray] = {
        "agent_cell": pos[:, 1] * w + pos[:, 0],
        "agent_dir": direc.astype(np.int64),
        "walls": (t == OBJ["wall"]),
    }
    for name in ("goal", "door", "key", "ball", "lava"):
        has = t == OBJ[name]
        if has.any():
            if (has.sum(1) == 1).all():
                feats[f"{name}_cell"] = has.argmax(1)
            else:
                feats[f"{name}s"] = has
    doors = t == OBJ["door"]
    if doors.any():  # colours of the doors in cell order
        col = grid[..., 1].reshape(n, h * w)
        feats["door_colors"] = _hash_rows(np.where(doors, col, 255))
    return feats


def _joint_features(
    grid: np.ndarray, pos: np.ndarray, direc: np.ndarray, mission: np.ndarray, target: np.ndarray
) -> dict[str, np.ndarray]:
    """Features whose categories must be comparable across samples: stringified before hashing."""
    feats = {}
    if mission.any():
        feats["mission"] = mission.astype(np.int64) @ np.array([1, 16, 256, 4096])
        feats["target_cell"] = target[:, 1] * grid.shape[2] + target[:, 0]
    return feats


def _layout_key(grid: np.ndarray, pos: np.ndarray, direc: np.ndarray) -> np.ndarray:
    """Whole-layout category (grid, agent cell and direction), comparable across samples."""
    n = grid.shape[0]
    return _hash_rows(np.concatenate([grid.reshape(n, -1), pos.reshape(n, 2), direc.reshape(n, 1)], 1))


def _all_features(grid, pos, direc, mission, target) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    feats = _features(grid, pos, direc)
    feats.update(_joint_features(grid, pos, direc, mission, target))
    feats["layout"] = _layout_key(grid, pos, direc)
    return feats


def _minigrid_sample(env_id: str) -> dict[str, np.ndarray]:
    env = gym.make(env_id).unwrapped
    grids, pos, dirs, missions, targets = [], [], [], [], []
    for seed in range(N_REF if env_id in IDS else N_REF_NEW):
        env.reset(seed=seed)
        grids.append(env.grid.encode().transpose(1, 0, 2))
        pos.append(tuple(env.agent_pos))
        dirs.append(env.agent_dir)
        m, tp = mission_of(env)
        missions.append(m)
        targets.append(tp)
    return _all_features(np.stack(grids), np.array(pos), np.array(dirs), np.array(missions), np.array(targets))


def _n_ours(env_id: str) -> int:
    """Our sample size (MultiRoom's parallel chain attempts make its resets slow: a smaller sample)."""
    return 4000 if "MultiRoom" in env_id else N_OURS


def _our_sample(env_id: str) -> dict[str, np.ndarray]:
    env = make(env_id)
    s, _ = env.reset(_n_ours(env_id), torch.Generator().manual_seed(1234))
    grid = s.grid.numpy().copy()
    grid[..., 2] = np.where(grid[..., 0] == OBJ["box"], 0, grid[..., 2])  # MiniGrid's encoding of boxes
    return _all_features(grid, s.agent_pos.numpy(), s.agent_dir.numpy(), s.mission.numpy(), s.target_pos.numpy())


def chi2_homogeneity_z(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample chi-square homogeneity statistic of categorical samples ``a``, ``b`` as a z-score."""
    cats, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    inv = inv.reshape(-1)
    ca = np.bincount(inv[: len(a)], minlength=len(cats)).astype(np.float64)
    cb = np.bincount(inv[len(a):], minlength=len(cats)).astype(np.float64)
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


@pytest.fixture(scope="module", params=IDS + IDS_NEW)
def samples(request: pytest.FixtureRequest) -> tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]:
    return request.param, _minigrid_sample(request.param), _our_sample(request.param)


def test_layout_distribution_matches_minigrid(samples: tuple[str, dict, dict]) -> None:
    env_id, ref, ours = samples
    assert set(ref) == set(ours), (env_id, set(ref) ^ set(ours))
    n_ref = len(ref["agent_dir"])
    n_ours = len(ours["agent_dir"])
    report = {}
    for name in ref:
        if ref[name].ndim == 2:  # per-cell indicators
            p1, p2 = ref[name].mean(0), ours[name].mean(0)
            pooled = (p1 * n_ref + p2 * n_ours) / (n_ref + n_ours)
            se = np.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_ours))
            var = se > 0
            z = np.abs(p1[var] - p2[var]) / se[var] if var.any() else np.zeros(1)
            assert np.array_equal(p1[~var], p2[~var]), f"{env_id}: a cell is always/never {name} in one only"
            report[name] = float(z.max()) if z.size else 0.0
        else:
            # values MiniGrid never produced in N_REF resets must be rare in ours too (e.g. FourRooms gaps)
            vals, counts = np.unique(ours[name], return_counts=True)
            new = ~np.isin(vals, ref[name])
            extra, freq = vals[new], counts[new] / len(ours[name])
            # a category of probability p is missed by n_ref draws w.p. exp(-p * n_ref); for whole layouts
            # (hundreds of categories) the bound is Bonferroni-corrected: miss probability 1e-4 over all of them
            # (later ids, whose features can have hundreds of categories: also for them)
            bonferroni = -np.log(1e-4 / max(len(vals), 1)) / n_ref
            bound = 4.0 / n_ref if (env_id in IDS and name != "layout") else max(4.0 / n_ref, bonferroni)
            assert (freq < bound).all(), f"{env_id}: {name} often takes values MiniGrid never produced: {extra}"
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
