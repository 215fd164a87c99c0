"""Direct-ES neuroevolution baseline: the ES searches the policy weights themselves.

Same ES loop, same real-env evaluation (common random numbers, episodes per candidate, observation normaliser)
as HaDES, so both can be compared at equal environment steps; only the genome differs: the flat policy
parameters (:class:`~torch_distill.policies.PolicyNet`), initialised at one orthogonal initialisation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from safetensors.torch import save_file
from torch import Tensor

from torch_distill import __version__
from torch_distill.io import atomic_write
from torch_distill.policies import PolicyConfig, PolicyNet, image_shape_for, parse_hidden
from torch_distill.runner import Streams, derive_seed
from torch_distill.evaluation import RealEnvEvaluator
from torch_distill.search import LEARNING_RATE_FIELD, Candidate, ESOptions, Finished, SearchMethod, run_search

__all__ = ["DirectESConfig", "DirectESProblem", "DirectESSearch", "run_direct_es"]


@dataclass
class DirectESConfig(ESOptions):
    """ES directly on policy weights (the neuroevolution baseline HaDES is compared with)."""

    strategy: Literal["open_es", "snes", "cma_es", "sep_cma_es", "pgpe", "cem"] = "open_es"
    """Evolution strategy. --sigma / --es-lr set: open_es the noise scale / Adam lr (even popsize); snes the stdev /
    lrate_mean; cma_es, sep_cma_es the initial step size / mean learning rate c_m; pgpe (PGPE + ClipUp) the initial stdev / centre learning rate
    (even popsize; fitness shaping from --shaping); cem the initial stdev / nothing."""
    sigma: float = 0.05
    """Initial ES noise scale."""
    es_lr: float | None = None
    """ES learning rate (see --strategy; auto: 0.02 for open_es and snes, the strategy's own default otherwise)."""
    beta1: float = 0.9
    """OpenES Adam beta1."""
    shaping: Literal["none", "centered_rank", "z_score"] = "centered_rank"
    """OpenES fitness shaping."""
    hidden: str = "auto"
    """Hidden widths of the policy (auto: 64,64 for mlp, 128 after the convolution for cnn)."""
    activation: str = "auto"
    """Hidden activation (auto: relu discrete, tanh continuous)."""
    arch: Literal["mlp", "cnn"] = "mlp"
    """Policy: mlp or cnn (a SAME 3x3 convolution of conv-channels filters on the observation grid, then the dense
    layers), as HaDES's --arch."""
    conv_channels: int = 16
    """CNN policy: convolution filters."""

    strategy_fields: ClassVar[tuple[str, ...]] = ("beta1", "shaping")

    def strategy_kwargs(self) -> dict[str, Any]:
        kw = super().strategy_kwargs()
        if self.es_lr is None and self.strategy_name() in ("open_es", "snes"):
            kw[LEARNING_RATE_FIELD[self.strategy_name()]] = 0.02  # the baseline's rate for the gradient-style ESs
        return kw

    def validate(self) -> None:
        super().validate()
        if self.hidden != "auto":
            parse_hidden(self.hidden)
        if not isinstance(self.conv_channels, int) or self.conv_channels < 1:
            raise ValueError(f"conv_channels={self.conv_channels!r}: expected a positive integer")


class DirectESProblem:
    """Fitness of a flat policy-parameter genome = its mean return over ``episodes`` real-env episodes."""

    def __init__(self, config: DirectESConfig, evaluator: RealEnvEvaluator) -> None:
        self.cfg = config
        self.evaluator = evaluator
        self.device = evaluator.device
        spec = evaluator.spec
        cnn = config.arch == "cnn"
        hidden = parse_hidden(("128" if cnn else "64,64") if config.hidden == "auto" else config.hidden)
        act = config.activation if config.activation != "auto" else ("relu" if spec.discrete else "tanh")
        self.policy = PolicyConfig(hidden, act, arch=config.arch, channels=config.conv_channels,
                                   image_shape=image_shape_for(spec) if cnn else None)
        self.net = PolicyNet(spec, self.policy)
        self.num_dims = self.net.num_params
        if config.obs_norm == "random":
            evaluator.fit_normalizer(derive_seed(config.seed, -1, Streams.NORM))

    def initial_mean(self) -> Tensor:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(derive_seed(self.cfg.seed, -1, Streams.INIT))
        return self.net.init(1, gen)[0]

    def fitness(self, genomes: Tensor, generation: int) -> tuple[Tensor, dict[str, Tensor]]:
        res = self.evaluator.evaluate(self.net, genomes, self.cfg.episodes, derive_seed(self.cfg.seed, generation, Streams.ENV))
        return res.returns.mean(-1), {"env_steps": res.env_steps, "episode_steps": res.lengths.sum()}

    def evaluate_mean(self, mean: Tensor, generation: int, episodes: int | None = None) -> dict[str, float]:
        seed = derive_seed(self.cfg.seed, generation, Streams.MEAN_EVAL)
        res = self.evaluator.evaluate(self.net, mean.unsqueeze(0), episodes or self.cfg.eval_episodes, seed)
        return {"return_mean": float(res.returns.mean()), "return_std": float(res.returns.std())}

    def state_dict(self) -> dict[str, Any]:
        return self.evaluator.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.evaluator.load_state_dict(state)


class DirectESSearch(SearchMethod):
    """The direct-ES baseline for :func:`~torch_distill.search.run_search`: saves the final ES mean as
    ``policy.safetensors``; the final and best means are evaluated on ``final_episodes`` fresh episodes."""

    artefact = "policy"

    def __init__(self, config: DirectESConfig, device: torch.device, resumed: bool) -> None:
        self.config = config
        self.evaluator = RealEnvEvaluator(config.env, device, config.backend, config.max_steps,
                                          config.deterministic_eval)
        self.problem = DirectESProblem(config, self.evaluator)

    def run_name(self) -> str:
        return f"{self.config.env}-direct-es-s{self.config.seed}"

    def record(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "policy": self.problem.policy.to_json(),
                "strategy_kwargs": self.config.strategy_kwargs()}

    def banner(self, where: str) -> str:
        c = self.config
        return (f"direct ES on {c.env} [{self.evaluator.backend}, {where}]: {self.problem.num_dims} weights, "
                f"{c.strategy} popsize {c.popsize}, {c.generations} generations")

    def title(self) -> str:
        return f"direct ES {self.config.env}"

    def finish(self, candidate: Candidate, run_dir: Path) -> Finished:
        ev = self.problem.evaluate_mean(candidate.mean, 10**6, episodes=self.config.final_episodes)
        if candidate.which != "final":
            return Finished(None, ev, [])
        meta = {"env": self.evaluator.spec.to_json(), "policy": self.problem.policy.to_json(),
                "obs_normalizer": self.evaluator.normalizer.to_json(), "final_eval": ev, "library_version": __version__}
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.problem.net.unflatten(candidate.mean).items()}
        path = run_dir / "policy.safetensors"
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"torch_distill": json.dumps(meta)}))
        return Finished(path, ev, [])

    def summary(self, common: dict[str, Any], entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
        best = entries.get("best")
        return {"method": "direct-es", **common, "final_eval": entries["final"]["eval"],
                "best_eval": {**best["eval"], "generation": best["generation"]} if best else None,
                "num_params": self.problem.num_dims, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def headline(self, summary: dict[str, Any]) -> str:
        final, best, episodes = summary["final_eval"], summary["best_eval"], self.config.final_episodes
        line = (f"Final ES-mean policy: return {final['return_mean']:.2f} +- {final['return_std']:.2f} over "
                f"{episodes} episodes; {summary['env_steps'] / 1e6:.2f}M env steps, {summary['train_time_s']:.1f}s")
        if best is not None:
            line += (f"\nBest periodic ES mean (generation {best['generation']}): return {best['return_mean']:.2f} "
                     f"+- {best['return_std']:.2f} over {episodes} fresh episodes")
        return line

    def close(self) -> None:
        self.evaluator.close()


def run_direct_es(config: DirectESConfig, resume: str | None = None,
                  resume_overrides: Collection[str] = ()) -> dict[str, Any]:
    """Run the direct-ES baseline end to end; writes ``policy.safetensors`` and ``summary.json`` (rank 0).

    Returns the summary dict (rank 0) or ``{}`` (other ranks); ``resume`` as :func:`~torch_distill.search.run_search`.
    """
    return run_search(config, DirectESSearch, resume, resume_overrides)
