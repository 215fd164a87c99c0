"""Per-id rules layered on the base MiniGrid step: each follows the ``step`` override of its MiniGrid env.

:func:`task_step` = (Dynamic-Obstacles: obstacle moves) + :func:`core.transition` + the id's reward /
termination rule. Tasks (``MiniGridConfig.task``):

* ``"goal"`` -- the base rules only (Empty, DoorKey, FourRooms, LavaGap, crossings, DistShift).
* ``"dynamic_obstacles"`` -- ``minigrid/envs/dynamicobstacles.py``: actions ``>= 3`` become ``left``; every
  obstacle (a blue ball) moves, in MiniGrid's order, to a uniform empty cell of its 3x3 neighbourhood that is
  not the agent's (``place_obj(top=pos - 1, size=(3, 3))``; it stays when no such cell exists); then the agent
  steps; ``forward`` into anything but empty/goal (judged BEFORE the obstacles moved) gives reward -1 and ends.
* ``"goto"`` -- ``gotodoor.py`` / ``gotoobject.py``: ``toggle`` ends the episode; ``done`` ends it, with the
  success reward if the agent is 4-adjacent to ``target_pos``.
* ``"fetch"`` -- ``fetch.py``: holding anything ends the episode; success if it matches ``mission[:2]``.
* ``"pickup_target"`` -- ``keycorridor.py`` / ``unlockpickup.py`` / ``blockedunlockpickup.py``: ``pickup``
  that leaves the agent holding the mission object (type and colour) succeeds.
* ``"unlock"`` -- ``unlock.py``: ``toggle`` after which a door is open succeeds.
* ``"put_near"`` -- ``putnear.py``: picking up anything but ``mission[:2]`` ends the episode; ``drop`` while
  holding ends it, with success if the object landed in front within one cell (8-neighbourhood) of
  ``target_pos``.
* ``"memory"`` -- ``memory.py``: ``pickup`` acts as ``toggle``; standing on ``target_pos`` (the success cell)
  succeeds, standing on its mirror image across the middle row ends the episode with 0.
* ``"red_blue_doors"`` -- ``redbluedoors.py``: opening the blue door ends the episode, successfully iff the red
  door was open before the step; opening the red door while the blue one was open ends it with 0.

No rule syncs with the host or branches on tensor values.
"""

from __future__ import annotations

import torch

from torch_distill.envs.minigrid.core import (
    COLOR,
    DONE,
    DROP,
    FORWARD,
    LEFT,
    OBJ,
    PICKUP,
    STATE_OPEN,
    TOGGLE,
    KernelTables,
    MiniGridState,
    transition,
)

__all__ = ["TASKS", "move_obstacles", "task_step"]

TASKS = (
    "goal",
    "dynamic_obstacles",
    "goto",
    "fetch",
    "pickup_target",
    "unlock",
    "put_near",
    "red_blue_doors",
    "memory",
)

# 3x3 neighbourhood offsets in place_obj's window order is irrelevant to the distribution (uniform over the
# free cells); we use row-major (dy, dx).
_NB = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
BALL_BLUE = (OBJ["ball"], COLOR["blue"], 0)


