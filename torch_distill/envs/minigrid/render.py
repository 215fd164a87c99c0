"""Fully observable symbolic grid and RGB rendering of batched MiniGrid states.

* :func:`full_observation` -- MiniGrid's ``FullyObsWrapper`` image: ``grid.encode()`` (indexed ``[x, y]``) with the
  agent written as ``(agent, red, direction)`` into its cell; ``[B, W, H, 3]`` uint8.
* :func:`render_rgb` -- the same picture as MiniGrid's ``get_full_render(highlight=False, tile_size)``, built as one
  gather from a table of tile images ``[keys, tile, tile, 3]``. The table is drawn once per tile size by MiniGrid's
  own ``Grid.render_tile`` (so ``minigrid`` must be installed to render); rendering itself is pure tensor indexing
  on the device.
"""

from __future__ import annotations

import torch

from torch_distill.envs.minigrid.core import COLOR, OBJ, STATE_LOCKED, MiniGridState

__all__ = ["full_observation", "render_rgb"]

_N_TYPES, _N_COLORS, _N_STATES = 11, 6, STATE_LOCKED + 1
_N_KEYS = _N_TYPES * _N_COLORS * _N_STATES
_TABLES: dict[tuple[int, str], torch.Tensor] = {}


def _public_cells(grid: torch.Tensor) -> torch.Tensor:
    """Cell encodings as MiniGrid's ``encode()`` shows them: only doors carry a state (box contents hidden)."""
    is_door = grid[..., 0] == OBJ["door"]
    state = torch.where(is_door, grid[..., 2], torch.zeros_like(grid[..., 2]))
    return torch.stack([grid[..., 0], grid[..., 1], state], dim=-1)


def full_observation(state: MiniGridState) -> torch.Tensor:
    """``FullyObsWrapper``'s image for every env: ``[B, W, H, 3]`` uint8 (MiniGrid's ``[x, y]`` indexing)."""
    cells = _public_cells(state.grid).transpose(1, 2).clone()  # [B, W, H, 3]
    b = torch.arange(cells.shape[0], device=cells.device)
    agent = torch.stack(
        [torch.full_like(state.agent_dir, OBJ["agent"]), torch.full_like(state.agent_dir, COLOR["red"]), state.agent_dir],
        dim=-1,
    ).to(torch.uint8)
    cells[b, state.agent_pos[:, 0], state.agent_pos[:, 1]] = agent
    return cells


def _tile_table(tile_size: int, device: torch.device) -> torch.Tensor:
    """``[_N_KEYS * 5, tile, tile, 3]`` uint8: every (type, colour, state) tile, without and with the agent (4 dirs)."""
    key = (tile_size, str(device))
    if key not in _TABLES:
        try:
            from minigrid.core.grid import Grid
            from minigrid.core.world_object import WorldObj
        except ImportError:
            raise ImportError("render_rgb draws its tiles with Farama MiniGrid: pip install minigrid") from None
        import numpy as np

        tiles = np.zeros((5, _N_KEYS, tile_size, tile_size, 3), dtype=np.uint8)
        for t in range(_N_TYPES):
            for c in range(_N_COLORS):
                for s in range(_N_STATES):
                    k = (t * _N_COLORS + c) * _N_STATES + s
                    try:
                        obj = None if t in (OBJ["unseen"], OBJ["empty"], OBJ["agent"]) else WorldObj.decode(t, c, s)
                    except (AssertionError, ValueError, KeyError):
                        obj = None
                    for d in range(5):
                        tiles[d, k] = Grid.render_tile(obj, agent_dir=None if d == 0 else d - 1, tile_size=tile_size)
        _TABLES[key] = torch.from_numpy(tiles.reshape(5 * _N_KEYS, tile_size, tile_size, 3)).to(device)
    return _TABLES[key]


def render_rgb(state: MiniGridState, tile_size: int = 32) -> torch.Tensor:
    """RGB frames ``[B, H * tile, W * tile, 3]`` uint8, equal to MiniGrid's ``get_full_render(False, tile_size)``."""
    grid = _public_cells(state.grid).long()  # [B, H, W, 3]
    bsz, h, w, _ = grid.shape
    keys = (grid[..., 0] * _N_COLORS + grid[..., 1]) * _N_STATES + grid[..., 2]  # [B, H, W]
    b = torch.arange(bsz, device=keys.device)
    agent_layer = torch.zeros_like(keys)
    agent_layer[b, state.agent_pos[:, 1], state.agent_pos[:, 0]] = (state.agent_dir.long() + 1) * _N_KEYS
    tiles = _tile_table(tile_size, keys.device)[keys + agent_layer]  # [B, H, W, t, t, 3]
    return tiles.permute(0, 1, 3, 2, 4, 5).reshape(bsz, h * tile_size, w * tile_size, 3)
