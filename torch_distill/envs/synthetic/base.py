"""What every synthetic env kind shares: the flat genome, its layout and default initialisation, the params
record, action encoding, checks, common random numbers and the ``step = transition + reset_done`` contract.

The learned parameters of a synthetic env are ONE flat genome; the env params are :class:`SyntheticEnvParams`
holding ``genome [G]`` (one env broadcast over every row) or ``genome [B, G]`` (one env per row), so a population of
synthetic envs is just a batch of params: with a member-major batch of ``n`` rows per member, member ``m``'s rows
carry genome ``m`` (``SyntheticEnvParams(genomes.repeat_interleave(n, 0))``). Every sub-network is an MLP laid out as
:class:`~torch_distill.nets.FlatMLP` (per layer ``W [in, out]`` row-major, then ``b [out]``), and the genome is the
concatenation of the sub-networks in the kind's order (:meth:`~SyntheticEnvBase.layout` names every piece, e.g.
``transition.0.weight``). Discrete actions enter the networks one-hot, continuous ones clipped to the real env's
bounds (``clip_actions=True``) as floats; ``act_in`` is ``n_actions`` or ``action_dim``.

Common random numbers: ``crn_period=k`` (:meth:`~SyntheticEnvBase.with_crn_period`; the SCB's older name is
``latent_period``) makes rows ``r`` and ``r + j k`` get the same random draws: every draw (latents, real-env
initial states) is made for ``k`` rows and tiled, so with ``k`` = rows per member every member of a member-major
population sees identical randomness, and an ``M``-member run equals ``M`` single-member runs with the same
generator seed (batch sizes must be multiples of ``k``). One exception: a reward network over a real env without
the public ``transition``/``observation`` pair calls that env's own ``step``, whose auto-reset draws
batch-size-many states (which are then replaced by the tiled ones); the members still share every initial state,
but the generator stream depends on the batch size, so a population run is not bit-identical to single-member
runs, and randomness inside such an env's dynamics (none in the native envs) would not be shared.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from torch_distill.envs.core import EnvSpec, FunctionalEnv
from torch_distill.nets import FlatMLP

__all__ = ["SyntheticEnvBase", "SyntheticEnvParams"]

StepResult = tuple[Any, Tensor, Tensor, Tensor, Tensor]


class SyntheticEnvParams(NamedTuple):
    """Params of every synthetic env kind: the flat genome, ``[G]`` (one env for every row) or ``[B, G]`` (one env
    per row)."""

    genome: Tensor


# ---------------------------------------------------------------------------------------------------- helpers
def hidden_tuple(hidden: Sequence[int]) -> tuple[int, ...]:
    """``hidden`` as a tuple of positive widths (raises ``ValueError`` naming the bad value)."""
    try:
        out = tuple(int(h) for h in hidden)
    except (TypeError, ValueError):
        raise ValueError(f"hidden={hidden!r}: expected a sequence of positive ints") from None
    if any(h < 1 for h in out):
        raise ValueError(f"hidden={out}: expected positive widths")
    return out


def check_period(value: int | None, name: str) -> int | None:
    """``value`` as None or a positive int (a CRN period)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: expected None or a positive int")
    return int(value)


def choice(value: Any, name: str, options: Sequence[str]) -> str:
    """``value`` if it is one of ``options`` (raises ``ValueError`` listing them)."""
    if value not in options:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(repr(o) for o in options)}")
    return str(value)


def tile(x: Any, reps: int) -> Any:
    """Repeat ``x`` (a tensor ``[k, ...]`` or a (named) tuple of them, nested) ``reps`` times along dim 0."""
    if reps == 1:
        return x
    if isinstance(x, Tensor):
        return x.repeat(reps, *([1] * (x.dim() - 1)))
    if isinstance(x, tuple):
        items = [tile(v, reps) for v in x]
        return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
    return x


def where_rows(mask: Tensor, new: Any, old: Any) -> Any:
    """Row-wise ``where(mask [B], new, old)`` over a tensor or a (nested) ``NamedTuple`` of ``[B, ...]`` tensors."""
    if isinstance(new, Tensor):
        return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old)
    return type(new)(*(where_rows(mask, a, b) for a, b in zip(new, old)))


def real_parts(real: FunctionalEnv | EnvSpec, who: str, need_env: bool) -> tuple[FunctionalEnv | None, EnvSpec]:
    """``(real env or None, real spec)`` from a ``FunctionalEnv`` or an ``EnvSpec``."""
    if isinstance(real, EnvSpec):
        if need_env:
            raise TypeError(f"{who} needs the real env itself (a native FunctionalEnv, e.g. "
                            f"torch_distill.envs.vec.make_native({real.env_id!r})), got its EnvSpec")
        return None, real
    spec = getattr(real, "spec", None)
    if not isinstance(spec, EnvSpec) or not callable(getattr(real, "reset", None)) or not callable(getattr(real, "step", None)):
        raise TypeError(f"{who}: expected the real env as a FunctionalEnv (spec, reset, step) or an EnvSpec, "
                        f"got {type(real).__name__}")
    return real, spec