_CONSTS: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _consts(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cached ``(neighbourhood offsets [9, 2], blue ball cell, empty cell)`` on ``device``."""
    key = str(device)
    if key not in _CONSTS:
        _CONSTS[key] = (
            torch.tensor(_NB, dtype=torch.int64, device=device),
            torch.tensor(BALL_BLUE, dtype=torch.uint8, device=device),
            torch.tensor((OBJ["empty"], 0, 0), dtype=torch.uint8, device=device),
        )
    return _CONSTS[key]


def move_obstacles(
    grid: torch.Tensor,
    obstacles: torch.Tensor,
    agent_pos: torch.Tensor,
    u: torch.Tensor | None,
    forced: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move each obstacle to a uniform free cell of its 3x3 neighbourhood (Dynamic-Obstacles' rule).

    A cell is free when it is empty (``(1, 0, 0)``) and not the agent's; obstacles move one after another, so
    each sees the earlier ones' new cells (MiniGrid loops over ``self.obstacles``). With no free cell the
    obstacle stays (MiniGrid's ``place_obj`` gives up after 100 tries; with >= 1 free cell of 8 that happens
    with probability < 7e-6 -- ignored here).

    Args:
        grid: ``[B, H, W, 3]`` uint8 (obstacles are blue balls in it).
        obstacles: ``[B, K, 2]`` int64 ``(x, y)``.
        agent_pos: ``[B, 2]``.
        u: ``[B, K]`` float64 uniforms in ``[0, 1)`` choosing among the free cells (ignored with ``forced``).
        forced: optional ``[B, K, 2]`` targets to move to instead (for replaying MiniGrid's own random moves).

    Returns:
        ``(grid, obstacles, ok [B, K] bool)``; ``ok`` is False where a ``forced`` target was not a cell this
        rule could have chosen (always True without ``forced``).
    """
    b, h, w, _ = grid.shape
    k_obs = obstacles.shape[1]
    device = grid.device
    nb, ball, empty = _consts(device)
    rows = torch.arange(b, device=device)
    new_obs = []
    oks = []
    for k in range(k_obs):
        old = obstacles[:, k]  # [B, 2]
        cand = old.unsqueeze(1) + nb  # [B, 9, 2]
        cx = cand[..., 0].clamp(0, w - 1)
        cy = cand[..., 1].clamp(0, h - 1)
        inside = (cand[..., 0] >= 0) & (cand[..., 0] < w) & (cand[..., 1] >= 0) & (cand[..., 1] < h)
        ctype = grid[rows.unsqueeze(1), cy, cx, 0]  # [B, 9]
        not_agent = (cand != agent_pos.unsqueeze(1)).any(-1)
        free = inside & (ctype == OBJ["empty"]) & not_agent
        n = free.sum(1)
        if forced is None:
            assert u is not None
            kk = torch.minimum((u[:, k] * n).long(), (n - 1).clamp(min=0))
            c = free.long().cumsum(1)
            idx = (c <= kk.unsqueeze(1)).sum(1).clamp(max=8)
            target = torch.where((n > 0).unsqueeze(1), cand[rows, idx], old)
            ok = torch.ones(b, dtype=torch.bool, device=device)
        else:
            target = forced[:, k]
            hit = (free & (cand == target.unsqueeze(1)).all(-1)).any(1)
            stay = (target == old).all(-1)
            ok = torch.where(n > 0, hit, stay)
        moved = (target != old).any(-1)
        # place at the target, then clear the old cell (MiniGrid: place_obj, then grid.set(old, None))
        cur = grid[rows, target[:, 1], target[:, 0]]
        grid = grid.index_put((rows, target[:, 1], target[:, 0]), torch.where(moved.unsqueeze(1), ball, cur))
        cur_old = grid[rows, old[:, 1], old[:, 0]]
        grid = grid.index_put((rows, old[:, 1], old[:, 0]), torch.where(moved.unsqueeze(1), empty, cur_old))
        new_obs.append(target)
        oks.append(ok)
    if k_obs == 0:
        return grid, obstacles, torch.ones(b, 0, dtype=torch.bool, device=device)
    return grid, torch.stack(new_obs, 1), torch.stack(oks, 1)


def _success_reward(state: MiniGridState) -> torch.Tensor:
    """MiniGrid's ``_reward()`` with the already incremented ``step_count``."""
    return 1.0 - 0.9 * (state.step_count.float() / state.max_steps.float())


def _any_open_door(grid: torch.Tensor, color: int | None = None) -> torch.Tensor:
    is_open = (grid[..., 0] == OBJ["door"]) & (grid[..., 2] == STATE_OPEN)
    if color is not None:
        is_open = is_open & (grid[..., 1] == color)
    return is_open.flatten(1).any(1)


def task_step(
    task: str,
    state: MiniGridState,
    action: torch.Tensor,
    tables: KernelTables,
    obstacle_u: torch.Tensor | None = None,
    forced_obstacles: torch.Tensor | None = None,
) -> tuple[MiniGridState, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One MiniGrid step of an id with rules ``task`` (see module docstring), without auto-reset.

    Args:
        task: one of :data:`TASKS`.
        state: batched state.
        action: ``[B]`` actions.
        tables: the grid size's :class:`KernelTables`.
        obstacle_u: ``[B, K]`` float64 uniforms for the obstacle moves (``"dynamic_obstacles"``).
        forced_obstacles: optional ``[B, K, 2]`` obstacle targets (replaying MiniGrid's random moves).

    Returns:
        ``(state, reward [B] float32, terminated [B], truncated [B], ok [B, K])`` where ``ok`` flags forced
        obstacle moves our rule could not have made (all True otherwise).
    """
    if task not in TASKS:
        raise ValueError(f"unknown MiniGrid task {task!r}; expected one of {TASKS}")
    b, h, w, _ = state.grid.shape
    action = action.long()
    ok = torch.ones(b, state.obstacles.shape[1], dtype=torch.bool, device=state.grid.device)
    zero = torch.zeros((), device=state.grid.device)
    if task == "dynamic_obstacles":
        action = torch.where(action >= 3, LEFT, action)
        fwd = state.agent_pos + tables.dir_vec[state.agent_dir]
        fx, fy = fwd[:, 0].clamp(0, w - 1), fwd[:, 1].clamp(0, h - 1)
        ftype = state.grid[torch.arange(b, device=state.grid.device), fy, fx, 0]
        not_clear = (ftype != OBJ["empty"]) & (ftype != OBJ["goal"])
        grid, obstacles, ok = move_obstacles(state.grid, state.obstacles, state.agent_pos, obstacle_u, forced_obstacles)
        state = state._replace(grid=grid, obstacles=obstacles)
        nxt, reward, term, trunc = transition(state, action, tables)
        hit = (action == FORWARD) & not_clear
        reward = torch.where(hit, -1.0, reward)
        term = term | hit
        return nxt, reward, term, trunc, ok
    if task == "memory":
        action = torch.where(action == PICKUP, TOGGLE, action)
    if task == "red_blue_doors":
        red_before = _any_open_door(state.grid, COLOR["red"])
        blue_before = _any_open_door(state.grid, COLOR["blue"])
    nxt, reward, term, trunc = transition(state, action, tables)
    if task == "goal":
        return nxt, reward, term, trunc, ok
    succ = _success_reward(nxt)
    carry_type, carry_col = nxt.carrying[:, 0], nxt.carrying[:, 1]
    is_target = (carry_type == nxt.mission[:, 0]) & (carry_col == nxt.mission[:, 1])
    if task == "goto":
        d = (nxt.agent_pos - nxt.target_pos).abs()
        adjacent = ((d[:, 0] == 0) & (d[:, 1] == 1)) | ((d[:, 1] == 0) & (d[:, 0] == 1))
        win = (action == DONE) & adjacent
        reward = torch.where(win, succ, reward)
        term = term | (action == DONE) | (action == TOGGLE)
    elif task == "fetch":
        holding = carry_type != OBJ["empty"]
        reward = torch.where(holding & is_target, succ, torch.where(holding, zero, reward))
        term = term | holding
    elif task == "pickup_target":
        win = (action == PICKUP) & is_target
        reward = torch.where(win, succ, reward)
        term = term | win
    elif task == "unlock":
        win = (action == TOGGLE) & _any_open_door(nxt.grid)
        reward = torch.where(win, succ, reward)
        term = term | win
    elif task == "put_near":
        holding = carry_type != OBJ["empty"]
        wrong = (action == PICKUP) & holding & ~is_target
        was_holding = state.carrying[:, 0] != OBJ["empty"]
        dropping = (action == DROP) & was_holding
        dropped = dropping & ~holding  # the object left the hands: it is now in the cell in front
        front = nxt.agent_pos + tables.dir_vec[nxt.agent_dir]
        near = ((front - nxt.target_pos).abs() <= 1).all(-1)
        reward = torch.where(dropped & near, succ, reward)
        term = term | wrong | dropping
    elif task == "memory":
        at_succ = (nxt.agent_pos == nxt.target_pos).all(-1)
        fail_pos = torch.stack([nxt.target_pos[:, 0], 2 * (h // 2) - nxt.target_pos[:, 1]], 1)
        at_fail = (nxt.agent_pos == fail_pos).all(-1)
        reward = torch.where(at_succ, succ, torch.where(at_fail, zero, reward))
        term = term | at_succ | at_fail
    elif task == "red_blue_doors":
        red_after = _any_open_door(nxt.grid, COLOR["red"])
        blue_after = _any_open_door(nxt.grid, COLOR["blue"])
        reward = torch.where(blue_after, torch.where(red_before, succ, zero), reward)
        term = term | blue_after | (red_after & blue_before)
        reward = torch.where(~blue_after & red_after & blue_before, zero, reward)
    return nxt, reward.float(), term, trunc, ok
