"""Reward networks: :class:`RewardNetworkEnv` (``"reward"``), a real env's dynamics with a learned reward.

Ferreira et al.'s reward networks (ICLR 2022, their ``RewardEnv``): the real env's dynamics, termination, time
limit and initial states (its native torch env) with a learned reward. ``potential=True``: a state network ``Phi``
and the potential-based shaping (Ng, Harada & Russell 1999) ``F = gamma Phi(s') - Phi(s)`` with ``Phi(s') = 0``
when the step terminated; ``potential=False``: an MLP over ``[s, action encoding]`` (the brief's choice; the
reference's non-potential variant scores ``s'`` only). ``mode="exclusive"`` replaces the real reward by the learned
one, ``"additive"`` adds it (reference CartPole default: potential, additive, 2 x 64 LeakyReLU, gamma 0.99).
``gamma`` is part of the env (use the agent's discount for the policy invariance of the shaping). Init as the
MDP's::

    genome = [ potential (obs_dim -> *hidden -> 1) ]          # potential=True
    genome = [ reward (obs_dim + act_in -> *hidden -> 1) ]    # potential=False

CartPole (hidden (64, 64)): potential ``4*64+64 + 64*64+64 + 64+1 = 4545``; non-potential ``4673``. ``s'`` is the
observation BEFORE the auto-reset: a real env with the public ``transition`` and ``observation`` methods (the
classic-control envs, :mod:`torch_distill.envs.classic_control`) is stepped through them, so ``Phi(s')`` is exact
on truncation too; for other native envs the wrapper only sees ``step`` (whose auto-reset hides the pre-reset
observation of rows that ended), and a truncated step uses ``Phi(s') = 0`` like a terminated one (documented
approximation). Genome, params and common random numbers: :mod:`torch_distill.envs.synthetic.base`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from torch_distill.envs.core import EnvSpec, FunctionalEnv
from torch_distill.envs.synthetic.base import (
    SyntheticEnvBase,
    SyntheticEnvParams,
    choice,
    hidden_tuple,
    real_parts,
    where_rows,
)
from torch_distill.nets import FlatMLP

__all__ = ["RewardNetState", "RewardNetworkEnv"]


class RewardNetState(NamedTuple):
    """Reward-network env state: the real env's state ``real`` (its own ``NamedTuple``) and its current observation
    ``obs [B, obs_dim]`` float32 (the reward networks' input ``s``)."""

    real: Any
    obs: Tensor


class RewardNetworkEnv(SyntheticEnvBase):
    """The real env's dynamics with a learned reward (Ferreira et al. 2022's reward networks; module docstring).

    Args:
        real_env: the real native :class:`FunctionalEnv` (e.g. ``make_native("CartPole-v1")``), run with its
            default params. Envs with public ``transition``/``observation`` (classic control) give the exact
            pre-reset ``s'`` for the potential (:attr:`exact_next_obs`).
        gamma: discount of the potential-based shaping ``gamma Phi(s') - Phi(s)`` (reference: the agent's 0.99).
        mode: ``"exclusive"`` (the learned reward replaces the real one) or ``"additive"`` (added to it).
        potential: potential-based (a state network ``Phi``) or not (an MLP over ``[s, action encoding]``).
        hidden: hidden widths (reference CartPole: ``(64, 64)``).
        activation: hidden activation (reference CartPole: ``"leaky_relu"``).
        clip_actions: clip continuous actions to the real env's bounds before the reward network sees them (the
            real env gets the raw action, as it would without the reward network).
        genome: optional ``[G]`` genome (a loaded env carries its own).
        crn_period: common random numbers (:mod:`torch_distill.envs.synthetic.base`): the real env's initial states
            are drawn ``crn_period`` at a time and tiled, in ``reset`` and in ``reset_done``.
    """

    kind = "reward"
    file_prefix = "RewardNet"
    format_version = 2
    init_scheme = "torch_linear"

    def __init__(
        self,
        real_env: FunctionalEnv,
        gamma: float = 0.99,
        mode: str = "additive",
        potential: bool = True,
        hidden: Sequence[int] = (64, 64),
        activation: str = "leaky_relu",
        clip_actions: bool = True,
        genome: Tensor | None = None,
        crn_period: int | None = None,
    ) -> None:
        real, real_spec = real_parts(real_env, "RewardNetworkEnv", need_env=True)
        self._check_real_spec(real_spec, "RewardNetworkEnv")
        self.real_env: FunctionalEnv = real  # type: ignore[assignment]
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"gamma={gamma!r}: expected a float in [0, 1]")
        self.gamma = float(gamma)
        self.mode = choice(mode, "mode", ("exclusive", "additive"))
        if not isinstance(potential, bool):
            raise TypeError(f"potential={potential!r}: expected True or False")
        self.potential = potential
        self.hidden = hidden_tuple(hidden)
        self.activation = activation
        self.exact_next_obs = callable(getattr(real, "transition", None)) and callable(getattr(real, "observation", None))
        """Whether the real env is stepped through its ``transition``/``observation`` (exact pre-reset ``s'``)."""
        obs_dim = real_spec.obs_dim
        act_in = real_spec.act_dim
        if potential:
            heads = {"potential": FlatMLP([obs_dim, *self.hidden, 1], activation)}
        else:
            heads = {"reward": FlatMLP([obs_dim + act_in, *self.hidden, 1], activation)}
        spec = dataclasses.replace(real_spec, env_id=f"RewardNet-{real_spec.env_id}")
        self._setup(real_spec, spec, heads, genome, crn_period, clip_actions)

    def _repr_options(self) -> str:
        return (f"mode={self.mode!r}, potential={self.potential}, gamma={self.gamma}, hidden={self.hidden}, "
                f"activation={self.activation!r}")

    # ------------------------------------------------------------------------------------------------ networks
    def potential_of(self, genome: Tensor, obs: Tensor) -> Tensor:
        """``Phi(obs)`` ``[B]`` (``potential=True``)."""
        if not self.potential:
            raise ValueError(f"{self.spec.env_id}: potential_of needs potential=True")
        return self._apply(self.heads["potential"], self.head_params(genome)["potential"], obs.to(torch.float32)).squeeze(-1)

    def learned_reward(self, genome: Tensor, obs: Tensor, action: Tensor, next_obs: Tensor,
                       next_valid: Tensor) -> Tensor:
        """The learned reward ``[B]`` of ``(s = obs, a = action, s' = next_obs)``; ``next_valid [B]`` bool is False
        where ``Phi(s')`` counts as 0 (the step terminated)."""
        if self.potential:
            phi_next = self.potential_of(genome, next_obs)
            phi_next = torch.where(next_valid, phi_next, torch.zeros_like(phi_next))
            return self.gamma * phi_next - self.potential_of(genome, obs)
        x = torch.cat([obs.to(torch.float32), self.action_input(action)], dim=-1)
        return self._apply(self.heads["reward"], self.head_params(genome)["reward"], x).squeeze(-1)

    # ------------------------------------------------------------------------------------------------ contract
    def reset(self, batch_size: int, generator: torch.Generator,
              params: SyntheticEnvParams | None = None) -> tuple[RewardNetState, Tensor]:
        """The real env's reset (``crn_period`` rows at a time, tiled): ``(state, obs [B, obs_dim] float32)``."""
        self._check_reset(batch_size, generator)
        self._params(params, batch_size, generator.device)
        real_state, obs = self._crn_draw(batch_size, lambda n: self.real_env.reset(n, generator))
        obs = obs.to(torch.float32)
        return RewardNetState(real_state, obs), obs

    def transition(self, state: RewardNetState, action: Tensor, generator: torch.Generator,
                   params: SyntheticEnvParams | None = None) -> tuple[RewardNetState, Tensor, Tensor, Tensor, Tensor]:
        """One real-env step with the learned reward, without reset.

        Returns ``(state, obs [B, obs_dim], reward [B] float32, terminated [B] bool, truncated [B] bool)``; the
        flags and the dynamics are the real env's, the reward is the learned one (``exclusive``) or the real one
        plus the learned one (``additive``). Without :attr:`exact_next_obs` the real env's own ``step`` runs (and
        draws), so the state and ``obs`` of rows that ended are already its reset ones.
        """
        obs = state.obs
        batch = obs.shape[0]
        self._check_action(action, batch)
        genome = self._params(params, batch, obs.device)
        real = self.real_env
        if self.exact_next_obs:
            real_state, next_obs, real_reward, terminated, truncated = real.transition(state.real, action, generator)
            next_valid = ~terminated
        else:
            real_state, next_obs, real_reward, terminated, truncated = real.step(state.real, action, generator)
            next_valid = ~(terminated | truncated)  # the pre-reset s' is only known for rows that did not end
        next_obs = next_obs.to(torch.float32)
        learned = self.learned_reward(genome, obs, action, next_obs, next_valid)
        reward = learned if self.mode == "exclusive" else real_reward.to(torch.float32) + learned
        return RewardNetState(real_state, next_obs), next_obs, reward, terminated, truncated

    def reset_done(self, done: Tensor, state: RewardNetState, obs: Tensor | None, generator: torch.Generator,
                   params: SyntheticEnvParams | None = None) -> tuple[RewardNetState, Tensor]:
        """Fresh real-env initial states in the rows where ``done [B]``: ``(state, obs [B, obs_dim])``.

        With :attr:`exact_next_obs` one batch of initial states is drawn (``crn_period`` rows at a time, tiled)
        whatever ``done`` holds. Otherwise the rows that ended were already reset by the real env's ``step`` in
        :meth:`transition`: they are re-drawn only with a ``crn_period`` (to share them), else passed through.
        """
        batch = state.obs.shape[0]
        self._check_done(done, batch)
        self._params(params, batch, state.obs.device)
        real = self.real_env
        if self.exact_next_obs:
            fresh = self._crn_draw(batch, lambda n: real.reset(n, generator)[0])
            real_state = where_rows(done, fresh, state.real)
            new_obs = real.observation(real_state).to(torch.float32)  # type: ignore[attr-defined]
        elif self.crn_period is not None:
            fresh_state, fresh_obs = self._crn_draw(batch, lambda n: real.reset(n, generator))
            real_state = where_rows(done, fresh_state, state.real)
            new_obs = where_rows(done, fresh_obs.to(torch.float32), state.obs)
        else:
            real_state, new_obs = state.real, state.obs
        return RewardNetState(real_state, new_obs), new_obs

    # ------------------------------------------------------------------------------------------------ metadata
    def architecture(self) -> dict[str, Any]:
        return {
            **self._base_architecture(),
            "mode": self.mode,
            "potential": self.potential,
            "gamma": self.gamma,
            "input": "state" if self.potential else "cat(state, action)",
            "layout": self._layout_json(),
        }

    @classmethod
    def from_architecture(cls, real: FunctionalEnv | EnvSpec, arch: dict[str, Any],
                          crn_period: int | None = None) -> RewardNetworkEnv:
        return cls(real, float(arch["gamma"]), arch["mode"], bool(arch["potential"]), tuple(arch["hidden"]),
                   arch["activation"], bool(arch.get("clip_actions", True)), crn_period=crn_period)

    @staticmethod
    def needs_real_env(arch: dict[str, Any]) -> bool:
        return True