# ---------------------------------------------------------------------------------------------------- base class
class SyntheticEnvBase:
    """What every synthetic env kind shares: the flat genome and its layout, params handling, default init, action
    encoding and checks, common random numbers, metadata (module docstring).

    Subclasses set ``kind``, ``file_prefix``, ``format_version``, ``init_scheme`` and build their sub-networks with
    :meth:`_setup`; they define ``reset``, ``transition``, ``reset_done``, :meth:`architecture`,
    :meth:`from_architecture` and :meth:`needs_real_env`. ``step`` is ``transition`` followed by ``reset_done`` on
    ``terminated | truncated`` (the FunctionalEnv contract, :func:`~torch_distill.envs.core.step_with_final_obs`).

    Attributes:
        spec: the synthetic env's :class:`EnvSpec` (observation and action spaces of the real env).
        real_spec: the real env's :class:`EnvSpec`.
        heads: the sub-networks in genome order, ``{name: FlatMLP}``.
        num_params: genome size ``G``.
        genome: the carried genome ``[G]`` (a loaded env's) or None.
        crn_period: rows ``r`` and ``r + j * crn_period`` share their random draws (None: independent rows).
    """

    kind: ClassVar[str]
    file_prefix: ClassVar[str]
    format_version: ClassVar[int]
    init_scheme: ClassVar[str]  # "lecun_normal" or "torch_linear"
    _crn_arg: ClassVar[str] = "crn_period"

    spec: EnvSpec
    real_spec: EnvSpec
    heads: dict[str, FlatMLP]
    num_params: int
    genome: Tensor | None
    crn_period: int | None
    clip_actions: bool
    hidden: tuple[int, ...]
    activation: str

    def _setup(self, real_spec: EnvSpec, spec: EnvSpec, heads: dict[str, FlatMLP], genome: Tensor | None,
               crn_period: int | None, clip_actions: bool) -> None:
        self.real_spec = real_spec
        self.spec = spec
        self.heads = heads
        self.num_params = sum(net.num_params for net in heads.values())
        self.crn_period = check_period(crn_period, self._crn_arg)
        self.clip_actions = bool(clip_actions)
        self._bounds: dict[torch.device, tuple[Tensor, Tensor]] = {}
        self._default_cache: dict[torch.device, Tensor] = {}
        self.genome = None if genome is None else self._check_genome_vector(genome)

    @staticmethod
    def _check_real_spec(real_spec: EnvSpec, who: str) -> None:
        if len(real_spec.obs_shape) != 1:
            raise ValueError(f"{real_spec.env_id}: {who} needs vector observations, got obs_shape {real_spec.obs_shape}")

    @property
    def act_in(self) -> int:
        """Width of the networks' action input: ``n_actions`` (one-hot) or ``action_dim``."""
        return self.real_spec.n_actions if self.real_spec.discrete else self.real_spec.action_dim

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.real_spec.env_id}, {self._repr_options()}, {self.num_params} params)"

    def _repr_options(self) -> str:
        return f"hidden={self.hidden}, activation={self.activation!r}"

    # ------------------------------------------------------------------------------------------------ genome
    def _check_genome_vector(self, genome: Tensor) -> Tensor:
        """``genome`` as a detached float32 ``[G]`` tensor (raises ``ValueError`` naming the shape)."""
        if not isinstance(genome, Tensor) or genome.shape != (self.num_params,):
            shape = tuple(genome.shape) if isinstance(genome, Tensor) else type(genome).__name__
            raise ValueError(f"{self.spec.env_id}: genome has shape {shape}, expected ({self.num_params},)")
        return genome.detach().to(torch.float32)

    def layout(self) -> list[tuple[str, tuple[int, ...]]]:
        """``[(name, shape), ...]`` of the genome's pieces in order (``{head}.{i}.weight [in, out]``, ``.bias``)."""
        out: list[tuple[str, tuple[int, ...]]] = []
        for prefix, net in self.heads.items():
            for i in range(len(net.sizes) - 1):
                out += [(f"{prefix}.{i}.weight", (net.sizes[i], net.sizes[i + 1])), (f"{prefix}.{i}.bias", (net.sizes[i + 1],))]
        return out

    def unflatten(self, genome: Tensor) -> dict[str, Tensor]:
        """Named views of ``genome [G]`` following :meth:`layout`."""
        genome = self._check_genome_vector(genome)
        shapes = self.layout()
        chunks = torch.split(genome, [math.prod(s) for _, s in shapes])
        return {name: c.reshape(s) for (name, s), c in zip(shapes, chunks)}

    def head_params(self, genome: Tensor) -> dict[str, Tensor]:
        """``{head: flat params [..., P_head]}`` of ``genome [..., G]`` (views)."""
        chunks = torch.split(genome, [net.num_params for net in self.heads.values()], dim=-1)
        return dict(zip(self.heads, chunks))

    def init_genome(self, generator: torch.Generator, n: int = 1) -> Tensor:
        """``[n, G]`` genomes at the networks' default initialisation (row by row, layer by layer, weight then bias).

        ``init_scheme="lecun_normal"`` (SCB; the reference's flax ``Dense``): weights truncated normal in
        ``[-2, 2]`` std rescaled to std ``1 / sqrt(fan_in)``, zero biases. ``"torch_linear"`` (MDP, reward networks;
        the reference's ``torch.nn.Linear``): weights and biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (the same
        distribution as ``nn.Linear``, not the same numbers).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n={n!r}: expected a positive int")
        dev = generator.device
        rows = []
        for _ in range(n):
            parts = []
            for net in self.heads.values():
                for i in range(len(net.sizes) - 1):
                    fan_in, fan_out = net.sizes[i], net.sizes[i + 1]
                    if self.init_scheme == "lecun_normal":
                        w = torch.empty(fan_in, fan_out, device=dev)
                        # std of the standard normal truncated to [-2, 2] is 0.87962566; flax divides it out
                        torch.nn.init.trunc_normal_(w, 0.0, 1.0, -2.0, 2.0, generator=generator)
                        parts += [(w / 0.87962566103423978 / math.sqrt(fan_in)).reshape(-1), torch.zeros(fan_out, device=dev)]
                    else:
                        bound = 1.0 / math.sqrt(fan_in)
                        w = torch.rand(fan_in * fan_out, generator=generator, device=dev) * (2 * bound) - bound
                        b = torch.rand(fan_out, generator=generator, device=dev) * (2 * bound) - bound
                        parts += [w, b]
            rows.append(torch.cat(parts))
        return torch.stack(rows)

    def default_params(self, device: torch.device | str = "cpu") -> SyntheticEnvParams:
        """The carried genome (a loaded env), else the default initialisation drawn with seed 0; ``[G]``."""
        dev = torch.device(device)
        if self.genome is not None:
            return SyntheticEnvParams(self.genome.to(dev))
        g = self._default_cache.get(dev)
        if g is None:
            g = self._default_cache[dev] = self.init_genome(torch.Generator(device=dev).manual_seed(0))[0]
        return SyntheticEnvParams(g)

    def _params(self, params: SyntheticEnvParams | None, batch: int, device: torch.device) -> Tensor:
        if params is None:
            params = self.default_params(device)
        g = getattr(params, "genome", None)
        if not isinstance(g, Tensor):
            raise TypeError(f"{self.spec.env_id}: params={type(params).__name__}, expected SyntheticEnvParams(genome)")
        if g.shape != (self.num_params,) and g.shape != (batch, self.num_params):
            raise ValueError(f"{self.spec.env_id}: params.genome has shape {tuple(g.shape)}, expected "
                             f"({self.num_params},) or ({batch}, {self.num_params}) for a batch of {batch}")
        return g

    # ------------------------------------------------------------------------------------------------ networks
    @staticmethod
    def _apply(net: FlatMLP, flat: Tensor, x: Tensor) -> Tensor:
        """``flat [P]`` or ``[B, P]``; ``x [B, in]`` -> ``[B, out]``."""
        if flat.dim() == 1:
            return net(flat, x)
        return net(flat, x.unsqueeze(-2)).squeeze(-2)

    def action_input(self, action: Tensor) -> Tensor:
        """The networks' action input ``[B, act_in]``: one-hot (discrete) or (clipped) float (continuous)."""
        if self.spec.discrete:
            return torch.nn.functional.one_hot(action.long(), self.spec.n_actions).to(torch.float32)
        a = action.to(torch.float32)
        if self.clip_actions and self.spec.action_low:
            dev = a.device
            if dev not in self._bounds:
                self._bounds[dev] = self.spec.action_bounds(dev)
            low, high = self._bounds[dev]
            a = torch.maximum(torch.minimum(a, high), low)
        return a

    def _action_encoding(self) -> str:
        return "one_hot" if self.spec.discrete else ("clipped" if self.clip_actions else "raw")

    # ------------------------------------------------------------------------------------------------ checks
    def _check_action(self, action: Tensor, batch: int) -> None:
        if not isinstance(action, Tensor):
            raise TypeError(f"action must be a torch.Tensor, got {type(action).__name__}")
        if self.spec.discrete:
            if action.shape != (batch,) or action.dtype.is_floating_point or action.dtype == torch.bool:
                raise ValueError(f"{self.spec.env_id}: action shape {tuple(action.shape)} dtype {action.dtype}, "
                                 f"expected ({batch},) integer actions")
        elif action.shape != (batch, self.spec.action_dim) or not action.dtype.is_floating_point:
            raise ValueError(f"{self.spec.env_id}: action shape {tuple(action.shape)} dtype {action.dtype}, "
                             f"expected ({batch}, {self.spec.action_dim}) float actions")

    @staticmethod
    def _check_reset(batch_size: int, generator: torch.Generator) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive int")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator={generator!r}: expected a torch.Generator")

    def _check_done(self, done: Tensor, batch: int) -> None:
        if not isinstance(done, Tensor) or done.shape != (batch,) or done.dtype != torch.bool:
            shape = tuple(done.shape) if isinstance(done, Tensor) else type(done).__name__
            raise ValueError(f"{self.spec.env_id}: done has shape {shape}, expected a ({batch},) bool tensor")

    # ------------------------------------------------------------------------------------------------ contract
    def step(self, state: Any, action: Tensor, generator: torch.Generator,
             params: SyntheticEnvParams | None = None) -> StepResult:
        """One step with auto-reset: :meth:`transition`, then :meth:`reset_done` on ``terminated | truncated``.

        Returns ``(state, obs [B, obs_dim] float32, reward [B] float32, terminated [B] bool, truncated [B] bool)``;
        ``state``/``obs`` of rows that ended are fresh initial ones, reward and flags are those of the step.
        """
        nxt, final_obs, reward, terminated, truncated = self.transition(state, action, generator, params)
        state, obs = self.reset_done(terminated | truncated, nxt, final_obs, generator, params)
        return state, obs, reward, terminated, truncated

    def transition(self, state: Any, action: Tensor, generator: torch.Generator,
                   params: SyntheticEnvParams | None = None) -> StepResult:
        """One step without auto-reset: ``(state, obs, reward, terminated, truncated)``, with the state and ``obs``
        of rows that ended their last ones."""
        raise NotImplementedError

    def reset_done(self, done: Tensor, state: Any, obs: Tensor | None, generator: torch.Generator,
                   params: SyntheticEnvParams | None = None) -> tuple[Any, Tensor]:
        """Replace the rows where ``done [B]`` by freshly reset ones: ``(state, obs [B, obs_dim])``. Every kind's
        state carries its observation, so ``obs`` is not needed."""
        raise NotImplementedError

    def observation(self, state: Any) -> Tensor:
        """The observation ``[B, obs_dim]`` float32 of ``state`` (every kind's state carries it)."""
        return state.obs

    # ------------------------------------------------------------------------------------------------ CRN
    def with_crn_period(self, crn_period: int | None) -> Any:
        """A copy sharing everything (genome included) but :attr:`crn_period` (module docstring)."""
        period = check_period(crn_period, self._crn_arg)
        out = copy.copy(self)
        out.crn_period = period
        return out

    def _crn_draw(self, batch: int, draw: Callable[[int], Any]) -> Any:
        """``draw(batch)``, or with a CRN period ``k``: ``draw(k)`` tiled to ``batch`` rows."""
        k = self.crn_period
        if k is None:
            return draw(batch)
        if batch % k:
            raise ValueError(f"{self.spec.env_id}: batch of {batch} rows is not a multiple of {self._crn_arg}={k}")
        return tile(draw(k), batch // k)

    # ------------------------------------------------------------------------------------------------ metadata
    def _base_architecture(self) -> dict[str, Any]:
        return {
            "hidden": list(self.hidden),
            "activation": self.activation,
            "action_encoding": self._action_encoding(),
            "clip_actions": self.clip_actions,
            "init": self.init_scheme,
        }

    def architecture(self) -> dict[str, Any]:
        """JSON-able description with everything :meth:`from_architecture` needs, plus the genome ``layout``."""
        raise NotImplementedError

    def _layout_json(self) -> list[list[Any]]:
        return [[name, list(shape)] for name, shape in self.layout()]

    @classmethod
    def from_architecture(cls, real: FunctionalEnv | EnvSpec, arch: dict[str, Any],
                          crn_period: int | None = None) -> Any:
        """Rebuild an env (without genome) from :meth:`architecture` and the real env (or its spec)."""
        raise NotImplementedError

    @staticmethod
    def needs_real_env(arch: dict[str, Any]) -> bool:
        """Whether the env described by ``arch`` needs the real ``FunctionalEnv`` (not only its spec)."""
        raise NotImplementedError
