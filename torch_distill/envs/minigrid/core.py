"""The batched MiniGrid kernel: state, constants, transition and egocentric observation.

Everything here follows Farama MiniGrid 3.2 (``minigrid/minigrid_env.py``, ``minigrid/core/grid.py``,
``minigrid/core/world_object.py``) rule for rule, but over a batch of ``B`` environments held as tensors:

* ``grid [B, H, W, 3] uint8`` -- one ``(type, colour, state)`` triple per cell, exactly MiniGrid's
  ``Grid.encode`` values (transposed to row-major ``[y, x]``). Empty cells are ``(1, 0, 0)``, never ``0``.
  Door state is 0 open / 1 closed / 2 locked. A box stores its contents in the state byte as
  ``(type << 3) | colour`` (0 = empty box); the observation shows a box's state as 0, like MiniGrid.
* ``agent_pos [B, 2]`` (x, y), ``agent_dir [B]`` (0 east, 1 south, 2 west, 3 north),
  ``carrying [B, 3] uint8`` (``(1, 0, 0)`` when empty-handed), ``step_count [B]``, ``max_steps [B]``.

Nothing in :func:`transition` or :func:`observe` syncs with the host, branches on tensor values or uses a
data-dependent shape, so the same code runs on CUDA and under ``torch.compile``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = [
    "OBJ",
    "COLOR",
    "EMPTY_CELL",
    "WALL_CELL",
    "VIEW_SIZE",
    "MiniGridState",
    "MiniGridObs",
    "MiniGridParams",
    "Layout",
    "KernelTables",
    "transition",
    "observe",
    "reset_rows",
]

# --- MiniGrid's encodings (minigrid/core/constants.py) -------------------------------------------------
OBJ: dict[str, int] = {
    "unseen": 0,
    "empty": 1,
    "wall": 2,
    "floor": 3,
    "door": 4,
    "key": 5,
    "ball": 6,
    "box": 7,
    "goal": 8,
    "lava": 9,
    "agent": 10,
}
COLOR: dict[str, int] = {"red": 0, "green": 1, "blue": 2, "purple": 3, "yellow": 4, "grey": 5}
STATE_OPEN, STATE_CLOSED, STATE_LOCKED = 0, 1, 2

EMPTY_CELL: tuple[int, int, int] = (OBJ["empty"], 0, 0)
WALL_CELL: tuple[int, int, int] = (OBJ["wall"], COLOR["grey"], 0)
GOAL_CELL: tuple[int, int, int] = (OBJ["goal"], COLOR["green"], 0)
LAVA_CELL: tuple[int, int, int] = (OBJ["lava"], COLOR["red"], 0)

# Actions (minigrid/core/actions.py).
LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE, DONE = range(7)
N_ACTIONS = 7
VIEW_SIZE = 7

# DIR_TO_VEC of MiniGrid: east, south, west, north as (dx, dy).
DIR_TO_VEC: tuple[tuple[int, int], ...] = ((1, 0), (0, 1), (-1, 0), (0, -1))


class MiniGridState(NamedTuple):
    """Batched MiniGrid state; every field has leading batch dim ``B``.

    Attributes:
        grid: ``[B, H, W, 3]`` uint8 cell encodings (type, colour, state), indexed ``[y, x]``.
        agent_pos: ``[B, 2]`` int64 ``(x, y)``.
        agent_dir: ``[B]`` int64 in ``0..3``.
        carrying: ``[B, 3]`` uint8 encoding of the carried object, ``(1, 0, 0)`` for none.
        step_count: ``[B]`` int32 steps taken in the current episode.
        max_steps: ``[B]`` int32 episode time limit (truncation at ``step_count >= max_steps``).
        mission: ``[B, 4]`` uint8 mission as integers ``(type, colour, type2, colour2)`` with MiniGrid's
            OBJ/COLOR codes (e.g. GoToDoor ``(door, red, 0, 0)``; PutNear ``(move type, move colour, target
            type, target colour)``); all zeros for ids without a mission target.
        target_pos: ``[B, 2]`` int64 ``(x, y)`` of the mission's target where the rules need it (GoToDoor,
            GoToObject, PutNear: MiniGrid's ``target_pos``), else ``(0, 0)``.
        obstacles: ``[B, K, 2]`` int64 ``(x, y)`` of the moving obstacles in MiniGrid's order
            (Dynamic-Obstacles; ``K = 0`` elsewhere).
    """

    grid: torch.Tensor
    agent_pos: torch.Tensor
    agent_dir: torch.Tensor
    carrying: torch.Tensor
    step_count: torch.Tensor
    max_steps: torch.Tensor
    mission: torch.Tensor
    target_pos: torch.Tensor
    obstacles: torch.Tensor


class MiniGridObs(NamedTuple):
    """MiniGrid's default observation without the mission string.

    Attributes:
        image: ``[B, 7, 7, 3]`` uint8, indexed ``[view_x, view_y, channel]`` exactly like MiniGrid's
            ``obs["image"]`` (agent at ``[3, 6]`` looking towards ``view_y = 0``).
        direction: ``[B]`` int64 agent direction.
        mission: ``[B, 4]`` uint8 mission integers (see :class:`MiniGridState`), zeros when none.
    """

    image: torch.Tensor
    direction: torch.Tensor
    mission: torch.Tensor


class MiniGridParams(NamedTuple):
    """Numeric env parameters (broadcastable ``[]`` or ``[B]``).

    Attributes:
        max_steps: episode time limit given to freshly reset episodes (int32).
    """

    max_steps: torch.Tensor


class Layout(NamedTuple):
    """A batch of freshly generated episodes (what a layout generator returns).

    Attributes:
        grid: ``[B, H, W, 3]`` uint8 (may be ``[1, H, W, 3]`` for a fixed layout; it broadcasts).
        agent_pos: ``[B, 2]`` int64 ``(x, y)``.
        agent_dir: ``[B]`` int64.
        mission: ``[B, 4]`` uint8 or None (no mission: zeros).
        target_pos: ``[B, 2]`` int64 or None (zeros).
        obstacles: ``[B, K, 2]`` int64 or None (``K = 0``).
    """

    grid: torch.Tensor
    agent_pos: torch.Tensor
    agent_dir: torch.Tensor
    mission: torch.Tensor | None = None
    target_pos: torch.Tensor | None = None
    obstacles: torch.Tensor | None = None


def _row_sweep_tables() -> tuple[list[int], list[int]]:
    """Tabulate one row of ``Grid.process_vis`` for every (transparency, seed) pair of a 7-cell row.

    ``Grid.process_vis`` walks the rows of the 7x7 view from the agent's row (``j = 6``) upwards; row ``j``'s
    final mask depends only on the cells of row ``j`` (which see behind) and on the bits set into it while row
    ``j + 1`` was processed. Running MiniGrid's two sweeps literally on one row gives both that row's final
    mask and the bits it sets in row ``j - 1``. Key: ``transparent_bits * 128 + seed_bits``.

    Returns:
        ``(visible, next_seeds)``: two lists of length ``128 * 128`` of 7-bit masks.
    """
    n = VIEW_SIZE
    visible: list[int] = [0] * (128 * 128)
    nxt: list[int] = [0] * (128 * 128)
    for tb in range(128):
        t = [(tb >> i) & 1 == 1 for i in range(n)]
        for sb in range(128):
            m = [(sb >> i) & 1 == 1 for i in range(n)]
            u = [False] * n
            for i in range(0, n - 1):
                if not m[i] or not t[i]:
                    continue
                m[i + 1] = True
                u[i + 1] = True
                u[i] = True
            for i in reversed(range(1, n)):
                if not m[i] or not t[i]:
                    continue
                m[i - 1] = True
                u[i - 1] = True
                u[i] = True
            visible[tb * 128 + sb] = sum(1 << i for i in range(n) if m[i])
            nxt[tb * 128 + sb] = sum(1 << i for i in range(n) if u[i])
    return visible, nxt


_ROW_TABLES: tuple[list[int], list[int]] | None = None


def _row_tables_cached() -> tuple[list[int], list[int]]:
    global _ROW_TABLES
    if _ROW_TABLES is None:
        _ROW_TABLES = _row_sweep_tables()
    return _ROW_TABLES


def view_offsets(direction: int) -> list[list[tuple[int, int]]]:
    """World offset ``(dx, dy)`` from the agent of every view cell ``[vx][vy]`` for one direction.

    From ``MiniGridEnv.get_full_render``/``get_view_coords``: world = agent + f * (6 - vy) + r * (vx - 3),
    with ``f = DIR_TO_VEC[dir]`` and ``r = (-f_y, f_x)``. This equals ``Grid.slice`` + ``dir + 1`` calls of
    ``rotate_left`` in ``gen_obs_grid`` (checked in the tests against MiniGrid's own functions).
    """
    fx, fy = DIR_TO_VEC[direction]
    rx, ry = -fy, fx
    s, h = VIEW_SIZE, VIEW_SIZE // 2
    return [
        [(fx * (s - 1 - vy) + rx * (vx - h), fy * (s - 1 - vy) + ry * (vx - h)) for vy in range(s)] for vx in range(s)
    ]


class KernelTables(NamedTuple):
    """Precomputed lookup tables for one grid size on one device (built by :func:`build_tables`).

    Attributes:
        view_idx: ``[4 * H * W, 147]`` int64; row ``dir * H * W + y * W + x`` holds, for every view cell and
            channel (``[vx, vy, c]`` flattened), the flat index ``(wy * W + wx) * 3 + c`` into the grid
            (clamped inside the grid where the view leaves it).
        view_idx_walled: like ``view_idx`` but cells outside the grid read cell ``(0, 0)`` (a wall in walled
            layouts).
        view_valid: ``[4 * H * W, 147]`` bool, False where the view cell is outside the grid (seen as wall).
        wall3: ``[147]`` uint8, the wall encoding tiled over view cells.
        vis_first: ``[128]`` int64 -- final mask of the agent's row (seed = the agent cell) per transparency.
        vis_row: ``[128 * 128]`` int64 -- final mask of a row per (transparency, seeds).
        vis_next: ``[128 * 128]`` int64 -- seeds that row sets in the row in front of it.
        pow2: ``[7, 1]`` int64 powers of two over ``vx`` (bit packing of a view row).
        dir_vec: ``[4, 2]`` int64 MiniGrid DIR_TO_VEC.
        rot: ``[7]`` int64 direction change per action (left -1 -> 3, right +1).
        can_overlap: ``[16]`` bool per object type (empty, floor, goal, lava; doors handled by state).
        can_pickup: ``[16]`` bool per object type (key, ball, box).
        empty3: ``[3]`` uint8 empty-cell encoding.
        chan3: ``[3]`` int64 ``(0, 1, 2)``, the channel offsets of a cell's flat byte index.
    """

    view_idx: torch.Tensor
    view_idx_walled: torch.Tensor
    view_valid: torch.Tensor
    wall3: torch.Tensor
    vis_first: torch.Tensor
    vis_row: torch.Tensor
    vis_next: torch.Tensor
    pow2: torch.Tensor
    dir_vec: torch.Tensor
    rot: torch.Tensor
    can_overlap: torch.Tensor
    can_pickup: torch.Tensor
    empty3: torch.Tensor
    chan3: torch.Tensor


_TABLE_CACHE: dict[tuple[int, int, str], KernelTables] = {}


def build_tables(height: int, width: int, device: torch.device | str = "cpu") -> KernelTables:
    """Build (and cache) the :class:`KernelTables` of an ``height x width`` grid on ``device``."""
    device = torch.device(device)
    key = (height, width, str(device))
    if key in _TABLE_CACHE:
        return _TABLE_CACHE[key]
    hw = height * width
    s = VIEW_SIZE
    idx = torch.zeros(4, height, width, s, s, 3, dtype=torch.int64)
    valid = torch.zeros(4, height, width, s, s, 3, dtype=torch.bool)
    ys = torch.arange(height).view(height, 1)
    xs = torch.arange(width).view(1, width)
    for d in range(4):
        offs = view_offsets(d)
        for vx in range(s):
            for vy in range(s):
                ox, oy = offs[vx][vy]
                wx, wy = xs + ox, ys + oy
                ok = (wx >= 0) & (wx < width) & (wy >= 0) & (wy < height)
                flat = wy.clamp(0, height - 1) * width + wx.clamp(0, width - 1)
                for c in range(3):
                    idx[d, :, :, vx, vy, c] = flat * 3 + c
                    valid[d, :, :, vx, vy, c] = ok
    vis_row, vis_next = _row_tables_cached()
    vis_row_t = torch.tensor(vis_row, dtype=torch.int64)
    first = torch.tensor([vis_row[tb * 128 + (1 << (s // 2))] for tb in range(128)], dtype=torch.int64)
    can_overlap = torch.zeros(16, dtype=torch.bool)
    for name in ("empty", "floor", "goal", "lava"):
        can_overlap[OBJ[name]] = True
    can_pickup = torch.zeros(16, dtype=torch.bool)
    for name in ("key", "ball", "box"):
        can_pickup[OBJ[name]] = True
    rot = torch.zeros(N_ACTIONS, dtype=torch.int64)
    rot[LEFT] = 3
    rot[RIGHT] = 1
    tables = KernelTables(
        view_idx=idx.view(4 * hw, s * s * 3).to(device),
        view_idx_walled=torch.where(valid, idx, idx % 3).view(4 * hw, s * s * 3).to(device),
        view_valid=valid.view(4 * hw, s * s * 3).to(device),
        wall3=torch.tensor(WALL_CELL, dtype=torch.uint8).repeat(s * s).to(device),
        vis_first=first.to(device),
        vis_row=vis_row_t.to(device),
        vis_next=torch.tensor(vis_next, dtype=torch.int64).to(device),
        pow2=(2 ** torch.arange(s, dtype=torch.int64)).view(s, 1).to(device),
        dir_vec=torch.tensor(DIR_TO_VEC, dtype=torch.int64).to(device),
        rot=rot.to(device),
        can_overlap=can_overlap.to(device),
        can_pickup=can_pickup.to(device),
        empty3=torch.tensor(EMPTY_CELL, dtype=torch.uint8).to(device),
        chan3=torch.arange(3, dtype=torch.int64, device=device),
    )
    _TABLE_CACHE[key] = tables
    return tables


def transition(
    state: MiniGridState, action: torch.Tensor, tables: KernelTables
) -> tuple[MiniGridState, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One ``MiniGridEnv.step`` for every env of the batch, without auto-reset.

    Rules (minigrid_env.py ``step`` and world_object.py): ``left``/``right`` rotate; ``forward`` moves onto
    empty/floor/goal/lava/open-door cells, terminates on goal (reward ``1 - 0.9 * step_count / max_steps``)
    and on lava (reward 0); ``pickup`` takes a key/ball/box in front when empty-handed; ``drop`` puts the
    carried object on an empty cell in front; ``toggle`` opens/closes unlocked doors, unlocks a locked door
    (and opens it) when carrying a key of its colour, and replaces a box by its contents; ``done`` does
    nothing. ``truncated = step_count >= max_steps`` after the increment (both flags can be set).

    Args:
        state: batched state (``B`` envs).
        action: ``[B]`` integer actions in ``0..6``.
        tables: :func:`build_tables` of the grid size.

    Returns:
        ``(next_state, reward [B] float32, terminated [B] bool, truncated [B] bool)``.
    """
    grid, pos, direction, carrying, step_count, max_steps = state[:6]
    b, h, w, _ = grid.shape
    action = action.long()
    step_count = step_count + 1

    # Cell in front of the agent (uses the direction before this step's rotation, like MiniGrid).
    fwd = pos + tables.dir_vec[direction]
    fx = fwd[:, 0].clamp(0, w - 1)
    fy = fwd[:, 1].clamp(0, h - 1)
    # flat byte indices [B, 3] of the front cell's channels, contiguous: gather/scatter with an expanded
    # (stride-0) index take a slow path on CPU (B=4096: ~10x slower than a contiguous [B, 3] index)
    fidx = (fy * (3 * w) + 3 * fx).unsqueeze(1) + tables.chan3
    flat = grid.reshape(b, h * w * 3)
    cell = flat.gather(1, fidx)
    ctype = cell[:, 0]
    ctype_l = ctype.long()
    ccol = cell[:, 1]
    cstate = cell[:, 2]

    is_fwd = action == FORWARD
    is_door = ctype == OBJ["door"]
    overlap = tables.can_overlap[ctype_l] | (is_door & (cstate == STATE_OPEN))
    move = is_fwd & overlap
    new_pos = torch.where(move.unsqueeze(1), fwd, pos)
    on_goal = is_fwd & (ctype == OBJ["goal"])
    on_lava = is_fwd & (ctype == OBJ["lava"])
    terminated = on_goal | on_lava
    reward = torch.where(
        on_goal, 1.0 - 0.9 * (step_count.float() / max_steps.float()), torch.zeros((), device=grid.device)
    )

    new_dir = (direction + tables.rot[action]) & 3

    empty_handed = carrying[:, 0] == OBJ["empty"]
    pick = (action == PICKUP) & tables.can_pickup[ctype_l] & empty_handed
    drop = (action == DROP) & (ctype == OBJ["empty"]) & ~empty_handed
    toggle = action == TOGGLE

    # Doors: locked -> open with a key of the door's colour; open <-> closed otherwise.
    has_key = (carrying[:, 0] == OBJ["key"]) & (carrying[:, 1] == ccol)
    door_state = torch.where(
        cstate == STATE_LOCKED,
        torch.where(has_key, 0, STATE_LOCKED).to(torch.uint8),
        (1 - cstate.to(torch.int64)).clamp(0, 1).to(torch.uint8),
    )
    toggle_door = toggle & is_door
    # Boxes: toggle replaces the box by its contents, stored in the state byte as (type << 3) | colour.
    toggle_box = toggle & (ctype == OBJ["box"])
    contents = torch.stack(
        [torch.where(cstate == 0, OBJ["empty"], cstate >> 3).to(torch.uint8), cstate & 7, torch.zeros_like(cstate)],
        dim=1,
    )

    new_cell = torch.where(pick.unsqueeze(1), tables.empty3, cell)
    new_cell = torch.where(drop.unsqueeze(1), carrying, new_cell)
    new_cell = torch.where(toggle_box.unsqueeze(1), contents, new_cell)
    door_cell = torch.stack([ctype, ccol, door_state], dim=1)
    new_cell = torch.where(toggle_door.unsqueeze(1), door_cell, new_cell)
    new_grid = flat.scatter(1, fidx, new_cell).view(b, h, w, 3)

    new_carrying = torch.where(pick.unsqueeze(1), cell, carrying)
    new_carrying = torch.where(drop.unsqueeze(1), tables.empty3, new_carrying)

    truncated = step_count >= max_steps
    next_state = state._replace(
        grid=new_grid, agent_pos=new_pos, agent_dir=new_dir, carrying=new_carrying, step_count=step_count
    )
    return next_state, reward, terminated, truncated


def observe(
    state: MiniGridState,
    tables: KernelTables,
    see_through_walls: bool = False,
    has_boxes: bool = False,
    walled: bool = False,
) -> MiniGridObs:
    """MiniGrid's ``gen_obs``: the 7x7 egocentric ``image`` and the ``direction``.

    The view is one gather through ``tables.view_idx`` (MiniGrid's slice + rotation; cells outside the grid
    read as walls). Unless ``see_through_walls``, ``Grid.process_vis`` is applied exactly: the rows of the view
    are processed from the agent's row upwards, each through a 128x128 table of MiniGrid's two sweeps
    (:func:`_row_sweep_tables`); invisible cells become ``(0, 0, 0)``. The agent's own cell shows the carried
    object or ``(1, 0, 0)``.

    Args:
        state: batched state.
        tables: :func:`build_tables` of the grid size.
        see_through_walls: the env's ``see_through_walls`` (True for Empty-*, static per env id).
        has_boxes: set when boxes can occur, to hide the contents byte of boxes (static per env id).
        walled: set when the grid's border is all walls (every MiniGrid layout here): the view then reads
            cells outside the grid from the wall at ``(0, 0)`` and skips the outside-the-grid select.

    Returns:
        :class:`MiniGridObs` with ``image [B, 7, 7, 3]`` uint8 and ``direction [B]``.
    """
    grid = state.grid
    b, h, w, _ = grid.shape
    s = VIEW_SIZE
    key = state.agent_dir * (h * w) + state.agent_pos[:, 1] * w + state.agent_pos[:, 0]
    flat = grid.reshape(b, h * w * 3)
    if walled:
        view = flat.gather(1, tables.view_idx_walled.index_select(0, key)).view(b, s * s, 3)
    else:
        view = flat.gather(1, tables.view_idx.index_select(0, key))
        view = torch.where(tables.view_valid.index_select(0, key), view, tables.wall3).view(b, s * s, 3)
    if not see_through_walls:
        vtype = view[:, :, 0]
        # Cell.see_behind(): everything but walls and doors that are not open
        transparent = (vtype != OBJ["wall"]) & ((vtype != OBJ["door"]) | (view[:, :, 2] == STATE_OPEN))
        tr = transparent.view(b, s, s).to(torch.int64)  # [B, 7(vx), 7(vy)]
        # transparency bits of each view row vy (bit vx), times 128 for the table key: [B, 7(vy)]
        tbits = tr[:, 0]
        for vx in range(1, s):
            tbits = tbits | (tr[:, vx] << vx)
        tbits = tbits << 7
        rows: list[torch.Tensor] = [torch.empty(0)] * s
        k = tables.vis_first[tbits[:, s - 1] >> 7]
        rows[s - 1] = k
        seeds = tables.vis_next[tbits[:, s - 1] + (1 << (s // 2))]
        for j in range(s - 2, -1, -1):
            k = tbits[:, j] + seeds
            rows[j] = tables.vis_row[k]
            if j > 0:
                seeds = tables.vis_next[k]
        vis_bits = torch.stack(rows, dim=1)  # [B, 7(vy)]
        vis = (vis_bits.unsqueeze(1) & tables.pow2) != 0  # [B, 7(vx), 7(vy)]
        view = view * vis.view(b, s * s, 1)
    if has_boxes:
        box_state = torch.where(view[:, :, 0] == OBJ["box"], 0, view[:, :, 2]).to(torch.uint8)
        view = torch.stack([view[:, :, 0], view[:, :, 1], box_state], dim=2)
    carried = state.carrying
    if has_boxes:
        carried = torch.stack(
            [carried[:, 0], carried[:, 1], torch.where(carried[:, 0] == OBJ["box"], 0, carried[:, 2]).to(torch.uint8)],
            dim=1,
        )
    agent_cell = (s // 2) * s + (s - 1)
    view[:, agent_cell, :] = carried
    return MiniGridObs(view.view(b, s, s, 3), state.agent_dir, state.mission)


def reset_rows(
    state: MiniGridState, done: torch.Tensor, fresh: Layout, max_steps: torch.Tensor, empty3: torch.Tensor
) -> MiniGridState:
    """Replace the rows of ``state`` where ``done`` (``[B]`` bool) by the fresh episodes of ``fresh``.

    Selection is over the batch without a host sync or dynamic shapes: the grids by one row gather from
    ``cat([state.grid, fresh.grid])`` (row copies; a ``torch.where`` over uint8 rows is several times slower
    on CPU, ~10x for FourRooms' 1083-byte rows), the small fields by ``torch.where``.
    """
    d1 = done.unsqueeze(1)
    b = state.grid.shape[0]
    cur = state.grid.reshape(b, -1)
    new = fresh.grid.reshape(fresh.grid.shape[0], -1)
    rows = torch.arange(b, device=cur.device)
    pick = torch.where(done, rows + b if new.shape[0] == b else torch.full_like(rows, b), rows)
    grid = torch.cat([cur, new.to(cur.dtype)]).index_select(0, pick)
    return MiniGridState(
        grid=grid.view(state.grid.shape),
        agent_pos=torch.where(d1, fresh.agent_pos, state.agent_pos),
        agent_dir=torch.where(done, fresh.agent_dir, state.agent_dir),
        carrying=torch.where(d1, empty3, state.carrying),
        step_count=torch.where(done, torch.zeros_like(state.step_count), state.step_count),
        max_steps=torch.where(done, max_steps.to(state.max_steps.dtype), state.max_steps),
        mission=torch.where(d1, fresh.mission, state.mission) if fresh.mission is not None else state.mission,
        target_pos=(
            torch.where(d1, fresh.target_pos, state.target_pos) if fresh.target_pos is not None else state.target_pos
        ),
        obstacles=(
            torch.where(d1.unsqueeze(2), fresh.obstacles, state.obstacles)
            if fresh.obstacles is not None
            else state.obstacles
        ),
    )
