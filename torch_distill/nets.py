"""The one MLP of torch_distill: parameters as one flat vector, one weight layout, one orthogonal init.

Every network of the library is a :class:`FlatMLP` (or several): the behaviour-cloned policies of HaDES and
direct ES (:class:`torch_distill.policies.PolicyNet`), the inner RL agents' actors and critics, and the networks of
the synthetic envs (whose flat vector is the ES genome). A population is a leading batch dim of the flat vector.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from torch_distill.keyed import fold_in, normal

__all__ = ["ACTIVATIONS", "FlatMLP", "orthogonal", "orthogonalize"]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "elu": torch.nn.functional.elu,
    "gelu": torch.nn.functional.gelu,
    "leaky_relu": torch.nn.functional.leaky_relu,  # negative slope 0.01, as torch.nn.LeakyReLU()
}


class FlatMLP:
    """An MLP whose parameters are one flat vector ``[..., P]`` (layer ``i``: weight ``[in, out]``, bias ``[out]``).

    ``forward(flat, x)`` works batched (``flat [M, P]``, ``x [M, B, in]``; broadcasting matmuls) and unbatched
    under ``torch.vmap`` (``flat [P]``, ``x [B, in]``). Orthogonal init (gain ``hidden_gain`` on hidden layers,
    ``out_gain`` on the last one), zero biases -- the PPO/DQN conventions (Engstrom et al. 2020; CleanRL).

    Args:
        sizes: ``[in, *hidden, out]``.
        activation: relu, tanh, elu or gelu between layers.
        out_gain: orthogonal gain of the last layer.
        final_activation: also apply the activation after the last layer (a torso for several heads).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "tanh",
        out_gain: float = 1.0,
        hidden_gain: float = math.sqrt(2.0),
        final_activation: bool = False,
    ) -> None:
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"FlatMLP sizes={sizes}: expected [in, *hidden, out] with positive widths")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r}: expected one of {sorted(ACTIVATIONS)}")
        self.sizes = sizes
        self.activation = activation
        self.out_gain = float(out_gain)
        self.hidden_gain = float(hidden_gain)
        self.final_activation = final_activation
        self.numels: list[int] = []
        for i in range(len(sizes) - 1):
            self.numels += [sizes[i] * sizes[i + 1], sizes[i + 1]]
        self.num_params = sum(self.numels)

    def layers(self, flat: Tensor) -> list[tuple[Tensor, Tensor]]:
        """``[(W [..., in, out], b [..., out]), ...]`` views of ``flat [..., P]``."""
        if flat.shape[-1] != self.num_params:
            raise ValueError(f"flat parameters have {flat.shape[-1]} entries, expected {self.num_params}")
        lead = flat.shape[:-1]
        chunks = torch.split(flat, self.numels, dim=-1)
        out = []
        for i in range(len(self.sizes) - 1):
            w = chunks[2 * i].reshape(*lead, self.sizes[i], self.sizes[i + 1])
            out.append((w, chunks[2 * i + 1]))
        return out

    def forward(self, flat: Tensor, x: Tensor) -> Tensor:
        """``flat [*L, P]``, ``x [*L, B, in]`` -> ``[*L, B, out]``."""
        if flat.shape[-1] != self.num_params:
            raise ValueError(f"flat parameters have {flat.shape[-1]} entries, expected {self.num_params}")
        return self.forward_chunks(torch.split(flat, self.numels, dim=-1), x)

    def forward_chunks(self, chunks: Sequence[Tensor], x: Tensor) -> Tensor:
        """:meth:`forward` on the flat vector already split by ``torch.split(flat, self.numels, -1)``: weight and
        bias chunks ``[*L, numel]`` alternating. Training on the chunks as separate leaves spares the backward
        pass the concatenation of a flat gradient (a full copy per step)."""
        act = ACTIVATIONS[self.activation]
        lead = chunks[0].shape[:-1]
        n_layers = len(self.sizes) - 1
        for i in range(n_layers):
            w = chunks[2 * i].reshape(*lead, self.sizes[i], self.sizes[i + 1])
            b = chunks[2 * i + 1].unsqueeze(-2)
            x = torch.matmul(x, w) + b
            if i < n_layers - 1 or self.final_activation:
                x = act(x)
        return x

    __call__ = forward

    def init(self, keys: Tensor) -> Tensor:
        """``[M, P]`` parameters, member ``m`` from ``keys[m]`` (orthogonal weights, zero biases)."""
        parts = []
        n_layers = len(self.sizes) - 1
        for i in range(n_layers):
            rows, cols = self.sizes[i], self.sizes[i + 1]
            gain = self.out_gain if i == n_layers - 1 else self.hidden_gain
            parts.append(orthogonal(fold_in(keys, 1000 + i), rows, cols, gain).reshape(keys.shape[0], -1))
            parts.append(torch.zeros(keys.shape[0], cols, device=keys.device))
        return torch.cat(parts, dim=-1)


def orthogonal(keys: Tensor, rows: int, cols: int, gain: float) -> Tensor:
    """``[M, rows, cols]`` matrices with orthonormal rows or columns (as ``nn.init.orthogonal_``) times ``gain``,
    member ``m`` drawn from ``keys[m]``."""
    return orthogonalize(normal(keys, (max(rows, cols), min(rows, cols))), rows, cols, gain)


def orthogonalize(a: Tensor, rows: int, cols: int, gain: float) -> Tensor:
    """The orthogonal init of ``nn.init.orthogonal_`` from its normal draw ``a [M, max(rows, cols), min(rows, cols)]``:
    ``Q`` of ``QR(a)`` with the signs of ``diag(R)``, transposed when ``rows < cols``, times ``gain``:
    ``[M, rows, cols]``."""
    q, r = torch.linalg.qr(a)
    d = torch.diagonal(r, dim1=-2, dim2=-1).sign()
    q = q * torch.where(d == 0, torch.ones_like(d), d).unsqueeze(-2)
    if rows < cols:
        q = q.transpose(-2, -1)
    return gain * q.contiguous()
