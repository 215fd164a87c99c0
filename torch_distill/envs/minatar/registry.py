"""The MinAtar registry: game name -> :class:`~torch_distill.envs.minatar.base.MinAtarGame` class, ``make`` and
``state_from_minatar``.

Accepted names (``make``):

* ``"Breakout"``, ``"breakout"`` (the class name or minatar's module name): minimal actions;
* ``"MinAtar/Breakout-v1"`` (minimal actions) and ``"MinAtar/Breakout-v0"`` (the 6 full actions), the ids
  ``minatar.gym.register_envs`` gives gymnasium (``use_minimal_action_set`` True / False), sticky actions 0.1;
* ``"MinAtar-Breakout-v1"`` / ``"MinAtar-Breakout-v0"``: the same ids without the namespace slash (how they are
  registered in the native registry and under ``torch_distill/`` in gymnasium, whose ids allow one namespace);
* ``"Breakout-MinAtar"``: gymnax's id. gymnax's MinAtar games have no sticky actions (their ``EnvParams`` hold
  no such field and ``step_env`` applies the action as given) and use the minimal action set, so this id means
  ``sticky_prob=0.0``, minimal actions; ramping and the time limit are gymnax's defaults (True; 1000 steps,
  Freeway 2500), which equal ours.

``SpaceInvaders`` and ``Seaquest`` are registered when their modules can be imported.
"""

from __future__ import annotations

import importlib
from typing import Any, Sequence

import torch

from torch_distill.envs.minatar.asterix import Asterix
from torch_distill.envs.minatar.base import MinAtarEnv, MinAtarGame, MinAtarState
from torch_distill.envs.minatar.breakout import Breakout
from torch_distill.envs.minatar.freeway import Freeway

__all__ = ["MINATAR_GAMES", "make", "registered_ids", "state_from_minatar", "resolve"]


def _games() -> dict[str, type[MinAtarGame]]:
    games: dict[str, type[MinAtarGame]] = {"Asterix": Asterix, "Breakout": Breakout, "Freeway": Freeway}
    for module, cls in (("space_invaders", "SpaceInvaders"), ("seaquest", "Seaquest")):
        try:
            mod = importlib.import_module(f"torch_distill.envs.minatar.{module}")
        except ImportError:
            continue
        game = getattr(mod, cls, None)
        if game is not None:
            games[cls] = game
    return dict(sorted(games.items()))


MINATAR_GAMES: dict[str, type[MinAtarGame]] = _games()
"""Game name (``"Breakout"``) -> its :class:`MinAtarGame` class."""


def registered_ids() -> list[str]:
    """Every id :func:`make` accepts besides the bare game names (see the module docstring)."""
    ids = []
    for name in MINATAR_GAMES:
        ids += [f"MinAtar/{name}-v0", f"MinAtar/{name}-v1", f"MinAtar-{name}-v0", f"MinAtar-{name}-v1",
                f"{name}-MinAtar"]
    return ids


def _known() -> str:
    return ", ".join([*MINATAR_GAMES, *(g.module for g in MINATAR_GAMES.values()), *registered_ids()])


def resolve(name_or_id: str) -> tuple[str, dict[str, Any]]:
    """``(game name, defaults)`` of a name or id, ``defaults`` holding ``env_id`` and, where the id fixes them,
    ``full_actions`` / ``sticky_prob``. Raises :class:`~torch_distill.envs.vec.UnknownEnvError` (a ValueError)."""
    from torch_distill.envs.vec import UnknownEnvError

    if not isinstance(name_or_id, str):
        raise UnknownEnvError(f"MinAtar env {name_or_id!r}: expected a str, one of {_known()}")
    by_module = {g.module: n for n, g in MINATAR_GAMES.items()}
    s = name_or_id
    if s in MINATAR_GAMES:
        return s, {}
    if s in by_module:
        return by_module[s], {}
    for prefix in ("MinAtar/", "MinAtar-"):
        if s.startswith(prefix) and s[-3:] in ("-v0", "-v1"):
            game = s[len(prefix):-3]
            if game in MINATAR_GAMES:
                return game, {"full_actions": s.endswith("-v0"), "env_id": s}
    if s.endswith("-MinAtar") and s[: -len("-MinAtar")] in MINATAR_GAMES:
        return s[: -len("-MinAtar")], {"full_actions": False, "sticky_prob": 0.0, "env_id": s}
    raise UnknownEnvError(f"unknown MinAtar env {name_or_id!r}; known names: {_known()}")


def make(name_or_id: str, full_actions: bool | None = None, **params: Any) -> MinAtarEnv:
    """The native :class:`MinAtarEnv` of a game name or id (see the module docstring).

    Args:
        full_actions: override the action set (default: what the id says; minimal for bare names).
        params: ``sticky_prob``, ``ramping``, ``max_steps`` (the env's default params) or ``env_id``.
    """
    game, defaults = resolve(name_or_id)
    if full_actions is not None:
        defaults["full_actions"] = bool(full_actions)
        if "env_id" in defaults and defaults["env_id"].startswith("MinAtar"):
            defaults["env_id"] = defaults["env_id"][:-1] + ("0" if full_actions else "1")
    unknown = set(params) - {"sticky_prob", "ramping", "max_steps", "env_id"}
    if unknown:
        raise TypeError(f"make({name_or_id!r}): unexpected arguments {sorted(unknown)}; expected sticky_prob, "
                        f"ramping, max_steps, env_id, full_actions")
    defaults.update(params)
    return MinAtarEnv(MINATAR_GAMES[game](), **defaults)


def state_from_minatar(envs: Sequence[Any], t: Sequence[int] | torch.Tensor | None = None,
                       device: torch.device | str = "cpu") -> MinAtarState:
    """The batched :class:`MinAtarState` of live ``minatar.Environment`` objects of one game (game fields,
    ``last_action``, ``t``: 0 unless given)."""
    if len(envs) == 0:
        raise ValueError("state_from_minatar: expected a non-empty list of minatar.Environment objects")
    module = getattr(envs[0], "env_name", None)
    games = {g.module: g for g in MINATAR_GAMES.values()}
    if module not in games:
        raise ValueError(f"state_from_minatar: envs[0] plays {module!r}, expected one of {sorted(games)}")
    return MinAtarEnv(games[module]()).state_from_minatar(envs, t, device)
