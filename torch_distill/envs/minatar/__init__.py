"""MinAtar (Young & Tian, 2019) natively batched in torch, exact to ``minatar`` 1.0.15.

    from torch_distill.envs.minatar import make
    env = make("MinAtar/Breakout-v1")                  # minimal actions, sticky actions 0.1, ramping on
    gen = torch.Generator().manual_seed(0)
    state, obs = env.reset(4096, gen)                  # obs [B, 10, 10, C] bool
    state, obs, reward, terminated, truncated = env.step(state, action, gen)

Each game is a stateless :class:`~torch_distill.envs.minatar.base.MinAtarGame` (batched ``init`` / ``act`` /
``observation`` over explicit random draws); :class:`~torch_distill.envs.minatar.base.MinAtarEnv` adds minatar's
``Environment`` wrapper (sticky actions with one uniform per row and step, ``last_action`` kept across resets), the
action set, the time limit and the auto-reset of the ``FunctionalEnv`` contract. Given the random numbers minatar's
``RandomState`` draws, the batched games reproduce minatar's observations, rewards and terminal flags step for step.

Modules: ``base`` (actions, params, state, the game contract, ``MinAtarEnv``), ``breakout``, ``freeway``,
``asterix`` (and ``space_invaders``, ``seaquest``), ``registry`` (``MINATAR_GAMES``, ``make``, ids,
``state_from_minatar``), ``render`` (``render_rgb`` in minatar's colours).
"""

from torch_distill.envs.minatar.asterix import Asterix, AsterixDraws, AsterixState
from torch_distill.envs.minatar.base import (
    FULL_ACTIONS,
    MinAtarEnv,
    MinAtarGame,
    MinAtarParams,
    MinAtarState,
)
from torch_distill.envs.minatar.breakout import Breakout, BreakoutState
from torch_distill.envs.minatar.freeway import Freeway, FreewayState
from torch_distill.envs.minatar.registry import (
    MINATAR_GAMES,
    make,
    registered_ids,
    resolve,
    state_from_minatar,
)
from torch_distill.envs.minatar.render import palette, render_rgb

__all__ = [
    "FULL_ACTIONS",
    "MinAtarParams",
    "MinAtarState",
    "MinAtarGame",
    "MinAtarEnv",
    "Asterix",
    "AsterixState",
    "AsterixDraws",
    "Breakout",
    "BreakoutState",
    "Freeway",
    "FreewayState",
    "MINATAR_GAMES",
    "make",
    "registered_ids",
    "resolve",
    "state_from_minatar",
    "palette",
    "render_rgb",
]
