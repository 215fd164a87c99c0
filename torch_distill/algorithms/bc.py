"""Behaviour cloning for a whole population in one vmapped computation.

``bc_train`` trains ``N`` policies (flat parameters ``[N, num_params]``) on ``N`` datasets at once:
``torch.vmap(torch.func.grad(loss))`` gives per-member gradients, per-member global-norm clipping and a functional
Adam update the whole batch -- there is no Python loop over members. Full-batch training, as the HaDES reference:
- discrete actions: cross-entropy to integer labels, or soft cross-entropy to learned label logits;
- continuous actions: Gaussian negative log-likelihood with the learnable state-independent ``log_std``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor
from torch.func import grad

from torch_distill.es.optim import adam_init, adam_update
from torch_distill.policies import PolicyNet

__all__ = ["BCConfig", "bc_loss", "bc_train"]


@dataclass(frozen=True)
class BCConfig:
    """Hyperparameters of the inner behaviour-cloning loop.

    Attributes:
        steps: full-batch Adam steps.
        lr: Adam learning rate.
        eps: Adam epsilon (the reference uses 1e-5).
        beta1: Adam beta1.
        beta2: Adam beta2.
        max_grad_norm: per-member global gradient-norm clip; 0 disables clipping.
    """

    steps: int = 32
    lr: float = 0.03
    eps: float = 1e-5
    beta1: float = 0.9
    beta2: float = 0.999
    max_grad_norm: float = 0.5

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"bc steps={self.steps}: expected a non-negative integer")
        if not self.lr > 0:
            raise ValueError(f"bc lr={self.lr}: expected a positive number")
        if self.max_grad_norm < 0:
            raise ValueError(f"max_grad_norm={self.max_grad_norm}: expected >= 0 (0 disables clipping)")

    def to_json(self) -> dict:
        return dict(self.__dict__)


def bc_loss(net: PolicyNet, flat: Tensor, states: Tensor, actions: Tensor) -> Tensor:
    """BC loss of ONE policy on ONE dataset.

    Args:
        flat: ``[num_params]`` policy parameters.
        states: ``[D, obs_dim]`` (normalised) states.
        actions: int64 ``[D]`` labels, float ``[D, n_actions]`` label logits, or float ``[D, action_dim]`` targets.
    """
    out = net.forward(flat, states)
    if net.discrete:
        logp = torch.log_softmax(out, dim=-1)
        if actions.dtype in (torch.int64, torch.int32):
            return -torch.take_along_dim(logp, actions.long().unsqueeze(-1), dim=-1).mean()
        return -(torch.softmax(actions, dim=-1) * logp).sum(-1).mean()
    log_std = net.log_std(flat)
    z = (actions - out) * torch.exp(-log_std)
    return (0.5 * z * z + log_std).sum(-1).mean()


CPU_CHUNK_PARAMS = 2**22  # 4M parameters (16 MB) per vmapped chunk on CPU


def auto_chunk_size(num_params: int, n: int, device: torch.device) -> int:
    """Members per vmapped chunk: all of them on GPUs; on CPUs as many as keep ~4M parameters per chunk.

    Measured (1 thread, D=4, 8 Adam steps): 64 policies of width 512 took 7.3 s as one vmapped batch, 1.5 s in
    chunks of 16 and 1.9 s one by one -- a chunk's parameters, gradients and Adam moments must stay in cache --
    while for width 64 the whole population in one batch stays fastest (256 policies: 0.08 s vs 0.19 s in 16s).
    """
    if device.type != "cpu":
        return n
    return max(1, min(n, CPU_CHUNK_PARAMS // max(1, num_params)))


def bc_train(net: PolicyNet, params: Tensor, states: Tensor, actions: Tensor, config: BCConfig,
             chunk_size: int | None = None) -> Tensor:
    """Train ``N`` policies by full-batch BC, vmapped over members.

    Args:
        net: policy architecture.
        params: ``[N, num_params]`` initial parameters.
        states: ``[N, D, obs_dim]`` datasets' states (one dataset per policy).
        actions: ``[N, D]`` int labels, or ``[N, D, k]`` float label logits / continuous targets.
        config: BC hyperparameters.
        chunk_size: members per vmapped computation (default :func:`auto_chunk_size`); results do not depend on it.

    Returns:
        ``[N, num_params]`` trained parameters.
    """
    if states.dim() != 3 or states.shape[0] != params.shape[0]:
        raise ValueError(f"states must be [N, D, obs_dim] with N = {params.shape[0]}, got {tuple(states.shape)}")
    if actions.shape[:2] != states.shape[:2]:
        raise ValueError(f"actions {tuple(actions.shape)} do not match states {tuple(states.shape)} in [N, D]")
    n = params.shape[0]
    chunk = chunk_size or auto_chunk_size(params.shape[1], n, params.device)
    if chunk < n:
        return torch.cat([bc_train(net, params[i : i + chunk], states[i : i + chunk], actions[i : i + chunk], config, chunk)
                          for i in range(0, n, chunk)])
    grad_fn = torch.vmap(grad(partial(bc_loss, net)))
    opt = adam_init(params)
    for _ in range(config.steps):
        g = grad_fn(params, states, actions)
        if config.max_grad_norm > 0:
            norm = torch.linalg.vector_norm(g, dim=-1, keepdim=True)
            g = g * torch.clamp(config.max_grad_norm / (norm + 1e-6), max=1.0)
        delta, opt = adam_update(g, opt, config.lr, beta1=config.beta1, beta2=config.beta2, eps=config.eps)
        params = params - delta
    return params
