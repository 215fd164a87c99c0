"""The inner-agent contract: one :class:`Agent` registry entry per algorithm, and :class:`InnerAlgo`, an agent set up
for one env and budget (its config, hyperparameter space and action functions bound to its networks).

Every agent module (:mod:`~torch_distill.algorithms.rl.ppo`, ``dqn``, ``sac``, ``td3``, ``bandit``) exports its
entry; :data:`torch_distill.algorithms.rl.AGENTS` collects them, so building an inner algorithm is a table lookup.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from torch_distill.algorithms.rl.common import Callback, Logger
from torch_distill.algorithms.rl.hparams import LogUniform, sample_hparams, with_hparams
from torch_distill.envs.core import EnvSpec, FunctionalEnv

__all__ = ["Agent", "InnerAlgo", "InnerOptions", "TrainFn"]

class TrainFn(Protocol):
    """How every agent trains: ``M = num_members`` agents at once, one vectorised population.

    Args:
        config: the agent's config dataclass (per-member hyperparameters as ``[M]`` tensors).
        env: a :class:`~torch_distill.envs.core.FunctionalEnv` with vector observations, run with
            ``M * config.num_envs`` member-major rows.
        env_params: env params for those rows: 0-dim fields (one env for everybody), ``[M * num_envs]`` fields (a
            population of envs, e.g. one synthetic-env genome per member) or ``None`` (the env's defaults).
        generator: the env's randomness (and the agents' keys when ``keys`` is None).
        num_members: ``M``.
        keys: ``[M]`` int64 per-member keys (:func:`~torch_distill.keyed.make_keys`); member ``m``'s initialisation,
            action sampling and minibatch or replay sampling depend only on ``keys[m]``.
        init_params: optional ``[M, P]`` initial values of the returned parameters (default: the init from
            ``keys``; other networks -- critics, targets -- start as the agent documents).
        callback: ``callback(env_steps_per_member, params [M, P])`` at every metrics record (e.g. to evaluate the
            agents on another env during training: learning curves, steps to solve).
        logger: called with host floats every ``config.log_interval`` metrics records (each call syncs).

    Returns:
        ``(params [M, P], metrics)``: the parameters :attr:`Agent.act` takes with the agent's networks, and
        per-member training metrics (``[R, M]`` rows with ``env_steps [R]`` for the RL agents; no host sync).
    """

    def __call__(self, config: Any, env: FunctionalEnv, env_params: Any, generator: torch.Generator,
                 num_members: int, keys: Tensor | None = None, init_params: Tensor | None = None,
                 callback: Callback | None = None,
                 logger: Logger | None = None) -> tuple[Tensor, dict[str, Tensor]]: ...


@dataclass(frozen=True)
class InnerOptions:
    """Search-level options an agent's inner-loop config may read (each agent uses those that concern it).

    Attributes:
        kind: the synthetic env kind trained on (``scb``, ``mdp``, ``reward``): DQN on an MDP or reward env uses
            Ferreira et al.'s DDQN; the best-response learners need ``scb``.
        ppo_epochs, ppo_minibatches: PPO epochs per rollout and minibatches per epoch.
        dqn_train_frequency: DQN iterations per training phase.
        bandit_noise: exploration noise of the best-response learners' sampled actions (0: greedy).
    """

    kind: str = "scb"
    ppo_epochs: int = 10
    ppo_minibatches: int = 10
    dqn_train_frequency: int = 1
    bandit_noise: float = 0.0


@dataclass(frozen=True)
class Agent:
    """One inner algorithm: how to configure, build, train and run it. Every field has the same signature for
    every agent, so callers never branch on the algorithm.

    Attributes:
        name: registry name (``ppo``, ``dqn``, ...).
        title: a few words for messages ("DQN / double DQN").
        action_spaces: the action spaces it can act in (``"discrete"``, ``"continuous"``).
        make_config: ``(spec, inner_steps, hidden, activation, options) -> config``: the inner-loop config of a
            synthetic-env search with ``inner_steps`` env steps per agent (raises for unsupported settings).
        networks: ``(spec, config, device) -> networks``: what :attr:`act`/:attr:`sample` need (the layout that
            :attr:`train` builds for ``config``).
        train: :class:`TrainFn`.
        act: ``(networks, params [M, P], obs [M, B, obs_dim]) -> [M, B] / [M, B, A]`` deterministic actions.
        sample: ``(networks, params, obs, generator) -> actions`` drawn from the policy (one ``[B, ...]`` draw
            shared by the members: common random numbers), or None for a deterministic policy.
        hparam_space: ``(spec, config, options) -> {name: list | LogUniform | Uniform}`` re-sampled every inner
            loop (:func:`~torch_distill.algorithms.rl.hparams.sample_hparams`).
        structural: ``(config, options) -> {"batch_size" | "hidden_scale": LogUniform}`` network-shape
            hyperparameters drawn once per inner loop (equal for every member trained together), or None.
    """

    name: str
    title: str
    action_spaces: tuple[Literal["discrete", "continuous"], ...]
    make_config: Callable[[EnvSpec, int, tuple[int, ...], str, InnerOptions], Any]
    networks: Callable[[EnvSpec, Any, torch.device | str], Any]
    train: TrainFn
    act: Callable[[Any, Tensor, Tensor], Tensor]
    sample: Callable[[Any, Tensor, Tensor, torch.Generator], Tensor] | None
    hparam_space: Callable[[EnvSpec, Any, InnerOptions], dict[str, Any]]
    structural: Callable[[Any, InnerOptions], dict[str, LogUniform] | None] = lambda config, options: None

    def supports(self, spec: EnvSpec) -> bool:
        return ("discrete" if spec.discrete else "continuous") in self.action_spaces

    def setup(self, spec: EnvSpec, inner_steps: int, hidden: tuple[int, ...], activation: str,
              options: InnerOptions | None = None) -> InnerAlgo:
        """This agent as the inner algorithm of a search on ``spec`` (:class:`InnerAlgo`)."""
        options = options or InnerOptions()
        if not self.supports(spec):
            space = "discrete" if spec.discrete else "continuous"
            raise ValueError(f"{spec.env_id}: {self.name} ({self.title}) cannot act in a {space} action space; it "
                             f"needs a {' or '.join(self.action_spaces)} action space")
        config = self.make_config(spec, int(inner_steps), tuple(hidden), activation, options)
        return InnerAlgo(self, spec, config, dict(self.hparam_space(spec, config, options)),
                         self.structural(config, options))


@dataclass
class InnerAlgo:
    """An :class:`Agent` set up for one env: its default config, the hyperparameter space sampled every inner loop
    and the network-shape ranges. Its action functions build the networks of the config the agents were trained
    with, so callers need nothing but the config."""

    agent: Agent
    spec: EnvSpec
    config: Any
    space: dict[str, Any]
    structural: dict[str, LogUniform] | None = None

    @property
    def name(self) -> str:
        return self.agent.name

    @property
    def num_envs(self) -> int:
        return int(self.config.num_envs)

    def train(self, config: Any, env: FunctionalEnv, env_params: Any, generator: torch.Generator, num_members: int,
              keys: Tensor | None = None, init_params: Tensor | None = None, callback: Callback | None = None,
              logger: Logger | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """The agent's :class:`TrainFn`."""
        return self.agent.train(config, env, env_params, generator, num_members, keys, init_params, callback, logger)

    def networks(self, config: Any = None, device: torch.device | str = "cpu") -> Any:
        """The networks of agents trained with ``config`` (default: :attr:`config`) on ``device``."""
        return self.agent.networks(self.spec, self.config if config is None else config, device)

    def act(self, params: Tensor, obs: Tensor, config: Any = None) -> Tensor:
        """Deterministic actions of agents trained with ``config``: ``params [M, P]``, ``obs [M, B, obs_dim]``."""
        return self.agent.act(self.networks(config, params.device), params, obs)

    def policy(self, deterministic: bool, generator: torch.Generator,
               config: Any = None) -> Callable[[Tensor, Tensor], Tensor]:
        """The evaluation action function ``(params, obs) -> actions`` of agents trained with ``config``: the
        deterministic :attr:`Agent.act`, or :attr:`Agent.sample` drawing from ``generator`` (agents whose policy
        is deterministic always act greedily)."""
        nets = self.networks(config, generator.device)
        if deterministic or self.agent.sample is None:
            return functools.partial(self.agent.act, nets)
        return functools.partial(self.agent.sample, nets, generator=generator)

    def to_json(self) -> dict[str, Any]:
        """The config, the sampled hyperparameter space and the sampled network-shape ranges (JSON-able)."""
        def enc(space: Mapping[str, Any] | None) -> dict[str, Any]:
            return {k: ({"dist": type(v).__name__, **asdict(v)} if isinstance(v, LogUniform) else v)
                    for k, v in (space or {}).items()}

        return {"config": dict(asdict(self.config)), "space": enc(self.space), "structural": enc(self.structural)}

    def sample_config(self, num_members: int, generator: torch.Generator,
                      shared: bool) -> tuple[Any, dict[str, Tensor]]:
        """The config with hyperparameters drawn from :attr:`space` (``shared``: one draw for every member)."""
        hp = sample_hparams(self.space, num_members, generator, shared=shared)
        if "lr_actor" in hp:  # one sampled learning rate for every optimiser of the agent
            hp["lr_critic"] = hp["lr_actor"]
            if hasattr(self.config, "lr_alpha"):
                hp["lr_alpha"] = hp["lr_actor"]
        cfg = with_hparams(self.config, hp)
        if self.structural:
            st = sample_hparams(self.structural, 1, generator, shared=True)
            shape: dict[str, Any] = {}
            if "batch_size" in st:
                shape["batch_size"] = max(1, round(float(st["batch_size"][0])))
            if "hidden_scale" in st:
                shape["hidden"] = tuple(max(1, round(h * float(st["hidden_scale"][0]))) for h in self.config.hidden)
            cfg = dataclasses.replace(cfg, **shape)
            hp.update({k: v[:1].expand(num_members) for k, v in st.items()})
        return cfg, hp
