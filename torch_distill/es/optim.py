"""Functional optimisers for flat parameter vectors (and dicts of tensors).

``torch.optim`` keeps its state inside Python objects and mutates parameters in place, so it cannot run under
``torch.func.vmap`` or be checkpointed as plain tensors. These optimisers are pure functions of tensors:
``delta, state = adam_update(grad, state, lr)`` and the caller applies ``x_new = x - delta``.

The Adam here is the textbook bias-corrected Adam (Kingma & Ba, 2015), identical in formula to evosax's
``Adam`` used by the HaDES reference OpenES (evosax <= 0.1.4, where ``beta1 = 0.99``) and, up to float rounding,
to ``torch.optim.Adam`` without weight decay and without amsgrad.

ClipUp (Toklu et al., 2020, "ClipUp: A Simple and Powerful Optimizer for Distribution-based Policy Evolution";
EvoTorch's ``ClipUp``) is momentum on the *normalised* gradient with a clipped velocity: the step length never
exceeds ``max_speed`` whatever the fitness scale, which is what PGPE uses it for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Union

import torch
from torch import Tensor

__all__ = ["AdamState", "adam_init", "adam_update", "ClipUpState", "clipup_init", "clipup_update"]

TensorOrDict = Union[Tensor, dict[str, Tensor]]


class AdamState(NamedTuple):
    """State of :func:`adam_update`.

    Attributes:
        m: first-moment estimate, shaped like the parameters (a tensor or a dict of tensors).
        v: second-moment estimate, shaped like the parameters.
        t: ``[]`` float32, the number of steps taken so far (float so that ``beta ** t`` stays on the device).
    """

    m: TensorOrDict
    v: TensorOrDict
    t: Tensor


# An AdamState is a tuple of tensors: allow it in ``torch.load(weights_only=True)`` (the default since
# torch 2.6), so ES checkpoints written with ``torch.save(state._asdict())`` load without opting out of it.
torch.serialization.add_safe_globals([AdamState])


def adam_init(x: TensorOrDict) -> AdamState:
    """Zero moments shaped like ``x`` (a tensor ``[...]`` or a dict of tensors) and ``t = 0`` on its device."""
    if isinstance(x, Mapping):
        if len(x) == 0:
            raise ValueError("adam_init: got an empty dict of parameters; expected at least one tensor")
        m = {k: torch.zeros_like(val) for k, val in x.items()}
        v = {k: torch.zeros_like(val) for k, val in x.items()}
        device = next(iter(x.values())).device
    elif isinstance(x, Tensor):
        m, v, device = torch.zeros_like(x), torch.zeros_like(x), x.device
    else:
        raise TypeError(f"adam_init: expected a Tensor or a dict of Tensors, got {type(x).__name__}")
    return AdamState(m=m, v=v, t=torch.zeros((), dtype=torch.float32, device=device))


def _adam_leaf(
    grad: Tensor,
    m: Tensor,
    v: Tensor,
    bc1: Tensor,
    bc2: Tensor,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    eps: float,
) -> tuple[Tensor, Tensor, Tensor]:
    m = beta1 * m + (1.0 - beta1) * grad
    v = beta2 * v + (1.0 - beta2) * grad.square()
    m_hat = m / bc1
    v_hat = v / bc2
    delta = lr * m_hat / (v_hat.sqrt() + eps)
    return delta, m, v


def adam_update(
    grad: TensorOrDict,
    state: AdamState,
    lr: float | Tensor,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[TensorOrDict, AdamState]:
    """One bias-corrected Adam step for a MINIMISATION gradient.

    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``; ``t = t + 1``;
    ``delta = lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``. Apply it as ``x_new = x - delta``
    (for gradient ascent pass ``-grad``).

    Args:
        grad: gradient shaped like the parameters (tensor or dict of tensors with the keys of ``state.m``).
        state: the previous :class:`AdamState`.
        lr: learning rate, a Python float or a ``[]`` tensor (e.g. a decayed rate carried in an ES state).
        beta1, beta2, eps: Adam hyperparameters (the HaDES OpenES uses ``beta1 = 0.99``).

    Returns:
        ``(delta, new_state)``. Pure tensor math: no host synchronisation, usable under ``torch.func.vmap``.
    """
    t = state.t + 1.0
    bc1 = 1.0 - torch.pow(beta1, t)
    bc2 = 1.0 - torch.pow(beta2, t)
    if isinstance(grad, Mapping):
        if not isinstance(state.m, Mapping) or not isinstance(state.v, Mapping) or set(grad) != set(state.m):
            got = sorted(state.m) if isinstance(state.m, Mapping) else type(state.m).__name__
            raise ValueError(f"adam_update: gradient keys {sorted(grad)} do not match the state's keys {got}")
        deltas, ms, vs = {}, {}, {}
        for k, g in grad.items():
            deltas[k], ms[k], vs[k] = _adam_leaf(g, state.m[k], state.v[k], bc1, bc2, lr, beta1, beta2, eps)
        return deltas, AdamState(m=ms, v=vs, t=t)
    delta, m, v = _adam_leaf(grad, state.m, state.v, bc1, bc2, lr, beta1, beta2, eps)  # type: ignore[arg-type]
    return delta, AdamState(m=m, v=v, t=t)


# ------------------------------------------------------------------------------------------------ ClipUp


class ClipUpState(NamedTuple):
    """State of :func:`clipup_update`.

    Attributes:
        velocity: the (minimisation-sense) velocity, shaped like the parameters (a tensor or a dict of tensors).
    """

    velocity: TensorOrDict


torch.serialization.add_safe_globals([ClipUpState])


def _leaves(x: TensorOrDict) -> list[Tensor]:
    return list(x.values()) if isinstance(x, Mapping) else [x]


def _global_norm(x: TensorOrDict) -> Tensor:
    """Euclidean norm over every element of a tensor or of all tensors of a dict. ``[]``."""
    return torch.sqrt(sum(leaf.square().sum() for leaf in _leaves(x)))  # type: ignore[arg-type]


def clipup_init(x: TensorOrDict) -> ClipUpState:
    """Zero velocity shaped like ``x`` (a tensor ``[...]`` or a dict of tensors), on its device."""
    if isinstance(x, Mapping):
        if len(x) == 0:
            raise ValueError("clipup_init: got an empty dict of parameters; expected at least one tensor")
        return ClipUpState(velocity={k: torch.zeros_like(val) for k, val in x.items()})
    if isinstance(x, Tensor):
        return ClipUpState(velocity=torch.zeros_like(x))
    raise TypeError(f"clipup_init: expected a Tensor or a dict of Tensors, got {type(x).__name__}")


def clipup_update(
    grad: TensorOrDict,
    state: ClipUpState,
    lr: float | Tensor,
    max_speed: float | Tensor,
    momentum: float = 0.9,
) -> tuple[TensorOrDict, ClipUpState]:
    """One ClipUp step (Toklu et al., 2020, Alg. 1; EvoTorch ``ClipUp``) for a MINIMISATION gradient.

    ``g_hat = g / ||g||`` (0 where ``g == 0``); ``v = momentum * v + lr * g_hat``;
    ``v = v * min(1, max_speed / ||v||)``; ``delta = v``. Apply it as ``x_new = x - delta`` (for ascent pass
    ``-grad``). Norms are global: over every element of a tensor or of all tensors of a dict.

    Args:
        grad: gradient shaped like the parameters (tensor or dict of tensors with the keys of ``state.velocity``).
        state: the previous :class:`ClipUpState`.
        lr: step size ("center learning rate"), a Python float or a ``[]`` tensor.
        max_speed: the largest velocity norm (the paper's recommendation: ``2 * lr``).
        momentum: velocity decay (the paper's and EvoTorch's default 0.9).

    Returns:
        ``(delta, new_state)``. Pure tensor math: no host synchronisation, usable under ``torch.func.vmap``.
    """
    vel = state.velocity
    if isinstance(grad, Mapping) != isinstance(vel, Mapping) or (
        isinstance(grad, Mapping) and set(grad) != set(vel)  # type: ignore[arg-type]
    ):
        got = sorted(vel) if isinstance(vel, Mapping) else type(vel).__name__
        want = sorted(grad) if isinstance(grad, Mapping) else type(grad).__name__
        raise ValueError(f"clipup_update: gradient {want} does not match the state's velocity {got}")
    g_norm = _global_norm(grad)
    inv = torch.where(g_norm > 0, 1.0 / torch.where(g_norm > 0, g_norm, torch.ones_like(g_norm)), 0.0)
    if isinstance(grad, Mapping):
        new = {k: momentum * vel[k] + lr * (g * inv) for k, g in grad.items()}  # type: ignore[index]
    else:
        new = momentum * vel + lr * (grad * inv)  # type: ignore[operator]
    v_norm = _global_norm(new)
    scale = torch.clamp(max_speed / torch.where(v_norm > 0, v_norm, torch.ones_like(v_norm)), max=1.0)
    if isinstance(new, dict):
        new = {k: v * scale for k, v in new.items()}
    else:
        new = new * scale
    return new, ClipUpState(velocity=new)
