"""Shared primitives of the layout generators: uniform integers, cached constants, cell placement and the
generator base classes.
"""

from __future__ import annotations

from typing import Protocol

import torch

from torch_distill.envs.minigrid.core import (
    EMPTY_CELL,
    GOAL_CELL,
    WALL_CELL,
    Layout,
)

__all__ = ["LayoutGenerator", "pick_free", "randint", "uniform_to_int", "wall_rect_grid"]


def randint(high: torch.Tensor | int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform integers in ``[0, high)`` for every row (``high`` an int or ``[B]`` tensor of positive ints).

    Uses float64 uniforms (``floor(u * high)``, exact enough for ``high < 2**20``) so that a per-row ``high``
    costs one draw. Returns ``[B]`` int64 on the generator's device.
    """
    u = torch.rand(batch_size, generator=generator, dtype=torch.float64, device=generator.device)
    return uniform_to_int(u, high)


def uniform_to_int(u: torch.Tensor, high: torch.Tensor | int) -> torch.Tensor:
    """``floor(u * high)`` clamped below ``high`` for float64 uniforms ``u`` in ``[0, 1)``."""
    k = (u * high).long()
    if isinstance(high, int):
        return k.clamp_(max=high - 1)
    return torch.minimum(k, high - 1)


def _split(u: torch.Tensor, high: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
    """A uniform integer ``k < high`` and a fresh uniform from one float64 uniform ``u`` (``k = floor(u *
    high)``, remainder ``u * high - k`` rescaled to ``[0, 1)``; each split costs ``log2(high)`` of 53 bits)."""
    x = u * high
    k = x.floor()
    k = k.clamp(max=high - 1) if isinstance(high, int) else torch.minimum(k, (high - 1).to(x.dtype))
    return k.long(), (x - k).clamp(0.0, 1.0 - 2**-53)


def wall_rect_grid(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[H, W, 3]`` uint8 grid with MiniGrid's ``wall_rect(0, 0, W, H)`` border and empty inside."""
    g = torch.tensor(EMPTY_CELL, dtype=torch.uint8).repeat(height, width, 1)
    wall = torch.tensor(WALL_CELL, dtype=torch.uint8)
    g[0, :] = wall
    g[-1, :] = wall
    g[:, 0] = wall
    g[:, -1] = wall
    return g.to(device)


_CONST: dict[tuple[tuple[int, ...], torch.dtype, str], torch.Tensor] = {}


def _const(values: tuple[int, ...], device: torch.device, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """A cached constant of ``dtype`` (uint8 unless told) on ``device`` (no host-to-device copy inside ``step``)."""
    key = (values, dtype, str(device))
    if key not in _CONST:
        _CONST[key] = torch.tensor(values, dtype=dtype, device=device)
    return _CONST[key]


def _put(grid: torch.Tensor, x: torch.Tensor, y: torch.Tensor, cell: tuple[int, int, int]) -> None:
    """In place: ``grid[b, y[b], x[b]] = cell`` for every row ``b`` of ``grid [B, H, W, 3]``."""
    b = grid.shape[0]
    rows = torch.arange(b, device=grid.device)
    grid[rows, y, x] = _const(cell, grid.device)


def pick_free(free: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index of a uniform True entry of each row of ``free [B, N]`` (the ``floor(u * n)``-th one).

    This is ``place_obj``'s rejection loop in closed form: a uniform cell among the cells it would accept.
    Rows without a True entry return an arbitrary index (callers make that impossible).
    """
    n = free.sum(1)
    k = torch.minimum((u * n).long(), (n - 1).clamp(min=0))
    c = free.long().cumsum(1)
    return (c <= k.unsqueeze(1)).sum(1).clamp(max=free.shape[1] - 1)


def _cells(grid: torch.Tensor) -> torch.Tensor:
    """``[B, H * W]`` object types."""
    return grid[..., 0].flatten(1)


def _xy(idx: torch.Tensor, width: int) -> torch.Tensor:
    return torch.stack([idx % width, idx // width], dim=1)


def _set_flat(grid: torch.Tensor, idx: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """In place: cell ``idx[b]`` (flat ``y * W + x``) of every row set to ``cells [B, 3]`` (or ``[3]``)."""
    b, h, w, _ = grid.shape
    flat = grid.view(b, h * w, 3)
    rows = torch.arange(b, device=grid.device)
    flat[rows, idx] = cells if cells.dim() == 2 else cells.expand(b, 3)
    return grid


class LayoutGenerator(Protocol):
    """What the env needs from a layout generator."""

    height: int
    width: int

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]: ...

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout: ...

    def sample(self, batch_size: int, generator: torch.Generator) -> Layout: ...


class _Base:
    height: int
    width: int

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def build(self, draws: tuple[torch.Tensor, ...]) -> Layout:
        raise NotImplementedError

    def sample(self, batch_size: int, generator: torch.Generator) -> Layout:
        """A batch of ``batch_size`` fresh episodes drawn with ``generator``."""
        return self.build(self.draw(batch_size, generator))


class _UniformBase(_Base):
    """Generators whose draws are ``n_uniforms`` float64 uniforms per env: ``draw -> (u [n, B],)``."""

    n_uniforms: int

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        u = torch.rand(self.n_uniforms, batch_size, generator=generator, dtype=torch.float64, device=generator.device)
        return (u,)

    def base_grid(self, b: int, device: torch.device) -> torch.Tensor:
        key = str(device)
        cache = self.__dict__.setdefault("_tmpl", {})
        if key not in cache:
            cache[key] = self.template().to(device)
        return cache[key].unsqueeze(0).repeat(b, 1, 1, 1)

    def template(self) -> torch.Tensor:
        g = wall_rect_grid(self.height, self.width)
        g[self.height - 2, self.width - 2] = torch.tensor(GOAL_CELL, dtype=torch.uint8)
        return g
