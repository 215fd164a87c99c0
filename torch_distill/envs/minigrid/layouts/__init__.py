"""Batched on-device layout generators with the same distribution as MiniGrid's ``_gen_grid``.

MiniGrid draws layouts with Python's RNG and rejection loops (``place_obj`` retries until it hits an empty
cell). Each generator here draws the same random choices for a whole batch at once and maps them to cells
without loops: a uniform cell among the ``n`` cells ``place_obj`` would accept is one uniform integer
``k < n`` mapped through an enumeration of those cells, so the distribution is the same as MiniGrid's
(not the same draws). Every generator is split in ``draw`` (random integers, uses only the given
``torch.Generator``) and ``build`` (deterministic tensor code), so ``build`` can be compiled.

Modules: ``base`` (uniform integers, cached constants, cell placement, the ``LayoutGenerator`` protocol and
base classes), ``rooms`` (Empty, FourRooms, MultiRoom), ``doors`` (DoorKey, GoToDoor, RedBlueDoors,
LockedRoom), ``roomgrid`` (Unlock, UnlockPickup, BlockedUnlockPickup, KeyCorridor), ``hazards`` (LavaGap,
DistShift, Crossing, DynamicObstacles), ``objects`` (Fetch, GoToObject, PutNear, Memory).
"""

from torch_distill.envs.minigrid.layouts.base import (
    LayoutGenerator,
    pick_free,
    randint,
    uniform_to_int,
    wall_rect_grid,
)
from torch_distill.envs.minigrid.layouts.doors import (
    DoorKeyLayout,
    GoToDoorLayout,
    LockedRoomLayout,
    RedBlueDoorsLayout,
)
from torch_distill.envs.minigrid.layouts.hazards import (
    CrossingLayout,
    DistShiftLayout,
    DynamicObstaclesLayout,
    LavaGapLayout,
)
from torch_distill.envs.minigrid.layouts.objects import MemoryLayout, ObjectsLayout
from torch_distill.envs.minigrid.layouts.roomgrid import KeyCorridorLayout, UnlockLayout
from torch_distill.envs.minigrid.layouts.rooms import EmptyLayout, FourRoomsLayout, MultiRoomLayout

__all__ = [
    "CrossingLayout",
    "DistShiftLayout",
    "DoorKeyLayout",
    "DynamicObstaclesLayout",
    "EmptyLayout",
    "FourRoomsLayout",
    "GoToDoorLayout",
    "KeyCorridorLayout",
    "LavaGapLayout",
    "LayoutGenerator",
    "LockedRoomLayout",
    "MemoryLayout",
    "MultiRoomLayout",
    "ObjectsLayout",
    "RedBlueDoorsLayout",
    "UnlockLayout",
    "pick_free",
    "randint",
    "uniform_to_int",
    "wall_rect_grid",
]
