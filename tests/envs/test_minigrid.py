"""Batched MiniGrid vs Farama MiniGrid: step-for-step exactness, contract, registry, determinism."""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
import numpy as np
import pytest
import torch
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Ball, Box, Door, Goal, Key, Lava, Wall
from minigrid.minigrid_env import MiniGridEnv

from torch_distill.envs.core import FunctionalEnv
from torch_distill.envs.minigrid import (
    OBJ,
    MiniGridObs,
    MiniGridState,
    build_tables,
    make,
    observe,
    registered_ids,
    state_from_minigrid,
    transition,
)
from torch_distill.envs.minigrid.core import view_offsets
from torch_distill.envs.minigrid.registry import BatchedMiniGrid
from torch_distill.envs.minigrid.tasks import task_step

# left, right, forward, pickup, drop, toggle, done -- biased so that keys, doors and boxes get used
ACTION_P = np.array([0.14, 0.14, 0.32, 0.13, 0.08, 0.15, 0.04])

EXACT_IDS = registered_ids()  # every id the registry serves is replayed against MiniGrid
# ids of the first kernel: 8 seeds and every env ends an episode; later ids: 3 seeds, >= 500 actions
FIRST_IDS = {i for i in EXACT_IDS if any(k in i for k in ("Empty", "DoorKey", "FourRooms"))}


def _ref_obs(envs: list) -> tuple[np.ndarray, np.ndarray]:
    obs = [e.unwrapped.gen_obs() for e in envs]
    return np.stack([o["image"] for o in obs]), np.array([o["direction"] for o in obs])


