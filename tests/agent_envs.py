"""Test helpers shared by the agent test modules."""

from __future__ import annotations

import torch

from torch_distill.envs.classic_control import make_classic_control


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
        s, obs, r, term, trunc = self.inner.step(state, action, generator, params)
        fresh, fobs = self._tile(action.shape[0])
        done = term | trunc
        s = type(s)(*(torch.where(done, f, x) for f, x in zip(fresh, s)))
        return s, torch.where(done.unsqueeze(-1), fobs, obs), r, term, trunc

