"""MLP policies and populations of them as flat parameter vectors.

A population is a batch dimension, not a Python list: parameters live in one flat tensor ``[N, num_params]`` (N =
population members x initialisations), are viewed as a ``{name: tensor}`` dict by :meth:`PolicyNet.unflatten`,
and run through ``torch.func.functional_call`` under ``torch.vmap``. The same flat vector is the genome of the
direct-ES (neuroevolution) baseline.

Initialisation follows the HaDES reference (Lupu et al. 2024): orthogonal weights with gain sqrt(2) on hidden
layers and 0.01 on the output layer, zero biases, and for continuous actions a state-independent learnable
``log_std`` initialised at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from torch_distill.envs.core import EnvSpec

__all__ = ["PolicyConfig", "PolicyNet", "parse_hidden"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}


def parse_hidden(hidden: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """Parse ``"64,64"`` (or a sequence) into a tuple of positive layer widths; ``""`` means no hidden layer."""
    if isinstance(hidden, str):
        parts = [p.strip() for p in hidden.split(",") if p.strip()]
        try:
            widths = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"hidden={hidden!r}: expected comma-separated layer widths such as '64,64'") from None
    else:
        widths = tuple(int(w) for w in hidden)
    if any(w <= 0 for w in widths):
        raise ValueError(f"hidden={hidden!r}: layer widths must be positive integers")
    return widths


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of the policies trained by behaviour cloning (and evolved directly by the ES baseline).

    Attributes:
        hidden: widths of the hidden layers.
        activation: hidden activation, one of relu, tanh, elu, gelu.
        log_std_init: initial value of the state-independent log standard deviation (continuous actions only).
    """

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    log_std_init: float = 0.0

    def __post_init__(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r}: expected one of {sorted(_ACTIVATIONS)}")
        object.__setattr__(self, "hidden", parse_hidden(self.hidden))

    def to_json(self) -> dict:
        return {"hidden": list(self.hidden), "activation": self.activation, "log_std_init": self.log_std_init}


class _MLP(nn.Module):
    def __init__(self, sizes: list[int], activation: str, continuous: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(_ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)
        if continuous:
            self.log_std = nn.Parameter(torch.zeros(sizes[-1]))

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(obs)


class PolicyNet:
    """A policy architecture for one env, with helpers for populations of flat parameter vectors.

    Discrete action spaces get a categorical policy (logits ``[..., n_actions]``); continuous ones a Gaussian with
    mean ``[..., action_dim]`` and a learnable state-independent ``log_std``.
    """

    def __init__(self, spec: EnvSpec, config: PolicyConfig = PolicyConfig()) -> None:
        self.spec = spec
        self.config = config
        self.discrete = spec.discrete
        sizes = [spec.obs_dim, *config.hidden, spec.act_dim]
        # The template module lives on the meta device: only its structure is used.
        with torch.device("meta"):
            self.module = _MLP(sizes, config.activation, continuous=not spec.discrete)
        self.names: list[str] = []
        self.shapes: list[torch.Size] = []
        for name, p in self.module.named_parameters():
            self.names.append(name)
            self.shapes.append(p.shape)
        self.numels = [math.prod(s) for s in self.shapes]
        self.num_params = sum(self.numels)
        self._n_linear = len(sizes) - 1

    # ----------------------------------------------------------------------------------------------- layout
    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """View a flat vector ``[..., num_params]`` as ``{name: [..., *shape]}`` (views, no copies)."""
        if flat.shape[-1] != self.num_params:
            raise ValueError(f"flat parameters have {flat.shape[-1]} entries, expected {self.num_params}")
        lead = flat.shape[:-1]
        chunks = torch.split(flat, self.numels, dim=-1)
        return {n: c.reshape(*lead, *s) for n, c, s in zip(self.names, chunks, self.shapes)}

    def flatten(self, params: dict[str, Tensor]) -> Tensor:
        """Inverse of :meth:`unflatten`: ``{name: [..., *shape]}`` -> ``[..., num_params]``."""
        first = params[self.names[0]]
        lead = first.shape[: first.dim() - len(self.shapes[0])]
        return torch.cat([params[n].reshape(*lead, -1) for n in self.names], dim=-1)

    # ------------------------------------------------------------------------------------------------- init
    def init(self, n: int, generator: torch.Generator, device: torch.device | str | None = None) -> Tensor:
        """Draw ``n`` independent initialisations ``[n, num_params]`` (orthogonal, HaDES reference gains)."""
        device = torch.device(device) if device is not None else generator.device
        out: dict[str, Tensor] = {}
        li = 0
        for name, shape in zip(self.names, self.shapes):
            if name == "log_std":
                out[name] = torch.full((n, *shape), self.config.log_std_init, device=device)
            elif name.endswith("bias"):
                out[name] = torch.zeros((n, *shape), device=device)
            else:
                gain = math.sqrt(2.0) if li < self._n_linear - 1 else 0.01
                out[name] = _orthogonal((n, *shape), gain, generator, device)
                li += 1
        return self.flatten(out)

    # ---------------------------------------------------------------------------------------------- forward
    def forward(self, flat: Tensor, obs: Tensor) -> Tensor:
        """Network output for one member: ``flat [num_params]``, ``obs [B, obs_dim]`` -> ``[B, act_dim]``.

        Vmap it over members: ``torch.vmap(net.forward)(flat [N, P], obs [N, B, obs_dim])``.
        """
        return functional_call(self.module, self.unflatten(flat), (obs,))

    def batched_forward(self, flat: Tensor, obs: Tensor) -> Tensor:
        """``flat [N, num_params]``, ``obs [N, B, obs_dim]`` -> ``[N, B, act_dim]`` via ``torch.vmap``."""
        return torch.vmap(self.forward)(flat, obs)

    def log_std(self, flat: Tensor) -> Tensor:
        """State-independent log std ``[..., action_dim]`` of a Gaussian policy."""
        return self.unflatten(flat)["log_std"]

    def act(self, flat: Tensor, obs: Tensor, noise: Tensor | None) -> Tensor:
        """Actions for a population: ``flat [N, P]``, ``obs [N, B, obs_dim]``.

        ``noise`` (broadcastable to the output) makes sampling reproducible and shareable across members (common
        random numbers): Gumbel noise ``[..., n_actions]`` for categorical policies (``argmax(logits + g)``),
        standard normal ``[..., action_dim]`` for Gaussian ones (``mean + exp(log_std) * eps``). ``None`` acts
        greedily (argmax / mean). Returns int64 ``[N, B]`` or float ``[N, B, action_dim]`` (unclipped).
        """
        out = self.batched_forward(flat, obs)
        if self.discrete:
            if noise is not None:
                out = out + noise
            return out.argmax(-1)
        if noise is None:
            return out
        std = self.log_std(flat).exp().unsqueeze(-2)  # [N, 1, action_dim]
        return out + std * noise


def _orthogonal(shape: tuple[int, ...], gain: float, generator: torch.Generator, device: torch.device) -> Tensor:
    """Batched orthogonal init of ``[n, rows, cols]`` matrices from ``generator`` (as ``nn.init.orthogonal_``)."""
    n, rows, cols = shape
    big, small = max(rows, cols), min(rows, cols)
    a = torch.randn((n, big, small), generator=generator, device=generator.device).to(device)
    q, r = torch.linalg.qr(a)
    d = torch.diagonal(r, dim1=-2, dim2=-1).sign()
    d = torch.where(d == 0, torch.ones_like(d), d)
    q = q * d.unsqueeze(-2)
    if rows < cols:
        q = q.transpose(-2, -1)
    return gain * q.contiguous()
