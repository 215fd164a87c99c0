"""Synthetic MDPs: :class:`SyntheticMDP` (``"mdp"``), a neural model of a real env's dynamics.

Ferreira, Nierhoff, Saelinger & Hutter, "Learning Synthetic Environments and Reward Networks for Reinforcement
Learning", ICLR 2022 (their ``VirtualEnv``). Three heads over ``x = cat(action encoding, state)`` (action first, as
the reference) give the next state (``transition="direct"``, the reference; or ``"delta"``: ``state + output``), a
scalar reward and a scalar done output; the episode terminates when ``done > 0.5`` and is truncated at
``max_episode_steps`` (default: the real env's). Initial states come from the real env's ``reset``
(``initial_state="real"``, the reference) or from a learned initial-state network of a latent ``z ~ N(0, I)`` as
the SCB's (``initial_state="learned"``). Reference CartPole: hidden 83, LeakyReLU (slope 0.01). Init: PyTorch
``nn.Linear``'s distribution (weights and biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, as the reference's
networks)::

    genome = [ transition (act_in + obs_dim -> *hidden -> obs_dim) | reward (... -> 1) | done (... -> 1)
               | initial_state (latent -> *hidden -> obs_dim), only with initial_state="learned" ]

CartPole (hidden 83): each head ``(2+4)*83 + 83 + 83*out + out``: ``917 + 665 + 665 = 2247``. Next states (and
learned initial states) are clamped to ``[-state_clip, state_clip]`` (default 100: far outside every classic-control
observation, but it stops a recurrent network from blowing up to inf over an episode); a step whose next state,
reward or done output is not finite terminates the row (its reward becomes 0) and the row is reset.
Genome, params and common random numbers: :mod:`torch_distill.envs.synthetic.base`.
"""

from __future__ import annotations

import dataclasses
import math
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
)
from torch_distill.nets import FlatMLP

__all__ = ["DONE_THRESHOLD", "SyntheticMDP", "SyntheticMDPState"]

DONE_THRESHOLD = 0.5
"""A synthetic MDP's episode terminates when its done head outputs more than this (Ferreira et al.)."""


class SyntheticMDPState(NamedTuple):
    """Synthetic-MDP state: the current observation ``[B, obs_dim]`` float32 (the state IS the observation) and
    ``time [B]`` int64, steps taken in the current episode."""

    obs: Tensor
    time: Tensor


