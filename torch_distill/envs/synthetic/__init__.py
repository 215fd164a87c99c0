"""Learned synthetic environments as natively batched torch envs (the
:class:`~torch_distill.envs.core.FunctionalEnv` contract), and their files.

Three kinds share one interface (:class:`SyntheticEnvBase`): the learned parameters are one flat genome and the env
params are :class:`SyntheticEnvParams` (``genome [G]`` or ``[B, G]``), so a population of synthetic envs is a batch
of params. Modules:

* :mod:`~torch_distill.envs.synthetic.base` -- the base class, genome layout and initialisation, params, common
  random numbers (``with_crn_period``), ``step = transition + reset_done``;
* :mod:`~torch_distill.envs.synthetic.scb` -- ``"scb"``, :class:`SyntheticContextualBandit` (Liesen et al. 2024),
  observation scaling and the reward API of the best-response learners (``scores``, ``scores_at``, ``head_mu``);
* :mod:`~torch_distill.envs.synthetic.mdp` -- ``"mdp"``, :class:`SyntheticMDP` (Ferreira et al. 2022);
* :mod:`~torch_distill.envs.synthetic.reward_net` -- ``"reward"``, :class:`RewardNetworkEnv` (real dynamics,
  learned reward; Ferreira et al. 2022);
* :mod:`~torch_distill.envs.synthetic.files` -- the file format, save/load and the shipped envs by name.
"""

from torch_distill.envs.synthetic.base import SyntheticEnvBase, SyntheticEnvParams
from torch_distill.envs.synthetic.files import (
    FORMAT,
    FORMAT_VERSION,
    KINDS,
    SHIPPED_DIR,
    SyntheticEnv,
    SyntheticEnvFileError,
    load_synthetic_env,
    read_synthetic_env_metadata,
    resolve_synthetic_env,
    save_synthetic_env,
    shipped_synthetic_envs,
)
from torch_distill.envs.synthetic.mdp import (
    DONE_THRESHOLD,
    SyntheticMDP,
    SyntheticMDPState,
)
from torch_distill.envs.synthetic.reward_net import RewardNetState, RewardNetworkEnv
from torch_distill.envs.synthetic.scb import (
    SCBParams,
    SCBState,
    SyntheticContextualBandit,
    observation_scaling,
)

__all__ = [
    "DONE_THRESHOLD",
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "SHIPPED_DIR",
    "RewardNetState",
    "RewardNetworkEnv",
    "SCBParams",
    "SCBState",
    "SyntheticContextualBandit",
    "SyntheticEnv",
    "SyntheticEnvBase",
    "SyntheticEnvFileError",
    "SyntheticEnvParams",
    "SyntheticMDP",
    "SyntheticMDPState",
    "load_synthetic_env",
    "observation_scaling",
    "read_synthetic_env_metadata",
    "resolve_synthetic_env",
    "save_synthetic_env",
    "shipped_synthetic_envs",
]
