"""RGB frames of MinAtar observations in MinAtar's own colours.

minatar (``Environment.display_state`` and ``gym.BaseEnv.render("rgb_array")``) colours a cell by the highest
channel index present in it: ``numerical = max_c((c + 1) * obs[..., c])`` (0 for an empty cell) indexes the palette
``[black] + seaborn.color_palette("cubehelix", C)``. seaborn resolves ``"cubehelix"`` to matplotlib's colormap of
that name and samples it at ``linspace(0, 1, C + 2)[1:-1]`` (the two ends dropped; ``seaborn.palettes.mpl_palette``),
so the palette is ``matplotlib.colormaps["cubehelix"](linspace(0, 1, C + 2)[1:-1])[:, :3]``. The tables below are
those colours times 255, rounded, for the channel counts of the five games; other counts are computed with
matplotlib the same way.
"""

from __future__ import annotations

import torch

__all__ = ["palette", "render_rgb", "PALETTES"]

PALETTES: dict[int, tuple[tuple[int, int, int], ...]] = {
    4: ((22, 61, 78), (84, 121, 47), (208, 126, 147), (193, 202, 243)),  # Asterix, Breakout
    6: ((26, 36, 65), (27, 97, 69), (105, 123, 48), (200, 123, 124), (205, 162, 224), (198, 225, 241)),  # SpaceInvaders
    7: ((27, 30, 59), (22, 83, 76), (68, 119, 49), (161, 121, 74), (212, 132, 169), (198, 180, 238),
        (203, 232, 240)),  # Freeway
    10: ((25, 18, 43), (23, 52, 76), (24, 91, 72), (60, 118, 50), (126, 122, 54), (188, 121, 103), (212, 134, 175),
         (202, 169, 231), (194, 210, 243), (214, 240, 239)),  # Seaquest
}
"""Channel count -> the ``C`` channel colours (uint8 RGB) of minatar's palette (black, for empty cells, excluded)."""

_cache: dict[tuple[int, torch.device], torch.Tensor] = {}


def palette(n_channels: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[C + 1, 3]`` uint8: black, then the colour of channel ``0 .. C - 1``."""
    if isinstance(n_channels, bool) or not isinstance(n_channels, int) or n_channels < 1:
        raise ValueError(f"n_channels={n_channels!r}: expected a positive int")
    dev = torch.device(device)
    key = (n_channels, dev)
    table = _cache.get(key)
    if table is None:
        colours = PALETTES.get(n_channels)
        if colours is None:
            import matplotlib
            import numpy as np

            rgb = matplotlib.colormaps["cubehelix"](np.linspace(0, 1, n_channels + 2)[1:-1])[:, :3]
            colours = tuple(tuple(int(v) for v in row) for row in np.round(rgb * 255))
        table = _cache[key] = torch.tensor(((0, 0, 0), *colours), dtype=torch.uint8, device=dev)
    return table


def render_rgb(obs: torch.Tensor, cell: int = 1) -> torch.Tensor:
    """``obs [B, 10, 10, C]`` (bool, or 0/1 of any dtype) -> ``[B, 10 * cell, 10 * cell, 3]`` uint8 frames, each grid
    cell a ``cell x cell`` block in the colour of its highest channel (minatar's rendering)."""
    if not isinstance(obs, torch.Tensor) or obs.dim() != 4 or obs.shape[1:3] != (10, 10):
        shape = tuple(obs.shape) if isinstance(obs, torch.Tensor) else type(obs).__name__
        raise ValueError(f"render_rgb: obs has shape {shape}, expected [B, 10, 10, C]")
    if isinstance(cell, bool) or not isinstance(cell, int) or cell < 1:
        raise ValueError(f"render_rgb: cell={cell!r}, expected a positive int")
    c = obs.shape[3]
    weights = torch.arange(1, c + 1, dtype=torch.int64, device=obs.device)
    index = ((obs != 0).long() * weights).amax(dim=3)  # [B, 10, 10]
    frames = palette(c, obs.device)[index]  # [B, 10, 10, 3]
    if cell > 1:
        frames = frames.repeat_interleave(cell, dim=1).repeat_interleave(cell, dim=2)
    return frames
