"""Synthetic contextual bandits (envs/synthetic/) and the SCB search (algorithms/synthetic_env.py).

CI tests: the SCB env contract (shapes, params as a batch, determinism, common latents, bad input), genome layout and
size, a population fitness equal to separate single-genome fitnesses, file round trip and corrupt files, and a tiny
end-to-end ``run_synth_env``. The learning run is marked ``slow``.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from torch_distill.algorithms.synthetic_env import (
    SynthEnvConfig,
    SynthEnvProblem,
    evaluate_synthetic_env,
    iqm,
    run_synth_env,
)
from torch_distill.envs.classic_control import make_classic_control
from torch_distill.envs.synthetic import (
    SCBParams,
    SyntheticContextualBandit,
    SyntheticEnvFileError,
    load_synthetic_env,
    save_synthetic_env,
)
from torch_distill.envs.vec import make_native


def _scb(env_id: str = "CartPole-v1", **kw) -> SyntheticContextualBandit:
    return SyntheticContextualBandit(make_classic_control(env_id).spec, **kw)


# ---------------------------------------------------------------------------------------------------- env contract
@pytest.mark.parametrize("env_id,size", [("CartPole-v1", 549), ("Acrobot-v1", 6 * 32 + 32 + 32 * 6 + 6 + (6 + 3) * 32 + 32 + 33),
                                         ("Pendulum-v1", 420)])
def test_genome_size_matches_reference_architecture(env_id, size):
    env = _scb(env_id)
    assert env.num_params == size  # CartPole: the reference's 549
    assert sum(math.prod(s) for _, s in env.layout()) == size
    assert env.spec.obs_shape == env.real_spec.obs_shape and env.spec.max_episode_steps == 1
    assert (env.spec.discrete, env.spec.n_actions, env.spec.action_dim) == (
        env.real_spec.discrete, env.real_spec.n_actions, env.real_spec.action_dim)


def test_scb_reset_step_shapes_and_semantics():
    env = _scb()
    gen = torch.Generator().manual_seed(0)
    genome = env.init_genome(gen)[0]
    state, obs = env.reset(7, gen, SCBParams(genome))
    assert obs.shape == (7, 4) and obs.dtype == torch.float32 and torch.equal(state.obs, obs)
    action = torch.tensor([0, 1, 0, 1, 1, 0, 1])
    _, obs2, reward, term, trunc = env.step(state, action, gen, SCBParams(genome))
    assert reward.shape == (7,) and reward.dtype == torch.float32
    assert term.dtype == torch.bool and term.all() and not trunc.any()  # episode length 1
    assert obs2.shape == (7, 4) and not torch.allclose(obs2, obs)  # auto-reset: fresh contexts
    # the reward is the reward MLP over [obs, one_hot(action)], the obs the initial-state MLP of z (by hand)
    w = env.unflatten(genome)
    x = torch.cat([obs, torch.nn.functional.one_hot(action, 2).float()], -1)
    r = torch.relu(x @ w["reward.0.weight"] + w["reward.0.bias"]) @ w["reward.1.weight"] + w["reward.1.bias"]
    torch.testing.assert_close(reward, r.squeeze(-1))
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(5))
    o = torch.relu(z @ w["initial_state.0.weight"] + w["initial_state.0.bias"]) @ w["initial_state.1.weight"] + w["initial_state.1.bias"]
    torch.testing.assert_close(env.initial_obs(genome, z), o)
    # default params: the default init of seed 0; None works
    _, o_def = env.reset(3, torch.Generator().manual_seed(1))
    assert o_def.shape == (3, 4)


def test_scb_params_as_a_batch_and_determinism():
    env = _scb()
    genomes = env.init_genome(torch.Generator().manual_seed(3), 3)  # [3, G]
    rows = genomes.repeat_interleave(2, 0)  # member-major, 2 rows per genome
    state, obs = env.reset(6, torch.Generator().manual_seed(0), SCBParams(rows))
    a = torch.tensor([0, 1, 1, 0, 1, 1])
    _, _, reward, _, _ = env.step(state, a, torch.Generator().manual_seed(1), SCBParams(rows))
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    for m in range(3):  # rows of member m == the env with genome m broadcast (0-dim params)
        sl = slice(2 * m, 2 * m + 2)
        torch.testing.assert_close(obs[sl], env.initial_obs(genomes[m], z[sl]))
        torch.testing.assert_close(reward[sl], env.reward(genomes[m], obs[sl], a[sl]))
    # determinism: same seed, same result; different seed, different result
    run = lambda seed: env.step(*env.reset(6, torch.Generator().manual_seed(seed), SCBParams(rows))[:1], a,
                                torch.Generator().manual_seed(seed), SCBParams(rows))[1:3]
    for x, y in zip(run(4), run(4)):
        assert torch.equal(x, y)
    assert not torch.equal(run(4)[0], run(5)[0])
    # common latents: with latent_period=2 every member sees the same two latents
    crn = env.with_latent_period(2)
    _, o = crn.reset(6, torch.Generator().manual_seed(0), SCBParams(genomes[0]))
    assert torch.equal(o[0:2], o[2:4]) and torch.equal(o[0:2], o[4:6]) and not torch.equal(o[0], o[1])
    with pytest.raises(ValueError, match="latent_period=2"):
        crn.reset(5, torch.Generator(), SCBParams(genomes[0]))


def test_scb_continuous_actions_are_clipped():
    env = _scb("Pendulum-v1")
    g = env.init_genome(torch.Generator().manual_seed(0))[0]
    state, _ = env.reset(2, torch.Generator(), SCBParams(g))
    r_big = env.step(state, torch.tensor([[5.0], [-7.0]]), torch.Generator(), SCBParams(g))[2]
    r_clip = env.step(state, torch.tensor([[2.0], [-2.0]]), torch.Generator(), SCBParams(g))[2]
    torch.testing.assert_close(r_big, r_clip)


def test_scb_bad_input():
    env = _scb()
    with pytest.raises(ValueError, match=r"genome has shape \(3, 549\), expected \(549,\) or \(4, 549\)"):
        env.reset(4, torch.Generator(), SCBParams(torch.zeros(3, 549)))
    state, _ = env.reset(4, torch.Generator())
    with pytest.raises(ValueError, match="expected \\(4,\\) integer actions"):
        env.step(state, torch.zeros(4, 2), torch.Generator())
    with pytest.raises(ValueError, match="vector observations"):
        from torch_distill.envs.core import EnvSpec
        SyntheticContextualBandit(EnvSpec("img", (3, 8, 8), True, n_actions=2))
    with pytest.raises(ValueError, match="genome has shape"):
        SyntheticContextualBandit(env.real_spec, genome=torch.zeros(10))


# ---------------------------------------------------------------------------------------------------- problem
def _tiny_config(**kw) -> SynthEnvConfig:
    base = dict(env="CartPole-v1", inner_steps=200, popsize=3, episodes=3, max_steps=60, agents=2, agent_hidden="16",
                eval_agents=1, eval_episodes=2)
    return SynthEnvConfig(**{**base, **kw})


def test_population_fitness_equals_separate_evaluations():
    """3 genomes evaluated as one population == 3 single-genome evaluations (PPO, SAC and DQN generations)."""
    cfg = _tiny_config(algos="ppo,sac,dqn")
    problem = SynthEnvProblem(cfg, make_native(cfg.env), torch.device("cpu"))
    assert problem.algos == ["ppo", "sac", "dqn"] and problem.num_dims == 549
    assert SynthEnvProblem(_tiny_config(), make_native(cfg.env), torch.device("cpu")).algos == ["ppo", "dqn"]
    mean = problem.initial_mean()
    genomes = mean + 0.5 * torch.randn(3, mean.numel(), generator=torch.Generator().manual_seed(0))
    for generation in (0, 1, 2):
        fit, stats = problem.fitness(genomes, generation)
        assert fit.shape == (3,) and torch.isfinite(fit).all()
        rows = 3 * 2 * 3  # candidates x agents x episodes
        executed = float(stats["env_steps"])  # the rollout stops at the first 16-step check after every row ended
        assert 0 < float(stats["episode_steps"]) <= executed <= rows * 60 and executed % (rows * 4) == 0
        assert executed == rows * 60 or executed % (rows * 16) == 0
        separate = torch.cat([problem.fitness(genomes[i:i + 1], generation)[0] for i in range(3)])
        torch.testing.assert_close(fit, separate)
    # the generation's hyperparameters and keys are shared by every candidate (common random numbers)
    _, cfg0, keys, _ = problem.generation_setup(0, 6)
    assert torch.all(cfg0.lr == cfg0.lr[0]) and torch.equal(keys[:2], keys[2:4]) and keys[0] != keys[1]
    assert problem.algo_of(3) == "ppo" and problem.algo_of(4) == "sac" and problem.algo_of(5) == "dqn"


def test_horizon_curriculum_and_iqm():
    cfg = _tiny_config(horizon_start=20, generations=5, max_steps=100)
    problem = SynthEnvProblem(cfg, make_native(cfg.env), torch.device("cpu"))
    assert [problem.horizon(g) for g in range(5)] == [20, 40, 60, 80, 100]
    assert iqm(torch.tensor([0.0, 1.0, 2.0, 3.0, 100.0, -100.0, 2.0, 1.0])) == pytest.approx(1.5)


def test_config_bad_input():
    with pytest.raises(ValueError, match="unknown algorithm"):
        _tiny_config(algos="ppo,a2c").validate()
    with pytest.raises(ValueError, match="cannot act in a continuous"):
        SynthEnvProblem(_tiny_config(env="Pendulum-v1", algos="dqn"), make_native("Pendulum-v1"), torch.device("cpu"))
    with pytest.raises(ValueError, match="kind="):
        _tiny_config(kind="world-model").validate()
    with pytest.raises(ValueError, match="reward_mode="):
        _tiny_config(kind="reward", reward_mode="multiplicative").validate()
    with pytest.raises(ValueError, match="backend="):
        _tiny_config(backend="envpool").validate()
    with pytest.raises(ValueError, match="inner_steps"):
        _tiny_config(inner_steps=10).validate()


# ---------------------------------------------------------------------------------------------------- files
def test_save_load_round_trip(tmp_path):
    env = _scb(hidden=(8, 8))
    genome = env.init_genome(torch.Generator().manual_seed(2))[0]
    path = tmp_path / "scb.safetensors"
    save_synthetic_env(path, env, genome, {"note": "test"})
    loaded = load_synthetic_env(path)
    assert loaded.num_params == env.num_params and loaded.hidden == (8, 8)
    assert torch.equal(loaded.default_params().genome, genome)
    assert loaded.metadata["note"] == "test" and loaded.metadata["num_params"] == env.num_params
    a = torch.tensor([1, 0, 1])
    out1 = env.step(env.reset(3, torch.Generator().manual_seed(0), SCBParams(genome))[0], a, torch.Generator().manual_seed(1), SCBParams(genome))
    out2 = loaded.step(loaded.reset(3, torch.Generator().manual_seed(0))[0], a, torch.Generator().manual_seed(1))
    for x, y in zip(out1[1:], out2[1:]):
        assert torch.equal(x, y)
    # readable without this library: named layers in the file
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        assert torch.equal(f.get_tensor("reward.2.bias"), env.unflatten(genome)["reward.2.bias"])
        assert json.loads(f.metadata()["torch_distill"])["architecture"]["hidden"] == [8, 8]
    # bad files
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SyntheticEnvFileError, match="not a safetensors file"):
        load_synthetic_env(tmp_path / "junk.safetensors")
    with pytest.raises(SyntheticEnvFileError, match="no such"):
        load_synthetic_env(tmp_path / "missing.safetensors")
    with pytest.raises(SyntheticEnvFileError, match="NaN"):
        save_synthetic_env(tmp_path / "nan.safetensors", env, torch.full_like(genome, float("nan")))
    assert not (tmp_path / "nan.safetensors").exists()
    # a loaded env works through the gymnasium adapter
    from torch_distill.envs.gym_adapter import FunctionalVectorEnv
    venv = FunctionalVectorEnv(loaded, num_envs=4)
    obs, _ = venv.reset(seed=0)
    obs, reward, term, _, _ = venv.step(venv.action_space.sample())
    assert obs.shape == (4, 4) and reward.shape == (4,) and term.all()
    # ... and as a torchrl env that passes check_env_specs
    pytest.importorskip("torchrl")
    from torchrl.envs.utils import check_env_specs

    from torch_distill.envs.torchrl_adapter import TorchRLEnv
    trl = TorchRLEnv(loaded, num_envs=4)
    check_env_specs(trl)
    td = trl.rollout(3, break_when_any_done=False)  # every SCB step ends an episode (length 1)
    assert td.batch_size == torch.Size([4, 3])


def test_scb_observation_scaling(tmp_path):
    """obs_loc/obs_scale: the init network's output is mapped to loc + scale * out and the reward network sees
    (obs - loc) / scale -- the same rewards as an unscaled SCB on unit-scale observations; files keep the scaling
    (format version 2); bad scalings are refused."""
    from torch_distill.envs.synthetic import observation_scaling, read_synthetic_env_metadata

    loc, scale = observation_scaling("MountainCarContinuous-v0")
    torch.testing.assert_close(torch.tensor(loc), torch.tensor([-0.3, 0.0]))
    torch.testing.assert_close(torch.tensor(scale), torch.tensor([0.9, 0.07]))
    assert observation_scaling("CartPole-v1")[1][1] == 1.0  # unbounded velocity keeps scale 1
    plain = _scb("MountainCarContinuous-v0")
    scaled = _scb("MountainCarContinuous-v0", obs_loc=loc, obs_scale=scale)
    g = plain.init_genome(torch.Generator().manual_seed(0))[0]
    z = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    unit = plain.initial_obs(g, z)
    obs = scaled.initial_obs(g, z)
    torch.testing.assert_close(obs, torch.tensor(loc) + torch.tensor(scale) * unit)
    a = torch.rand(16, 1, generator=torch.Generator().manual_seed(2)) * 2 - 1
    torch.testing.assert_close(scaled.reward(g, obs, a), plain.reward(g, unit, a))
    path = tmp_path / "scaled.safetensors"
    save_synthetic_env(path, scaled, g)
    meta = read_synthetic_env_metadata(path)
    assert meta["format_version"] == 2 and meta["architecture"]["obs_scale"] == list(scale)
    loaded = load_synthetic_env(path)
    torch.testing.assert_close(loaded.initial_obs(g, z), obs)
    save_synthetic_env(tmp_path / "plain.safetensors", plain, g)
    assert read_synthetic_env_metadata(tmp_path / "plain.safetensors")["format_version"] == 1
    with pytest.raises(ValueError, match=r"obs_scale=\[1.0, 0.0\], expected positive"):
        _scb("MountainCarContinuous-v0", obs_scale=[1.0, 0.0])
    with pytest.raises(ValueError, match="expected 2 finite numbers"):
        _scb("MountainCarContinuous-v0", obs_loc=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="not a gymnasium env id"):
        observation_scaling("NoSuchEnv-v0")
    # obs_squash ("--obs-scaling box"): contexts stay inside the real observation box in the bounded dimensions
    loc, scale, bounded = observation_scaling("CartPole-v1", with_bounded=True)
    assert bounded == (True, False, True, False)
    box = _scb("CartPole-v1", obs_loc=loc, obs_scale=scale, obs_squash=bounded)
    big = box.init_genome(torch.Generator().manual_seed(3))[0] * 20
    ctx = box.initial_obs(big, torch.randn(2000, 4, generator=torch.Generator().manual_seed(4)))
    assert ctx[:, 0].abs().max() <= 4.8 + 1e-5 and ctx[:, 2].abs().max() <= 0.4189 + 1e-5
    assert ctx[:, 1].abs().max() > 4.8  # unbounded velocity: not squashed
    save_synthetic_env(tmp_path / "box.safetensors", box, big)
    again = load_synthetic_env(tmp_path / "box.safetensors")
    assert again.obs_squash == bounded
    torch.testing.assert_close(again.initial_obs(big, torch.ones(3, 4)), box.initial_obs(big, torch.ones(3, 4)))
    with pytest.raises(ValueError, match="obs_squash needs obs_loc/obs_scale"):
        _scb("CartPole-v1", obs_squash=bounded)
    with pytest.raises(ValueError, match="expected 4 booleans"):
        _scb("CartPole-v1", obs_loc=loc, obs_scale=scale, obs_squash=[True])
    with pytest.raises(ValueError, match="applies to kind='scb' only"):
        SynthEnvConfig(env="CartPole-v0", kind="mdp", obs_scaling="bounds").validate()
    with pytest.raises(ValueError, match="obs_scaling='cube'"):
        SynthEnvConfig(obs_scaling="cube").validate()


def test_scb_quadratic_reward_head(tmp_path):
    """reward_head='quadratic': r(s, a) = v - sum softplus(c) ((a - mu) / h)^2 with mu = mid + h tanh(m), checked by
    hand from the network outputs; mu(s) is the maximiser (the bandit grid's argmax is the grid point nearest it);
    files record the head (format version 3) and load back; discrete envs and bad names are refused."""
    from torch_distill.algorithms.rl.bandit import candidate_actions
    from torch_distill.envs.synthetic import read_synthetic_env_metadata

    env = _scb("MountainCarContinuous-v0", reward_head="quadratic")
    assert env.reward_net.sizes == [2, 32, 3] and env.num_params == (2 * 32 + 32 + 32 * 2 + 2) + (2 * 32 + 32 + 32 * 3 + 3)
    g = env.init_genome(torch.Generator().manual_seed(0))[0] * 3
    obs = env.initial_obs(g, torch.randn(64, 2, generator=torch.Generator().manual_seed(1)))
    a = torch.rand(64, 1, generator=torch.Generator().manual_seed(2)) * 2 - 1
    head = env.reward_net(env.split(g)[1], obs)  # mid 0, half-width 1 for MountainCarContinuous
    by_hand = head[:, 0] - torch.nn.functional.softplus(head[:, 2]) * (a[:, 0] - torch.tanh(head[:, 1])) ** 2
    torch.testing.assert_close(env.reward(g, obs, a), by_hand)
    mu = env.best_action(g, obs)
    torch.testing.assert_close(mu[:, 0], torch.tanh(head[:, 1]))
    assert (env.reward(g, obs, mu) >= env.reward(g, obs, (mu + 0.05).clamp(-1, 1)) - 1e-6).all()
    cand = candidate_actions(env.spec, 41, torch.Generator())
    scores = env.scores(env.split(g)[1].unsqueeze(0), obs.unsqueeze(0), env.action_input(cand))[0]  # [N, K]
    torch.testing.assert_close(scores[:, 7], env.reward(g, obs, cand[7].expand(64, 1)))
    nearest = (cand[:, 0].unsqueeze(0) - mu).abs().argmin(-1)
    # the grid point nearest mu scores best (ties where the curvature is ~0 aside: compare scores, not indices)
    torch.testing.assert_close(scores.max(-1).values, scores.gather(1, nearest.unsqueeze(1)).squeeze(1))
    save_synthetic_env(tmp_path / "quad.safetensors", env, g)
    meta = read_synthetic_env_metadata(tmp_path / "quad.safetensors")
    assert meta["format_version"] == 3 and meta["architecture"]["reward_head"] == "quadratic"
    again = load_synthetic_env(tmp_path / "quad.safetensors")
    torch.testing.assert_close(again.reward(again.genome, obs, a), env.reward(g, obs, a))
    assert _scb("Pendulum-v1").reward_head == "mlp"
    with pytest.raises(ValueError, match="reward_head='quadratic' needs continuous actions"):
        _scb("CartPole-v1", reward_head="quadratic")
    with pytest.raises(ValueError, match="reward_head='cubic'"):
        _scb("Pendulum-v1", reward_head="cubic")
    with pytest.raises(ValueError, match="applies to kind='scb' only"):
        SynthEnvConfig(env="CartPole-v0", kind="mdp", reward_head="quadratic").validate()


# ---------------------------------------------------------------------------------------------------- end to end
def test_run_synth_env_end_to_end(tmp_path, capsys):
    cfg = _tiny_config(popsize=4, generations=2, agents=1, eval_every=1, final_seeds=2, final_episodes=2,
                       out=str(tmp_path), name="run")
    summary = run_synth_env(cfg)
    run = tmp_path / "run"
    for f in ("config.json", "metrics.jsonl", "checkpoint.pt", "summary.json", "env.safetensors"):
        assert (run / f).is_file(), f
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2] and all("es_mean_return" in r for r in rows)
    assert summary["generations"] == 2 and set(summary["envs"]["final"]["eval"]) == {"ppo", "dqn"}
    assert summary["synthetic_steps"] == 2 * 4 * 200
    env = load_synthetic_env(summary["env_file"])
    assert env.num_params == 549 and env.metadata["config"]["inner_steps"] == 200
    out = capsys.readouterr().out
    assert "genome 549 params" in out and "IQM" in out
    # a saved env can be re-evaluated with fresh agents
    res = evaluate_synthetic_env(summary["env_file"], algos="ppo", seeds=2, episodes=2)
    assert set(res) == {"ppo"} and len(res["ppo"].per_agent) == 2
    # the run folder refuses a second run; resume of a finished run is a no-op that still writes the env
    with pytest.raises(FileExistsError):
        run_synth_env(cfg)


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    """A 2-generation run extended to 3 generations by --resume ends at the same ES mean as a 3-generation run."""
    base = dict(popsize=4, agents=1, eval_every=1, checkpoint_every=1, final_seeds=0, out=str(tmp_path))
    run_synth_env(_tiny_config(generations=3, name="full", **base))
    run_synth_env(_tiny_config(generations=2, name="part", **base))
    cfg_path = tmp_path / "part" / "config.json"
    stored = json.loads(cfg_path.read_text())
    stored["config"]["generations"] = 3
    cfg_path.write_text(json.dumps(stored))
    run_synth_env(SynthEnvConfig(), resume=str(tmp_path / "part"))
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    part = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)
    assert full["generation"] == part["generation"] == 3
    torch.testing.assert_close(full["es_state"]["mean"], part["es_state"]["mean"])
    torch.testing.assert_close(load_synthetic_env(tmp_path / "part" / "env.safetensors").genome, full["es_state"]["mean"])


# ---------------------------------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_scb_cartpole_learning_signal(tmp_path):
    """12 generations x 32 candidates (PPO/DQN alternating, 10k synthetic steps, random hyperparameters): fresh DQN
    agents trained on the evolved SCB reach a mean real-env return >= 150 on CartPole-v1 (the initial SCB: ~10).

    Measured (seed 0, 1 thread, shared 2-core machine, 113 s): DQN IQM 478.1 / mean 382.9, PPO IQM 59.5 / mean
    155.4 (8 agents x 50 episodes each). The initial SCB gives DQN 10.0, PPO 16.1. The issue's bar (IQM >= 475 for
    every algorithm) is met by DQN only at this budget.
    """
    cfg = SynthEnvConfig(env="CartPole-v1", popsize=32, generations=12, eval_every=6, eval_agents=2, eval_episodes=16,
                         final_seeds=8, final_episodes=50, out=str(tmp_path), name="learn")
    summary = run_synth_env(cfg)
    ev = summary["envs"]["final"]["eval"]
    print({k: (round(v["iqm"], 1), round(v["return_mean"], 1)) for k, v in ev.items()}, f"{summary['train_time_s']:.0f}s")
    assert ev["dqn"]["return_mean"] >= 150


@pytest.mark.parametrize("kind", ["mdp", "reward"])
def test_mdp_and_reward_kinds_population_fitness(kind):
    """Neural-MDP / reward-network problems: DDQN inner loops with sampled lr, batch size and width (shared by the
    generation), population fitness == separate evaluations, and a saved env evaluates again after loading."""
    cfg = _tiny_config(env="CartPole-v0", kind=kind, inner_steps=300, agents=1, popsize=2)
    problem = SynthEnvProblem(cfg, make_native(cfg.env), torch.device("cpu"))
    assert problem.algos == ["dqn"] and problem.synth.kind == kind
    expected = {"mdp": 3 * ((2 + 4) * 83 + 83) + 83 * 4 + 4 + 2 * (83 + 1), "reward": 4 * 64 + 64 + 64 * 64 + 64 + 65}
    assert problem.num_dims == expected[kind]
    algo, cfg0, keys, _ = problem.generation_setup(0, 2)
    assert algo.structural and cfg0.batch_size != 199 and cfg0.hidden != (57,)
    assert 199 / 3 <= cfg0.batch_size <= 199 * 3 and 19 <= cfg0.hidden[0] <= 171
    assert torch.all(cfg0.lr == cfg0.lr[0]) and 3.04e-4 / 3 <= float(cfg0.lr[0]) <= 3 * 3.04e-4
    mean = problem.initial_mean()
    genomes = mean + 0.05 * torch.randn(2, mean.numel(), generator=torch.Generator().manual_seed(1))
    fit, _ = problem.fitness(genomes, 0)
    separate = torch.cat([problem.fitness(genomes[i:i + 1], 0)[0] for i in range(2)])
    torch.testing.assert_close(fit, separate)
    res = problem.evaluate_genome(mean, 2, 2, seed=3)
    assert len(res["dqn"].per_agent) == 2 and all(math.isfinite(x) for x in res["dqn"].per_agent)
    json.dumps(problem.inner["dqn"].to_json())


def test_shipped_scb_cartpole_trains_fresh_agents():
    """The shipped SCB (loaded by name) trains fresh PPO agents with random hyperparameters in 10k synthetic steps to
    a high real CartPole-v1 return (measured: IQM 500 over 16 agents x 100 episodes; see the file's metadata)."""
    from torch_distill.envs.synthetic import read_synthetic_env_metadata, shipped_synthetic_envs

    assert "SCB-CartPole-v1" in shipped_synthetic_envs()
    meta = read_synthetic_env_metadata("SCB-CartPole-v1")
    assert meta["kind"] == "scb" and meta["shipped_evaluation"]["result"]["ppo"]["iqm"] >= 475
    res = evaluate_synthetic_env("SCB-CartPole-v1", algos="ppo", seeds=4, episodes=20, seed=2024, deterministic=True)
    assert res["ppo"].synthetic_steps_per_agent == 10_000
    assert res["ppo"].iqm >= 400, res["ppo"].per_agent
    # SCB-Acrobot-v1 (measured: PPO IQM -84.7 over 16 agents; random actions score about -500)
    res = evaluate_synthetic_env("SCB-Acrobot-v1", algos="ppo", seeds=4, episodes=20, seed=2024, deterministic=True)
    assert res["ppo"].iqm >= -130, res["ppo"].per_agent


def test_shipped_scb_mountaincar_continuous_trains_held_out_td3():
    """SCB-MountainCarContinuous-v0 was found with the bandit learner and PPO only; TD3, never trained inside the
    search, learns on it in 10k synthetic steps to reach the flag in the real env (measured: IQM 88.8 over 8 agents x
    50 episodes; 99.3 / 99.2 for these two agents, 50 s on one thread). Random actions score about -30; the file
    carries its observation scaling."""
    from torch_distill.envs.synthetic import load_synthetic_env

    env = load_synthetic_env("SCB-MountainCarContinuous-v0")
    assert env.obs_scale is not None and env.obs_scale[1] == pytest.approx(0.07)
    res = evaluate_synthetic_env(env, algos="td3", seeds=2, episodes=5, seed=2024, deterministic=True)
    assert min(res["td3"].per_agent) >= 60, res["td3"].per_agent


def test_shipped_scb_pendulum_trains_held_out_td3():
    """SCB-Pendulum-v1 (quadratic reward head, contexts fitted to real states; found with the bandit learner, then
    convert-env) trains TD3, never used inside the search, in 10k synthetic steps to swing up and balance the real
    pendulum (measured: IQM -164.1 over 8 agents x 20 episodes; -225.8 / -253.3 for these two agents, 37 s on one
    thread). Zero torque and random actions score about -1220."""
    from torch_distill.envs.synthetic import load_synthetic_env

    env = load_synthetic_env("SCB-Pendulum-v1")
    assert env.reward_head == "quadratic" and env.obs_squash == (True, True, True)
    res = evaluate_synthetic_env(env, algos="td3", seeds=2, episodes=5, seed=2024, deterministic=True)
    assert min(res["td3"].per_agent) >= -400, res["td3"].per_agent


def test_torchrun_two_processes_match_one_mdp(tmp_path):
    """A neural-MDP search sharded over 2 torchrun processes (gloo) ends in the same ES state as 1 process."""
    import os
    import subprocess
    import sys

    args = ["synth-env", "--env", "CartPole-v0", "--kind", "mdp", "--inner-steps", "200", "--popsize", "4",
            "--generations", "2", "--episodes", "2", "--max-steps", "50", "--eval-every", "2", "--eval-agents", "1",
            "--eval-episodes", "2", "--final-seeds", "0", "--threads", "1", "--device", "cpu", "--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "torch_distill.cli", *args, "--name", "w1"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stdout + one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29519",
                          "-m", "torch_distill.cli", *args, "--name", "w2"], env=env, capture_output=True, text=True,
                         timeout=600)
    assert two.returncode == 0, two.stdout + two.stderr
    assert "world size 2" in two.stdout and "(MDP)" in two.stdout
    a = torch.load(tmp_path / "w1" / "checkpoint.pt", weights_only=True)["es_state"]
    b = torch.load(tmp_path / "w2" / "checkpoint.pt", weights_only=True)["es_state"]
    for k in ("mean", "sigma"):
        torch.testing.assert_close(a[k], b[k])
    assert load_synthetic_env(tmp_path / "w2" / "env.safetensors").kind == "mdp"