def _assert_obs(
    ours: MiniGridObs,
    envs: list,
    rows: list[int] | None = None,
    where: str = "",
    ref: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    img, direc = _ref_obs(envs) if ref is None else ref
    mine = ours.image.numpy()
    rows = list(range(len(envs))) if rows is None else rows
    for i in rows:
        if not np.array_equal(mine[i], img[i]):
            bad = np.argwhere((mine[i] != img[i]).any(-1))
            raise AssertionError(
                f"{where} env {i}: image differs at view cells {bad.tolist()[:6]}\n"
                f"ours type:\n{mine[i, :, :, 0].T}\nminigrid type:\n{img[i, :, :, 0].T}"
            )
        assert int(ours.direction[i]) == int(direc[i]), f"{where} env {i}: direction"


def _replay(
    envs: list,
    seeds: list[int],
    min_actions: int,
    rng: np.random.Generator,
    see_through_walls: bool,
    has_boxes: bool = False,
    env: BatchedMiniGrid | None = None,
    after_reset: Callable[[int, Any], None] | None = None,
) -> dict[str, int]:
    """Replay random actions in MiniGrid and in the batched kernel; compare everything at every step.

    With ``env`` the id's full rules are used (``env.transition``: task rules; Dynamic-Obstacles is fed
    MiniGrid's own obstacle moves, which must be moves our rule could make); without, the base ``transition``.
    When a MiniGrid episode ends it is reset (continuing its seeded RNG) and the whole batch is re-imported.
    ``after_reset(i, env)`` may edit MiniGrid env ``i`` after each of its resets (before the import).
    Returns event counts (to check that the interesting rules were exercised).
    """
    for i, (e, s) in enumerate(zip(envs, seeds)):
        e.reset(seed=s)
        if after_reset is not None:
            after_reset(i, e.unwrapped)
    raw = [e.unwrapped for e in envs]
    tables = build_tables(raw[0].height, raw[0].width)
    state = state_from_minigrid(envs)
    _assert_obs(observe(state, tables, see_through_walls, has_boxes), envs, where="reset")
    counts = {"episodes": 0, "goal": 0, "truncated": 0, "pickup": 0, "door_open": 0, "drop": 0, "lava": 0, "neg": 0}
    for t in range(min_actions):
        actions = rng.choice(7, size=len(envs), p=ACTION_P)
        before_carry = [r.carrying for r in raw]
        ref = [e.step(int(a)) for e, a in zip(envs, actions)]
        if env is None:
            state, reward, term, trunc = transition(state, torch.from_numpy(actions), tables)
        else:
            moves = torch.tensor(
                [[tuple(o.cur_pos) for o in getattr(r, "obstacles", [])] for r in raw], dtype=torch.int64
            ).view(len(raw), -1, 2)
            state, reward, term, trunc, ok = task_step(
                env.config.task, state, torch.from_numpy(actions), tables, forced_obstacles=moves
            )
            assert bool(ok.all()), f"step {t}: MiniGrid moved an obstacle where our rule could not: {ok}"
            np.testing.assert_array_equal(state.obstacles.numpy(), moves.numpy())
        walled = True if env is None else env.config.walled
        obs = observe(state, tables, see_through_walls, has_boxes, walled=walled)  # the registry's path
        # the observation MiniGrid's step returned (= gen_obs() after the step)
        ref_obs = (np.stack([o[0]["image"] for o in ref]), np.array([o[0]["direction"] for o in ref]))
        _assert_obs(obs, envs, where=f"step {t}", ref=ref_obs)
        if t % 7 == 0:  # the general path (cells outside the grid selected as walls) agrees too
            obs_g = observe(state, tables, see_through_walls, has_boxes, walled=False)
            _assert_obs(obs_g, envs, where=f"{t}", ref=ref_obs)
        ref_r = np.array([o[1] for o in ref], dtype=np.float64)
        np.testing.assert_allclose(reward.numpy(), ref_r, rtol=0, atol=1e-6, err_msg=f"reward at step {t}")
        np.testing.assert_array_equal(term.numpy(), np.array([o[2] for o in ref]), err_msg=f"terminated at {t}")
        np.testing.assert_array_equal(trunc.numpy(), np.array([o[3] for o in ref]), err_msg=f"truncated at {t}")
        # carried object and agent position agree too
        np.testing.assert_array_equal(state.agent_pos.numpy(), np.array([tuple(r.agent_pos) for r in raw]))
        for i, r in enumerate(raw):
            if before_carry[i] is None and r.carrying is not None:
                counts["pickup"] += 1
            if before_carry[i] is not None and r.carrying is None:
                counts["drop"] += 1
        open_door = (obs.image[..., 0] == OBJ["door"]) & (obs.image[..., 2] == 0)
        counts["door_open"] += int(open_door.any(-1).any(-1).sum())
        ended = [i for i, o in enumerate(ref) if o[2] or o[3]]
        counts["goal"] += int((reward > 0).sum())
        counts["truncated"] += int(trunc.sum())
        counts["lava"] += int((term & (reward == 0)).sum())
        counts["neg"] += int((reward < 0).sum())
        if ended:
            counts["episodes"] += len(ended)
            for i in ended:
                envs[i].reset()
                if after_reset is not None:
                    after_reset(i, envs[i].unwrapped)
            # re-import the restarted envs only (the others keep the kernel's state)
            fresh = state_from_minigrid([envs[i] for i in ended])
            idx = torch.tensor(ended)
            state = type(state)(*(x.index_put((idx,), y) for x, y in zip(state, fresh)))
            obs_f = observe(fresh, tables, see_through_walls, has_boxes)
            _assert_obs(obs_f, [envs[i] for i in ended], where=f"re-import {t}")
    return counts


def _give_door_key(i: int, e: Any) -> None:
    """Unlock: even envs start holding the door's key, so that random actions open the door now and then."""
    if i % 2 == 0:
        e.carrying = Key(e.door.color)


def _face_target_object(i: int, e: Any) -> None:
    """Pickup tasks: even envs start next to the mission object, facing it, so that random ``pickup``s succeed."""
    if i % 2 == 1:
        return
    ox, oy = e.obj.cur_pos
    for d, (dx, dy) in enumerate(((1, 0), (0, 1), (-1, 0), (0, -1))):
        x, y = ox - dx, oy - dy
        if 0 < x < e.width - 1 and 0 < y < e.height - 1 and e.grid.get(x, y) is None:
            e.agent_pos, e.agent_dir = (x, y), d
            return


_AFTER_RESET: dict[str, Callable[[int, Any], None]] = {"MiniGrid-Unlock-v0": _give_door_key}
for _id in EXACT_IDS:
    if "KeyCorridor" in _id or "UnlockPickup" in _id:
        _AFTER_RESET[_id] = _face_target_object


@pytest.mark.parametrize("env_id", EXACT_IDS)
def test_exact_vs_minigrid(env_id: str) -> None:
    first = env_id in FIRST_IDS
    seeds = [0, 1, 2, 3, 11, 12, 13, 14] if first else [0, 7, 23]
    # later ids: a time limit of at most 240 steps so that truncation happens within the 500 actions
    kw = {} if first else {"max_steps": min(240, gym.make(env_id).unwrapped.max_steps)}
    envs = [gym.make(env_id, **kw) for _ in seeds]
    ours = make(env_id)
    stw = ours.config.see_through_walls
    assert stw == envs[0].unwrapped.see_through_walls
    n_actions = max(600, envs[0].unwrapped.max_steps + 10) if first else 500
    rng = np.random.default_rng(sum(map(ord, env_id)))
    hook = _AFTER_RESET.get(env_id)
    counts = _replay(envs, seeds, n_actions, rng, stw, ours.config.has_boxes, env=ours, after_reset=hook)
    assert counts["episodes"] >= len(seeds), counts
    if "DoorKey" in env_id:
        assert counts["pickup"] > 0 and counts["drop"] > 0 and counts["door_open"] > 0, counts
    if "Lava" in env_id:
        assert counts["lava"] > 0, counts
    if "Dynamic" in env_id:
        assert counts["neg"] > 0, counts
    # (KeyCorridorS3*: the ball's room is one cell, no start next to it; its success is not exercised here)
    if any(k in env_id for k in ("GoTo", "Fetch", "Unlock", "KeyCorridorS4", "KeyCorridorS5", "KeyCorridorS6")):
        assert counts["goal"] > 0, counts


class _Playground(MiniGridEnv):
    """A cluttered room with every object kind: coloured doors (open/closed/locked) in interior walls,
    keys, balls, boxes (empty or holding a key/ball), lava, goal; the agent may start holding a key."""

    def __init__(self, size: int = 9, max_steps: int = 300) -> None:
        super().__init__(mission_space=MissionSpace(mission_func=lambda: "play"), grid_size=size, max_steps=max_steps)

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        colors = ["red", "green", "blue", "purple", "yellow", "grey"]
        x = self._rand_int(3, width - 3)
        self.grid.vert_wall(x, 1, height - 2)
        for y in self._rand_subset(range(1, height - 1), 3):
            state = self._rand_int(0, 3)
            self.grid.set(x, y, Door(self._rand_elem(colors), is_open=state == 0, is_locked=state == 2))
        for _ in range(3):
            self.place_obj(Key(self._rand_elem(colors)))
            self.place_obj(Ball(self._rand_elem(colors)))
        for _ in range(3):
            inner = self._rand_elem([None, Key(self._rand_elem(colors)), Ball(self._rand_elem(colors))])
            self.place_obj(Box(self._rand_elem(colors), contains=inner))
        self.place_obj(Wall())
        self.place_obj(Lava())
        self.place_obj(Goal())
        self.place_agent()

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # type: ignore[override]
        obs, info = super().reset(seed=seed, options=options)
        if self._rand_bool():
            self.carrying = Key(self._rand_elem(["red", "green", "blue", "purple", "yellow", "grey"]))
            obs = self.gen_obs()
        return obs, info


def test_exact_all_objects_playground() -> None:
    """Every rule at once: doors of all colours and states, matching/non-matching keys, balls, boxes with
    contents (toggle reveals them, pickup/drop carries them), lava, walls, goal; with occlusion."""
    seeds = list(range(8))
    envs = [_Playground() for _ in seeds]
    counts = _replay(envs, seeds, 800, np.random.default_rng(7), see_through_walls=False, has_boxes=True)
    assert counts["pickup"] > 20 and counts["drop"] > 10 and counts["door_open"] > 0, counts
    assert counts["episodes"] > 0, counts


def test_view_offsets_match_minigrid_view_coords() -> None:
    """Our rotation tables are the inverse of MiniGrid's ``get_view_coords`` for all 4 directions."""
    env = gym.make("MiniGrid-Empty-16x16-v0").unwrapped
    env.reset(seed=0)
    env.agent_pos = (8, 8)
    for d in range(4):
        env.agent_dir = d
        offs = view_offsets(d)
        for vx in range(7):
            for vy in range(7):
                ox, oy = offs[vx][vy]
                assert env.get_view_coords(8 + ox, 8 + oy) == (vx, vy)


def test_registry_contract_and_shapes() -> None:
    for env_id in registered_ids():
        env = make(env_id)
        assert isinstance(env, FunctionalEnv)
        ref = gym.make(env_id).unwrapped
        assert env.spec.obs_shape == (7, 7, 3) and env.spec.discrete and env.spec.n_actions == ref.action_space.n
        assert env.spec.max_episode_steps == ref.max_steps
        assert (env.height, env.width) == (ref.height, ref.width)
        g = torch.Generator().manual_seed(0)
        state, obs = env.reset(5, g)
        assert isinstance(state, MiniGridState)
        assert state.grid.shape == (5, env.height, env.width, 3) and state.grid.dtype == torch.uint8
        assert obs.image.shape == (5, 7, 7, 3) and obs.image.dtype == torch.uint8
        assert obs.direction.shape == (5,) and obs.mission.shape == (5, 4) and obs.mission.dtype == torch.uint8
        a = torch.randint(0, 7, (5,), generator=g)
        state, obs, r, te, tr = env.step(state, a, g)
        assert r.dtype == torch.float32 and te.dtype == torch.bool and tr.dtype == torch.bool
        assert r.shape == te.shape == tr.shape == (5,)
    assert make("DoorKey-8x8").config.env_id == "MiniGrid-DoorKey-8x8-v0"
    with pytest.raises(KeyError, match="MiniGrid-Nope"):
        make("MiniGrid-Nope-v0")
    with pytest.raises(ValueError, match="action must have shape"):
        env = make("MiniGrid-Empty-5x5-v0")
        s, _ = env.reset(3, torch.Generator())
        env.step(s, torch.zeros(4, dtype=torch.long), torch.Generator())


def _rollout(env_id: str, seed: int, steps: int, b: int = 16) -> list[torch.Tensor]:
    env = make(env_id)
    g = torch.Generator().manual_seed(seed)
    state, obs = env.reset(b, g)
    out = [obs.image]
    for _ in range(steps):
        a = torch.randint(0, 7, (b,), generator=g)
        state, obs, r, te, tr = env.step(state, a, g)
        out += [obs.image, r, te, tr]
    return out


def test_determinism() -> None:
    a = _rollout("MiniGrid-DoorKey-5x5-v0", 3, 60)
    b = _rollout("MiniGrid-DoorKey-5x5-v0", 3, 60)
    c = _rollout("MiniGrid-DoorKey-5x5-v0", 4, 60)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_step_auto_resets_only_ended_rows() -> None:
    """``step`` equals ``transition`` + ``observe`` on rows that go on; ended rows restart (step 0, fresh
    layout, empty hands) and keep the ending step's reward/flags; truncation happens at max_steps."""
    env = make("MiniGrid-Empty-5x5-v0")  # max_steps 100
    g = torch.Generator().manual_seed(0)
    b = 32
    state, _ = env.reset(b, g)
    params = env.default_params()
    seen_term = seen_trunc = False
    for t in range(250):
        a = torch.randint(0, 7, (b,), generator=g)
        ref_state, r0, te0, tr0 = env.task_transition(state, a)
        ref_obs = env.observe(ref_state)
        state, obs, r, te, tr = env.step(state, a, g, params)
        torch.testing.assert_close(r, r0)
        assert torch.equal(te, te0) and torch.equal(tr, tr0)
        done = te | tr
        keep = ~done
        assert torch.equal(obs.image[keep], ref_obs.image[keep])
        assert torch.equal(state.step_count[keep], ref_state.step_count[keep])
        assert bool((state.step_count[done] == 0).all())
        assert bool((state.carrying[done, 0] == OBJ["empty"]).all())
        assert bool((state.agent_pos[done] == 1).all())  # Empty-5x5 start (1, 1)
        assert bool((tr == (ref_state.step_count >= 100)).all())
        seen_term |= bool(te.any())
        seen_trunc |= bool(tr.any())
    assert seen_term and seen_trunc


def test_params_max_steps_per_row() -> None:
    env = make("MiniGrid-Empty-8x8-v0")
    g = torch.Generator().manual_seed(0)
    params = env.default_params()._replace(max_steps=torch.tensor([3, 5], dtype=torch.int32))
    state, _ = env.reset(2, g, params)
    assert state.max_steps.tolist() == [3, 5]
    left = torch.zeros(2, dtype=torch.long)
    trunc = []
    for _ in range(6):
        state, obs, r, te, tr = env.step(state, left, g, params)
        trunc.append(tr.tolist())
    assert trunc == [[False, False], [False, False], [True, False], [False, False], [False, True], [True, False]]


def test_goal_reward_formula() -> None:
    """Walk straight to the goal of Empty-5x5: 1 - 0.9 * step_count / max_steps at the arrival step."""
    env = make("MiniGrid-Empty-5x5-v0")
    g = torch.Generator().manual_seed(0)
    state, _ = env.reset(1, g)
    plan = [2, 2, 1, 2, 2]  # east x2, turn south, south x2 -> (3, 3) goal
    for i, a in enumerate(plan):
        state, obs, r, te, tr = env.step(state, torch.tensor([a]), g)
    assert bool(te[0]) and not bool(tr[0])
    assert abs(float(r[0]) - (1 - 0.9 * 5 / 100)) < 1e-6
    assert int(state.step_count[0]) == 0  # auto-reset


def test_state_from_minigrid_errors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        state_from_minigrid([])
    a = gym.make("MiniGrid-Empty-5x5-v0")
    b = gym.make("MiniGrid-Empty-8x8-v0")
    a.reset(seed=0)
    b.reset(seed=0)
    with pytest.raises(ValueError, match="expected 5x5"):
        state_from_minigrid([a, b])


def test_compiled_step_equals_eager() -> None:
    """``make(..., compile=True)`` gives bit-identical results to the eager kernel."""
    eager = make("MiniGrid-DoorKey-5x5-v0")
    comp = make("MiniGrid-DoorKey-5x5-v0", compile=True)
    g1 = torch.Generator().manual_seed(5)
    g2 = torch.Generator().manual_seed(5)
    s1, o1 = eager.reset(64, g1)
    s2, o2 = comp.reset(64, g2)
    for _ in range(40):
        a = torch.randint(0, 7, (64,), generator=g1)
        torch.randint(0, 7, (64,), generator=g2)
        s1, o1, r1, te1, tr1 = eager.step(s1, a, g1)
        s2, o2, r2, te2, tr2 = comp.step(s2, a, g2)
        assert torch.equal(o1.image, o2.image) and torch.equal(r1, r2)
        assert torch.equal(te1, te2) and torch.equal(tr1, tr2)
        assert all(torch.equal(x, y) for x, y in zip(s1, s2))


def test_bench_script_smoke(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_gridworld.py"
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(script), "--env-ids", "MiniGrid-DoorKey-5x5-v0", "--batch-sizes", "1", "4",
           "--min-time", "0.05", "--repeats", "1", "--no-compile", "--peers", "minigrid", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    rows = {r["B"]: r for r in data["results"]}
    assert rows[1]["minigrid_1env"] > 0  # the single-env peer is reported in the B = 1 row
    assert rows[4]["ours_eager"] > 0 and rows[1]["ours_eager"] > 0
    assert "eager/best" in res.stdout


def test_obstacle_moves_match_minigrid_distribution() -> None:
    """Dynamic-Obstacles: our random obstacle moves (drawn from the generator) have MiniGrid's distribution.

    From one imported state, MiniGrid's step (``left``, with 1500 different RNG seeds on copies of the env)
    and 20000 batched steps of ours move the obstacles; the position of each obstacle after the step and the
    joint move are compared with the chi-square homogeneity test of the layout tests.
    """
    import copy

    from test_minigrid_layouts import Z_MAX, chi2_homogeneity_z

    env_id = "MiniGrid-Dynamic-Obstacles-6x6-v0"
    ref = gym.make(env_id).unwrapped
    ref.reset(seed=3)
    w = ref.width
    moves_ref = []
    for i in range(1500):
        e = copy.deepcopy(ref)
        e.np_random = np.random.default_rng(i)
        e.step(0)
        moves_ref.append([o.cur_pos[1] * w + o.cur_pos[0] for o in e.obstacles])
    ours = make(env_id)
    n = 20000
    state = state_from_minigrid([ref])
    state = type(state)(*(x.expand(n, *x.shape[1:]).contiguous() for x in state))
    g = torch.Generator().manual_seed(0)
    state, _, _, term, trunc = ours.step(state, torch.zeros(n, dtype=torch.long), g)
    assert not bool((term | trunc).any())
    moves_ours = (state.obstacles[..., 1] * w + state.obstacles[..., 0]).numpy()
    moves_ref_a = np.array(moves_ref)
    for k in range(moves_ours.shape[1]):
        assert set(np.unique(moves_ours[:, k])) == set(np.unique(moves_ref_a[:, k])), k
        assert chi2_homogeneity_z(moves_ref_a[:, k], moves_ours[:, k]) < Z_MAX, k
    joint = np.array([1, 64, 64 * 64])[: moves_ours.shape[1]]
    assert chi2_homogeneity_z(moves_ref_a @ joint, moves_ours @ joint) < Z_MAX


def test_every_id_deterministic_and_consistent() -> None:
    """Every id: same generator seed, identical rollout; the agent always stands on a cell it may occupy;
    fresh layouts differ across seeds for ids with random layouts."""
    fixed = ("Empty-5x5", "Empty-6x6", "Empty-8x8", "Empty-16x16", "DistShift")
    for env_id in registered_ids():
        env = make(env_id)
        outs = []
        for seed in (0, 0, 1):
            g = torch.Generator().manual_seed(seed)
            state, obs = env.reset(16, g)
            first = torch.cat([state.grid.flatten(1).long(), state.agent_pos, state.agent_dir.view(-1, 1)], 1)
            ga = torch.Generator().manual_seed(5)
            for _ in range(15):
                a = torch.randint(0, env.spec.n_actions, (16,), generator=ga)
                state, obs, r, te, tr = env.step(state, a, g)
                b = torch.arange(16)
                under = state.grid[b, state.agent_pos[:, 1], state.agent_pos[:, 0], 0]
                ok = (under == OBJ["empty"]) | (under == OBJ["door"]) | (under == OBJ["goal"]) | (under == OBJ["lava"])
                assert bool(ok.all()), env_id
                assert bool(torch.isfinite(r).all()), env_id
            outs.append((first, state.grid, obs.image, obs.mission))
        assert all(torch.equal(x, y) for x, y in zip(outs[0], outs[1])), env_id
        if not any(f in env_id for f in fixed):
            assert not torch.equal(outs[0][0], outs[2][0]), env_id


@pytest.mark.parametrize("env_id", ["MiniGrid-DoorKey-5x5-v0", "MiniGrid-Empty-5x5-v0", "MiniGrid-Dynamic-Obstacles-5x5-v0"])
def test_step_with_final_obs(env_id: str) -> None:
    """``transition`` + ``reset_done`` (``step_with_final_obs``): the final observation of ended rows is the
    observation of their last state, and the draws are ``step``'s, so state and obs equal ``step``'s bitwise."""
    from torch_distill.envs.core import step_with_final_obs
    from torch_distill.envs.wrappers import FlatSymbolicObs

    env = FlatSymbolicObs(make(env_id))
    b = 16
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    s1, _ = env.reset(b, g1)
    s2, _ = env.reset(b, g2)
    ended = 0
    for t in range(260):  # past every id's time limit (DoorKey-5x5: 250 steps)
        a = torch.randint(0, 3, (b,), generator=torch.Generator().manual_seed(t))
        g_copy = torch.Generator().set_state(g2.get_state())
        ref, ref_obs, _, _, _ = env.transition(s2, a, g_copy)
        out = step_with_final_obs(env, s2, a, g2)
        done = out.terminated | out.truncated
        keep = ~done
        assert torch.equal(out.final_obs[keep], out.obs[keep])
        assert torch.equal(out.final_obs, ref_obs)
        s1, obs1, r1, te1, tr1 = env.step(s1, a, g1)
        assert torch.equal(obs1, out.obs) and torch.equal(r1, out.reward) and torch.equal(te1, out.terminated)
        assert all(torch.equal(x, y) for x, y in zip(s1, out.state))
        ended += int(done.sum())
        s2 = out.state
    assert ended > 0
