"""The inner RL agents: ``M`` agents of one algorithm trained at once as one vectorised population.

Registry: :data:`AGENTS` maps an algorithm name to its :class:`~torch_distill.algorithms.rl.agent.Agent` entry;
every entry has the same fields with the same signatures (``make_config``, ``networks``, ``train``, ``act``,
``sample``, ``hparam_space``, ``structural``), so callers look an algorithm up instead of branching on it.
:func:`make_agent` sets one up as the inner algorithm of a synthetic-env search (:class:`InnerAlgo`).

Modules: :mod:`.ppo`, :mod:`.dqn`, :mod:`.sac`, :mod:`.td3` (also DDPG), :mod:`.bandit` (the SCB best-response
learners) -- one per agent; :mod:`.off_policy` (the one collect / replay / train loop of DQN, SAC and TD3),
:mod:`.common` (member set-up, env steps through time limits, bookkeeping, greedy evaluation), :mod:`.returns`
(GAE, HL-Gauss, two-hot), :mod:`.replay`, :mod:`.hparams` (per-member hyperparameters and their sampling),
:mod:`.solve` (steps to solve a real env).
"""

from __future__ import annotations

from torch_distill.algorithms.rl import bandit, dqn, ppo, sac, td3
from torch_distill.algorithms.rl.agent import Agent, InnerAlgo, InnerOptions
from torch_distill.envs.core import EnvSpec

__all__ = ["AGENTS", "Agent", "InnerAlgo", "InnerOptions", "make_agent"]

AGENTS: dict[str, Agent] = {a.name: a for a in (ppo.AGENT, dqn.AGENT, sac.AGENT, td3.AGENT, td3.DDPG_AGENT,
                                                 bandit.AGENT, bandit.DPG_AGENT, bandit.CRITIC_AGENT)}
"""Every inner agent by name: ppo, dqn, sac, td3, ddpg, and the SCB best-response learners bandit, dpg, critic."""


def make_agent(name: str, spec: EnvSpec, inner_steps: int, hidden: tuple[int, ...], activation: str, *,
               kind: str = "scb", ppo_epochs: int = 10, ppo_minibatches: int = 10, dqn_train_frequency: int = 1,
               bandit_noise: float = 0.0) -> InnerAlgo:
    """Agent ``name`` set up as an inner algorithm on ``spec`` with ``inner_steps`` env steps per agent, hidden
    widths ``hidden`` and activation ``activation`` (the remaining options: :class:`InnerOptions`).

    ``kind="scb"``: the SCB reference's structural settings (PPO: 5 envs x 100 steps, ``ppo_epochs`` epochs,
    ``ppo_minibatches`` minibatches; DQN: dueling, 10 envs, buffer 2000, batch 100, 1000 warm-up steps, hard target
    update every 50 updates; TD3/DDPG: 1 env, batch 100, 1000 warm-up steps; gradient clip 10), scaled down when
    ``inner_steps`` is smaller than the reference's 10k, and its hyperparameter lists. ``kind="mdp"``/``"reward"``
    with ``dqn``: DDQN with Ferreira et al.'s CartPole hyperparameters and their "varied hyperparameters" (lr, batch
    size and hidden width log-uniform in ``[x / 3, 3 x]`` every inner loop). ``bandit``/``dpg``/``critic``: the SCB
    best-response learners (:mod:`~torch_distill.algorithms.rl.bandit`), greedy unless ``bandit_noise > 0``.
    """
    if name not in AGENTS:
        raise ValueError(f"unknown inner algorithm {name!r}; expected one of {list(AGENTS)}")
    options = InnerOptions(kind, ppo_epochs, ppo_minibatches, dqn_train_frequency, bandit_noise)
    return AGENTS[name].setup(spec, inner_steps, hidden, activation, options)
