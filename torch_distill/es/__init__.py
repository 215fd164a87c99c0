"""Evolution strategies in torch: functional ``init / ask / tell`` over flat ``[P, D]`` populations.

``strategies`` holds OpenES (+ Adam) and SNES as run by HaDES (Lupu et al., ICLR 2024), plus CMA-ES, Sep-CMA-ES,
PGPE (+ ClipUp), CEM and IPOP restarts; ``shaping`` the fitness shaping functions and ``optim`` a functional Adam
and ClipUp usable under ``torch.func.vmap``.
"""

from .optim import (
    AdamState,
    ClipUpState,
    adam_init,
    adam_update,
    clipup_init,
    clipup_update,
)
from .shaping import (
    SHAPING,
    best_first_order,
    centered_ranks,
    nes_utilities,
    sanitize,
    snes_weights,
    z_score,
)
from .strategies import (
    CEM,
    CMAES,
    IPOP,
    PGPE,
    SNES,
    STRATEGIES,
    CEMConfig,
    CMAESConfig,
    ESState,
    IPOPConfig,
    OpenES,
    OpenESConfig,
    PGPEConfig,
    SepCMAES,
    SepCMAESConfig,
    SNESConfig,
    Strategy,
    make_strategy,
)

__all__ = [
    "AdamState",
    "adam_init",
    "adam_update",
    "ClipUpState",
    "clipup_init",
    "clipup_update",
    "SHAPING",
    "best_first_order",
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
    "CMAES",
    "CMAESConfig",
    "SepCMAES",
    "SepCMAESConfig",
    "PGPE",
    "PGPEConfig",
    "CEM",
    "CEMConfig",
    "IPOP",
    "IPOPConfig",
    "STRATEGIES",
    "Strategy",
    "make_strategy",
]
