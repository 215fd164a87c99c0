"""HaDES: behaviour distillation by evolving a tiny synthetic dataset (Lupu et al., ICLR 2024).

Outer loop: an ES (:mod:`torch_distill.es`) over the flattened dataset ``{states [D, obs_dim], actions}``.
Inner loop: behaviour cloning of fresh policies on each candidate dataset, vmapped over the whole population
(:func:`~torch_distill.algorithms.bc.bc_train`). Fitness: the trained policies' mean episode return on the real
env, with common random numbers across the population (same policy inits, env seeds and action noise).

* HaDES-F: ``inits`` fixed policy initialisations for the whole run (strong inductive bias, best returns).
* HaDES-R: ``inits`` fresh initialisations every generation (datasets transfer to other architectures).

Genome layout ``[states (D * obs_dim) | actions]``; ``actions`` is absent for fixed balanced discrete labels
(``arange(D) % n_actions``), ``D * n_actions`` label logits, or ``D * action_dim`` continuous targets. The genome
starts at zero and is unbounded, as the reference; states live in the normalised observation space.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from torch_distill.algorithms.bc import BCConfig, bc_train
from torch_distill.envs.core import EnvSpec
from torch_distill.evaluation import ObsNormalizer
from torch_distill.io import Dataset, save_dataset
from torch_distill.log import progress_bar
from torch_distill.policies import INIT_SCHEMES, PolicyConfig, PolicyNet, image_shape_for, parse_hidden
from torch_distill.runner import Streams, derive_seed
from torch_distill.evaluation import RealEnvEvaluator
from torch_distill.search import Candidate, ESOptions, Finished, SearchMethod, run_search

__all__ = ["HadesConfig", "HadesProblem", "HadesSearch", "resolve_hades", "run_hades", "evaluate_dataset",
           "decode_genome", "DatasetEvalResult", "recorded_policy", "recorded_bc"]


@dataclass
class HadesConfig(ESOptions):
    """HaDES behaviour distillation. ``auto`` values resolve from the action space (discrete / continuous).

    Defaults for discrete actions follow the reference's CartPole set-up (SNES, sigma 0.5, temperature 20, fixed
    balanced labels, relu MLP 64-64, 32 BC steps of Adam 0.03); for continuous actions the reference's Brax inner
    loop (tanh MLP, Gaussian NLL, Adam 5e-3, clip 0.5) scaled down for CPUs (64-64 hidden, 100 BC steps) with the
    same SNES outer loop (the reference's OpenES + Adam is ``--strategy open_es``).
    """

    env: str = "CartPole-v1"
    """Environment id (native torch, envpool or gymnasium; see ``torch-distill envs``)."""
    variant: Literal["F", "R"] = "F"
    """HaDES-F (fixed policy inits for the whole run) or HaDES-R (fresh inits every generation)."""
    dataset_size: int = 4
    """Number D of synthetic state-action pairs."""
    labels: Literal["auto", "fixed", "logits"] = "auto"
    """Discrete labels: fixed balanced one-hots (auto) or evolved logits. Continuous labels are always evolved."""
    strategy: Literal["auto", "snes", "open_es", "cma_es", "sep_cma_es", "pgpe", "cem"] = "auto"
    """Evolution strategy: auto = SNES (the reference's MinAtar choice; at CPU-sized populations it also beat the
    reference's Brax choice, OpenES + Adam, on Pendulum). open_es = OpenES + Adam(beta1 0.99), sigma 0.03, lr 0.05
    (even popsize). cma_es / sep_cma_es: sigma = initial step size (auto 0.5), es-lr = mean learning rate c_m (auto
    1.0). pgpe (PGPE + ClipUp): sigma = initial stdev (auto 0.1), es-lr = centre learning rate (auto 0.05; max speed
    2 x), even popsize. cem: sigma auto 0.5, es-lr unused."""
    temperature: float = 20.0
    """SNES rank-weight temperature (0 = NES utilities)."""
    hidden: str = "auto"
    """Hidden layer widths of the BC policy, e.g. '64,64' (auto: 64,64 for mlp, 128 after the convolution for
    cnn)."""
    activation: str = "auto"
    """Hidden activation: relu, tanh, elu, gelu (auto: relu discrete, tanh continuous)."""
    arch: Literal["mlp", "cnn"] = "mlp"
    """BC policy: mlp (the flat observation into the dense layers, the reference's HaDES policy) or cnn (one SAME
    3x3 convolution of conv-channels filters on the observation grid, e.g. MinAtar's 10x10xC, then the dense
    layers; the MinAtar agents' network)."""
    conv_channels: int = 16
    """CNN policy: convolution filters."""
    bc_steps: int | None = None
    """Full-batch BC steps (auto: 32 discrete, 100 continuous)."""
    bc_lr: float | None = None
    """BC Adam learning rate (auto: 0.03 discrete, 5e-3 continuous)."""
    bc_eps: float = 1e-5
    """BC Adam epsilon."""
    max_grad_norm: float = 0.5
    """BC per-policy gradient-norm clip (0 disables)."""
    inits: int | None = None
    """Policy initialisations trained per candidate (auto: 1 for F, 2 for R)."""
    eval_inits: int = 2
    """Policy inits for the ES-mean evaluation (HaDES-R: fresh random inits; HaDES-F: the fixed inits)."""
    final_seeds: int = 5
    """Fresh random-init policies trained for the final evaluation (besides the fixed inits of HaDES-F)."""
    learner: Literal["fixed", "random"] = "fixed"
    """Inner-loop learner: fixed (every generation trains the policy and BC above) or random (each generation draws
    one learner, common to the whole population, from the learner-* ranges: architecture, activation, init scheme,
    BC lr and steps, so that the dataset trains learners it was not evolved for; HaDES-R inits on top). The ES-mean
    curve and the final evaluation use the fixed policy and BC."""
    learner_widths: str = "16,32,64,256,512"
    """Random learner: hidden widths to draw from (every hidden layer of a learner has the drawn width)."""
    learner_depths: str = "2"
    """Random learner: numbers of hidden layers to draw from."""
    learner_activations: str = "relu,tanh"
    """Random learner: activations to draw from."""
    learner_inits: str = "orthogonal,torch"
    """Random learner: init schemes to draw from (orthogonal: the reference's; torch: nn.Linear's default)."""
    learner_lr: str = "1e-3,3e-2"
    """Random learner: 'low,high' range of the BC Adam learning rate (log-uniform)."""
    learner_steps: str = "32,1000"
    """Random learner: 'low,high' range of the BC steps (log-uniform integers)."""

    strategy_fields: ClassVar[tuple[str, ...]] = ("temperature",)

    def strategy_kwargs(self) -> dict[str, Any]:
        kw = super().strategy_kwargs()
        if self.strategy_name() == "open_es":
            kw["beta1"] = 0.99  # the reference's Adam beta1 (evosax <= 0.1.4), pinned
        return kw

    def validate(self) -> None:
        super().validate()
        for k in ["dataset_size", "eval_inits"]:
            v = getattr(self, k)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{k}={v!r}: expected a positive integer")
        if self.final_seeds < 0:
            raise ValueError(f"final_seeds={self.final_seeds}: expected >= 0")
        if self.bc_lr is not None and not (math.isfinite(self.bc_lr) and self.bc_lr > 0):
            raise ValueError(f"bc_lr={self.bc_lr!r}: expected a positive finite number")
        if self.inits is not None and self.inits < 1:
            raise ValueError(f"inits={self.inits}: expected a positive integer")
        if not (math.isfinite(self.bc_eps) and self.bc_eps > 0):
            raise ValueError(f"bc_eps={self.bc_eps!r}: expected a positive Adam epsilon")
        if self.bc_steps is not None and self.bc_steps < 0:
            raise ValueError(f"bc_steps={self.bc_steps}: expected >= 0")
        if self.hidden != "auto":
            parse_hidden(self.hidden)
        if not isinstance(self.conv_channels, int) or self.conv_channels < 1:
            raise ValueError(f"conv_channels={self.conv_channels!r}: expected a positive integer")
        if self.learner == "random":
            LearnerSpace.from_config(self)


def _items(text: str, name: str, kind: type) -> tuple[Any, ...]:
    """``'a,b,c'`` as a tuple of ``kind`` (a ``ValueError`` naming the option and the value otherwise)."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        out = tuple(kind(p) for p in parts)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected comma-separated {kind.__name__} values") from None
    if not out:
        raise ValueError(f"{name}={text!r}: expected at least one value")
    return out


@dataclass(frozen=True)
class LearnerSpace:
    """The learners a randomised HaDES inner loop draws from: one per generation, common to the population.

    Attributes:
        widths / depths: hidden widths and numbers of hidden layers (a learner's hidden layers share one width).
        activations / inits: hidden activations and init schemes (:data:`~torch_distill.policies.INIT_SCHEMES`).
        lr: ``(low, high)`` of the log-uniform BC learning rate.
        steps: ``(low, high)`` of the log-uniform integer BC steps.
    """

    widths: tuple[int, ...]
    depths: tuple[int, ...]
    activations: tuple[str, ...]
    inits: tuple[str, ...]
    lr: tuple[float, float]
    steps: tuple[int, int]

    @classmethod
    def from_config(cls, c: "HadesConfig") -> "LearnerSpace":
        widths = _items(c.learner_widths, "learner_widths", int)
        depths = _items(c.learner_depths, "learner_depths", int)
        if min(widths) < 1 or min(depths) < 1:
            raise ValueError(f"learner_widths={c.learner_widths!r}, learner_depths={c.learner_depths!r}: expected "
                             "positive integers")
        acts = _items(c.learner_activations, "learner_activations", str)
        inits = _items(c.learner_inits, "learner_inits", str)
        for a in acts:
            PolicyConfig((8,), a)  # names the bad activation
        for i in inits:
            if i not in INIT_SCHEMES:
                raise ValueError(f"learner_inits={c.learner_inits!r}: {i!r} is not one of {list(INIT_SCHEMES)}")
        lr = _items(c.learner_lr, "learner_lr", float)
        steps = _items(c.learner_steps, "learner_steps", int)
        if len(lr) != 2 or not (0 < lr[0] <= lr[1] and math.isfinite(lr[1])):
            raise ValueError(f"learner_lr={c.learner_lr!r}: expected 'low,high' with 0 < low <= high")
        if len(steps) != 2 or not 1 <= steps[0] <= steps[1]:
            raise ValueError(f"learner_steps={c.learner_steps!r}: expected 'low,high' with 1 <= low <= high")
        return cls(widths, depths, acts, inits, (lr[0], lr[1]), (steps[0], steps[1]))

    def sample(self, seed: int, base: PolicyConfig, bc: BCConfig) -> tuple[PolicyConfig, BCConfig]:
        """The learner of one generation (host-side draws from ``seed``): ``base`` and ``bc`` with the architecture,
        activation, init, lr and steps replaced."""
        import numpy as np

        rng = np.random.default_rng(seed)
        width, depth = int(rng.choice(self.widths)), int(rng.choice(self.depths))
        act, init = str(rng.choice(self.activations)), str(rng.choice(self.inits))
        lr = float(math.exp(rng.uniform(math.log(self.lr[0]), math.log(self.lr[1]))))
        steps = int(round(math.exp(rng.uniform(math.log(self.steps[0]), math.log(self.steps[1])))))
        policy = replace(base, hidden=(width,) * depth, activation=act, init=init)  # keeps arch (MLP or CNN)
        return policy, BCConfig(steps, lr, bc.eps, bc.beta1, bc.beta2, bc.max_grad_norm)

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) for k, v in asdict(self).items()}


@dataclass
class ResolvedHades:
    """A :class:`HadesConfig` with every ``auto`` resolved for one env."""

    config: HadesConfig
    spec: EnvSpec
    policy: PolicyConfig
    bc: BCConfig
    strategy: str
    strategy_kwargs: dict[str, Any] = field(default_factory=dict)
    labels: str = "fixed"
    inits: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "env": self.spec.to_json(),
            "policy": self.policy.to_json(),
            "bc": self.bc.to_json(),
            "strategy": self.strategy,
            "strategy_kwargs": self.strategy_kwargs,
            "labels": self.labels,
            "inits": self.inits,
        }


def resolve_hades(config: HadesConfig, spec: EnvSpec) -> ResolvedHades:
    """Fill ``auto`` values of ``config`` for ``spec`` and validate everything."""
    config.validate()
    discrete = spec.discrete
    cnn = config.arch == "cnn"
    hidden = parse_hidden(("128" if cnn else "64,64") if config.hidden == "auto" else config.hidden)
    activation = config.activation if config.activation != "auto" else ("relu" if discrete else "tanh")
    policy = PolicyConfig(hidden, activation, arch=config.arch, channels=config.conv_channels,
                          image_shape=image_shape_for(spec) if cnn else None)
    bc = BCConfig(
        steps=config.bc_steps if config.bc_steps is not None else (32 if discrete else 100),
        lr=config.bc_lr if config.bc_lr is not None else (0.03 if discrete else 5e-3),
        eps=config.bc_eps,
        max_grad_norm=config.max_grad_norm,
    )
    if not discrete:
        labels = "continuous"
        if config.labels == "logits":
            raise ValueError(f"labels='logits' needs a discrete action space; {spec.env_id} has continuous actions")
    else:
        labels = "fixed" if config.labels in ("auto", "fixed") else "logits"
    inits = config.inits if config.inits is not None else (1 if config.variant == "F" else 2)
    return ResolvedHades(config, spec, policy, bc, config.strategy_name(), config.strategy_kwargs(), labels, inits)


def genome_dims(spec: EnvSpec, dataset_size: int, labels: str) -> int:
    per = spec.obs_dim + (0 if labels == "fixed" else spec.act_dim)
    return dataset_size * per


def decode_genome(genomes: Tensor, spec: EnvSpec, dataset_size: int, labels: str) -> tuple[Tensor, Tensor]:
    """Split genomes ``[P, G]`` into states ``[P, D, obs_dim]`` and actions (``[P, D]`` int64 or ``[P, D, k]``)."""
    p, d = genomes.shape[0], dataset_size
    n_states = d * spec.obs_dim
    states = genomes[:, :n_states].reshape(p, d, spec.obs_dim)
    if labels == "fixed":
        actions = (torch.arange(d, device=genomes.device) % spec.n_actions).expand(p, d)
    else:
        actions = genomes[:, n_states:].reshape(p, d, spec.act_dim)
    return states, actions


class HadesProblem:
    """The HaDES fitness: BC on each candidate dataset, then real-env return (see module docstring)."""

    def __init__(self, resolved: ResolvedHades, evaluator: RealEnvEvaluator) -> None:
        self.r = resolved
        self.cfg = resolved.config
        self.spec = resolved.spec
        self.evaluator = evaluator
        self.device = evaluator.device
        self.net = PolicyNet(self.spec, resolved.policy)
        self.num_dims = genome_dims(self.spec, self.cfg.dataset_size, resolved.labels)
        self.fixed_init_seed = derive_seed(self.cfg.seed, -1, Streams.INIT)
        self.fixed_inits = self._inits(self.fixed_init_seed, resolved.inits)
        self.space = LearnerSpace.from_config(self.cfg) if self.cfg.learner == "random" else None
        self._nets: dict[PolicyConfig, PolicyNet] = {resolved.policy: self.net}
        if self.cfg.obs_norm == "random":
            evaluator.fit_normalizer(derive_seed(self.cfg.seed, -1, Streams.NORM))

    def _inits(self, seed: int, n: int, net: PolicyNet | None = None) -> Tensor:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        return (net or self.net).init(n, gen)

    def learner(self, generation: int) -> tuple[PolicyNet, BCConfig, Tensor | None]:
        """The inner learner of ``generation``: ``(net, bc, fixed inits or None)``. Fixed learner: the configured
        policy and BC (and HaDES-F's fixed inits); random learner: a draw of :class:`LearnerSpace` (HaDES-F then
        fixes one set of inits per drawn policy for the whole run)."""
        if self.space is None:
            return self.net, self.r.bc, self.fixed_inits
        policy, bc = self.space.sample(derive_seed(self.cfg.seed, generation, Streams.LEARNER), self.r.policy, self.r.bc)
        net = self._nets.setdefault(policy, PolicyNet(self.spec, policy))
        fixed = None
        if self.cfg.variant == "F":
            key = zlib.crc32(json.dumps(policy.to_json(), sort_keys=True).encode())
            fixed = self._inits(derive_seed(self.cfg.seed, 10**10 + key, Streams.INIT), self.r.inits, net)
        return net, bc, fixed

    def initial_mean(self) -> Tensor:
        return torch.zeros(self.num_dims, device=self.device)

    def decode(self, genomes: Tensor) -> tuple[Tensor, Tensor]:
        return decode_genome(genomes, self.spec, self.cfg.dataset_size, self.r.labels)

    def train(self, genomes: Tensor, inits: Tensor, net: PolicyNet | None = None, bc: BCConfig | None = None) -> Tensor:
        """BC-train ``inits [R, num_params]`` on every genome ``[P, G]``: returns ``[P * R, num_params]`` (``net`` and
        ``bc``: the configured ones by default)."""
        p, r = genomes.shape[0], inits.shape[0]
        states, actions = self.decode(genomes)
        rep = lambda x: x.unsqueeze(1).expand(p, r, *x.shape[1:]).reshape(p * r, *x.shape[1:])  # noqa: E731
        params0 = inits.unsqueeze(0).expand(p, r, -1).reshape(p * r, -1)
        return bc_train(net or self.net, params0, rep(states), rep(actions), bc or self.r.bc)

    def fitness(self, genomes: Tensor, generation: int) -> tuple[Tensor, dict[str, Tensor]]:
        net, bc, fixed = self.learner(generation)
        if self.cfg.variant == "F":
            inits = fixed
        else:
            inits = self._inits(derive_seed(self.cfg.seed, generation, Streams.INIT), self.r.inits, net)
        params = self.train(genomes, inits, net, bc)
        res = self.evaluator.evaluate(net, params, self.cfg.episodes, derive_seed(self.cfg.seed, generation, Streams.ENV))
        fit = res.returns.reshape(genomes.shape[0], -1).mean(-1)
        return fit, {"env_steps": res.env_steps, "episode_steps": res.lengths.sum()}

    def evaluate_mean(self, mean: Tensor, generation: int) -> dict[str, float]:
        if self.cfg.variant == "F":
            inits = self.fixed_inits
        else:
            inits = self._inits(derive_seed(self.cfg.seed, generation, Streams.MEAN_INIT), self.cfg.eval_inits)
        params = self.train(mean.unsqueeze(0), inits)
        res = self.evaluator.evaluate(self.net, params, self.cfg.eval_episodes,
                                      derive_seed(self.cfg.seed, generation, Streams.MEAN_EVAL))
        return {"return_mean": float(res.returns.mean()), "return_std": float(res.returns.std())}

    def dataset(self, mean: Tensor, metadata: dict[str, Any]) -> Dataset:
        states, actions = self.decode(mean.unsqueeze(0))
        meta = {
            "variant": f"HaDES-{self.cfg.variant}",
            "obs_normalizer": self.evaluator.normalizer.to_json(),
            "policy": self.r.policy.to_json(),
            "bc": {**self.r.bc.to_json(), "loss": "cross_entropy" if self.spec.discrete else "gaussian_nll", "full_batch": True},
            "init_seeds": {"generator_seed": self.fixed_init_seed, "inits": self.r.inits} if self.cfg.variant == "F" else None,
            "learner_space": self.space.to_json() if self.space is not None else None,
            "seed": self.cfg.seed,
            **metadata,
        }
        return Dataset(states[0].contiguous().float(), actions[0].contiguous(), self.spec, meta)

    def state_dict(self) -> dict[str, Any]:
        return self.evaluator.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.evaluator.load_state_dict(state)


# ------------------------------------------------------------------------------------------ dataset evaluation
@dataclass
class DatasetEvalResult:
    """Returns of policies trained from scratch on a dataset: one row per policy init."""

    per_policy: list[dict[str, float]]
    return_mean: float
    return_std: float  # spread across policies (std of per-policy means)
    episodes: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def recorded_policy(dataset: Dataset, hidden: str | tuple[int, ...] | None = None,
                    activation: str | None = None) -> PolicyConfig:
    """The policy architecture ``dataset`` was evolved for (its metadata, :meth:`PolicyConfig.from_json`: MLP or
    CNN with its image shape; else a 64,64 relu MLP), with ``hidden`` and ``activation`` replaced where given."""
    policy = PolicyConfig.from_json(dataset.metadata.get("policy"))
    return replace(policy, hidden=parse_hidden(hidden) if hidden is not None else policy.hidden,
                   activation=activation or policy.activation)


def recorded_bc(dataset: Dataset, **overrides: Any) -> BCConfig:
    """The BC hyperparameters ``dataset`` was evolved with (its metadata; else the defaults), with the
    :class:`~torch_distill.algorithms.bc.BCConfig` fields in ``overrides`` that are not None replaced."""
    rec = dataset.metadata.get("bc") or {}
    kw = {k: rec[k] for k in ("steps", "lr", "eps", "beta1", "beta2", "max_grad_norm") if k in rec}
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return BCConfig(**kw)


def evaluate_dataset(
    dataset: Dataset,
    policy: PolicyConfig | None = None,
    bc: BCConfig | None = None,
    seeds: list[int] | None = None,
    fixed_init: bool = False,
    episodes: int = 100,
    env_seed: int = 12345,
    device: torch.device | str = "cpu",
    backend: str = "auto",
    deterministic: bool = False,
    evaluator: RealEnvEvaluator | None = None,
    progress: bool | None = None,
) -> DatasetEvalResult:
    """Train fresh policies on ``dataset`` (vmapped over inits) and evaluate them on the real env.

    Args:
        dataset: the distilled dataset (its metadata supplies the env, normaliser and default architecture / BC).
        policy: architecture to train (default: the one the dataset was evolved for).
        bc: BC hyperparameters (default: the recorded ones).
        seeds: seeds of fresh random policy inits (one policy per seed).
        fixed_init: use the dataset's recorded HaDES-F initialisations instead of ``seeds``.
        episodes: real-env episodes per policy.
        env_seed: seed of the evaluation episodes (fresh, unrelated to training).
        progress: draw a progress bar of the evaluation steps (default: when stderr is a terminal, see
            :func:`~torch_distill.log.progress_enabled`).
    """
    device = torch.device(device)
    meta = dataset.metadata
    rec_policy = meta.get("policy") or {}
    policy = recorded_policy(dataset) if policy is None else policy
    bc = recorded_bc(dataset) if bc is None else bc
    evaluator = evaluator or RealEnvEvaluator(dataset.spec.env_id, device, backend, deterministic=deterministic)
    spec = evaluator.spec
    if (spec.obs_dim, spec.discrete, spec.act_dim) != (dataset.spec.obs_dim, dataset.spec.discrete, dataset.spec.act_dim):
        raise ValueError(
            f"dataset was made for {dataset.spec.env_id} (obs_dim {dataset.spec.obs_dim}, act_dim {dataset.spec.act_dim}) "
            f"but the env provides obs_dim {spec.obs_dim}, act_dim {spec.act_dim}"
        )
    evaluator.normalizer = ObsNormalizer.from_json(meta.get("obs_normalizer"), device)
    net = PolicyNet(spec, policy)
    if fixed_init:
        rec = meta.get("init_seeds")
        if not rec:
            raise ValueError("fixed_init=True but the dataset records no HaDES-F init seeds (it is a HaDES-R dataset)")
        if (tuple(policy.hidden) != tuple(rec_policy.get("hidden", ()))
                or policy.activation != rec_policy.get("activation") or policy.arch != rec_policy.get("arch", "mlp")):
            raise ValueError("fixed_init=True needs the architecture the dataset was evolved for "
                             f"({rec_policy.get('arch', 'mlp')}, hidden {rec_policy.get('hidden')}, activation "
                             f"{rec_policy.get('activation')})")
        gen = torch.Generator(device=device)
        gen.manual_seed(int(rec["generator_seed"]))
        inits = net.init(int(rec["inits"]), gen)
        labels = [f"fixed-init {i}" for i in range(inits.shape[0])]
    else:
        seeds = list(seeds if seeds is not None else range(5))
        if not seeds:
            raise ValueError("seeds is empty: expected at least one policy seed")
        parts = []
        for s in seeds:
            gen = torch.Generator(device=device)
            gen.manual_seed(int(s))
            parts.append(net.init(1, gen))
        inits = torch.cat(parts)
        labels = [f"seed {s}" for s in seeds]
    n = inits.shape[0]
    states = dataset.states.to(device).unsqueeze(0).expand(n, *dataset.states.shape)
    actions = dataset.actions.to(device).unsqueeze(0).expand(n, *dataset.actions.shape)
    params = bc_train(net, inits, states, actions, bc)
    horizon = evaluator.max_steps or spec.max_episode_steps
    with progress_bar(horizon, f"evaluating {n} policies x {episodes} episodes", "step", progress) as bar:
        res = evaluator.evaluate(net, params, episodes, env_seed, progress=bar.update)
    per_mean = res.returns.mean(-1)
    rows = [
        {"policy": lab, "return_mean": float(m), "return_std": float(s), "return_min": float(lo), "return_max": float(hi)}
        for lab, m, s, lo, hi in zip(labels, per_mean, res.returns.std(-1), res.returns.min(-1).values, res.returns.max(-1).values)
    ]
    return DatasetEvalResult(rows, float(per_mean.mean()), float(per_mean.std()) if n > 1 else 0.0, episodes)


# ------------------------------------------------------------------------------------------------ orchestration
class HadesSearch(SearchMethod):
    """HaDES for :func:`~torch_distill.search.run_search`: saves the final (and best) ES mean as
    ``dataset.safetensors`` (``dataset_best.safetensors``), each evaluated by BC-training the fixed inits (HaDES-F)
    and ``final_seeds`` fresh random inits on it."""

    artefact = "dataset"

    def __init__(self, config: HadesConfig, device: torch.device, resumed: bool) -> None:
        self.config = config
        self.evaluator = RealEnvEvaluator(config.env, device, config.backend, config.max_steps,
                                          config.deterministic_eval)
        self.resolved = resolve_hades(config, self.evaluator.spec)
        self.problem = HadesProblem(self.resolved, self.evaluator)

    def run_name(self) -> str:
        return f"{self.config.env}-hades-{self.config.variant}-s{self.config.seed}"

    def record(self) -> dict[str, Any]:
        return self.resolved.to_json()

    def banner(self, where: str) -> str:
        c, r = self.config, self.resolved
        conv = r.policy.arch == "cnn"
        return (f"HaDES-{c.variant} on {c.env} [{self.evaluator.backend} backend, {where}]: "
                f"D={c.dataset_size} ({r.labels} labels), genome {self.problem.num_dims} dims, "
                f"{r.strategy} popsize {c.popsize}, {c.generations} generations; "
                f"policy {f'cnn {r.policy.channels}x{r.policy.kernel}x{r.policy.kernel} + ' if conv else ''}"
                f"{','.join(map(str, r.policy.hidden))} {r.policy.activation}, "
                f"BC {r.bc.steps} steps lr {r.bc.lr}, {r.inits} init(s) x {c.episodes} episodes"
                + (f"; random learners (widths {c.learner_widths}, depths {c.learner_depths}, {c.learner_activations}, "
                   f"inits {c.learner_inits}, lr {c.learner_lr}, steps {c.learner_steps})" if c.learner == "random" else ""))

    def title(self) -> str:
        return f"HaDES-{self.config.variant} {self.config.env} D={self.config.dataset_size}"

    def finish(self, candidate: Candidate, run_dir: Path) -> Finished:
        c, seed = self.config, candidate.seed
        ds = self.problem.dataset(candidate.mean, candidate.metadata())
        evals: dict[str, DatasetEvalResult] = {}
        if c.variant == "F":
            evals["fixed inits (as evolved)"] = evaluate_dataset(
                ds, fixed_init=True, episodes=c.final_episodes, env_seed=seed, device=self.evaluator.device,
                evaluator=self.evaluator)
        if c.final_seeds:
            evals["fresh random inits"] = evaluate_dataset(
                ds, seeds=[seed % 100000 + i for i in range(c.final_seeds)], episodes=c.final_episodes,
                env_seed=seed + 1, device=self.evaluator.device, evaluator=self.evaluator)
        ds.metadata["eval"] = {k: {"return_mean": v.return_mean, "return_std_across_policies": v.return_std,
                                   "policies": len(v.per_policy), "episodes_per_policy": v.episodes}
                               for k, v in evals.items()}
        path = candidate.file(run_dir, "dataset")
        save_dataset(path, ds)
        rows = [{"dataset": f"{candidate.which} (gen {candidate.generation})", "evaluation": k,
                 "policies": len(v.per_policy), "episodes each": v.episodes, "return mean": v.return_mean,
                 "spread (std)": v.return_std, "worst policy": min(r["return_mean"] for r in v.per_policy)}
                for k, v in evals.items()]
        return Finished(path, {k: v.to_json() for k, v in evals.items()}, rows)

    def summary(self, common: dict[str, Any], entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {"variant": f"HaDES-{self.config.variant}", **common, "datasets": entries,
                "dataset": entries["final"]["path"], "final_eval": entries["final"]["eval"]}

    def headline(self, summary: dict[str, Any]) -> str:
        return (f"Final datasets ({self.config.dataset_size} pairs) after {summary['generations']} generations, "
                f"{summary['train_time_s']:.1f}s, {summary['env_steps'] / 1e6:.2f}M env steps "
                f"({summary['episode_steps'] / 1e6:.2f}M within episodes); fresh evaluation episodes:")

    def close(self) -> None:
        self.evaluator.close()


def run_hades(config: HadesConfig, resume: str | None = None,
              resume_overrides: Collection[str] = ()) -> dict[str, Any]:
    """Run HaDES end to end: ES loop, final evaluation, dataset files, summary (rank 0 writes; all ranks compute).

    ``resume`` continues the run folder from its checkpoint (``resume_overrides``: the options that may change,
    :data:`~torch_distill.runs.RESUME_OVERRIDABLE`). Returns the summary dict (rank 0) or ``{}`` (other ranks).
    """
    return run_search(config, HadesSearch, resume, resume_overrides)
