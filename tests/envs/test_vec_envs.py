"""Vector-env backends (native, envpool, gymnasium) and batched evaluation semantics."""

import pytest
import torch

from torch_distill.algorithms.hades import HadesConfig, HadesProblem, resolve_hades
from torch_distill.envs.vec import make_vec_env, resolve_backend
from torch_distill.es.strategies import make_strategy
from torch_distill.evaluation import ObsNormalizer, evaluate_policies
from torch_distill.policies import PolicyConfig, PolicyNet
from torch_distill.evaluation import RealEnvEvaluator

BACKENDS = ["native", "envpool", "gymnasium"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_reset_common_random_numbers_and_determinism(backend, env_id):
    venv = make_vec_env(env_id, 6, backend=backend)
    obs = venv.reset(seed=5, group_size=3)
    assert obs.shape == (6, venv.spec.obs_dim) and obs.dtype == torch.float32
    torch.testing.assert_close(obs[:3], obs[3:])  # env j of every group starts identically
    assert not torch.allclose(obs[0], obs[1])
    torch.testing.assert_close(venv.reset(seed=5, group_size=3), obs)  # a pure function of the seed
    assert not torch.allclose(venv.reset(seed=6, group_size=3), obs)
    action = torch.zeros(6, dtype=torch.int64) if venv.spec.discrete else torch.full((6, 1), 5.0)  # clipped to 2
    out = venv.step(action)
    assert out.reward.shape == (6,) and out.reward.dtype == torch.float32
    assert out.terminated.dtype == torch.bool and out.truncated.dtype == torch.bool
    torch.testing.assert_close(out.obs[:3], out.obs[3:])
    venv.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree_on_spec(backend):
    spec = make_vec_env("Pendulum-v1", 1, backend=backend).spec
    assert (spec.obs_dim, spec.discrete, spec.action_dim, spec.max_episode_steps) == (3, False, 1, 200)
    assert spec.action_low == (-2.0,) and spec.action_high == (2.0,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluation_masks_after_first_episode_end(backend):
    """A policy that always pushes left ends CartPole within ~10 steps; returns must equal episode lengths."""
    venv = make_vec_env("CartPole-v1", 2 * 4, backend=backend)
    net = PolicyNet(venv.spec, PolicyConfig((), "relu"))
    params = torch.zeros(2, net.num_params)
    params[:, -2] = 10.0  # bias of action 0 -> always "push left"
    res = evaluate_policies(net, params, venv, episodes=4, seed=0, deterministic=True, check_every=1)
    assert torch.all(res.lengths < 20) and torch.all(res.lengths >= 5)
    torch.testing.assert_close(res.returns, res.lengths.float())
    torch.testing.assert_close(res.returns[0], res.returns[1])  # common random numbers across policies
    if backend == "native":  # masked full steps until the last env ends (checked every step here)
        assert int(res.env_steps) == int(res.lengths.max()) * 8
    else:  # host backends step only live envs
        assert int(res.env_steps) == int(res.lengths.sum())


def test_native_and_gymnasium_returns_have_the_same_distribution():
    """The same greedy policy on the native env and on gymnasium: mean episode length within noise."""
    net = PolicyNet(make_vec_env("CartPole-v1", 1).spec, PolicyConfig((8,), "tanh"))
    params = net.init(1, torch.Generator().manual_seed(3))
    means = {}
    for backend, n in [("native", 400), ("gymnasium", 400)]:
        venv = make_vec_env("CartPole-v1", n, backend=backend)
        means[backend] = evaluate_policies(net, params, venv, n, seed=1, deterministic=True).returns.mean()
    assert abs(means["native"] - means["gymnasium"]) < 0.1 * means["gymnasium"] + 2, means


def test_auto_backend_prefers_native():
    assert resolve_backend("CartPole-v1") == "native"
    assert resolve_backend("Hopper-v4") == "envpool"


def test_diverged_candidates_get_the_worst_fitness_and_update_stays_finite():
    cfg = HadesConfig(env="Pendulum-v1", dataset_size=2, popsize=6, episodes=2, bc_steps=3, device="cpu")
    ev = RealEnvEvaluator("Pendulum-v1", torch.device("cpu"))
    r = resolve_hades(cfg, ev.spec)
    problem = HadesProblem(r, ev)
    es = make_strategy(r.strategy, problem.num_dims, **r.strategy_kwargs)
    state = es.init(problem.initial_mean())
    pop = es.ask(state, torch.Generator().manual_seed(0))
    bad = pop.clone()
    bad[0] = float("nan")  # a dataset with NaN entries: BC diverges, the policy acts NaN
    bad[1] = 3e38
    fit, _ = problem.fitness(bad, 0)
    assert torch.isfinite(fit[2:]).all()
    fit[1] = float("inf") if torch.isfinite(fit[1]) else fit[1]
    assert not torch.isfinite(fit[:2]).all()
    state, metrics = es.tell(state, pop, fit)
    assert int(metrics["num_nonfinite"]) >= 1
    assert torch.isfinite(state.mean).all() and torch.isfinite(state.sigma).all()


def test_normalizer_roundtrip():
    n = ObsNormalizer(torch.tensor([1.0, -2.0]), torch.tensor([4.0, 0.25]))
    back = ObsNormalizer.from_json(n.to_json())
    x = torch.tensor([[3.0, -1.0]])
    torch.testing.assert_close(back(x), torch.tensor([[1.0, 2.0]]), atol=1e-6, rtol=1e-6)
    assert ObsNormalizer.from_json(None)(x).equal(x)


MUJOCO = ["Hopper-v4", "HalfCheetah-v4", "Walker2d-v4", "Ant-v4", "Humanoid-v4", "InvertedDoublePendulum-v4",
          "Reacher-v4", "Swimmer-v4"]


@pytest.mark.parametrize("env_id", MUJOCO)
def test_mujoco_envs_through_envpool(env_id):
    """Every MuJoCo task of the HaDES paper evaluates through the envpool backend with CRN resets."""
    venv = make_vec_env(env_id, 4)
    assert resolve_backend(env_id) == "envpool" and not venv.spec.discrete
    net = PolicyNet(venv.spec, PolicyConfig((8,), "tanh"))
    params = net.init(2, torch.Generator().manual_seed(0))
    res = evaluate_policies(net, params, venv, episodes=2, seed=3, max_steps=20)
    assert res.returns.shape == (2, 2) and torch.isfinite(res.returns).all()
    assert torch.all(res.lengths <= 20) and torch.all(res.lengths >= 1)
    venv.close()


def test_minigrid_through_the_native_registry_has_flat_symbolic_obs():
    """MiniGrid ids evaluate like any env: [N, 147 + 4 + 4] float obs (codes, one-hot direction, mission)."""
    venv = make_vec_env("MiniGrid-GoToDoor-5x5-v0", 4)
    obs = venv.reset(seed=0, group_size=2)
    assert obs.shape == (4, 155) and obs.dtype == torch.float32
    assert torch.all(obs[:, 147:151].sum(-1) == 1)  # one-hot direction
    assert torch.all(obs[:, 151] == 4)  # mission target type: door
    torch.testing.assert_close(obs[:2], obs[2:])
    net = PolicyNet(venv.spec, PolicyConfig((16,), "relu"))
    res = evaluate_policies(net, net.init(2, torch.Generator().manual_seed(0)), venv, 2, seed=1, max_steps=30)
    assert res.returns.shape == (2, 2) and torch.all(res.returns >= 0)


def test_native_vec_env_final_obs():
    """``NativeVecEnv(final_obs=True)`` fills ``StepOut.final_obs`` (the last observation of ended rows) and steps
    exactly as the plain native vector env."""
    from torch_distill.envs.vec import NativeVecEnv, make_native

    env = make_native("CartPole-v1")
    a, b = NativeVecEnv(env, 8), NativeVecEnv(env, 8, final_obs=True)
    a.reset(0), b.reset(0)
    ended = 0
    for _ in range(60):
        act = torch.ones(8, dtype=torch.int64)
        x, y = a.step(act), b.step(act)
        assert x.final_obs is None and torch.equal(x.obs, y.obs) and torch.equal(x.reward, y.reward)
        done = y.terminated | y.truncated
        assert torch.equal(y.final_obs[~done], y.obs[~done])
        assert bool((y.final_obs[done, 2].abs() > 0.2).all())  # the pole fell: its last angle is past the limit
        ended += int(done.sum())
    assert ended > 0


@pytest.mark.parametrize(("backend", "env_id"), [("envpool", "CartPole-v1"), ("gymnasium", "CartPole-v1"),
                                                 ("envpool", "Pendulum-v1"), ("gymnasium", "Pendulum-v1"),
                                                 ("envpool", "Hopper-v4")])
def test_live_only_stepping_gives_the_masked_returns_with_no_wasted_steps(backend, env_id):
    """Host backends step only envs whose first episode is running: the same returns and lengths as the masked
    full step for the same seeds (sampled actions: the noise is drawn for every row either way), and executed steps
    equal to the episode steps, fewer than the masked path executes."""
    venv = make_vec_env(env_id, 12, backend=backend)
    assert venv.steps_subsets
    net = PolicyNet(venv.spec, PolicyConfig((8,), "tanh"))
    params = net.init(4, torch.Generator().manual_seed(1))
    kw = dict(episodes=3, seed=7, max_steps=60)
    masked = evaluate_policies(net, params, venv, live_only=False, **kw)
    live = evaluate_policies(net, params, venv, live_only=True, **kw)
    torch.testing.assert_close(live.returns, masked.returns, rtol=0, atol=0)
    assert torch.equal(live.lengths, masked.lengths)
    assert int(live.env_steps) == int(live.lengths.sum())
    if env_id == "Pendulum-v1":  # only time limits: no step to save
        assert int(masked.env_steps) == int(live.env_steps) == 12 * 60
    else:  # some envs end early, so the masked path wastes steps
        assert int(live.lengths.min()) < int(live.lengths.max())
        assert int(masked.env_steps) > int(live.env_steps)
    venv.close()


@pytest.mark.parametrize("backend", ["envpool", "gymnasium"])
def test_step_subset_steps_only_the_given_envs_in_their_order(backend):
    venv = make_vec_env("CartPole-v1", 4, backend=backend)
    obs = venv.reset(seed=0)
    out = venv.step_subset(torch.tensor([1, 1]), torch.tensor([3, 0]))
    assert out.obs.shape == (2, 4) and out.reward.tolist() == [1.0, 1.0]
    full = make_vec_env("CartPole-v1", 4, backend=backend)
    ref = full.step(torch.ones(4, dtype=torch.int64)) if full.reset(seed=0).equal(obs) else None
    assert ref is not None
    torch.testing.assert_close(out.obs, ref.obs[[3, 0]])
    # the envs not stepped are untouched: stepping them now matches the reference's first step
    rest = venv.step_subset(torch.tensor([1, 1]), torch.tensor([1, 2]))
    torch.testing.assert_close(rest.obs, ref.obs[[1, 2]])
    assert venv.step_subset(torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)).obs.shape == (0, 4)
    with pytest.raises(ValueError, match=r"env_ids=\[1, 1\]: expected distinct ids"):
        venv.step_subset(torch.tensor([0, 0]), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match=r"env_ids=\[4\]: expected integer ids in \[0, 4\)"):
        venv.step_subset(torch.tensor([0]), torch.tensor([4]))
    venv.close()
    full.close()
