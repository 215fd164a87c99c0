"""Direct-ES neuroevolution baseline: the ES searches the policy weights themselves.

Same ES loop, same real-env evaluation (common random numbers, episodes per candidate, observation normaliser)
as HaDES, so both can be compared at equal environment steps; only the genome differs: the flat policy
parameters (:class:`~torch_distill.policies.PolicyNet`), initialised at one orthogonal initialisation.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from torch_distill.algorithms.common import (
    RealEnvEvaluator,
    RunOptions,
    command_line,
    make_run_dir,
    resolve_device,
    resumed_config,
)
from torch_distill.evaluation import ObsNormalizer
from torch_distill.policies import PolicyConfig, PolicyNet, parse_hidden
from torch_distill.runner import RunnerConfig, Streams, derive_seed, run_es

__all__ = ["DirectESConfig", "DirectESProblem", "run_direct_es"]


@dataclass
class DirectESConfig(RunOptions):
    """ES directly on policy weights (the neuroevolution baseline HaDES is compared with)."""

    env: str = "CartPole-v1"
    """Environment id."""
    strategy: Literal["open_es", "snes"] = "open_es"
    """Evolution strategy."""
    popsize: int = 64
    """ES population size."""
    generations: int = 30
    """Number of ES generations."""
    sigma: float = 0.05
    """Initial ES noise scale."""
    es_lr: float = 0.02
    """OpenES Adam learning rate (SNES: lrate_mean)."""
    beta1: float = 0.9
    """OpenES Adam beta1."""
    shaping: Literal["none", "centered_rank", "z_score"] = "centered_rank"
    """OpenES fitness shaping."""
    hidden: str = "auto"
    """Hidden widths of the policy (auto: 64,64)."""
    activation: str = "auto"
    """Hidden activation (auto: relu discrete, tanh continuous)."""

    def validate(self) -> None:
        self.validate_run_options()
        for k in ["popsize", "generations"]:
            v = getattr(self, k)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{k}={v!r}: expected a positive integer")
        for k in ["sigma", "es_lr"]:
            v = getattr(self, k)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{k}={v!r}: expected a positive finite number")
        if self.strategy == "open_es" and self.popsize % 2:
            raise ValueError(f"popsize={self.popsize}: OpenES samples antithetic pairs, expected an even number")
        if self.hidden != "auto":
            parse_hidden(self.hidden)


class DirectESProblem:
    """Fitness of a flat policy-parameter genome = its mean return over ``episodes`` real-env episodes."""

    def __init__(self, config: DirectESConfig, evaluator: RealEnvEvaluator) -> None:
        self.cfg = config
        self.evaluator = evaluator
        self.device = evaluator.device
        spec = evaluator.spec
        hidden = parse_hidden("64,64" if config.hidden == "auto" else config.hidden)
        act = config.activation if config.activation != "auto" else ("relu" if spec.discrete else "tanh")
        self.policy = PolicyConfig(hidden, act)
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
        n = self.evaluator.normalizer
        return {"obs_mean": n.mean, "obs_var": n.var}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("obs_mean") is not None:
            self.evaluator.normalizer = ObsNormalizer(state["obs_mean"].to(self.device), state["obs_var"].to(self.device))


def run_direct_es(config: DirectESConfig, resume: str | None = None,
                  resume_overrides: Collection[str] = ()) -> dict[str, Any]:
    """Run the direct-ES baseline end to end; writes ``policy.safetensors`` and ``summary.json`` (rank 0)."""
    from safetensors.torch import save_file

    from torch_distill import __version__
    from torch_distill.distributed import barrier, cleanup, init_distributed
    from torch_distill.es.strategies import make_strategy
    from torch_distill.io import atomic_write, write_json

    if resume:
        run_dir = make_run_dir(config.out, None, "", resume)
        config = resumed_config(DirectESConfig, config, run_dir, resume_overrides)
    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    info = init_distributed(config.device)
    device = info.device if info.enabled else resolve_device(config.device)
    evaluator = RealEnvEvaluator(config.env, device, config.backend, config.max_steps, config.deterministic_eval)
    problem = DirectESProblem(config, evaluator)
    if config.strategy == "open_es":
        kw: dict[str, Any] = {"popsize": config.popsize, "sigma_init": config.sigma, "lr": config.es_lr,
                              "beta1": config.beta1, "shaping": config.shaping}
    else:
        kw = {"popsize": config.popsize, "sigma_init": config.sigma, "lrate_mean": config.es_lr}
    strategy = make_strategy(config.strategy, problem.num_dims, **kw)
    if not resume:
        run_dir = make_run_dir(config.out, config.name, f"{config.env}-direct-es-s{config.seed}", None)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            write_json(run_dir / "config.json", {"config": asdict(config), "policy": problem.policy.to_json(),
                                                 "strategy_kwargs": kw, "command": command_line()})
        print(f"direct ES on {config.env} [{evaluator.backend}, {device}, world size {info.world_size}]: "
              f"{problem.num_dims} weights, {config.strategy} popsize {config.popsize}, {config.generations} generations\n"
              f"run folder: {run_dir}", flush=True)
    barrier(info)
    state, rows, best = run_es(problem, strategy,
                         RunnerConfig(config.generations, config.seed, config.eval_every, config.checkpoint_every,
                                      config.log_every, config.max_minutes, config.max_env_steps),
                         run_dir, info, resume=bool(resume), title=f"direct ES {config.env}")
    summary: dict[str, Any] = {}
    if info.is_main:
        final = problem.evaluate_mean(state.mean, 10**6, episodes=config.final_episodes)
        best_eval = None
        if best is not None and rows and best["generation"] != rows[-1]["generation"]:
            best_eval = {**problem.evaluate_mean(best["mean"], 10**6, episodes=config.final_episodes),
                         "generation": best["generation"]}
        meta = {"env": evaluator.spec.to_json(), "policy": problem.policy.to_json(),
                "obs_normalizer": evaluator.normalizer.to_json(), "final_eval": final, "library_version": __version__}
        tensors = {k: v.detach().cpu().contiguous() for k, v in problem.net.unflatten(state.mean).items()}
        atomic_write(run_dir / "policy.safetensors", lambda tmp: save_file(tensors, tmp, metadata={"torch_distill": json.dumps(meta)}))
        summary = {"env": config.env, "method": "direct-es", "generations": rows[-1]["generation"] if rows else 0,
                   "train_time_s": rows[-1]["wall_time"] if rows else 0.0, "env_steps": rows[-1]["env_steps"] if rows else 0,
                   "episode_steps": rows[-1]["episode_steps"] if rows else 0, "final_eval": final,
                   "best_eval": best_eval,
                   "num_params": problem.num_dims, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json(run_dir / "summary.json", summary)
        print(f"\nFinal ES-mean policy: return {final['return_mean']:.2f} +- {final['return_std']:.2f} over "
              f"{config.final_episodes} episodes; {summary['env_steps'] / 1e6:.2f}M env steps, {summary['train_time_s']:.1f}s")
        if best_eval is not None:
            print(f"Best periodic ES mean (generation {best_eval['generation']}): return {best_eval['return_mean']:.2f} "
                  f"+- {best_eval['return_std']:.2f} over {config.final_episodes} fresh episodes")
    evaluator.close()
    cleanup(info)
    return summary
