"""CALE: the Continuous Arcade Learning Environment (Farebrother and Castro, 2024) as a ``VecEnv`` backend.

ale-py (>= 0.12; earlier releases map continuous actions wrongly) exposes every Atari game with a continuous
action space: ``gymnasium.make("ALE/Breakout-v5", continuous=True)``. An action is a point of the box
``[0, -pi, 0] .. [1, pi, 1]`` = ``(radius, angle, fire)``: the joystick is ``(r cos(angle), r sin(angle))``, each
axis reads -1 / 0 / +1 against ``continuous_action_threshold`` and fire is ``a[2] > threshold``.

Here a game is the id ``CALE/<Game>-v5`` (``make_vec_env("CALE/Breakout-v5", n)`` or the evaluator's env id), a
batch of ale-py emulators stepped on the host through :class:`~torch_distill.envs.vec.GymnasiumVecEnv`, with
pixel observations (``obs_type`` ``"rgb"`` ``[210, 160, 3]`` or ``"grayscale"`` ``[210, 160]``, as float32 0..255).
The emulator runs on the CPU, one game at a time, so CALE is for **evaluating** continuous-control policies on
pixels, not for ES fitness loops (a generation of HaDES would spend all its time in the emulator).
"""

from __future__ import annotations

from typing import Any

import torch

from torch_distill.envs.vec import GymnasiumVecEnv, UnknownEnvError

__all__ = ["CALE_PREFIX", "CALEVecEnv", "cale_ids", "is_cale_id"]

CALE_PREFIX = "CALE/"
_MIN_ALE = (0, 12)


def is_cale_id(env_id: str) -> bool:
    """True for ids of the form ``CALE/<Game>-v5``."""
    return env_id.startswith(CALE_PREFIX)


def _ale_py() -> Any:
    try:
        import ale_py
    except ImportError as e:
        raise ImportError("CALE envs need ale-py >= 0.12 (pip install 'ale-py>=0.12'; the wheel ships the ROMs)") from e
    version = tuple(int(p) for p in ale_py.__version__.split(".")[:2] if p.isdigit())
    if version < _MIN_ALE:
        raise ImportError(f"CALE envs need ale-py >= 0.12 (continuous actions are mapped wrongly before), found {ale_py.__version__}")
    import gymnasium

    gymnasium.register_envs(ale_py)
    return ale_py


def cale_ids() -> list[str]:
    """Every ``CALE/<Game>-v5`` id of the installed ale-py (empty when ale-py is missing)."""
    try:
        _ale_py()
    except ImportError:
        return []
    import gymnasium

    return sorted(CALE_PREFIX + k[len("ALE/"):] for k in gymnasium.envs.registry if k.startswith("ALE/") and k.endswith("-v5"))


class CALEVecEnv(GymnasiumVecEnv):
    """``num_envs`` CALE games (``CALE/<Game>-v5``) with torch tensors in and out; continuous actions ``[N, 3]``.

    Args:
        env_id: ``CALE/<Game>-v5``, e.g. ``CALE/Breakout-v5``.
        num_envs: number of emulators.
        device: where observations, rewards and flags are returned (the emulators run on the host).
        threshold: ``continuous_action_threshold`` (ale-py's default 0.5).
        obs_type: ``"rgb"`` or ``"grayscale"``.
        frameskip: emulator frames per step (v5's 4).
        repeat_action_probability: sticky actions (v5's 0.25).
        max_steps: time limit in agent steps (default 27000 = v5's 108000 frames at frameskip 4).
        **kwargs: further ``gymnasium.make`` keywords of ale-py.
    """

    def __init__(self, env_id: str, num_envs: int, device: torch.device | str = "cpu", threshold: float = 0.5,
                 obs_type: str = "rgb", frameskip: int = 4, repeat_action_probability: float = 0.25,
                 max_steps: int = 27000, **kwargs: Any):
        if not is_cale_id(env_id):
            raise UnknownEnvError(f"{env_id!r} is not a CALE id: expected {CALE_PREFIX}<Game>-v5, e.g. CALE/Breakout-v5")
        _ale_py()
        import gymnasium

        ale_id = "ALE/" + env_id[len(CALE_PREFIX):]
        if ale_id not in gymnasium.envs.registry:
            raise UnknownEnvError(f"unknown CALE game {env_id!r}: ale-py has no {ale_id!r} (CALE ids: cale_ids())")
        if obs_type not in ("rgb", "grayscale"):
            raise ValueError(f"obs_type={obs_type!r}: expected 'rgb' or 'grayscale' (pixels; RAM is not a CALE face)")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold={threshold}: expected a continuous_action_threshold in [0, 1]")
        if max_steps < 1:
            raise ValueError(f"max_steps={max_steps}: expected a positive time limit")
        super().__init__(ale_id, num_envs, device, continuous=True, continuous_action_threshold=float(threshold),
                         obs_type=obs_type, frameskip=int(frameskip),
                         repeat_action_probability=float(repeat_action_probability),
                         max_num_frames_per_episode=int(max_steps) * int(frameskip), **kwargs)
        self.env_id = env_id
        self.spec = type(self.spec)(**{**self.spec.__dict__, "env_id": env_id, "max_episode_steps": int(max_steps)})
