"""Learned synthetic environments: ES over the genome of a synthetic env -- a synthetic contextual bandit (Liesen et
al. 2024, arXiv 2406.12589), a neural MDP or a reward network (Ferreira et al., ICLR 2022); see
:mod:`torch_distill.envs.synthetic`.

Outer loop: :func:`torch_distill.runner.run_es` (SNES by default: ``sigma_init 0.05``, temperature 0 = NES rank
utilities with baseline, ``lrate_mean 1``, ``lrate_sigma (3 + ln d) / (5 sqrt d)``; the mean starts at the
networks' default initialisation).

Inner loop (:class:`SynthEnvProblem`): every candidate env trains ``agents`` fresh RL agents for exactly
``inner_steps`` synthetic steps -- all candidates x agents at once, as one population of the vectorised agents
(the agents of :data:`torch_distill.algorithms.rl.AGENTS`: PPO, DQN, SAC, TD3/DDPG and the SCB best-response
learners, one registry entry each): member ``m``'s env rows carry genome ``m`` as env params. The algorithm changes every generation (round-robin over ``algos``;
SCB default ``ppo,dqn`` / ``ppo,td3``, MDP/reward default DDQN with Ferreira et al.'s hyperparameters) and its
hyperparameters are re-sampled every generation: from the SCB reference's lists, or log-uniformly in ``[x/3, 3x]``
for lr, batch size and width (MDP/reward; network shapes are drawn once per generation). Common random numbers: in
a generation every candidate gets the same hyperparameters, the same agent keys, the same synthetic-env draws and the
same real-env start states and action noise.

Fitness: the trained agents' mean return on the native real env (:func:`~torch_distill.evaluation.evaluate_functional` with PPO/SAC actions sampled unless ``deterministic_eval``, ``episodes`` episodes per agent,
optional linear horizon curriculum ``horizon_start -> max_steps``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from torch_distill.algorithms.rl import AGENTS, InnerAlgo, make_agent
from torch_distill.algorithms.rl.hparams import check_ints
from torch_distill.envs.core import FunctionalEnv
from torch_distill.envs.synthetic import (
    RewardNetworkEnv,
    SyntheticContextualBandit,
    SyntheticEnvBase,
    SyntheticEnvParams,
    SyntheticMDP,
    load_synthetic_env,
    observation_scaling,
)
from torch_distill.evaluation import evaluate_functional
from torch_distill.keyed import make_keys
from torch_distill.nets import ACTIVATIONS
from torch_distill.log import progress_bar
from torch_distill.policies import parse_hidden
from torch_distill.runner import Streams, derive_seed
from torch_distill.search import (
    Candidate,
    ESOptions,
    Finished,
    SearchMethod,
    run_search,
)

__all__ = [
    "INNER_ALGOS",
    "AlgoEvalResult",
    "InnerAlgo",
    "SynthEnvConfig",
    "SynthEnvProblem",
    "evaluate_synthetic_env",
    "iqm",
    "run_synth_env",
]

INNER_ALGOS = tuple(AGENTS)
"""Inner algorithm names: the agents of :data:`torch_distill.algorithms.rl.AGENTS`."""

# stream ids of derive_seed private to this module (runner.Streams uses 1..7)
_HPARAMS = 101
_AGENTS = 102
_SYNTH = 103
_ACTIONS = 104


@dataclass
class SynthEnvConfig(ESOptions):
    """Evolve a synthetic contextual bandit on which RL agents train in ``inner_steps`` synthetic steps.

    Defaults follow the SCB reference (SNES sigma 0.05, temperature 0; 32-unit sub-networks; 10k synthetic steps;
    algorithms alternated per generation; hyperparameters re-sampled per generation) with a CPU-sized population.
    Agents are evaluated on the native torch env, sampling actions from their policies as the reference (rejax's
    ``act``) unless ``deterministic_eval`` (DQN and TD3/DDPG always act greedily); ``obs_norm`` and ``backend``
    other than native do not apply: agents see raw observations, as in the reference.
    """

    env: str = "CartPole-v1"
    """Real environment id (a native torch env, see ``torch-distill envs``)."""
    kind: Literal["scb", "mdp", "reward"] = "scb"
    """Synthetic env kind: scb (synthetic contextual bandit, Liesen et al.; episode length 1), mdp (neural MDP with
    transition/reward/done heads, Ferreira et al.) or reward (real dynamics, learned reward network)."""
    algos: str = "auto"
    """Comma-separated inner algorithms, alternated round-robin by generation: ppo, sac, dqn (discrete), td3, ddpg
    (continuous). auto: ppo,dqn for discrete actions, ppo,td3 for continuous ones (scb; the reference also rotates
    sac, which costs 20-40x a PPO/DQN generation on CPU -- add it explicitly, or evaluate it as a held-out
    learner); dqn (DDQN with the Ferreira et al. hyperparameters) or td3 (mdp, reward). Stored resolved in
    config.json. bandit (scb only; not a reference algorithm): the contextual bandit's best-response learner of
    :mod:`torch_distill.algorithms.rl.bandit` -- a policy fitted to argmax_a r(s, a) at the SCB's states, no RL noise
    and ~1 s per generation; the RL algorithms are then held-out learners of the found SCB. dpg (scb, continuous;
    not a reference algorithm): its gradient-ascent variant, a fresh policy climbing r(s, pi(s)) as an actor with a
    perfect critic would (it stops at local maxima as TD3/DDPG actors do). critic (scb; not a reference
    algorithm): a critic fitted to inner_steps (context, random action, reward) samples replaces the exact reward,
    then a policy climbs it -- the SCB must be learnable from the synthetic-step budget, as for RL agents."""
    inner_steps: int = 10_000
    """Synthetic env steps per trained agent (reference: 10k)."""
    agents: int = 1
    """Agents trained per candidate env (common random numbers across candidates)."""
    hparams: Literal["sampled", "default"] = "sampled"
    """Inner hyperparameters: re-sampled from the reference lists every generation, or fixed defaults."""
    hidden: str = "auto"
    """Hidden widths of the synthetic env's networks (auto: 32 for scb as Liesen et al., 83 for mdp as Ferreira et al.
    on CartPole, 64,64 for reward)."""
    activation: str = "auto"
    """Hidden activation of the synthetic env's networks (auto: relu for scb, leaky_relu for mdp and reward)."""
    obs_scaling: Literal["none", "bounds", "box"] = "none"
    """scb: none (the reference) or bounds -- the SCB's networks work on observations scaled to [-1, 1] by the real
    env's observation box (``observation_scaling``; for envs with tiny or large observation ranges such as
    MountainCarContinuous or Pendulum) -- or box: bounds, and the learned contexts are squashed (tanh) into the box
    in its bounded dimensions. Agents see raw observations either way."""
    reward_head: Literal["mlp", "quadratic"] = "mlp"
    """scb: the reward network scores [state, action] (mlp, the reference) or maps the state to a concave quadratic
    in the action with one maximum inside the action box (quadratic; continuous actions only) -- every learner,
    greedy or gradient-based, then finds the same best action, which helps held-out TD3/DDPG agents."""
    latent_dim: int | None = None
    """Latent size of a learned initial-state network (default: the observation size, as the reference)."""
    initial_state: Literal["real", "learned"] = "real"
    """mdp: initial states drawn from the real env (Ferreira et al.) or from a learned network over a latent."""
    transition: Literal["direct", "delta"] = "direct"
    """mdp: the transition head outputs the next state (Ferreira et al.) or its change."""
    reward_mode: Literal["additive", "exclusive"] = "additive"
    """reward: the learned reward is added to the real one or replaces it."""
    potential: bool = True
    """reward: potential-based shaping gamma Phi(s') - Phi(s) (else an MLP over [state, action])."""
    reward_gamma: float = 0.99
    """reward: the gamma of the potential-based shaping."""
    init_env: str | None = None
    """Start the ES mean from the genome of this saved synthetic env (a path or a shipped name) instead of the
    networks' default initialisation -- e.g. refine with RL inner loops an env found with the bandit learner. Its
    kind, real env and architecture (widths, activation, latent size, observation scaling) must be this run's."""
    agent_hidden: str = "64,64"
    """Hidden widths of the inner agents' networks."""
    agent_activation: str = "auto"
    """Hidden activation of the inner agents (auto: tanh discrete, relu continuous, as the reference)."""
    strategy: Literal["snes", "open_es", "cma_es", "sep_cma_es", "pgpe", "cem"] = "snes"
    """Evolution strategy: snes (reference) or open_es (OpenES + Adam, even popsize); also cma_es, sep_cma_es
    (sigma = initial step size, es-lr = mean learning rate c_m, auto 1.0), pgpe (PGPE + ClipUp: sigma = initial
    stdev, es-lr = centre learning rate, auto 0.05; even popsize) and cem (es-lr unused)."""
    popsize: int = 32
    """ES population size (reference: 64-256)."""
    generations: int = 50
    """Number of ES generations."""
    sigma: float = 0.05
    """Initial ES noise scale (reference: 0.05)."""
    es_lr: float | None = None
    """SNES lrate_mean (auto 1.0) or OpenES Adam lr (auto 0.05)."""
    temperature: float = 0.0
    """SNES rank-weight temperature (0 = NES utilities with baseline, as the reference)."""
    horizon_start: int | None = None
    """Evaluation-horizon curriculum: the fitness episodes' step budget grows (or shrinks) linearly from this to
    max_steps (default: the env's time limit) over the generations. None: no curriculum."""
    ppo_epochs: int = 4
    """PPO epochs per rollout (reference: 10; fewer is much faster on CPUs, a bandit needs few)."""
    ppo_minibatches: int = 2
    """PPO minibatches per epoch (reference: 10); must divide 5 envs x num_steps."""
    dqn_train_frequency: int = 2
    """DQN env iterations (10 env steps each) per gradient step (reference: 1)."""
    bandit_noise: float = 0.0
    """bandit learner: exploration noise of its fitness episodes (Gaussian, times the action half-range; Gumbel
    temperature for discrete actions) unless deterministic_eval; 0: greedy (noise smooths the fitness landscape the
    way the reference's sampled PPO/SAC actions do)."""
    eval_agents: int = 2
    """Agents per algorithm (random hyperparameters each) for the periodic ES-mean evaluation."""
    final_seeds: int = 8
    """Agents per algorithm (random hyperparameters each) for the final evaluation of the saved envs."""

    strategy_fields: ClassVar[tuple[str, ...]] = ("temperature",)

    def validate(self) -> None:
        super().validate()
        check_ints(self, ["inner_steps", "agents", "eval_agents", "ppo_epochs", "ppo_minibatches",
                          "dqn_train_frequency"])
        if self.inner_steps < 100:
            raise ValueError(f"inner_steps={self.inner_steps}: expected >= 100 synthetic steps")
        if self.final_seeds < 0:
            raise ValueError(f"final_seeds={self.final_seeds}: expected >= 0")
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}: expected one of {list(KINDS)}")
        if self.agent_activation != "auto" and self.agent_activation not in ACTIVATIONS:
            raise ValueError(f"agent_activation={self.agent_activation!r}: expected auto or one of {list(ACTIVATIONS)}")
        if self.obs_scaling not in ("none", "bounds", "box"):
            raise ValueError(f"obs_scaling={self.obs_scaling!r}: expected 'none', 'bounds' or 'box'")
        if self.obs_scaling != "none" and self.kind != "scb":
            raise ValueError(f"obs_scaling={self.obs_scaling!r} applies to kind='scb' only, got kind={self.kind!r}")
        if self.reward_head not in ("mlp", "quadratic"):
            raise ValueError(f"reward_head={self.reward_head!r}: expected 'mlp' or 'quadratic'")
        if self.reward_head != "mlp" and self.kind != "scb":
            raise ValueError(f"reward_head={self.reward_head!r} applies to kind='scb' only, got kind={self.kind!r}")
        if self.initial_state not in ("real", "learned"):
            raise ValueError(f"initial_state={self.initial_state!r}: expected 'real' or 'learned'")
        if self.transition not in ("direct", "delta"):
            raise ValueError(f"transition={self.transition!r}: expected 'direct' or 'delta'")
        if self.reward_mode not in ("additive", "exclusive"):
            raise ValueError(f"reward_mode={self.reward_mode!r}: expected 'additive' or 'exclusive'")
        if not (math.isfinite(self.reward_gamma) and 0 <= self.reward_gamma <= 1):
            raise ValueError(f"reward_gamma={self.reward_gamma!r}: expected a number in [0, 1]")
        if not (math.isfinite(self.bandit_noise) and self.bandit_noise >= 0):
            raise ValueError(f"bandit_noise={self.bandit_noise!r}: expected a finite number >= 0")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature={self.temperature!r}: expected >= 0")
        if self.hparams not in ("sampled", "default"):
            raise ValueError(f"hparams={self.hparams!r}: expected 'sampled' or 'default'")
        if self.horizon_start is not None and self.horizon_start < 1:
            raise ValueError(f"horizon_start={self.horizon_start}: expected a positive integer")
        if self.latent_dim is not None and self.latent_dim < 1:
            raise ValueError(f"latent_dim={self.latent_dim}: expected a positive integer")
        if self.backend not in ("auto", "native"):
            raise ValueError(f"backend={self.backend!r}: synthetic-env fitness runs on native torch envs; expected "
                             "'auto' or 'native'")
        if self.hidden != "auto":
            parse_hidden(self.hidden)
        parse_hidden(self.agent_hidden)
        parse_algos(self.algos, None)

    def env_hidden(self) -> tuple[int, ...]:
        """The synthetic env's hidden widths (``hidden`` with ``auto`` resolved by kind)."""
        if self.hidden == "auto":
            return {"scb": (32,), "mdp": (83,), "reward": (64, 64)}[self.kind]
        return parse_hidden(self.hidden)

    def env_activation(self) -> str:
        """The synthetic env's hidden activation (``activation`` with ``auto`` resolved by kind)."""
        if self.activation == "auto":
            return "relu" if self.kind == "scb" else "leaky_relu"
        return self.activation


