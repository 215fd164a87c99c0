"""Synthetic contextual bandits: :class:`SyntheticContextualBandit` (``"scb"``), its observation scaling and the
reward API of the best-response learners (:meth:`~SyntheticContextualBandit.scores`, ``scores_at``, ``head_mu``,
``action_box``).

Liesen et al. 2024, "Discovering Minimal Reinforcement Learning Environments" (arXiv 2406.12589). An episode is ONE
step: ``reset`` draws a latent ``z ~ N(0, I)`` and maps it through the initial-state network to an observation;
``step`` scores the action with the reward network over ``[observation, action]``, terminates every row and
auto-resets it with a fresh latent. Reference: one hidden layer of 32 ReLU units, latent size = obs size; init
LeCun normal (flax ``Dense``)::

    genome = [ initial_state (latent -> *hidden -> obs_dim) | reward (obs_dim + act_in -> *hidden -> 1) ]

CartPole-v1 (hidden 32): ``(4*32 + 32 + 32*4 + 4) + (6*32 + 32 + 32 + 1) = 292 + 257 = 549``, the reference's count.
Option (not the reference's): ``reward_head="quadratic"`` for continuous actions, a reward network over the
observation only whose outputs define a concave quadratic in the action (:class:`SyntheticContextualBandit`).
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

__all__ = ["SCBParams", "SCBState", "SyntheticContextualBandit", "observation_scaling"]

SCBParams = SyntheticEnvParams
"""The SCB's name for :class:`~torch_distill.envs.synthetic.base.SyntheticEnvParams` (same type)."""


class SCBState(NamedTuple):
    """SCB state: the current observation ``[B, obs_dim]`` float32 and ``time [B]`` int64 (0 in every state
    ``reset``/``step`` return: every episode is one step; 1 in the un-reset state of :meth:`transition`)."""

    obs: Tensor
    time: Tensor


# ---------------------------------------------------------------------------------------------------- scaling
def _obs_scaling(loc: Sequence[float] | None, scale: Sequence[float] | None,
                 spec: EnvSpec) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """Checked ``(obs_loc, obs_scale)`` tuples of ``obs_dim`` finite numbers (scales > 0), or ``(None, None)``."""
    if loc is None and scale is None:
        return None, None
    d = spec.obs_dim
    loc = [0.0] * d if loc is None else list(loc)
    scale = [1.0] * d if scale is None else list(scale)
    for name, v in (("obs_loc", loc), ("obs_scale", scale)):
        if len(v) != d or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
            raise ValueError(f"{spec.env_id}: {name}={v!r}, expected {d} finite numbers (one per observation dimension)")
    if not all(x > 0 for x in scale):
        raise ValueError(f"{spec.env_id}: obs_scale={scale!r}, expected positive numbers")
    return tuple(float(x) for x in loc), tuple(float(x) for x in scale)


def observation_scaling(env_id: str, with_bounded: bool = False) -> Any:
    """``(loc, scale)`` mapping the gymnasium observation box of ``env_id`` onto ``[-1, 1]`` per dimension
    (centre and half-width; unbounded dimensions keep ``(0, 1)``). For :class:`SyntheticContextualBandit`'s
    ``obs_loc`` / ``obs_scale``; ``with_bounded`` also returns which dimensions are bounded (``obs_squash``).
    Raises ``ValueError`` for ids gymnasium does not know."""
    import gymnasium
    import numpy as np

    try:
        space = gymnasium.spec(env_id)
    except Exception as exc:  # gymnasium raises its own NameNotFound / VersionNotFound errors
        raise ValueError(f"observation_scaling: {env_id!r} is not a gymnasium env id ({exc})") from None
    env = gymnasium.make(space.id)
    try:
        low = np.asarray(env.observation_space.low, dtype=np.float64).ravel()
        high = np.asarray(env.observation_space.high, dtype=np.float64).ravel()
    finally:
        env.close()
    finite = np.isfinite(low) & np.isfinite(high) & (high > low)
    low, high = np.where(finite, low, -1.0), np.where(finite, high, 1.0)
    loc, scale = (high + low) / 2, (high - low) / 2
    out = tuple(float(x) for x in loc), tuple(float(x) for x in scale)
    return (*out, tuple(bool(x) for x in finite)) if with_bounded else out


