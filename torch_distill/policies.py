"""MLP policies and populations of them as flat parameter vectors.

A population is a batch dimension, not a Python list: parameters live in one flat tensor ``[N, num_params]`` (N =
population members x initialisations): the :class:`~torch_distill.nets.FlatMLP` layout (per layer ``W [in, out]``
then ``b [out]``) followed, for continuous actions, by ``log_std [action_dim]``. :meth:`PolicyNet.unflatten` views
it as a ``{name: tensor}`` dict. The forward pass is batched matmuls over the leading dims, and runs unchanged
under ``torch.vmap``. The same flat vector is the genome of the direct-ES (neuroevolution) baseline.

Initialisation follows the HaDES reference (Lupu et al. 2024): orthogonal weights with gain sqrt(2) on hidden
layers and 0.01 on the output layer, zero biases, and for continuous actions a state-independent learnable
``log_std`` initialised at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from torch_distill.envs.core import EnvSpec
from torch_distill.nets import FlatMLP, orthogonalize

__all__ = ["PolicyConfig", "PolicyNet", "parse_hidden", "INIT_SCHEMES"]

_ACTIVATIONS = ("relu", "tanh", "elu", "gelu")
INIT_SCHEMES = ("orthogonal", "torch")  # PolicyConfig.init


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
        init: weight initialisation of :meth:`PolicyNet.init`: ``"orthogonal"`` (the HaDES reference: orthogonal
            weights, gain sqrt(2) hidden and 0.01 output, zero biases) or ``"torch"`` (PyTorch's ``nn.Linear``
            default: weights and biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``).
    """

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    log_std_init: float = 0.0
    init: str = "orthogonal"

    def __post_init__(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r}: expected one of {list(_ACTIVATIONS)}")
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"init={self.init!r}: expected one of {list(INIT_SCHEMES)}")
        object.__setattr__(self, "hidden", parse_hidden(self.hidden))

    def to_json(self) -> dict:
        return {"hidden": list(self.hidden), "activation": self.activation, "log_std_init": self.log_std_init,
                "init": self.init}


class PolicyNet:
    """A policy architecture for one env, with helpers for populations of flat parameter vectors.

    Discrete action spaces get a categorical policy (logits ``[..., n_actions]``); continuous ones a Gaussian with
    mean ``[..., action_dim]`` and a learnable state-independent ``log_std``.
    """

    def __init__(self, spec: EnvSpec, config: PolicyConfig = PolicyConfig()) -> None:
        self.spec = spec
        self.config = config
        self.discrete = spec.discrete
        self.mlp = FlatMLP([spec.obs_dim, *config.hidden, spec.act_dim], config.activation, out_gain=0.01,
                           hidden_gain=math.sqrt(2.0))
        self.names: list[str] = []
        self.shapes: list[torch.Size] = []
        for i in range(len(self.mlp.sizes) - 1):
            self.names += [f"layers.{i}.weight", f"layers.{i}.bias"]
            self.shapes += [torch.Size((self.mlp.sizes[i], self.mlp.sizes[i + 1])), torch.Size((self.mlp.sizes[i + 1],))]
        if not spec.discrete:
            self.names.append("log_std")
            self.shapes.append(torch.Size((spec.action_dim,)))
        self.numels = [math.prod(s) for s in self.shapes]
        self.num_params = sum(self.numels)

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
        """Draw ``n`` independent initialisations ``[n, num_params]`` from ``generator`` with the config's ``init``
        scheme (``log_std = log_std_init``). ``"orthogonal"``: orthogonal weights with the HaDES reference gains and
        zero biases, each weight drawn as ``nn.init.orthogonal_`` draws a PyTorch ``[out, in]`` weight, then stored
        as ``W [in, out]``. ``"torch"``: ``nn.Linear``'s default, weights and biases ``U(-1/sqrt(fan_in),
        1/sqrt(fan_in))``."""
        device = torch.device(device) if device is not None else generator.device
        sizes = self.mlp.sizes
        parts: list[Tensor] = []
        for i in range(len(sizes) - 1):
            fan_in, fan_out = sizes[i], sizes[i + 1]
            if self.config.init == "torch":
                bound = 1.0 / math.sqrt(fan_in)
                u = torch.rand((n, fan_in * fan_out + fan_out), generator=generator, device=generator.device).to(device)
                parts.append(u.mul_(2 * bound).sub_(bound))
                continue
            gain = self.mlp.hidden_gain if i < len(sizes) - 2 else self.mlp.out_gain
            a = torch.randn((n, max(fan_in, fan_out), min(fan_in, fan_out)), generator=generator,
                            device=generator.device).to(device)
            w = orthogonalize(a, fan_out, fan_in, gain).transpose(-2, -1)
            parts += [w.reshape(n, -1), torch.zeros((n, fan_out), device=device)]
        if not self.discrete:
            parts.append(torch.full((n, self.spec.action_dim), self.config.log_std_init, device=device))
        return torch.cat(parts, dim=-1)

    # ---------------------------------------------------------------------------------------------- forward
    def forward(self, flat: Tensor, obs: Tensor) -> Tensor:
        """Network output (logits or Gaussian mean): ``flat [*L, num_params]``, ``obs [*L, B, obs_dim]`` ->
        ``[*L, B, act_dim]`` for any leading dims ``L`` (none for one member; it also runs under ``torch.vmap``)."""
        if flat.shape[-1] != self.num_params:
            raise ValueError(f"flat parameters have {flat.shape[-1]} entries, expected {self.num_params}")
        return self.mlp.forward(flat[..., : self.mlp.num_params], obs)

    def batched_forward(self, flat: Tensor, obs: Tensor) -> Tensor:
        """``flat [N, num_params]``, ``obs [N, B, obs_dim]`` -> ``[N, B, act_dim]``."""
        return self.forward(flat, obs)

    def log_std(self, flat: Tensor) -> Tensor:
        """State-independent log std ``[..., action_dim]`` of a Gaussian policy."""
        if self.discrete:
            raise ValueError(f"{self.spec.env_id}: a categorical policy has no log_std")
        return flat[..., self.mlp.num_params :]

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
