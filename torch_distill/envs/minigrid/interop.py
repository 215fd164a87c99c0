"""Interop with Farama MiniGrid: import the state of live ``minigrid`` env instances.

``minigrid`` is only needed when these functions are called (it is a test dependency).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from torch_distill.envs.minigrid.core import COLOR, EMPTY_CELL, OBJ, MiniGridState

__all__ = ["state_from_minigrid", "encode_object", "mission_of"]


def mission_of(env: Any) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """``(mission (type, colour, type2, colour2), target_pos (x, y))`` of an unwrapped MiniGrid env, read
    from the attributes its ``step`` uses (zeros for envs without a mission target)."""
    name = type(env).__name__
    pos = (0, 0)
    if name == "GoToDoorEnv":
        m = (OBJ["door"], COLOR[env.target_color], 0, 0)
        pos = env.target_pos
    elif name == "GoToObjectEnv":
        m = (OBJ[env.targetType], COLOR[env.target_color], 0, 0)
        pos = env.target_pos
    elif name == "FetchEnv":
        m = (OBJ[env.targetType], COLOR[env.targetColor], 0, 0)
    elif name == "PutNearEnv":
        m = (OBJ[env.move_type], COLOR[env.moveColor], OBJ[env.target_type], COLOR[env.target_color])
        pos = env.target_pos
    elif name == "MemoryEnv":
        m = (0, 0, 0, 0)
        pos = env.success_pos
    elif name == "LockedRoomEnv":
        locked = next(r for r in env.rooms if r.locked)
        key_room = next(r for r in env.rooms if not r.locked and _holds_key(env, r))
        m = (OBJ["key"], COLOR[locked.color], OBJ["door"], COLOR[key_room.color])
    elif name in ("KeyCorridorEnv", "UnlockPickupEnv", "BlockedUnlockPickupEnv"):
        m = (OBJ[env.obj.type], COLOR[env.obj.color], 0, 0)
    else:
        m = (0, 0, 0, 0)
    return m, (int(pos[0]), int(pos[1]))


def encode_object(obj: Any) -> tuple[int, int, int]:
    """Our cell encoding of a MiniGrid ``WorldObj`` (or ``None``): MiniGrid's ``obj.encode()``, except that a
    box keeps its contents in the state byte as ``(type << 3) | colour`` (0 for an empty box)."""
    if obj is None:
        return EMPTY_CELL
    t, c, s = (int(v) for v in obj.encode())
    if t == OBJ["box"]:
        inner = getattr(obj, "contains", None)
        if inner is None:
            s = 0
        else:
            it, ic, _ = (int(v) for v in inner.encode())
            s = (it << 3) | ic
    return (t, c, s)


def _holds_key(env: Any, room: Any) -> bool:
    (x0, y0), (sx, sy) = room.top, room.size
    return any(
        (o := env.grid.get(x, y)) is not None and o.type == "key"
        for x in range(x0 + 1, x0 + sx - 1)
        for y in range(y0 + 1, y0 + sy - 1)
    )


def state_from_minigrid(envs: Sequence[Any], device: torch.device | str = "cpu") -> MiniGridState:
    """Build a batched :class:`MiniGridState` from Farama MiniGrid env instances (wrapped or not).

    Reads each env's grid, agent position/direction, carried object, ``step_count``, ``max_steps``, mission
    target (:func:`mission_of`) and moving obstacles (Dynamic-Obstacles' ``obstacles``), so that
    the same action sequence can be replayed in both. All envs must have the same grid size.

    Args:
        envs: ``B`` MiniGrid envs (``gymnasium.make("MiniGrid-...")`` or ``MiniGridEnv`` instances), reset.
        device: where to put the state.

    Returns:
        state with ``grid [B, H, W, 3]`` uint8 etc.

    Raises:
        ValueError: empty list, an env not reset, or mixed grid sizes.
    """
    if len(envs) == 0:
        raise ValueError("state_from_minigrid needs at least one env")
    raw = [getattr(e, "unwrapped", e) for e in envs]
    h, w = raw[0].height, raw[0].width
    grids, pos, dirs, carry, steps, maxs, missions, targets, obstacles = [], [], [], [], [], [], [], [], []
    for i, e in enumerate(raw):
        if e.height != h or e.width != w:
            raise ValueError(f"env {i} has grid {e.height}x{e.width}, expected {h}x{w} like env 0")
        if e.agent_pos is None or e.grid is None or getattr(e, "step_count", None) is None:
            raise ValueError(f"env {i} has not been reset")
        g = np.empty((h, w, 3), dtype=np.uint8)
        for y in range(h):
            for x in range(w):
                g[y, x] = encode_object(e.grid.get(x, y))
        grids.append(g)
        pos.append((int(e.agent_pos[0]), int(e.agent_pos[1])))
        dirs.append(int(e.agent_dir))
        carry.append(encode_object(e.carrying))
        steps.append(int(e.step_count))
        maxs.append(int(e.max_steps))
        m, tp = mission_of(e)
        missions.append(m)
        targets.append(tp)
        obstacles.append([(int(o.cur_pos[0]), int(o.cur_pos[1])) for o in getattr(e, "obstacles", [])])
    k = len(obstacles[0])
    if any(len(o) != k for o in obstacles):
        raise ValueError(f"envs have different numbers of obstacles: {[len(o) for o in obstacles]}")
    return MiniGridState(
        grid=torch.from_numpy(np.stack(grids)).to(device),
        agent_pos=torch.tensor(pos, dtype=torch.int64, device=device),
        agent_dir=torch.tensor(dirs, dtype=torch.int64, device=device),
        carrying=torch.tensor(carry, dtype=torch.uint8, device=device),
        step_count=torch.tensor(steps, dtype=torch.int32, device=device),
        max_steps=torch.tensor(maxs, dtype=torch.int32, device=device),
        mission=torch.tensor(missions, dtype=torch.uint8, device=device),
        target_pos=torch.tensor(targets, dtype=torch.int64, device=device),
        obstacles=torch.tensor(obstacles, dtype=torch.int64, device=device).view(len(raw), k, 2),
    )
