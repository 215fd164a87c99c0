"""A natively batched MiniGrid in torch tensors, exact to Farama MiniGrid 3.2.

``make("MiniGrid-DoorKey-8x8-v0")`` returns a :class:`BatchedMiniGrid` (``FunctionalEnv``); see
``core`` (state, transition, observation), ``layouts`` (batched generators), ``interop``
(``state_from_minigrid``).
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
from torch_distill.envs.minigrid.interop import state_from_minigrid
from torch_distill.envs.minigrid.registry import REGISTRY, BatchedMiniGrid, MiniGridConfig, make, registered_ids

__all__ = [
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
    "REGISTRY",
    "BatchedMiniGrid",
    "MiniGridConfig",
    "make",
    "registered_ids",
]
