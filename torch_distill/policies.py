"""MLP and small-CNN policies and populations of them as flat parameter vectors.

A population is a batch dimension, not a Python list: parameters live in one flat tensor ``[N, num_params]`` (N =
population members x initialisations): for ``arch="cnn"`` first the convolution (``conv.weight [C_out, C_in, k, k]``
as ``torch.nn.Conv2d`` stores it, then ``conv.bias [C_out]``), then the :class:`~torch_distill.nets.FlatMLP` layout
(per layer ``W [in, out]`` then ``b [out]``), then, for continuous actions, ``log_std [action_dim]``.
:meth:`PolicyNet.unflatten` views it as a ``{name: tensor}`` dict. The forward pass is batched over the leading dims
(matmuls; the members' convolutions as one grouped ``conv2d``, ``groups = N``) and runs unchanged under
``torch.vmap``. The same flat vector is the genome of the direct-ES (neuroevolution) baseline.

The CNN (``arch="cnn"``) is the MinAtar agents' network (Young & Tian 2019: conv 16 3x3 SAME -> relu -> flatten ->
dense 128 -> head): it reshapes the flat observation ``[..., H * W * C]`` into the ``[H, W, C]`` grid (channels
fastest, the order of :class:`~torch_distill.envs.wrappers.FlatMinAtarObs`), convolves, flattens ``[C_out, H, W]``
and feeds the dense layers ``hidden``.

Initialisation follows the HaDES reference (Lupu et al. 2024): orthogonal weights with gain sqrt(2) on hidden
layers and 0.01 on the output layer, zero biases, and for continuous actions a state-independent learnable
``log_std`` initialised at 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from torch_distill.envs.core import EnvSpec
from torch_distill.nets import ACTIVATIONS, FlatMLP, orthogonalize

__all__ = ["PolicyConfig", "PolicyNet", "parse_hidden", "image_shape_for", "INIT_SCHEMES", "ARCHS"]

_ACTIVATIONS = ("relu", "tanh", "elu", "gelu")
INIT_SCHEMES = ("orthogonal", "torch")  # PolicyConfig.init
ARCHS = ("mlp", "cnn")  # PolicyConfig.arch


def image_shape_for(spec: EnvSpec) -> tuple[int, int, int]:
    """The ``(H, W, C)`` grid of an env's observations, for CNN policies: the env's own 3-d ``obs_shape``, or for
    the flattened MinAtar ids (``[100 * C]`` floats of :class:`~torch_distill.envs.wrappers.FlatMinAtarObs`)
    ``(10, 10, C)``. Raises ``ValueError`` naming the env when neither applies (pass ``image_shape`` then)."""
    if len(spec.obs_shape) == 3:
        return (int(spec.obs_shape[0]), int(spec.obs_shape[1]), int(spec.obs_shape[2]))
    if "minatar" in spec.env_id.lower() and spec.obs_dim % 100 == 0:
        return (10, 10, spec.obs_dim // 100)
    raise ValueError(f"{spec.env_id}: observations of shape {tuple(spec.obs_shape)} are not an image grid; a CNN "
                     "policy needs image_shape=(H, W, C) with H * W * C = obs_dim")


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
        arch: ``"mlp"`` (the flat observation into the dense layers) or ``"cnn"`` (one SAME convolution with
            ``channels`` filters of ``kernel x kernel`` and the activation on the ``image_shape`` grid, flattened
            into the dense layers ``hidden``).
        channels: CNN: convolution output channels (MinAtar's agents: 16).
        kernel: CNN: odd square kernel size (MinAtar's agents: 3).
        image_shape: CNN: ``(H, W, C)`` grid of the flat observation (channels fastest); None derives it from the
            env (:func:`image_shape_for`). Ignored by MLPs.
    """

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    log_std_init: float = 0.0
    init: str = "orthogonal"
    arch: str = "mlp"
    channels: int = 16
    kernel: int = 3
    image_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r}: expected one of {list(_ACTIVATIONS)}")
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"init={self.init!r}: expected one of {list(INIT_SCHEMES)}")
        if self.arch not in ARCHS:
            raise ValueError(f"arch={self.arch!r}: expected one of {list(ARCHS)}")
        if not isinstance(self.channels, int) or self.channels < 1:
            raise ValueError(f"channels={self.channels!r}: expected a positive integer")
        if not isinstance(self.kernel, int) or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel={self.kernel!r}: expected a positive odd integer (SAME padding)")
        if self.image_shape is not None:
            shape = tuple(int(v) for v in self.image_shape)
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError(f"image_shape={self.image_shape!r}: expected (H, W, C) positive integers")
            object.__setattr__(self, "image_shape", shape)
        object.__setattr__(self, "hidden", parse_hidden(self.hidden))

    def to_json(self) -> dict:
        out = {"hidden": list(self.hidden), "activation": self.activation, "log_std_init": self.log_std_init,
               "init": self.init, "arch": self.arch}
        if self.arch == "cnn":
            out.update(channels=self.channels, kernel=self.kernel,
                       image_shape=list(self.image_shape) if self.image_shape is not None else None)
        return out

    @classmethod
    def from_json(cls, rec: dict | None) -> "PolicyConfig":
        """Inverse of :meth:`to_json`; missing entries take the defaults (a record without ``arch`` is an MLP, as
        every dataset written before CNN policies existed), an unknown ``init`` is ``"orthogonal"``."""
        rec = rec or {}
        init = rec.get("init", "orthogonal")
        shape = rec.get("image_shape")
        return cls(tuple(rec.get("hidden", (64, 64))), rec.get("activation", "relu"),
                   float(rec.get("log_std_init", 0.0)), init if init in INIT_SCHEMES else "orthogonal",
                   rec.get("arch", "mlp"), int(rec.get("channels", 16)), int(rec.get("kernel", 3)),
                   tuple(shape) if shape is not None else None)