KINDS = ("scb", "mdp", "reward")


def make_synthetic_env(config: SynthEnvConfig, real_env: FunctionalEnv) -> SyntheticEnvBase:
    """The (genome-less) synthetic env of ``config.kind`` mirroring ``real_env``."""
    hidden, act = config.env_hidden(), config.env_activation()
    if config.kind == "scb":
        loc = scale = squash = None
        if config.obs_scaling != "none":
            loc, scale, bounded = observation_scaling(config.env, with_bounded=True)
            squash = bounded if config.obs_scaling == "box" else None
        return SyntheticContextualBandit(real_env.spec, hidden, config.latent_dim, act, obs_loc=loc, obs_scale=scale,
                                         obs_squash=squash, reward_head=config.reward_head)
    if config.kind == "mdp":
        return SyntheticMDP(real_env, hidden, act, transition=config.transition, initial_state=config.initial_state,
                            latent_dim=config.latent_dim)
    return RewardNetworkEnv(real_env, config.reward_gamma, config.reward_mode, config.potential, hidden, act)


def parse_algos(algos: str, discrete: bool | None, kind: str = "scb") -> list[str]:
    """``"ppo,dqn"`` -> ``["ppo", "dqn"]`` checked against the registry (and the action space when known)."""
    if algos == "auto":
        if discrete is None:
            return []
        if kind != "scb":
            return ["dqn"] if discrete else ["td3"]
        return ["ppo", "dqn"] if discrete else ["ppo", "td3"]
    names = [a.strip().lower() for a in algos.split(",") if a.strip()]
    if not names:
        raise ValueError(f"algos={algos!r}: expected a comma-separated list such as 'ppo,dqn'")
    bad = [a for a in names if a not in INNER_ALGOS]
    if bad:
        raise ValueError(f"algos={algos!r}: unknown algorithm(s) {bad}; expected some of {list(INNER_ALGOS)}")
    if discrete is not None:
        space = "discrete" if discrete else "continuous"
        wrong = [a for a in names if space not in AGENTS[a].action_spaces]
        if wrong:
            raise ValueError(f"algos={algos!r}: {wrong} cannot act in a {space} action space")
    return names


