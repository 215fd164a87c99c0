"""Option files of reference set-ups, shipped with the package, for any search's ``--config FILE``.

* ``minatar`` (``minatar.toml``): HaDES on MinAtar as in the paper (Lupu et al. 2024, the reference's MinAtar
  runs): population 2048, D = 16, SNES sigma 0.5 temperature 20, fixed balanced one-hot labels, relu MLP 512x2 on
  the flat observation, 64 full-batch BC steps of Adam lr 0.03 eps 1e-5, no observation normalisation (boolean
  grids), fitness from 8 episodes of at most 1024 steps with sampled actions; ``--variant R`` trains 2 fresh
  inits per candidate (auto ``inits``), HaDES-F 1 fixed init.
* ``minatar-direct-es`` (``minatar_direct_es.toml``): the direct-ES baseline on the same policy and evaluation.

``python -m torch_distill.presets NAME`` prints a preset's path::

    torch-distill hades --config "$(python -m torch_distill.presets minatar)" --env SpaceInvaders-MinAtar

Options given on the command line override the file's.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PRESETS", "preset_path"]

PRESETS: dict[str, str] = {"minatar": "minatar.toml", "minatar-direct-es": "minatar_direct_es.toml"}
"""Preset name -> option file in this folder."""


def preset_path(name: str) -> Path:
    """The option file of preset ``name`` (a ``ValueError`` listing the presets for an unknown name)."""
    if name not in PRESETS:
        raise ValueError(f"preset {name!r}: expected one of {sorted(PRESETS)}")
    return Path(__file__).with_name(PRESETS[name])