# ---------------------------------------------------------------------------------------------------- SCB
class SyntheticContextualBandit(SyntheticEnvBase):
    """A synthetic contextual bandit mirroring a real env's observation and action spaces (module docstring).

    Args:
        real_spec: the real env's :class:`EnvSpec` (or the real env itself; obs dim, action space and bounds are
            copied; the time limit of the synthetic env is 1).
        hidden: hidden widths of both sub-networks (reference: ``(32,)``).
        latent_dim: size of the latent ``z`` (default: ``obs_dim``, as the reference).
        activation: hidden activation (reference: relu).
        genome: optional ``[G]`` genome returned by :meth:`default_params` (a loaded env carries its own).
        latent_period: share latent draws between rows ``r`` and ``r + j * latent_period`` (common random
            numbers across a member-major population; batch sizes must then be multiples of it). Same as
            ``crn_period``.
        clip_actions: clip continuous actions to the real env's bounds before the reward network sees them.
        obs_loc, obs_scale: optional per-dimension observation scaling (``obs_dim`` numbers each; file format 2):
            the initial-state network outputs ``obs_loc + obs_scale * out`` and the reward network sees
            ``(obs - obs_loc) / obs_scale``, so both networks work on unit-scale values even where the real env's
            observations do not (e.g. MountainCar's velocity in ``[-0.07, 0.07]``); see :func:`observation_scaling`.
            Agents still see raw observations. None: no scaling (the reference).
        obs_squash: optional per-dimension flags (needs ``obs_scale``): the initial-state output of a flagged
            dimension goes through ``tanh`` before the scaling, so its contexts stay inside ``obs_loc +- obs_scale``
            (the real observation box) -- agents then train on states like those they meet in the real env.
        crn_period: the name shared with the other kinds for ``latent_period``.
        reward_head: ``"mlp"`` (the reference): the reward network scores ``[observation, action]``.
            ``"quadratic"`` (continuous actions only; file format 3): the reward network maps the observation to
            ``(v, m, c)`` and ``r(s, a) = v - sum_j softplus(c_j) ((a_j - mu_j) / h_j)^2`` with
            ``mu = mid + h * tanh(m)`` (``mid``, ``h``: the action box's centre and half-width) -- a reward with one
            maximum ``mu(s)`` inside the box, so every learner (greedy or gradient-based) finds the same best
            action. The learned part is still a reward network and an initial-state network.
    """

    kind = "scb"
    file_prefix = "SCB"
    format_version = 1
    init_scheme = "lecun_normal"
    _crn_arg = "latent_period"

    def __init__(
        self,
        real_spec: EnvSpec | FunctionalEnv,
        hidden: Sequence[int] = (32,),
        latent_dim: int | None = None,
        activation: str = "relu",
        genome: Tensor | None = None,
        latent_period: int | None = None,
        clip_actions: bool = True,
        *,
        crn_period: int | None = None,
        obs_loc: Sequence[float] | None = None,
        obs_scale: Sequence[float] | None = None,
        obs_squash: Sequence[bool] | None = None,
        reward_head: str = "mlp",
    ) -> None:
        _, real_spec = real_parts(real_spec, "SyntheticContextualBandit", need_env=False)
        self._check_real_spec(real_spec, "SCB")
        self.reward_head = choice(reward_head, "reward_head", ("mlp", "quadratic"))
        if self.reward_head == "quadratic" and real_spec.discrete:
            raise ValueError(f"{real_spec.env_id}: reward_head='quadratic' needs continuous actions, the env has "
                             f"{real_spec.n_actions} discrete ones (use reward_head='mlp')")
        self.obs_loc, self.obs_scale = _obs_scaling(obs_loc, obs_scale, real_spec)
        self.obs_squash: tuple[bool, ...] | None = None
        if obs_squash is not None and any(obs_squash):
            if self.obs_scale is None:
                raise ValueError(f"{real_spec.env_id}: obs_squash needs obs_loc/obs_scale (the box to stay inside)")
            if len(obs_squash) != real_spec.obs_dim or not all(isinstance(x, bool) for x in obs_squash):
                raise ValueError(f"{real_spec.env_id}: obs_squash={obs_squash!r}, expected {real_spec.obs_dim} booleans")
            self.obs_squash = tuple(obs_squash)
        self.format_version = 3 if self.reward_head == "quadratic" else (1 if self.obs_scale is None else 2)
        self._scaling: dict[torch.device, tuple[Tensor, Tensor, Tensor | None]] = {}
        if latent_period is not None and crn_period is not None and latent_period != crn_period:
            raise ValueError(f"latent_period={latent_period!r} and crn_period={crn_period!r}: give one of them")
        self.hidden = hidden_tuple(hidden)
        obs_dim = real_spec.obs_dim
        if latent_dim is not None and (isinstance(latent_dim, bool) or int(latent_dim) < 1):
            raise ValueError(f"latent_dim={latent_dim!r}: expected a positive int")
        self.latent_dim = int(latent_dim) if latent_dim is not None else obs_dim
        self.activation = activation
        spec = dataclasses.replace(real_spec, env_id=f"SCB-{real_spec.env_id}", max_episode_steps=1)
        act_in = real_spec.act_dim
        self.init_net = FlatMLP([self.latent_dim, *self.hidden, obs_dim], activation)
        if self.reward_head == "quadratic":
            self.reward_net = FlatMLP([obs_dim, *self.hidden, 1 + 2 * act_in], activation)
            low, high = real_spec.action_bounds()
            if not bool(torch.isfinite(high - low).all()):
                raise ValueError(f"{real_spec.env_id}: reward_head='quadratic' needs a bounded action box, got "
                                 f"low={real_spec.action_low}, high={real_spec.action_high}")
            self._action_box = real_spec.action_box()
            self._box_cache: dict[torch.device, tuple[Tensor, Tensor]] = {}
        else:
            self.reward_net = FlatMLP([obs_dim + act_in, *self.hidden, 1], activation)
        self._setup(real_spec, spec, {"initial_state": self.init_net, "reward": self.reward_net}, genome,
                    latent_period if latent_period is not None else crn_period, clip_actions)

    def _repr_options(self) -> str:
        head = "" if self.reward_head == "mlp" else f", reward_head={self.reward_head!r}"
        return f"hidden={self.hidden}, latent_dim={self.latent_dim}{head}"

    @property
    def latent_period(self) -> int | None:
        """The SCB's name for :attr:`crn_period`."""
        return self.crn_period

    def with_latent_period(self, latent_period: int | None) -> SyntheticContextualBandit:
        """A copy sharing everything but :attr:`latent_period` (= :meth:`with_crn_period`)."""
        return self.with_crn_period(latent_period)

    # ------------------------------------------------------------------------------------------------ networks
    def split(self, genome: Tensor) -> tuple[Tensor, Tensor]:
        """``(initial-state params [..., Pi], reward params [..., Pr])`` of ``genome [..., G]``."""
        return torch.split(genome, [self.init_net.num_params, self.reward_net.num_params], dim=-1)

    def _loc_scale(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(loc, scale, squash mask or None)`` on ``device`` (made once per device)."""
        if device not in self._scaling:
            mask = None if self.obs_squash is None else torch.tensor(self.obs_squash, device=device)
            self._scaling[device] = (torch.tensor(self.obs_loc, dtype=torch.float32, device=device),
                                     torch.tensor(self.obs_scale, dtype=torch.float32, device=device), mask)
        return self._scaling[device]

    def scale_out(self, out: Tensor) -> Tensor:
        """The initial-state network's output ``[..., obs_dim]`` -> observations (``obs_loc + obs_scale * out``,
        ``tanh(out)`` in the dimensions flagged by ``obs_squash``)."""
        if self.obs_scale is None:
            return out
        loc, scale, mask = self._loc_scale(out.device)
        if mask is not None:
            out = torch.where(mask, torch.tanh(out), out)
        return loc + scale * out

    def scale_in(self, obs: Tensor) -> Tensor:
        """Observations ``[..., obs_dim]`` -> the reward network's input (``(obs - obs_loc) / obs_scale``)."""
        obs = obs.to(torch.float32)
        if self.obs_scale is None:
            return obs
        loc, scale, _ = self._loc_scale(obs.device)
        return (obs - loc) / scale

    def initial_obs(self, genome: Tensor, z: Tensor) -> Tensor:
        """Observations ``[B, obs_dim]`` from latents ``z [B, latent_dim]`` (``genome [G]`` or ``[B, G]``)."""
        return self.scale_out(self._apply(self.init_net, self.split(genome)[0], z))

    def reward(self, genome: Tensor, obs: Tensor, action: Tensor) -> Tensor:
        """Rewards ``[B]`` of ``action`` (``[B]`` int or ``[B, A]`` float) in ``obs [B, obs_dim]``."""
        reward_p = self.split(genome)[1]
        if reward_p.dim() == 1:  # one SCB for every row
            return self.scores_at(reward_p.unsqueeze(0), obs.unsqueeze(0), action.unsqueeze(0))[0]
        return self.scores_at(reward_p, obs.unsqueeze(1), action.unsqueeze(1))[:, 0]  # one SCB per row

    def scores(self, reward_p: Tensor, obs: Tensor, act_in: Tensor) -> Tensor:
        """Rewards ``[M, N, K]`` of ``K`` candidate actions (network inputs ``act_in [K, act_in]``, see
        :meth:`action_input`) in each of ``N`` observations ``obs [M, N, obs_dim]`` of ``M`` SCBs (reward params
        ``[M, Pr]``, the second part of :meth:`split`)."""
        m, n, k = obs.shape[0], obs.shape[1], act_in.shape[0]
        if self.reward_head == "quadratic":
            head = self.reward_net(reward_p, self.scale_in(obs))  # [M, N, 1 + 2A]
            return self._quadratic(head.unsqueeze(2), act_in)
        x = torch.cat([self.scale_in(obs).unsqueeze(2).expand(m, n, k, -1),
                       act_in.expand(m, n, k, -1)], dim=-1).reshape(m, n * k, -1)
        return self.reward_net(reward_p, x).reshape(m, n, k)

    def scores_at(self, reward_p: Tensor, obs: Tensor, action: Tensor) -> Tensor:
        """Rewards ``[M, B]`` of one action per observation (``action [M, B, A]`` float or ``[M, B]`` int,
        ``obs [M, B, obs_dim]``) for ``M`` SCBs (reward params ``[M, Pr]``); differentiable in a float ``action``."""
        act = self.action_input(action)
        if self.reward_head == "quadratic":
            return self._quadratic(self.reward_net(reward_p, self.scale_in(obs)), act)
        return self.reward_net(reward_p, torch.cat([self.scale_in(obs), act], dim=-1)).squeeze(-1)

    def action_box(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(centre, half-width)`` ``[A]`` of the action box on ``device`` (quadratic head; made once per device)."""
        if device not in self._box_cache:
            self._box_cache[device] = tuple(x.to(device) for x in self._action_box)
        return self._box_cache[device]

    def head_mu(self, head: Tensor) -> Tensor:
        """Quadratic head outputs ``[..., 1 + 2A]`` -> the reward's maximiser ``mu = mid + h tanh(m)`` ``[..., A]``."""
        mid, half = self.action_box(head.device)
        return mid + half * torch.tanh(head[..., 1:1 + self.real_spec.action_dim])

    def _quadratic(self, head: Tensor, act: Tensor) -> Tensor:
        """``reward_head="quadratic"``: head outputs ``[..., 1 + 2A]`` and actions ``[..., A]`` -> rewards ``[...]``."""
        half = self.action_box(head.device)[1]
        curvature = torch.nn.functional.softplus(head[..., 1 + self.real_spec.action_dim:])
        return head[..., 0] - (curvature * ((act - self.head_mu(head)) / half) ** 2).sum(-1)

    def best_action(self, genome: Tensor, obs: Tensor) -> Tensor:
        """``reward_head="quadratic"`` only: the reward's maximiser ``mu(s)`` ``[B, A]`` in ``obs [B, obs_dim]``."""
        if self.reward_head != "quadratic":
            raise ValueError(f"best_action needs reward_head='quadratic' (a closed-form maximiser), got {self.reward_head!r}")
        return self.head_mu(self._apply(self.reward_net, self.split(genome)[1], self.scale_in(obs)))

    def _latents(self, batch: int, generator: torch.Generator) -> Tensor:
        return self._crn_draw(batch, lambda n: torch.randn(n, self.latent_dim, generator=generator, device=generator.device))

    # ------------------------------------------------------------------------------------------------ contract
    def reset(self, batch_size: int, generator: torch.Generator,
              params: SyntheticEnvParams | None = None) -> tuple[SCBState, Tensor]:
        """``batch_size`` fresh contexts: ``(state, obs [B, obs_dim] float32)`` (one ``randn`` call)."""
        self._check_reset(batch_size, generator)
        genome = self._params(params, batch_size, generator.device)
        obs = self.initial_obs(genome, self._latents(batch_size, generator))
        return SCBState(obs, torch.zeros(batch_size, dtype=torch.int64, device=obs.device)), obs

    def transition(self, state: SCBState, action: Tensor, generator: torch.Generator,
                   params: SyntheticEnvParams | None = None) -> tuple[SCBState, Tensor, Tensor, Tensor, Tensor]:
        """Reward the action and terminate every row, without reset (no random draw).

        Returns ``(state, obs [B, obs_dim], reward [B] float32, terminated [B] bool (all True), truncated [B] bool
        (all False))``; a bandit has no next state, so the final observation is the context itself (``state.obs``,
        ``time`` 1).
        """
        batch = state.obs.shape[0]
        self._check_action(action, batch)
        genome = self._params(params, batch, state.obs.device)
        reward = self.reward(genome, state.obs, action)
        terminated = torch.ones(batch, dtype=torch.bool, device=state.obs.device)
        return SCBState(state.obs, state.time + 1), state.obs, reward, terminated, torch.zeros_like(terminated)

    def reset_done(self, done: Tensor, state: SCBState, obs: Tensor | None, generator: torch.Generator,
                   params: SyntheticEnvParams | None = None) -> tuple[SCBState, Tensor]:
        """Fresh contexts in the rows where ``done [B]``: ``(state, obs [B, obs_dim])`` (one ``randn`` call for the
        whole batch whatever ``done`` holds; ``step`` resets every row)."""
        batch = state.obs.shape[0]
        self._check_done(done, batch)
        genome = self._params(params, batch, state.obs.device)
        fresh = self.initial_obs(genome, self._latents(batch, generator))
        obs = torch.where(done.unsqueeze(-1), fresh, state.obs)
        return SCBState(obs, torch.where(done, torch.zeros_like(state.time), state.time)), obs

    # ------------------------------------------------------------------------------------------------ metadata
    def architecture(self) -> dict[str, Any]:
        return {
            **self._base_architecture(),
            "latent_dim": self.latent_dim,
            "latent_dist": "normal(0, I)",
            "episode_length": 1,
            "obs_loc": None if self.obs_loc is None else list(self.obs_loc),
            "obs_scale": None if self.obs_scale is None else list(self.obs_scale),
            "obs_squash": None if self.obs_squash is None else list(self.obs_squash),
            "reward_head": self.reward_head,
            "layout": self._layout_json(),
        }

    @classmethod
    def from_architecture(cls, real: FunctionalEnv | EnvSpec, arch: dict[str, Any],
                          crn_period: int | None = None) -> SyntheticContextualBandit:
        return cls(real, tuple(arch["hidden"]), int(arch["latent_dim"]), arch["activation"],
                   latent_period=crn_period, clip_actions=bool(arch.get("clip_actions", True)),
                   obs_loc=arch.get("obs_loc"), obs_scale=arch.get("obs_scale"), obs_squash=arch.get("obs_squash"),
                   reward_head=arch.get("reward_head", "mlp"))

    @staticmethod
    def needs_real_env(arch: dict[str, Any]) -> bool:
        return False
