"""Evolution strategies in torch: functional ``init / ask / tell`` over flat ``[P, D]`` populations.

``strategies`` holds OpenES (+ Adam) and SNES as run by HaDES (Lupu et al., ICLR 2024), ``shaping`` the fitness
shaping functions and ``optim`` a functional Adam usable under ``torch.func.vmap``.
"""

from .optim import AdamState, adam_init, adam_update
from .shaping import SHAPING, centered_ranks, nes_utilities, sanitize, snes_weights, z_score
from .strategies import (
    SNES,
    STRATEGIES,
    ESState,
    OpenES,
    OpenESConfig,
    SNESConfig,
    Strategy,
    make_strategy,
)

__all__ = [
    "AdamState",
    "adam_init",
    "adam_update",
    "SHAPING",
    "centered_ranks",
    "nes_utilities",
    "sanitize",
    "snes_weights",
    "z_score",
    "ESState",
    "OpenES",
    "OpenESConfig",
    "SNES",
    "SNESConfig",
    "STRATEGIES",
    "Strategy",
    "make_strategy",
]