# ---------------------------------------------------------------------------------------------------- inner algorithms
def train_on_synthetic(
    algo: InnerAlgo,
    synth: SyntheticEnvBase,
    genomes: Tensor,
    agents: int,
    config: Any,
    keys: Tensor,
    env_seed: int,
) -> Tensor:
    """Train ``agents`` agents on each of ``genomes [P, G]`` at once: member ``p * agents + a`` trains on genome ``p``
    with key ``keys[p * agents + a]``. Returns the trained parameters ``[P * agents, ...]``."""
    p = genomes.shape[0]
    m = p * agents
    env = synth.with_crn_period(algo.num_envs)  # same random draws for every member (common random numbers)
    params = SyntheticEnvParams(genomes.repeat_interleave(agents * algo.num_envs, dim=0))
    gen = torch.Generator(device=genomes.device).manual_seed(env_seed)
    trained, _ = algo.train(config, env, params, gen, m, keys=keys)
    return trained


def iqm(x: Tensor) -> float:
    """Interquartile mean of ``x [N]``: the mean of the middle 50% (``floor(N / 4)`` dropped at each end)."""
    v = x.flatten().sort().values
    k = v.numel() // 4
    return float(v[k:v.numel() - k].mean())


# ---------------------------------------------------------------------------------------------------- the ES problem
class SynthEnvProblem:
    """The SCB fitness for :func:`torch_distill.runner.run_es` (module docstring)."""

    def __init__(self, config: SynthEnvConfig, real_env: FunctionalEnv, device: torch.device) -> None:
        config.validate()
        self.cfg = config
        self.device = device
        self.real_env = real_env
        self.spec = real_env.spec
        self.algos = parse_algos(config.algos, self.spec.discrete, config.kind)
        act = config.agent_activation if config.agent_activation != "auto" else ("tanh" if self.spec.discrete else "relu")
        self.agent_activation = act
        hidden = parse_hidden(config.agent_hidden)
        self.inner = {a: make_agent(a, self.spec, config.inner_steps, hidden, act, kind=config.kind,
                                    ppo_epochs=config.ppo_epochs, ppo_minibatches=config.ppo_minibatches,
                                    dqn_train_frequency=config.dqn_train_frequency, bandit_noise=config.bandit_noise)
                      for a in self.algos}
        self.synth = make_synthetic_env(config, real_env)
        self.num_dims = self.synth.num_params
        self.horizon_end = int(config.max_steps or self.spec.max_episode_steps)
        self._init_env_genome: Tensor | None = None  # --init-env's genome, loaded once

    def initial_mean(self) -> Tensor:
        if self.cfg.init_env is not None:
            if self._init_env_genome is None:
                self._init_env_genome = self.init_env_genome(self.cfg.init_env)
            return self._init_env_genome
        gen = torch.Generator(device=self.device).manual_seed(derive_seed(self.cfg.seed, -1, Streams.INIT))
        return self.synth.init_genome(gen)[0]

    def init_env_genome(self, name: str) -> Tensor:
        """The genome of the saved env ``name``, checked against this run's synthetic env (ValueError naming what
        differs)."""
        loaded = load_synthetic_env(name, self.device)
        mine, theirs = self.synth.architecture(), loaded.architecture()
        if loaded.kind != self.synth.kind or loaded.real_spec.env_id != self.spec.env_id:
            raise ValueError(f"init_env={name!r} is a {loaded.kind} env of {loaded.real_spec.env_id}, expected a "
                             f"{self.synth.kind} env of {self.spec.env_id}")
        diff = sorted(k for k in set(mine) | set(theirs) if k != "layout" and mine.get(k) != theirs.get(k))
        if diff or loaded.num_params != self.num_dims:
            detail = ", ".join(f"{k}: file {theirs.get(k)!r} vs run {mine.get(k)!r}" for k in diff)
            raise ValueError(f"init_env={name!r}: architecture differs from this run's ({detail or 'genome size'}); "
                             f"pass the matching --hidden/--activation/--latent-dim/--obs-scaling/--reward-head options")
        return loaded.genome.to(self.device)

    def algo_of(self, generation: int) -> str:
        return self.algos[generation % len(self.algos)]

    def horizon(self, generation: int) -> int:
        """Fitness episode step budget of ``generation`` (linear curriculum when ``horizon_start`` is set)."""
        h0 = self.cfg.horizon_start
        if h0 is None:
            return self.horizon_end
        frac = min(1.0, generation / max(1, self.cfg.generations - 1))
        return max(1, round(h0 + (self.horizon_end - h0) * frac))

    def generation_setup(self, generation: int, num_members: int) -> tuple[InnerAlgo, Any, Tensor, int]:
        """``(algo, config, keys [num_members], env_seed)`` of ``generation``: the same hyperparameters and agent keys
        for every candidate (keys differ only across the ``agents`` of one candidate)."""
        algo = self.inner[self.algo_of(generation)]
        cfg = algo.config
        if self.cfg.hparams == "sampled":
            gen = torch.Generator(device=self.device).manual_seed(derive_seed(self.cfg.seed, generation, _HPARAMS))
            cfg, _ = algo.sample_config(num_members, gen, shared=True)
        keys = make_keys(derive_seed(self.cfg.seed, generation, _AGENTS) & 0x7FFFFFFF, self.cfg.agents, self.device)
        keys = keys.repeat(num_members // self.cfg.agents)
        return algo, cfg, keys, derive_seed(self.cfg.seed, generation, _SYNTH)

    def evaluate_agents(self, algo: InnerAlgo, params: Tensor, episodes: int, seed: int, horizon: int,
                        deterministic: bool | None = None, config: Any = None) -> tuple[Tensor, Tensor, Tensor]:
        """Real-env returns ``[M, episodes]`` (same start states for every agent), steps within episodes (0-dim
        tensor) and env steps executed (0-dim; the rollout stops once every episode ended). Actions are sampled from the agents' policies unless ``deterministic_eval``
        (or the algorithm's policy is deterministic); the same action noise for every agent (common random numbers)."""
        gen = torch.Generator(device=self.device).manual_seed(seed)
        act_gen = torch.Generator(device=self.device).manual_seed(derive_seed(seed, 0, _ACTIONS))
        det = self.cfg.deterministic_eval if deterministic is None else deterministic
        res = evaluate_functional(algo.policy(det, act_gen, config), params, self.real_env, episodes, gen,
                                  max_steps=horizon)
        return res.returns, res.lengths.sum(), res.env_steps

    def fitness(self, genomes: Tensor, generation: int) -> tuple[Tensor, dict[str, Tensor]]:
        p, r = genomes.shape[0], self.cfg.agents
        algo, cfg, keys, env_seed = self.generation_setup(generation, p * r)
        params = train_on_synthetic(algo, self.synth, genomes, r, cfg, keys, env_seed)
        ret, ep_steps, env_steps = self.evaluate_agents(
            algo, params, self.cfg.episodes, derive_seed(self.cfg.seed, generation, Streams.ENV), self.horizon(generation),
            config=cfg)
        fit = ret.reshape(p, r * self.cfg.episodes).mean(-1)
        return fit, {"env_steps": env_steps.float(), "episode_steps": ep_steps.float()}

    def evaluate_genome(self, genome: Tensor, agents: int, episodes: int, seed: int,
                        deterministic: bool | None = None,
                        progress: Callable[[int], Any] | None = None) -> dict[str, AlgoEvalResult]:
        """Train ``agents`` agents per algorithm (each with its own random hyperparameters and key) on ``genome [G]``
        and evaluate them on the real env (full horizon; greedy if ``deterministic``, default the config's
        ``deterministic_eval``); ``progress(k)`` is called as each group of ``k`` agents is trained and evaluated."""
        out = {}
        for i, name in enumerate(self.algos):
            algo = self.inner[name]
            gen = torch.Generator(device=self.device).manual_seed(derive_seed(seed, i, _HPARAMS))
            keys = make_keys(derive_seed(seed, i, _AGENTS) & 0x7FFFFFFF, agents, self.device)
            # agents with sampled network shapes cannot share one vectorised population: one group per agent
            groups = [slice(a, a + 1) for a in range(agents)] if (algo.structural and self.cfg.hparams == "sampled") \
                else [slice(0, agents)]
            rets, steps = [], 0.0
            for j, g in enumerate(groups):
                n = g.stop - g.start
                cfg = algo.config
                if self.cfg.hparams == "sampled":
                    cfg, _ = algo.sample_config(n, gen, shared=False)
                params = train_on_synthetic(algo, self.synth, genome.unsqueeze(0), n, cfg, keys[g],
                                            derive_seed(seed, i, _SYNTH) + j)
                ret, ep_steps, _ = self.evaluate_agents(algo, params, episodes, derive_seed(seed, i, Streams.ENV),
                                                        self.horizon_end, deterministic, cfg)
                rets.append(ret)
                steps += float(ep_steps)
                if progress is not None:
                    progress(n)
            out[name] = AlgoEvalResult.from_returns(name, torch.cat(rets), self.cfg.inner_steps, steps)
        return out

    def evaluate_mean(self, mean: Tensor, generation: int) -> dict[str, float]:
        res = self.evaluate_genome(mean, self.cfg.eval_agents, self.cfg.eval_episodes,
                                   derive_seed(self.cfg.seed, generation, Streams.MEAN_EVAL))
        allm = torch.cat([torch.tensor(r.per_agent) for r in res.values()])
        out = {"return_mean": float(allm.mean())}
        out.update({f"return_{k}": v.return_mean for k, v in res.items()})
        return out

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@dataclass
class AlgoEvalResult:
    """Real-env returns of agents of one algorithm trained on a synthetic env."""

    algo: str
    per_agent: list[float]  # mean greedy return of each agent over the episodes
    iqm: float  # interquartile mean of per_agent
    return_mean: float
    return_std: float  # spread across agents
    return_min: float
    episodes: int
    synthetic_steps_per_agent: int
    real_eval_steps: float  # real-env steps within the evaluation episodes (all agents)

    @classmethod
    def from_returns(cls, algo: str, returns: Tensor, synthetic_steps: int, real_steps: float) -> AlgoEvalResult:
        per = returns.float().mean(-1).cpu()
        return cls(algo, [float(x) for x in per], iqm(per), float(per.mean()),
                   float(per.std()) if per.numel() > 1 else 0.0, float(per.min()), int(returns.shape[-1]),
                   synthetic_steps, real_steps)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_synthetic_env(
    env: SyntheticEnvBase | str,
    algos: str = "auto",
    seeds: int = 8,
    episodes: int = 100,
    inner_steps: int | None = None,
    hparams: Literal["sampled", "default"] = "sampled",
    seed: int = 12345,
    device: torch.device | str = "cpu",
    deterministic: bool = False,
    progress: bool | None = None,
) -> dict[str, AlgoEvalResult]:
    """Train ``seeds`` fresh agents per algorithm (random hyperparameters from the reference lists) on a synthetic env
    (or a saved file) and report their greedy returns on the real env (IQM, mean, spread); ``progress`` draws a
    bar of the agents done (default: when stderr is a terminal, :func:`~torch_distill.log.progress_enabled`).

    ``inner_steps`` defaults to the one recorded in the file (else 10k). The agents' architecture is the recorded one
    (else 64,64 with tanh for discrete, relu for continuous actions). Agents sample actions from their policies
    (as the reference) unless ``deterministic``; DQN and TD3/DDPG always act greedily.
    """
    from torch_distill.envs.vec import make_native

    device = torch.device(device)
    if isinstance(env, str):
        env = load_synthetic_env(env, device)
    meta = getattr(env, "metadata", {}) or {}
    rec = (meta.get("config") or {})
    if env.genome is None:
        raise ValueError("evaluate_synthetic_env: the env carries no genome (load one or pass genome= to the env)")
    cfg = SynthEnvConfig(env=env.real_spec.env_id, kind=env.kind, algos=algos,
                         inner_steps=int(inner_steps or rec.get("inner_steps", 10_000)), hparams=hparams,
                         agent_hidden=rec.get("agent_hidden", "64,64"), agent_activation=rec.get("agent_activation", "auto"),
                         ppo_epochs=int(rec.get("ppo_epochs", 4)), ppo_minibatches=int(rec.get("ppo_minibatches", 2)),
                         dqn_train_frequency=int(rec.get("dqn_train_frequency", 2)),
                         final_seeds=seeds, eval_agents=max(1, seeds), seed=seed, device=str(device))
    real_env = getattr(env, "real_env", None) or make_native(env.real_spec.env_id)
    problem = SynthEnvProblem(cfg, real_env, device)
    problem.synth = env.with_crn_period(None)
    agents = max(1, seeds)
    with progress_bar(agents * len(problem.algos), f"training agents ({', '.join(problem.algos)})", "agent",
                      progress) as bar:
        return problem.evaluate_genome(env.genome.to(device), agents, episodes, seed, deterministic, bar.update)


# ---------------------------------------------------------------------------------------------------- orchestration
class SynthEnvSearch(SearchMethod):
    """The synthetic-env search for :func:`~torch_distill.search.run_search`: saves the final (and best) ES mean as
    ``env.safetensors`` (``env_best.safetensors``), each evaluated by ``final_seeds`` fresh agents per algorithm."""

    artefact = "env"

    def __init__(self, config: SynthEnvConfig, device: torch.device, resumed: bool) -> None:
        from torch_distill.envs.vec import make_native

        self.problem = SynthEnvProblem(config, make_native(config.env), device)
        if config.init_env is not None and not resumed:
            self.problem.initial_mean()  # loads and checks --init-env: a clear error before the run folder exists
        if not resumed:  # "auto" algorithms recorded resolved: resumes stay exact
            config = dataclasses.replace(config, algos=",".join(self.problem.algos))
        self.config = config
        self.inner_json = {a: x.to_json() for a, x in self.problem.inner.items()}

    def run_name(self) -> str:
        return f"{self.config.env}-synth-{self.config.kind}-s{self.config.seed}"

    def record(self) -> dict[str, Any]:
        p = self.problem
        return {"config": asdict(self.config), "env": p.spec.to_json(), "architecture": p.synth.architecture(),
                "num_params": p.num_dims, "strategy_kwargs": self.config.strategy_kwargs(), "inner": self.inner_json}

    def banner(self, where: str) -> str:
        c, p = self.config, self.problem
        return (f"synthetic env ({c.kind.upper()}) for {c.env} [native, {where}]: genome {p.num_dims} params "
                f"(hidden {','.join(map(str, c.env_hidden()))}), {c.strategy} popsize {c.popsize}, "
                f"{c.generations} generations; inner {','.join(p.algos)} x {c.inner_steps} synthetic steps, "
                f"{c.agents} agent(s) x {c.episodes} real episodes per candidate")

    def title(self) -> str:
        return f"{self.config.kind.upper()} {self.config.env}"

    def finish(self, candidate: Candidate, run_dir: Path) -> Finished:
        from torch_distill.envs.synthetic import save_synthetic_env

        c = self.config
        evals = (self.problem.evaluate_genome(candidate.mean, c.final_seeds, c.final_episodes, candidate.seed)
                 if c.final_seeds else {})
        meta = {**candidate.metadata(), "config": asdict(c), "inner": self.inner_json,
                "eval": {k: {"iqm": v.iqm, "return_mean": v.return_mean, "return_std_across_agents": v.return_std,
                             "agents": len(v.per_agent), "episodes_per_agent": v.episodes,
                             "synthetic_steps_per_agent": v.synthetic_steps_per_agent} for k, v in evals.items()}}
        path = candidate.file(run_dir, "env")
        save_synthetic_env(path, self.problem.synth, candidate.mean, meta)
        rows = [{"env": f"{candidate.which} (gen {candidate.generation})", "algo": k, "agents": len(v.per_agent),
                 "episodes each": v.episodes, "IQM": v.iqm, "mean": v.return_mean, "spread (std)": v.return_std,
                 "worst agent": v.return_min, "synthetic steps": v.synthetic_steps_per_agent}
                for k, v in evals.items()]
        return Finished(path, {k: v.to_json() for k, v in evals.items()}, rows)

    def summary(self, common: dict[str, Any], entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
        c = self.config
        synth_steps = float(common["generations"]) * c.popsize * c.agents * c.inner_steps
        return {"kind": c.kind, **common, "synthetic_steps": synth_steps, "num_params": self.problem.num_dims,
                "envs": entries, "env_file": entries["final"]["path"]}

    def headline(self, summary: dict[str, Any]) -> str:
        return (f"Synthetic envs after {summary['generations']} generations, {summary['train_time_s']:.1f}s, "
                f"{summary['episode_steps'] / 1e6:.2f}M real-env steps in episodes, "
                f"{summary['synthetic_steps'] / 1e6:.1f}M synthetic steps; fresh agents with random hyperparameters, "
                "greedy real-env returns:")


def run_synth_env(config: SynthEnvConfig, resume: str | None = None,
                  resume_overrides: Collection[str] = ()) -> dict[str, Any]:
    """Run the synthetic-env search end to end: ES loop, final evaluation, env files, summary (rank 0 writes; every
    rank computes).

    Writes ``env.safetensors`` (final ES mean) and, when a periodic evaluation found a better mean,
    ``env_best.safetensors`` -- each loads back with :func:`~torch_distill.envs.synthetic.load_synthetic_env`.
    Returns the summary dict (rank 0) or ``{}`` (other ranks); ``resume`` as :func:`~torch_distill.search.run_search`.
    """
    return run_search(config, SynthEnvSearch, resume, resume_overrides)