class PolicyNet:
    """A policy architecture for one env, with helpers for populations of flat parameter vectors.

    Discrete action spaces get a categorical policy (logits ``[..., n_actions]``); continuous ones a Gaussian with
    mean ``[..., action_dim]`` and a learnable state-independent ``log_std``. ``arch="cnn"`` puts one convolution
    on the observation grid ``image_shape`` (``(H, W, C)``) before the dense layers.
    """

    def __init__(self, spec: EnvSpec, config: PolicyConfig = PolicyConfig()) -> None:
        self.spec = spec
        self.config = config
        self.discrete = spec.discrete
        self.image_shape: tuple[int, int, int] | None = None
        self.names: list[str] = []
        self.shapes: list[torch.Size] = []
        in_dim = spec.obs_dim
        if config.arch == "cnn":
            self.image_shape = config.image_shape or image_shape_for(spec)
            h, w, c = self.image_shape
            if h * w * c != spec.obs_dim:
                raise ValueError(f"image_shape={self.image_shape}: H * W * C = {h * w * c}, but {spec.env_id} has "
                                 f"obs_dim {spec.obs_dim}")
            k = config.kernel
            self.names += ["conv.weight", "conv.bias"]
            self.shapes += [torch.Size((config.channels, c, k, k)), torch.Size((config.channels,))]
            in_dim = config.channels * h * w
        self.mlp = FlatMLP([in_dim, *config.hidden, spec.act_dim], config.activation, out_gain=0.01,
                           hidden_gain=math.sqrt(2.0))
        for i in range(len(self.mlp.sizes) - 1):
            self.names += [f"layers.{i}.weight", f"layers.{i}.bias"]
            self.shapes += [torch.Size((self.mlp.sizes[i], self.mlp.sizes[i + 1])), torch.Size((self.mlp.sizes[i + 1],))]
        self.num_net_chunks = len(self.names)
        """Chunks of the network proper (conv, dense layers); ``log_std`` follows for Gaussian policies."""
        if not spec.discrete:
            self.names.append("log_std")
            self.shapes.append(torch.Size((spec.action_dim,)))
        self.numels = [math.prod(s) for s in self.shapes]
        self.num_params = sum(self.numels)
        self.net_params = sum(self.numels[: self.num_net_chunks])

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
        zero biases, each weight drawn as ``nn.init.orthogonal_`` draws a PyTorch ``[out, in]`` weight (a
        convolution's ``[C_out, C_in * k * k]``, gain sqrt(2)), then stored as ``W [in, out]`` (dense) or
        ``[C_out, C_in, k, k]`` (conv). ``"torch"``: ``nn.Linear`` / ``nn.Conv2d``'s default, weights and biases
        ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
        device = torch.device(device) if device is not None else generator.device
        sizes = self.mlp.sizes
        layers: list[tuple[int, int, float, bool]] = []  # (fan_in, fan_out, orthogonal gain, stored as [in, out])
        if self.image_shape is not None:
            c, k = self.image_shape[2], self.config.kernel
            layers.append((c * k * k, self.config.channels, self.mlp.hidden_gain, False))
        for i in range(len(sizes) - 1):
            layers.append((sizes[i], sizes[i + 1], self.mlp.hidden_gain if i < len(sizes) - 2 else self.mlp.out_gain,
                           True))
        parts: list[Tensor] = []
        for fan_in, fan_out, gain, dense in layers:
            if self.config.init == "torch":
                bound = 1.0 / math.sqrt(fan_in)
                u = torch.rand((n, fan_in * fan_out + fan_out), generator=generator, device=generator.device).to(device)
                parts.append(u.mul_(2 * bound).sub_(bound))
                continue
            a = torch.randn((n, max(fan_in, fan_out), min(fan_in, fan_out)), generator=generator,
                            device=generator.device).to(device)
            w = orthogonalize(a, fan_out, fan_in, gain)  # [n, out, in]
            if dense:
                w = w.transpose(-2, -1)
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
        return self.forward_chunks(torch.split(flat, self.numels, dim=-1), obs)

    def forward_chunks(self, chunks: Sequence[Tensor], obs: Tensor) -> Tensor:
        """:meth:`forward` on the flat vector already split by ``torch.split(flat, self.numels, -1)`` (chunks
        ``[*L, numel]``; a trailing ``log_std`` chunk is ignored): behaviour cloning trains the chunks as separate
        leaves (:func:`~torch_distill.algorithms.bc.bc_train`)."""
        if self.image_shape is None:
            return self.mlp.forward_chunks(chunks[: self.num_net_chunks], obs)
        x = self._conv(chunks[0], chunks[1], obs)
        return self.mlp.forward_chunks(chunks[2 : self.num_net_chunks], x)

    def _conv(self, weight: Tensor, bias: Tensor, obs: Tensor) -> Tensor:
        """The members' convolutions as one grouped ``conv2d`` (``groups = N``, N = the product of the leading dims;
        measured on one CPU thread at N = 64, 16 images of 10x10x4: about 2x faster than unfold + batched matmul,
        forward and backward): ``weight [*L, C_out * C_in * k * k]``, ``bias [*L, C_out]``, ``obs [*L, B, H * W *
        C]`` -> activated feature maps ``[*L, B, C_out * H * W]`` (flattened channel-major, as ``nn.Flatten`` of an
        ``NCHW`` output)."""
        h, w, c = self.image_shape  # type: ignore[misc]
        co, k = self.config.channels, self.config.kernel
        lead = torch.broadcast_shapes(weight.shape[:-1], obs.shape[:-2])
        bsz = obs.shape[-2]
        n = math.prod(lead)
        x = obs.expand(*lead, bsz, obs.shape[-1]).reshape(n, bsz, h, w, c).permute(1, 0, 4, 2, 3)
        x = x.reshape(bsz, n * c, h, w)
        wt = weight.expand(*lead, weight.shape[-1]).reshape(n * co, c, k, k)
        b = bias.expand(*lead, co).reshape(n * co)
        y = ACTIVATIONS[self.config.activation](F.conv2d(x, wt, b, padding=k // 2, groups=n))  # [B, N * C_out, H, W]
        return y.reshape(bsz, n, co * h * w).transpose(0, 1).reshape(*lead, bsz, co * h * w)

    def batched_forward(self, flat: Tensor, obs: Tensor) -> Tensor:
        """``flat [N, num_params]``, ``obs [N, B, obs_dim]`` -> ``[N, B, act_dim]``."""
        return self.forward(flat, obs)

    def log_std(self, flat: Tensor) -> Tensor:
        """State-independent log std ``[..., action_dim]`` of a Gaussian policy."""
        if self.discrete:
            raise ValueError(f"{self.spec.env_id}: a categorical policy has no log_std")
        return flat[..., self.net_params :]
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
