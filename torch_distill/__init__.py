"""torch_distill: distilling reinforcement learning in PyTorch.

Importing the package registers every native env with gymnasium under ``torch_distill/`` (see
:mod:`torch_distill.envs.gym_registry`).
"""

__version__ = "0.1.0"

from torch_distill.envs.gym_registry import register_envs as _register_envs

_register_envs()
