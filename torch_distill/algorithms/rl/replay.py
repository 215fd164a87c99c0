"""Per-member replay buffers as preallocated tensors (the off-policy agents' memory)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """Per-member replay buffers as preallocated tensors ``[M, capacity, ...]``.

    Every member writes the same slots (``n`` transitions per call, ring order), so ``add`` is one slice assignment
    per field and ``sample`` one ``take_along_dim`` with per-member indices ``[M, b]``. ``terminated`` is the
    bootstrap mask of the TD target (a time limit is not a terminal state); ``weight`` scales a transition's loss
    (0: never learned from, for envs that cannot return the observation before their auto-reset).
    """

    def __init__(self, members: int, capacity: int, obs_dim: int, action_shape: tuple[int, ...],
                 action_dtype: torch.dtype, device: torch.device) -> None:
        self.capacity = capacity
        self.obs = torch.zeros(members, capacity, obs_dim, device=device)
        self.next_obs = torch.zeros(members, capacity, obs_dim, device=device)
        self.action = torch.zeros(members, capacity, *action_shape, dtype=action_dtype, device=device)
        self.reward = torch.zeros(members, capacity, device=device)
        self.terminated = torch.zeros(members, capacity, device=device)
        self.weight = torch.zeros(members, capacity, device=device)
        self.pos = 0
        self.size = 0

    def add(self, obs: Tensor, next_obs: Tensor, action: Tensor, reward: Tensor, terminated: Tensor,
            weight: Tensor) -> None:
        """Store ``n`` transitions per member (all ``[M, n, ...]``); ``capacity`` must be a multiple of ``n``."""
        n = obs.shape[1]
        sl = slice(self.pos, self.pos + n)
        self.obs[:, sl] = obs
        self.next_obs[:, sl] = next_obs
        self.action[:, sl] = action
        self.reward[:, sl] = reward
        self.terminated[:, sl] = terminated.float()
        self.weight[:, sl] = weight
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, idx: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Transitions at per-member indices ``idx [M, b]``: (obs, action, reward, next_obs, terminated, weight)."""

        def take(x: Tensor) -> Tensor:
            i = idx.reshape(*idx.shape, *([1] * (x.dim() - 2)))
            return torch.take_along_dim(x, i, dim=1)

        return (take(self.obs), take(self.action), take(self.reward), take(self.next_obs), take(self.terminated),
                take(self.weight))