class SyntheticMDP(SyntheticEnvBase):
    """A neural MDP (Ferreira et al. 2022's synthetic environment) mirroring a real env's spaces (module docstring).

    Args:
        real_env: the real native :class:`FunctionalEnv` (e.g. ``make_native("CartPole-v0")``); its ``reset``
            gives the initial observations with ``initial_state="real"``. With ``initial_state="learned"`` its
            :class:`EnvSpec` is enough.
        hidden: hidden widths of every head (reference CartPole: ``(83,)``; Acrobot ``(167,)``).
        activation: hidden activation (reference CartPole: ``"leaky_relu"``; the reference's Acrobot PReLU has
            learned slopes and is not available).
        transition: ``"direct"`` (the head outputs the next state; reference) or ``"delta"`` (``state + output``).
            Stored as :attr:`transition_mode` (``transition`` is the FunctionalEnv method).
        initial_state: ``"real"`` (initial observations from the real env's reset; reference) or ``"learned"``
            (an initial-state network of ``z ~ N(0, I)``, as the SCB's).
        latent_dim: size of ``z`` with ``initial_state="learned"`` (default ``obs_dim``).
        state_clip: next states (and learned initial states) are clamped to ``[-state_clip, state_clip]``.
        max_episode_steps: time limit (default: the real env's).
        clip_actions: clip continuous actions to the real env's bounds before the networks see them.
        genome: optional ``[G]`` genome (a loaded env carries its own).
        crn_period: common random numbers (:mod:`torch_distill.envs.synthetic.base`).
    """

    kind = "mdp"
    file_prefix = "MDP"
    format_version = 2
    init_scheme = "torch_linear"

    def __init__(
        self,
        real_env: FunctionalEnv | EnvSpec,
        hidden: Sequence[int] = (83,),
        activation: str = "leaky_relu",
        transition: str = "direct",
        initial_state: str = "real",
        latent_dim: int | None = None,
        state_clip: float = 100.0,
        max_episode_steps: int | None = None,
        clip_actions: bool = True,
        genome: Tensor | None = None,
        crn_period: int | None = None,
    ) -> None:
        self.transition_mode = choice(transition, "transition", ("direct", "delta"))
        self.initial_state = choice(initial_state, "initial_state", ("real", "learned"))
        real, real_spec = real_parts(real_env, f"SyntheticMDP(initial_state={initial_state!r})",
                                     need_env=self.initial_state == "real")
        self._check_real_spec(real_spec, "SyntheticMDP")
        self.real_env = real
        self.hidden = hidden_tuple(hidden)
        self.activation = activation
        obs_dim = real_spec.obs_dim
        if self.initial_state == "real":
            if latent_dim is not None:
                raise ValueError(f"latent_dim={latent_dim!r}: only used with initial_state='learned'")
            self.latent_dim: int | None = None
        else:
            if latent_dim is not None and (isinstance(latent_dim, bool) or int(latent_dim) < 1):
                raise ValueError(f"latent_dim={latent_dim!r}: expected a positive int")
            self.latent_dim = int(latent_dim) if latent_dim is not None else obs_dim
        if isinstance(state_clip, bool) or not isinstance(state_clip, (int, float)) or not 0 < float(state_clip) < math.inf:
            raise ValueError(f"state_clip={state_clip!r}: expected a positive finite float")
        self.state_clip = float(state_clip)
        steps = real_spec.max_episode_steps if max_episode_steps is None else max_episode_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"max_episode_steps={max_episode_steps!r}: expected None or a positive int")
        spec = dataclasses.replace(real_spec, env_id=f"SynthMDP-{real_spec.env_id}", max_episode_steps=int(steps))
        act_in = real_spec.act_dim
        x_dim = act_in + obs_dim
        heads = {
            "transition": FlatMLP([x_dim, *self.hidden, obs_dim], activation),
            "reward": FlatMLP([x_dim, *self.hidden, 1], activation),
            "done": FlatMLP([x_dim, *self.hidden, 1], activation),
        }
        if self.initial_state == "learned":
            heads["initial_state"] = FlatMLP([self.latent_dim, *self.hidden, obs_dim], activation)
        self._setup(real_spec, spec, heads, genome, crn_period, clip_actions)

    def _repr_options(self) -> str:
        return (f"hidden={self.hidden}, activation={self.activation!r}, transition={self.transition_mode!r}, "
                f"initial_state={self.initial_state!r}")

    # ------------------------------------------------------------------------------------------------ networks
    def forward(self, genome: Tensor, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The raw model: ``(next_obs [B, obs_dim] (delta applied, not clamped), reward [B], done_out [B])`` for
        ``obs [B, obs_dim]``, ``action`` (``[B]`` int or ``[B, A]`` float), ``genome [G]`` or ``[B, G]``."""
        hp = self.head_params(genome)
        obs = obs.to(torch.float32)
        x = torch.cat([self.action_input(action), obs], dim=-1)
        nxt = self._apply(self.heads["transition"], hp["transition"], x)
        if self.transition_mode == "delta":
            nxt = obs + nxt
        reward = self._apply(self.heads["reward"], hp["reward"], x).squeeze(-1)
        done = self._apply(self.heads["done"], hp["done"], x).squeeze(-1)
        return nxt, reward, done

    def _clip(self, x: Tensor) -> Tensor:
        c = self.state_clip
        return torch.nan_to_num(x, nan=0.0, posinf=c, neginf=-c).clamp(-c, c)

    def initial_obs(self, genome: Tensor, z: Tensor) -> Tensor:
        """Learned initial observations ``[B, obs_dim]`` (clamped) of latents ``z [B, latent_dim]``."""
        if self.initial_state != "learned":
            raise ValueError(f"{self.spec.env_id}: initial_obs needs initial_state='learned', this env uses 'real'")
        return self._clip(self._apply(self.heads["initial_state"], self.head_params(genome)["initial_state"], z))

    def _initial(self, batch: int, generator: torch.Generator, genome: Tensor) -> Tensor:
        if self.initial_state == "real":
            real = self.real_env
            return self._crn_draw(batch, lambda n: real.reset(n, generator)[1]).to(torch.float32)  # type: ignore[union-attr]
        z = self._crn_draw(batch, lambda n: torch.randn(n, self.latent_dim, generator=generator, device=generator.device))
        return self.initial_obs(genome, z)

    # ------------------------------------------------------------------------------------------------ contract
    def reset(self, batch_size: int, generator: torch.Generator,
              params: SyntheticEnvParams | None = None) -> tuple[SyntheticMDPState, Tensor]:
        """``batch_size`` initial observations: ``(state, obs [B, obs_dim] float32)``."""
        self._check_reset(batch_size, generator)
        genome = self._params(params, batch_size, generator.device)
        obs = self._initial(batch_size, generator, genome)
        return SyntheticMDPState(obs, torch.zeros(batch_size, dtype=torch.int64, device=obs.device)), obs

    def transition(self, state: SyntheticMDPState, action: Tensor, generator: torch.Generator,
                   params: SyntheticEnvParams | None = None) -> tuple[SyntheticMDPState, Tensor, Tensor, Tensor, Tensor]:
        """One model step without reset (no random draw).

        ``terminated = done_out > 0.5`` (or a non-finite output), ``truncated = time + 1 >= max_episode_steps``
        (reported alongside ``terminated`` when both happen). Returns ``(state, obs [B, obs_dim], reward [B]
        float32, terminated [B] bool, truncated [B] bool)`` with ``obs`` the clamped next state of every row.
        """
        obs, time = state.obs, state.time
        batch = obs.shape[0]
        self._check_action(action, batch)
        genome = self._params(params, batch, obs.device)
        nxt, reward, done_out = self.forward(genome, obs, action)
        reward_ok = torch.isfinite(reward)
        finite = torch.isfinite(nxt).all(-1) & reward_ok & torch.isfinite(done_out)
        terminated = (done_out > DONE_THRESHOLD) | ~finite
        reward = torch.where(reward_ok, reward, torch.zeros_like(reward))
        time = time + 1
        truncated = time >= self.spec.max_episode_steps
        nxt = self._clip(nxt)
        return SyntheticMDPState(nxt, time), nxt, reward, terminated, truncated

    def reset_done(self, done: Tensor, state: SyntheticMDPState, obs: Tensor | None, generator: torch.Generator,
                   params: SyntheticEnvParams | None = None) -> tuple[SyntheticMDPState, Tensor]:
        """Fresh initial observations in the rows where ``done [B]``: ``(state, obs [B, obs_dim])`` (one batch of
        initial states is drawn whatever ``done`` holds)."""
        batch = state.obs.shape[0]
        self._check_done(done, batch)
        genome = self._params(params, batch, state.obs.device)
        fresh = self._initial(batch, generator, genome)
        obs = torch.where(done.unsqueeze(-1), fresh, state.obs)
        time = torch.where(done, torch.zeros_like(state.time), state.time)
        return SyntheticMDPState(obs, time), obs

    # ------------------------------------------------------------------------------------------------ metadata
    def architecture(self) -> dict[str, Any]:
        return {
            **self._base_architecture(),
            "input": "cat(action, state)",
            "transition": self.transition_mode,
            "initial_state": self.initial_state,
            "latent_dim": self.latent_dim,
            "state_clip": self.state_clip,
            "done_threshold": DONE_THRESHOLD,
            "max_episode_steps": self.spec.max_episode_steps,
            "layout": self._layout_json(),
        }

    @classmethod
    def from_architecture(cls, real: FunctionalEnv | EnvSpec, arch: dict[str, Any],
                          crn_period: int | None = None) -> SyntheticMDP:
        latent = arch.get("latent_dim")
        return cls(real, tuple(arch["hidden"]), arch["activation"], arch["transition"], arch["initial_state"],
                   None if latent is None else int(latent), float(arch["state_clip"]), int(arch["max_episode_steps"]),
                   bool(arch.get("clip_actions", True)), crn_period=crn_period)

    @staticmethod
    def needs_real_env(arch: dict[str, Any]) -> bool:
        return arch.get("initial_state") == "real"
