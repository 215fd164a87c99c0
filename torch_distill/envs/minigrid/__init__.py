"""A natively batched MiniGrid in torch tensors, exact to Farama MiniGrid 3.2.

``make("MiniGrid-DoorKey-8x8-v0")`` returns a :class:`BatchedMiniGrid` (``FunctionalEnv``); see
``core`` (state, transition, observation), ``tasks`` (per-id reward/termination rules and the moving
obstacles), ``layouts`` (batched generators), ``interop`` (``state_from_minigrid``). ``registered_ids()``
lists the 62 ids served; missions with a target are integers in ``state.mission`` / ``obs.mission``.
"""

from torch_distill.envs.minigrid.core import (
    COLOR,
    OBJ,
    Layout,
    MiniGridObs,
    MiniGridParams,
    MiniGridState,
    build_tables,
    observe,
    transition,
)
from torch_distill.envs.minigrid.interop import mission_of, state_from_minigrid
from torch_distill.envs.minigrid.render import full_observation, render_rgb
from torch_distill.envs.minigrid.registry import REGISTRY, BatchedMiniGrid, MiniGridConfig, make, registered_ids
from torch_distill.envs.minigrid.tasks import TASKS, move_obstacles, task_step

__all__ = [
    "full_observation",
    "render_rgb",
    "full_observation",
    "render_rgb",
    "COLOR",
    "OBJ",
    "Layout",
    "MiniGridObs",
    "MiniGridParams",
    "MiniGridState",
    "build_tables",
    "observe",
    "transition",
    "state_from_minigrid",
    "mission_of",
    "TASKS",
    "move_obstacles",
    "task_step",
    "REGISTRY",
    "BatchedMiniGrid",
    "MiniGridConfig",
    "make",
    "registered_ids",
]
