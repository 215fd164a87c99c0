"""Fully observable symbolic grid and RGB rendering of batched MiniGrid states.

* :func:`full_observation` -- MiniGrid's ``FullyObsWrapper`` image: ``grid.encode()`` (indexed ``[x, y]``) with the
  agent written as ``(agent, red, direction)`` into its cell; ``[B, W, H, 3]`` uint8.
* :func:`render_rgb` -- the same picture as MiniGrid's ``get_full_render(highlight=False, tile_size)``, built as one
  gather from a table of tile images ``[keys, tile, tile, 3]``. The table is drawn once per tile size by MiniGrid's
  own ``Grid.render_tile`` (so ``minigrid`` must be installed to render); rendering itself is pure tensor indexing
  on the device.
* :func:`render_view` -- the agent's 7x7 egocentric view (an observation's ``image``) as MiniGrid's
  ``get_pov_render(tile_size)`` draws it: visible cells highlighted, the agent at the bottom centre facing up
  (cells the agent cannot see black). Only the tiles the views use are drawn (by MiniGrid's
  ``Grid.render_tile``), so one view costs a few tiles, not the whole table.
"""

from __future__ import annotations

import torch

from torch_distill.envs.minigrid.core import COLOR, OBJ, STATE_LOCKED, MiniGridState

__all__ = ["full_observation", "render_rgb", "render_view"]

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


def _decoded_object(t: int, c: int, s: int):
    """MiniGrid's ``WorldObj.decode`` of one cell code, None for unseen/empty/agent or an invalid code."""
    from minigrid.core.world_object import WorldObj

    if t in (OBJ["unseen"], OBJ["empty"], OBJ["agent"]):
        return None
    try:
        return WorldObj.decode(t, c, s)
    except (AssertionError, ValueError, KeyError, IndexError):
        return None


def render_view(image: torch.Tensor, tile_size: int = 16) -> torch.Tensor:
    """RGB frames ``[B, 7 * tile, 7 * tile, 3]`` uint8 of egocentric views ``image [B, 7, 7, 3]`` (MiniGrid's
    ``obs["image"]`` indexing ``[view_x, view_y, channel]``), equal to MiniGrid's ``get_pov_render(tile_size)``.

    Codes must be valid (type ``0..10``, colour ``0..5``, state ``0..2``; round and clamp other values first);
    a cell of type 0 (unseen) is drawn black and not highlighted, as MiniGrid's visibility mask does. The agent
    sits at view cell ``(3, 6)`` facing up (view direction 3) over the object it carries. Needs ``minigrid``.
    """
    if (not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[3] != 3
            or image.shape[1] != image.shape[2]):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"render_view: image has shape {shape}, expected [B, V, V, 3] cell codes")
    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 1:
        raise ValueError(f"render_view: tile_size={tile_size!r}, expected a positive int")
    codes = image.long().cpu()
    if codes.numel() and (int(codes[..., 0].min()) < 0 or int(codes[..., 0].max()) >= _N_TYPES
                          or int(codes[..., 1].min()) < 0 or int(codes[..., 1].max()) >= _N_COLORS
                          or int(codes[..., 2].min()) < 0 or int(codes[..., 2].max()) >= _N_STATES):
        raise ValueError(f"render_view: cell codes outside type 0..{_N_TYPES - 1}, colour 0..{_N_COLORS - 1}, "
                         f"state 0..{_N_STATES - 1}")
    try:
        from minigrid.core.grid import Grid
    except ImportError:
        raise ImportError("render_view draws its tiles with Farama MiniGrid: pip install minigrid") from None
    bsz, v = codes.shape[0], codes.shape[1]
    keys = (codes[..., 0] * _N_COLORS + codes[..., 1]) * _N_STATES + codes[..., 2]  # [B, V(x), V(y)]
    agent = torch.zeros(v, v, dtype=torch.long)
    agent[v // 2, v - 1] = 1
    keys = (keys * 2 + agent) * 2 + (codes[..., 0] != OBJ["unseen"]).long()  # (cell key, agent here, highlight)
    used, index = torch.unique(keys, return_inverse=True)
    tiles = []
    for k in used.tolist():
        cell, here, highlight = k // 4, (k // 2) % 2, k % 2
        t, rest = divmod(cell, _N_COLORS * _N_STATES)
        c, s = divmod(rest, _N_STATES)
        tiles.append(torch.from_numpy(Grid.render_tile(_decoded_object(t, c, s), agent_dir=3 if here else None,
                                                       highlight=bool(highlight), tile_size=tile_size)
                                      .astype("uint8")))  # truncated, as Grid.render's uint8 canvas does
    frames = torch.stack(tiles)[index]  # [B, V(x), V(y), t, t, 3]
    return frames.permute(0, 2, 3, 1, 4, 5).reshape(bsz, v * tile_size, v * tile_size, 3).to(image.device)
