"""Test helpers shared by the agent test modules."""

from __future__ import annotations

import torch

from torch_distill.envs.classic_control import make_classic_control
from torch_distill.envs.synthetic import SyntheticContextualBandit
from torch_distill.envs.vec import make_native


def gen(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


class FixedResets:
    """Test env: a classic-control env whose resets are a fixed table, row ``r`` -> initial state ``r % period``.

    The native envs draw fresh states for the whole batch from one generator, so member ``m``'s resets depend on
    the batch size; with this table they depend only on the row within the member, which makes an ``M``-member run
    comparable with ``M`` single-member runs.
    """

    def __init__(self, env_id: str, period: int, **kwargs) -> None:
        self.inner = make_classic_control(env_id, **kwargs)
        self.spec = self.inner.spec
        self.period = period
        self.init_state, self.init_obs = self.inner.reset(period, torch.Generator().manual_seed(123))

    def default_params(self, device="cpu"):
        return self.inner.default_params(device)

    def _tile(self, batch: int):
        reps = batch // self.period
        return type(self.init_state)(*(f.repeat(reps) for f in self.init_state)), self.init_obs.repeat(reps, 1)

    def reset(self, batch_size, generator, params=None):
        return self._tile(batch_size)

    def step(self, state, action, generator, params=None):
        s, obs, r, term, trunc = self.transition(state, action, generator, params)
        s, obs = self.reset_done(term | trunc, s, obs, generator, params)
        return s, obs, r, term, trunc

    def transition(self, state, action, generator, params=None):
        """One step without auto-reset (the final observations of rows that end)."""
        return self.inner.transition(state, action, generator, params)

    def reset_done(self, done, state, obs, generator, params=None):
        """Rows where ``done`` restart from the table."""
        fresh, fobs = self._tile(done.shape[0])
        s = type(state)(*(torch.where(done, f, x) for f, x in zip(fresh, state)))
        return s, torch.where(done.unsqueeze(-1), fobs, obs)


class NoFinalObs:
    """An env exposing only ``reset``/``step`` (no ``transition``): learners fall back to treating truncation as an
    end without bootstrap."""

    def __init__(self, env) -> None:
        self.env = env
        self.spec = env.spec

    def default_params(self, device="cpu"):
        return self.env.default_params(device)

    def reset(self, batch_size, generator, params=None):
        return self.env.reset(batch_size, generator, params)

    def step(self, state, action, generator, params=None):
        return self.env.step(state, action, generator, params)


def half_s0_scb() -> tuple[SyntheticContextualBandit, torch.Tensor]:
    """Hand-built Pendulum-shaped SCB: contexts ``s = z ~ N(0, I)`` and reward ``-|a - s0 / 2|``."""
    scb = SyntheticContextualBandit(make_native("Pendulum-v1").spec)
    genome = torch.zeros(scb.num_params)
    views = scb.unflatten(genome)
    w = torch.zeros(3, 32)
    for j in range(3):  # hidden j = relu(z_j), hidden j + 3 = relu(-z_j); obs_j = h_j - h_{j+3} = z_j
        w[j, j], w[j, j + 3] = 1.0, -1.0
    views["initial_state.0.weight"].copy_(w)
    w2 = torch.zeros(32, 3)
    for j in range(3):
        w2[j, j], w2[j + 3, j] = 1.0, -1.0
    views["initial_state.1.weight"].copy_(w2)
    r1 = torch.zeros(4, 32)  # input [s0, s1, s2, a]; hidden 0 = relu(a - s0 / 2), hidden 1 = relu(s0 / 2 - a)
    r1[3, 0], r1[0, 0] = 1.0, -0.5
    r1[3, 1], r1[0, 1] = -1.0, 0.5
    views["reward.0.weight"].copy_(r1)
    r2 = torch.zeros(32, 1)
    r2[0, 0] = r2[1, 0] = -1.0
    views["reward.1.weight"].copy_(r2)
    genome = torch.cat([v.flatten() for v in views.values()])
    return scb, genome
