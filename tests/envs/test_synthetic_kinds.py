"""Synthetic MDPs and reward-network envs (the envs/synthetic package), their files and shipped names.

Genome sizes against hand counts; step semantics computed by hand (transition/reward/done heads, termination at
done > 0.5, truncation, auto-reset, clamping, non-finite outputs; each reward-network variant against the real env's
reward, ``Phi(s') = 0`` at termination); per-row genomes equal separate single-genome envs; common random numbers;
file round trips for every kind and option; corrupt and mismatched files; names of shipped envs; gymnasium and
torchrl adapters.
"""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from agent_envs import gen as _gen
import torch.nn.functional as F

from torch_distill.envs import synthetic
from torch_distill.envs.core import EnvSpec, step_with_final_obs
from torch_distill.envs.synthetic import (
    RewardNetworkEnv,
    SCBParams,
    SyntheticContextualBandit,
    SyntheticEnvFileError,
    SyntheticEnvParams,
    SyntheticMDP,
    load_synthetic_env,
    read_synthetic_env_metadata,
    save_synthetic_env,
    shipped_synthetic_envs,
)
from torch_distill.envs.vec import make_native



def _mlp(w: dict[str, torch.Tensor], head: str, x: torch.Tensor, layers: int) -> torch.Tensor:
    """The FlatMLP of ``head`` by hand (LeakyReLU between layers)."""
    for i in range(layers):
        x = x @ w[f"{head}.{i}.weight"] + w[f"{head}.{i}.bias"]
        if i < layers - 1:
            x = F.leaky_relu(x, 0.01)
    return x


def _set(env, genome: torch.Tensor, name: str, value) -> torch.Tensor:
    """A copy of ``genome`` with piece ``name`` set to ``value``."""
    g = genome.clone()
    env.unflatten(g)[name][...] = value  # unflatten returns views of g
    return g


def _rollout(env, params, batch: int, steps: int, seed: int, actions: torch.Tensor | None = None):
    """Rows of ``(obs, reward, terminated, truncated)`` of a rollout with seeded random (or given) actions."""
    gen = _gen(seed)
    act_gen = _gen(seed + 1000)
    state, obs = env.reset(batch, gen, params)
    out = [obs]
    for t in range(steps):
        if actions is not None:
            a = actions[t]
        elif env.spec.discrete:
            a = torch.randint(0, env.spec.n_actions, (batch,), generator=act_gen)
        else:
            a = torch.rand(batch, env.spec.action_dim, generator=act_gen) * 6 - 3
        state, obs, r, te, tr = env.step(state, a, gen, params)
        out += [obs, r, te, tr]
    return out


# ---------------------------------------------------------------------------------------------------- sizes
def _head(in_dim: int, hidden: tuple[int, ...], out: int) -> int:
    sizes = [in_dim, *hidden, out]
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def test_genome_sizes_match_hand_counts():
    cp0, acro, pend = make_native("CartPole-v0"), make_native("Acrobot-v1"), make_native("Pendulum-v1")
    # Ferreira CartPole: per head (2+4)*83 + 83 + 83*out + out
    per = lambda out: (2 + 4) * 83 + 83 + 83 * out + out
    mdp = SyntheticMDP(cp0)
    assert mdp.num_params == per(4) + per(1) + per(1) == 917 + 665 + 665 == 2247
    assert [n for n, _ in mdp.layout()][::2] == ["transition.0.weight", "transition.1.weight", "reward.0.weight",
                                                   "reward.1.weight", "done.0.weight", "done.1.weight"]
    learned = SyntheticMDP(cp0, initial_state="learned", latent_dim=3)
    assert learned.num_params == 2247 + 3 * 83 + 83 + 83 * 4 + 4
    assert learned.layout()[-1] == ("initial_state.1.bias", (4,))
    # Acrobot (obs 6, 3 actions), hidden 167
    assert SyntheticMDP(acro, hidden=(167,)).num_params == (9 * 167 + 167 + 167 * 6 + 6) + 2 * (9 * 167 + 167 + 168)
    # continuous: the action enters as one float
    assert SyntheticMDP(pend).num_params == _head(4, (83,), 3) + 2 * _head(4, (83,), 1)
    # reward networks: Phi over the state only, or an MLP over [state, one-hot action]
    cp1 = make_native("CartPole-v1")
    assert RewardNetworkEnv(cp1).num_params == 4 * 64 + 64 + 64 * 64 + 64 + 64 + 1 == 4545
    assert RewardNetworkEnv(cp1, potential=False).num_params == 6 * 64 + 64 + 64 * 64 + 64 + 64 + 1 == 4673
    assert RewardNetworkEnv(pend, potential=False, hidden=(8,)).num_params == _head(4, (8,), 1)
    for env in (mdp, learned, RewardNetworkEnv(cp1), SyntheticContextualBandit(cp1)):
        assert sum(math.prod(s) for _, s in env.layout()) == env.num_params
        assert env.init_genome(_gen(0), 3).shape == (3, env.num_params)
        assert env.default_params().genome.shape == (env.num_params,)
        json.dumps(env.architecture())  # JSON-able
    assert (mdp.spec.env_id, mdp.spec.max_episode_steps, mdp.real_spec) == ("SynthMDP-CartPole-v0", 200, cp0.spec)
    assert RewardNetworkEnv(cp1).spec.env_id == "RewardNet-CartPole-v1"


def test_torch_linear_init_bounds():
    env = SyntheticMDP(make_native("CartPole-v0"), hidden=(50,))
    w = env.unflatten(env.init_genome(_gen(0))[0])
    for name, t in w.items():
        fan_in = 6 if name.endswith(("0.weight", "0.bias")) else 50
        assert t.abs().max() <= 1 / math.sqrt(fan_in) and t.abs().max() > 0.5 / math.sqrt(fan_in), name
    assert not torch.equal(env.init_genome(_gen(0)), env.init_genome(_gen(1)))
    assert torch.equal(env.init_genome(_gen(0)), env.init_genome(_gen(0)))


# ---------------------------------------------------------------------------------------------------- MDP semantics
def test_mdp_step_by_hand_termination_and_auto_reset():
    real = make_native("CartPole-v0")
    env = SyntheticMDP(real, hidden=(16,))
    genome = env.init_genome(_gen(1))[0]
    gen = _gen(0)
    state, obs = env.reset(8, gen, SyntheticEnvParams(genome))
    torch.testing.assert_close(obs, real.reset(8, _gen(0))[1])  # initial observations: the real env's reset
    action = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    w = env.unflatten(genome)
    x = torch.cat([F.one_hot(action, 2).float(), obs], -1)  # [one_hot(action), state] as Ferreira
    done_out = _mlp(w, "done", x, 2).squeeze(-1)
    # shift the done head's output bias so that about half of the rows end (done > 0.5)
    genome = _set(env, genome, "done.1.bias", w["done.1.bias"] - done_out.median() + 0.5 + 1e-4)
    w = env.unflatten(genome)
    done_out = _mlp(w, "done", x, 2).squeeze(-1)
    fresh = real.reset(8, _copy(gen))[1]  # the draw the step will make
    nstate, nobs, reward, term, trunc = env.step(state, action, gen, SyntheticEnvParams(genome))
    assert torch.equal(term, done_out > 0.5) and 0 < term.sum() < 8 and not trunc.any()
    torch.testing.assert_close(reward, _mlp(w, "reward", x, 2).squeeze(-1))
    nxt = _mlp(w, "transition", x, 2)
    torch.testing.assert_close(nobs[~term], nxt[~term])  # direct transition
    torch.testing.assert_close(nobs[term], fresh[term])  # auto-reset from the real env's reset
    assert torch.equal(nstate.obs, nobs) and torch.equal(nstate.time, (~term).long())
    assert nobs.dtype == torch.float32 and reward.dtype == torch.float32 and term.dtype == torch.bool
    # delta transitions add the head's output to the state
    delta = SyntheticMDP(real, hidden=(16,), transition="delta")
    _, dobs, _, dterm, _ = delta.step(state, action, _gen(5), SyntheticEnvParams(genome))
    torch.testing.assert_close(dobs[~dterm], (obs + nxt)[~dterm])


def _copy(gen: torch.Generator) -> torch.Generator:
    g = torch.Generator()
    g.set_state(gen.get_state())
    return g


def test_mdp_truncation_termination_clip_and_non_finite():
    real = make_native("CartPole-v0")
    env = SyntheticMDP(real, hidden=(8,), max_episode_steps=3)
    assert env.spec.max_episode_steps == 3
    g = env.init_genome(_gen(0))[0]
    never = _set(env, _set(env, g, "done.1.weight", 0.0), "done.1.bias", -10.0)
    gen = _gen(1)
    state, _ = env.reset(4, gen, SCBParams(never))
    a = torch.zeros(4, dtype=torch.int64)
    for t in (1, 2, 3):
        before = _copy(gen)
        state, obs, _, term, trunc = env.step(state, a, gen, SCBParams(never))
        assert not term.any() and bool(trunc.all()) == (t == 3)
    assert torch.equal(state.time, torch.zeros(4, dtype=torch.int64))
    torch.testing.assert_close(obs, real.reset(4, before)[1])  # truncated rows restart from real initial states
    always = _set(env, _set(env, g, "done.1.weight", 0.0), "done.1.bias", 0.51)
    state, _ = env.reset(4, gen, SCBParams(always))
    _, _, _, term, trunc = env.step(state, a, gen, SCBParams(always))
    assert term.all() and not trunc.any()
    # next states are clamped to [-state_clip, state_clip]
    big = _set(env, _set(env, never, "transition.1.weight", 0.0), "transition.1.bias", torch.tensor([1e4, -1e4, 5.0, 0.0]))
    state, _ = env.reset(4, gen, SCBParams(big))
    _, obs, _, term, _ = env.step(state, a, gen, SCBParams(big))
    assert not term.any() and torch.equal(obs, torch.tensor([[100.0, -100.0, 5.0, 0.0]] * 4))
    clip1 = SyntheticMDP(real, hidden=(8,), state_clip=1.0)
    _, obs, _, _, _ = clip1.step(clip1.reset(4, gen, SCBParams(big))[0], a, gen, SCBParams(big))
    assert torch.equal(obs, torch.tensor([[1.0, -1.0, 1.0, 0.0]] * 4))
    # non-finite outputs end the episode: finite reset observation, reward 0
    for piece, value in (("transition.1.bias", float("inf")), ("reward.1.bias", float("nan")), ("done.1.bias", float("nan"))):
        bad = _set(env, never, piece, value)
        state, _ = env.reset(4, gen, SCBParams(bad))
        _, obs, reward, term, _ = env.step(state, a, gen, SCBParams(bad))
        assert term.all() and torch.isfinite(obs).all() and torch.isfinite(reward).all(), piece


def test_mdp_learned_initial_state():
    env = SyntheticMDP(make_native("Pendulum-v1"), hidden=(8,), initial_state="learned", latent_dim=2, crn_period=2)
    assert env.real_env is not None
    spec_only = SyntheticMDP(make_native("Pendulum-v1").spec, hidden=(8,), initial_state="learned", latent_dim=2)
    assert spec_only.num_params == env.num_params and spec_only.real_env is None
    g = env.init_genome(_gen(0))[0]
    _, obs = env.reset(6, _gen(3), SCBParams(g))
    z = torch.randn(2, 2, generator=_gen(3)).repeat(3, 1)  # crn_period=2: two latents tiled
    w = env.unflatten(g)
    torch.testing.assert_close(obs, _mlp(w, "initial_state", z, 2).clamp(-100, 100))
    assert torch.equal(obs[:2], obs[2:4]) and not torch.equal(obs[0], obs[1])
    # continuous actions are clipped before the heads see them
    state, _ = spec_only.reset(2, _gen(0), SCBParams(g))
    r_big = spec_only.step(state, torch.tensor([[5.0], [-7.0]]), _gen(1), SCBParams(g))[2]
    r_clip = spec_only.step(state, torch.tensor([[2.0], [-2.0]]), _gen(1), SCBParams(g))[2]
    torch.testing.assert_close(r_big, r_clip)


# ---------------------------------------------------------------------------------------------------- reward nets
@pytest.mark.parametrize("mode", ["exclusive", "additive"])
@pytest.mark.parametrize("potential", [True, False])
def test_reward_network_rewards_by_hand(mode, potential):
    """Real dynamics step for step; the reward is each variant's formula against the real reward, with
    ``Phi(s') = 0`` at termination and the true pre-reset ``s'`` at truncation."""
    real = make_native("CartPole-v1", max_episode_steps=12)  # truncations and terminations both happen
    env = RewardNetworkEnv(real, gamma=0.9, mode=mode, potential=potential, hidden=(8, 8))
    g = env.init_genome(_gen(2))[0]
    w = env.unflatten(g)
    gen, rgen, agen = _gen(0), _gen(0), _gen(7)
    state, obs = env.reset(16, gen, SCBParams(g))
    rstate, robs = real.reset(16, rgen)
    assert torch.equal(obs, robs)
    seen_term = seen_trunc = 0
    for _ in range(30):
        a = torch.randint(0, 2, (16,), generator=agen)
        s_next = torch.stack(real.transition(rstate, a, rgen)[0][:4], -1).float()  # the pre-reset next state
        rstate, robs, rreward, rterm, rtrunc = real.step(rstate, a, rgen)
        state, nobs, reward, term, trunc = env.step(state, a, gen, SCBParams(g))
        assert torch.equal(nobs, robs) and torch.equal(term, rterm) and torch.equal(trunc, rtrunc)
        if potential:
            phi = lambda s: _mlp(w, "potential", s, 3).squeeze(-1)
            learned = 0.9 * torch.where(rterm, 0.0, phi(s_next)) - phi(obs)
        else:
            learned = _mlp(w, "reward", torch.cat([obs, F.one_hot(a, 2).float()], -1), 3).squeeze(-1)
        expected = learned if mode == "exclusive" else rreward + learned
        torch.testing.assert_close(reward, expected)
        seen_term += int(rterm.sum())
        seen_trunc += int((rtrunc & ~rterm).sum())
        obs = nobs
    assert seen_term > 0 and seen_trunc > 0


class _Opaque:
    """A native env seen only through the FunctionalEnv contract (no classic-control pieces)."""

    def __init__(self, env):
        self.env, self.spec = env, env.spec

    def default_params(self, device="cpu"):
        return self.env.default_params(device)

    def reset(self, batch_size, generator, params=None):
        return self.env.reset(batch_size, generator, params)

    def step(self, state, action, generator, params=None):
        return self.env.step(state, action, generator, params)


def test_reward_network_generic_env_truncation_uses_zero_potential():
    real = make_native("CartPole-v1", max_episode_steps=12)
    exact = RewardNetworkEnv(real, gamma=0.9, mode="exclusive", hidden=(8,))
    generic = RewardNetworkEnv(_Opaque(real), gamma=0.9, mode="exclusive", hidden=(8,))
    assert exact.exact_next_obs and not generic.exact_next_obs
    g = exact.init_genome(_gen(0))[0]
    a_gen = _gen(3)
    s1, _ = exact.reset(16, _gen(0), SCBParams(g))
    s2, _ = generic.reset(16, _gen(0), SCBParams(g))
    g1, g2 = _gen(1), _gen(1)
    seen = 0
    for _ in range(30):
        a = torch.randint(0, 2, (16,), generator=a_gen)
        obs = s1.obs
        s1, o1, r1, te1, tr1 = exact.step(s1, a, g1, SCBParams(g))
        s2, o2, r2, te2, tr2 = generic.step(s2, a, g2, SCBParams(g))
        assert torch.equal(o1, o2) and torch.equal(te1, te2) and torch.equal(tr1, tr2)
        only_trunc = tr1 & ~te1
        torch.testing.assert_close(r1[~only_trunc], r2[~only_trunc])
        torch.testing.assert_close(r2[only_trunc], -generic.potential_of(g, obs)[only_trunc])  # Phi(s') := 0
        seen += int(only_trunc.sum())
    assert seen > 0


# ---------------------------------------------------------------------------------------------------- population
def _kinds():
    cp0, cp1, pend = make_native("CartPole-v0"), make_native("CartPole-v1", max_episode_steps=15), make_native("Pendulum-v1")
    return {
        "scb": SyntheticContextualBandit(cp1.spec, hidden=(8,)),
        "mdp-real": SyntheticMDP(cp0, hidden=(8,), max_episode_steps=10),
        "mdp-learned-delta": SyntheticMDP(pend, hidden=(8,), transition="delta", initial_state="learned", max_episode_steps=10),
        "reward-potential": RewardNetworkEnv(cp1, hidden=(8,)),
        "reward-plain": RewardNetworkEnv(pend, hidden=(8,), mode="exclusive", potential=False),
        "reward-opaque": RewardNetworkEnv(_Opaque(cp1), hidden=(8,)),
    }


@pytest.mark.parametrize("kind", list(_kinds()))
def test_population_rows_equal_separate_envs_with_crn(kind):
    """``[B, G]`` genomes, member-major with ``crn_period`` rows per member == one single-genome run per member
    with the same generator seed; every member sees identical randomness."""
    env = _kinds()[kind]
    members, k, steps = 3, 2, 25
    genomes = env.init_genome(_gen(4), members) * 1.5
    act_gen = _gen(9)
    if env.spec.discrete:
        acts = torch.randint(0, env.spec.n_actions, (steps, k), generator=act_gen)
    else:
        acts = torch.rand(steps, k, env.spec.action_dim, generator=act_gen) * 4 - 2
    crn = env.with_crn_period(k)
    assert crn.crn_period == k and env.crn_period is None and crn.genome is env.genome
    pop = _rollout(crn, SyntheticEnvParams(genomes.repeat_interleave(k, 0)), members * k, steps, seed=0,
                   actions=torch.cat([acts] * members, 1))
    for m in range(members):
        single = _rollout(crn, SyntheticEnvParams(genomes[m]), k, steps, seed=0, actions=acts)
        if kind == "reward-opaque":
            # an opaque real env's own step draws batch-size-many auto-reset states (then replaced by the tiled
            # ones), so the generator streams of a 6-row and a 2-row run diverge after the first step
            single, pop_m = single[:1], pop[:1]
        else:
            pop_m = pop
        for x, y in zip(pop_m, single):
            torch.testing.assert_close(x[m * k:(m + 1) * k], y)
    if kind == "reward-opaque":  # ... but the members still share every draw: same states, same flags
        for x in pop[::4] + pop[3::4] + pop[4::4]:
            assert torch.equal(x[:k], x[k:2 * k]) and torch.equal(x[:k], x[2 * k:])
    # one genome for all rows: rows r and r + j k are the same trajectory
    same = _rollout(crn, SyntheticEnvParams(genomes[0]), members * k, steps, seed=0, actions=torch.cat([acts] * members, 1))
    assert torch.equal(same[0][:k], same[0][k:2 * k])  # tiled initial draws
    for x in same:
        torch.testing.assert_close(x[:k], x[2 * k:])
    # without CRN the rows draw independently
    free = _rollout(env, SyntheticEnvParams(genomes[0]), members * k, 1, seed=0)
    assert not torch.equal(free[0][:k], free[0][k:2 * k])
    with pytest.raises(ValueError, match="not a multiple of (crn|latent)_period=2"):
        crn.reset(5, _gen(0), SyntheticEnvParams(genomes[0]))
    # determinism
    for x, y in zip(_rollout(env, None, 4, 10, seed=1), _rollout(env, None, 4, 10, seed=1)):
        assert torch.equal(x, y)


def _leaves(x):
    """The tensors of a (nested) NamedTuple, in order."""
    if isinstance(x, torch.Tensor):
        return [x]
    return [t for v in x for t in _leaves(v)]


@pytest.mark.parametrize("crn", [None, 2])
@pytest.mark.parametrize("kind", list(_kinds()))
def test_step_equals_transition_then_reset_done(kind, crn):
    """``step`` == ``step_with_final_obs`` (``transition`` + ``reset_done``) bit for bit with the same draws, for
    every kind; the final observation is ``obs`` where rows go on and the un-reset state's observation where they
    ended (time limit included): the model's clamped next state (MDP), the real env's own final observation (reward
    networks over classic control), the context itself (SCB, one-step episodes)."""
    env = _kinds()[kind].with_crn_period(crn)
    b, steps = 8, 24
    params = SyntheticEnvParams(env.init_genome(_gen(4), b) * 1.5)  # one env per row
    g1, g2, act_gen = _gen(0), _gen(0), _gen(9)
    s1, _ = env.reset(b, g1, params)
    s2, _ = env.reset(b, g2, params)
    if kind.startswith("reward"):  # rows close to the real env's time limit
        time = env.real_spec.max_episode_steps - 1 - torch.arange(b) % 6
        s1 = s2 = s1._replace(real=s1.real._replace(time=time))
    ends = truncations = 0
    for _ in range(steps):
        if env.spec.discrete:
            a = torch.randint(0, env.spec.n_actions, (b,), generator=act_gen)
        else:
            a = torch.rand(b, env.spec.action_dim, generator=act_gen) * 6 - 3
        nxt, final, reward, terminated, truncated = env.transition(s2, a, _copy(g2), params)
        s1, obs, r1, te1, tr1 = env.step(s1, a, g1, params)
        out = step_with_final_obs(env, s2, a, g2, params)
        assert all(torch.equal(x, y) for x, y in zip(_leaves(s1), _leaves(out.state)))
        for x, y in [(obs, out.obs), (r1, out.reward), (te1, out.terminated), (tr1, out.truncated)]:
            assert x.dtype == y.dtype and torch.equal(x, y)
        assert torch.equal(g1.get_state(), g2.get_state())  # the same draws
        assert torch.equal(out.final_obs, final) and torch.equal(env.observation(nxt), final)
        assert torch.equal(env.observation(out.state), out.obs)
        assert torch.equal(reward, out.reward) and torch.equal(terminated | truncated, out.terminated | out.truncated)
        done = out.terminated | out.truncated
        assert torch.equal(out.final_obs[~done], out.obs[~done])
        if kind == "scb":
            assert done.all() and torch.equal(final, s2.obs)
        elif kind.startswith("mdp"):
            model = env.forward(params.genome, s2.obs, a)[0].clamp(-env.state_clip, env.state_clip)
            assert torch.equal(final, model) and torch.equal(nxt.time, s2.time + 1)
        elif env.exact_next_obs:
            real_final = env.real_env.transition(s2.real, a, _copy(g2))[1]
            assert torch.equal(final, real_final)
        elif crn is None:  # an opaque real env resets inside its own step: its final observations are unknown
            assert torch.equal(final, out.obs)
        ends += int(done.sum())
        truncations += int((out.truncated & ~out.terminated).sum())
        s2 = out.state
    assert ends > 0
    assert truncations > 0 or kind == "scb"


def test_reset_done_checks_done():
    env = _kinds()["mdp-real"]
    state, obs = env.reset(4, _gen(0))
    with pytest.raises(ValueError, match=r"done has shape \(3,\), expected a \(4,\) bool tensor"):
        env.reset_done(torch.zeros(3, dtype=torch.bool), state, obs, _gen(0))
    kept, kept_obs = env.reset_done(torch.zeros(4, dtype=torch.bool), state, obs, _gen(0))
    assert torch.equal(kept_obs, obs) and torch.equal(kept.time, state.time)


def test_scb_crn_aliases():
    scb = SyntheticContextualBandit(make_native("CartPole-v1").spec)
    assert scb.with_crn_period(4).latent_period == 4 and scb.with_latent_period(3).crn_period == 3
    assert SyntheticContextualBandit(make_native("CartPole-v1"), crn_period=2).latent_period == 2
    assert SCBParams is SyntheticEnvParams


# ---------------------------------------------------------------------------------------------------- bad input
def test_bad_options_and_shapes():
    cp = make_native("CartPole-v0")
    with pytest.raises(TypeError, match="needs the real env itself"):
        SyntheticMDP(cp.spec)
    with pytest.raises(TypeError, match="needs the real env itself"):
        RewardNetworkEnv(cp.spec)
    with pytest.raises(ValueError, match="transition='sideways': expected one of 'direct', 'delta'"):
        SyntheticMDP(cp, transition="sideways")
    with pytest.raises(ValueError, match="initial_state='zero'"):
        SyntheticMDP(cp, initial_state="zero")
    with pytest.raises(ValueError, match="latent_dim=3: only used with initial_state='learned'"):
        SyntheticMDP(cp, latent_dim=3)
    with pytest.raises(ValueError, match="state_clip=0"):
        SyntheticMDP(cp, state_clip=0)
    with pytest.raises(ValueError, match="max_episode_steps=0"):
        SyntheticMDP(cp, max_episode_steps=0)
    with pytest.raises(ValueError, match="activation='swish'"):
        SyntheticMDP(cp, activation="swish")
    with pytest.raises(ValueError, match="hidden=\\(0,\\)"):
        SyntheticMDP(cp, hidden=(0,))
    with pytest.raises(ValueError, match="gamma=1.5: expected a float in \\[0, 1\\]"):
        RewardNetworkEnv(cp, gamma=1.5)
    with pytest.raises(ValueError, match="mode='both'"):
        RewardNetworkEnv(cp, mode="both")
    with pytest.raises(TypeError, match="potential='yes'"):
        RewardNetworkEnv(cp, potential="yes")
    with pytest.raises(ValueError, match="crn_period=0"):
        RewardNetworkEnv(cp, crn_period=0)
    with pytest.raises(ValueError, match="crn_period=-1"):
        SyntheticMDP(cp).with_crn_period(-1)
    with pytest.raises(ValueError, match="vector observations"):
        SyntheticMDP(EnvSpec("img", (3, 8, 8), True, n_actions=2), initial_state="learned")
    with pytest.raises(TypeError, match="expected the real env as a FunctionalEnv"):
        SyntheticMDP("CartPole-v0")
    env = SyntheticMDP(cp, hidden=(8,))
    with pytest.raises(ValueError, match=r"genome has shape \(10,\), expected \(" + str(env.num_params)):
        SyntheticMDP(cp, hidden=(8,), genome=torch.zeros(10))
    with pytest.raises(ValueError, match=rf"params.genome has shape \(3, {env.num_params}\), expected \({env.num_params},\) or \(4, "):
        env.reset(4, _gen(0), SyntheticEnvParams(torch.zeros(3, env.num_params)))
    state, _ = env.reset(4, _gen(0))
    with pytest.raises(ValueError, match="expected \\(4,\\) integer actions"):
        env.step(state, torch.zeros(4, 2), _gen(0))
    with pytest.raises(ValueError, match="batch_size=0"):
        env.reset(0, _gen(0))
    with pytest.raises(ValueError, match="initial_obs needs initial_state='learned'"):
        env.initial_obs(env.default_params().genome, torch.zeros(2, 4))


# ---------------------------------------------------------------------------------------------------- files
_VARIANTS = {
    "mdp-real-direct": lambda: SyntheticMDP(make_native("CartPole-v0"), hidden=(8,)),
    "mdp-real-delta": lambda: SyntheticMDP(make_native("CartPole-v0"), hidden=(8, 4), transition="delta",
                                           activation="tanh", state_clip=5.0, max_episode_steps=7),
    "mdp-learned": lambda: SyntheticMDP(make_native("Pendulum-v1"), hidden=(8,), initial_state="learned", latent_dim=2),
    "reward-potential-exclusive": lambda: RewardNetworkEnv(make_native("CartPole-v1"), gamma=0.95, mode="exclusive", hidden=(8,)),
    "reward-potential-additive": lambda: RewardNetworkEnv(make_native("CartPole-v1"), hidden=(8, 8)),
    "reward-plain-exclusive": lambda: RewardNetworkEnv(make_native("Acrobot-v1"), mode="exclusive", potential=False, hidden=(8,)),
    "reward-plain-additive": lambda: RewardNetworkEnv(make_native("Pendulum-v1"), potential=False, hidden=(8,), clip_actions=False),
    "scb": lambda: SyntheticContextualBandit(make_native("CartPole-v1").spec, hidden=(8,)),
}


@pytest.mark.parametrize("variant", list(_VARIANTS))
def test_save_load_round_trip(tmp_path, variant):
    env = _VARIANTS[variant]()
    genome = env.init_genome(_gen(2))[0]
    path = tmp_path / f"{variant}.safetensors"
    save_synthetic_env(path, env, genome, {"note": variant})
    loaded = load_synthetic_env(path)
    assert type(loaded) is type(env) and loaded.architecture() == env.architecture()
    assert loaded.spec == env.spec and loaded.real_spec == env.real_spec and loaded.num_params == env.num_params
    assert torch.equal(loaded.genome, genome) and torch.equal(loaded.default_params().genome, genome)
    meta = loaded.metadata
    assert meta["note"] == variant and meta["kind"] == env.kind and meta["format_version"] == env.format_version
    assert read_synthetic_env_metadata(path)["architecture"] == json.loads(json.dumps(env.architecture()))
    for x, y in zip(_rollout(env, SyntheticEnvParams(genome), 4, 20, seed=3), _rollout(loaded, None, 4, 20, seed=3)):
        assert torch.equal(x, y)
    # crn_period at load time; the env saves its own genome by default
    assert load_synthetic_env(path, crn_period=2).crn_period == 2
    save_synthetic_env(tmp_path / "again.safetensors", loaded)
    assert torch.equal(load_synthetic_env(tmp_path / "again.safetensors").genome, genome)
    # readable without this library: named layers in the file
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        name = env.layout()[-1][0]
        assert torch.equal(f.get_tensor(name), env.unflatten(genome)[name])


def _rewrite(src, dst, meta_fn=None, tensor_fn=None):
    """Copy a synthetic-env file with its metadata dict / tensors dict changed in place by the given functions."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = json.loads(f.metadata()["torch_distill"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    if meta_fn:
        meta_fn(meta)
    if tensor_fn:
        tensor_fn(tensors)
    save_file(tensors, str(dst), metadata={"torch_distill": json.dumps(meta)})
    return dst


def test_corrupt_and_mismatched_files(tmp_path):
    env = SyntheticMDP(make_native("CartPole-v0"), hidden=(8,))
    good = tmp_path / "good.safetensors"
    save_synthetic_env(good, env, env.init_genome(_gen(0))[0])

    def arch(key, value):
        return lambda m: m["architecture"].__setitem__(key, value)

    def bias_plus_one(t):
        t["transition.0.bias"] = t["transition.0.bias"] + 1

    cases = [
        (lambda m: m.__setitem__("kind", "world_model"), "kind 'world_model', expected one of 'scb', 'mdp', 'reward'"),
        (lambda m: m.__setitem__("format_version", 99), "format_version 99 is newer"),
        (lambda m: m.__setitem__("format", "other"), "format 'other'"),
        (arch("hidden", [9]), "recorded genome layout does not match"),
        (arch("transition", "sideways"), "inconsistent 'mdp' architecture .*transition='sideways'"),
        (lambda m: m["architecture"].pop("state_clip"), "inconsistent 'mdp' architecture .*state_clip"),
        (lambda m: m.__setitem__("num_params", 5), "num_params 5"),
        (lambda m: m["env"].__setitem__("env_id", "Nope-v0"), "no native torch env .*Nope-v0"),
        (lambda m: m["env"].__setitem__("obs_shape", [5]), "recorded real env spec .* differs"),
        (lambda m: m.pop("env"), "inconsistent metadata"),
    ]
    for i, (meta_fn, match) in enumerate(cases):
        bad = _rewrite(good, tmp_path / f"bad{i}.safetensors", meta_fn=meta_fn)
        with pytest.raises(SyntheticEnvFileError, match=match) as info:
            load_synthetic_env(bad)
        assert str(bad) in str(info.value)
    # the whole architecture mismatch: a genome of the wrong size
    other = SyntheticMDP(make_native("CartPole-v0"), hidden=(9,))
    bad = _rewrite(good, tmp_path / "size.safetensors",
                   meta_fn=lambda m: m.update(architecture=other.architecture(), num_params=other.num_params))
    with pytest.raises(SyntheticEnvFileError, match="genome has shape"):
        load_synthetic_env(bad)
    bad = _rewrite(good, tmp_path / "named.safetensors", tensor_fn=bias_plus_one)
    with pytest.raises(SyntheticEnvFileError, match="'transition.0.bias' disagrees with the genome"):
        load_synthetic_env(bad)
    bad = _rewrite(good, tmp_path / "nogenome.safetensors", tensor_fn=lambda t: t.pop("genome"))
    with pytest.raises(SyntheticEnvFileError, match="no 'genome' tensor"):
        load_synthetic_env(bad)
    (tmp_path / "junk.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(SyntheticEnvFileError, match="junk.safetensors"):
        load_synthetic_env(tmp_path / "junk.safetensors")
    # a real env whose spec differs from the recorded one
    with pytest.raises(SyntheticEnvFileError, match="differs"):
        load_synthetic_env(good, real_env=make_native("CartPole-v1"))
    assert load_synthetic_env(good, real_env=make_native("CartPole-v0")).num_params == env.num_params
    # a genome with NaN is never written
    with pytest.raises(SyntheticEnvFileError, match="NaN"):
        save_synthetic_env(tmp_path / "nan.safetensors", env, torch.full((env.num_params,), float("nan")))
    assert not (tmp_path / "nan.safetensors").exists()
    with pytest.raises(ValueError, match="carries none"):
        save_synthetic_env(tmp_path / "none.safetensors", env)


# ---------------------------------------------------------------------------------------------------- names
def test_shipped_names(tmp_path, monkeypatch):
    assert (synthetic.SHIPPED_DIR / "README.md").is_file()
    monkeypatch.setattr(synthetic.files, "SHIPPED_DIR", tmp_path)
    assert shipped_synthetic_envs() == {}
    mdp = SyntheticMDP(make_native("CartPole-v0"), hidden=(8,))
    scb = SyntheticContextualBandit(make_native("CartPole-v1").spec, hidden=(8,))
    save_synthetic_env(tmp_path / "MDP-CartPole-v0.safetensors", mdp, mdp.init_genome(_gen(0))[0], {"command": "test"})
    save_synthetic_env(tmp_path / "SCB-CartPole-v1.safetensors", scb, scb.init_genome(_gen(0))[0])
    assert list(shipped_synthetic_envs()) == ["MDP-CartPole-v0", "SCB-CartPole-v1"]
    env = load_synthetic_env("MDP-CartPole-v0")
    assert isinstance(env, SyntheticMDP) and env.metadata["command"] == "test"
    assert isinstance(load_synthetic_env("SCB-CartPole-v1.safetensors"), SyntheticContextualBandit)
    assert read_synthetic_env_metadata("SCB-CartPole-v1")["kind"] == "scb"
    with pytest.raises(SyntheticEnvFileError, match="'?MDP-CartPole-v1'?: no such .*shipped: MDP-CartPole-v0, SCB-CartPole-v1"):
        load_synthetic_env("MDP-CartPole-v1")
    assert f"{mdp.file_prefix}-{mdp.real_spec.env_id}" == "MDP-CartPole-v0"


def test_setup_ships_synthetic_envs():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "setup.py").read_text()
    assert '"synthetic_envs/*.safetensors"' in text and '"synthetic_envs/*.md"' in text


# ---------------------------------------------------------------------------------------------------- adapters
@pytest.mark.parametrize("variant", ["mdp-real-direct", "mdp-learned", "reward-potential-additive", "reward-plain-additive"])
def test_loaded_envs_work_with_adapters(tmp_path, variant):
    env = _VARIANTS[variant]()
    path = tmp_path / "env.safetensors"
    save_synthetic_env(path, env, env.init_genome(_gen(0))[0])
    loaded = load_synthetic_env(path)
    from torch_distill.envs.gym_adapter import FunctionalVectorEnv
    venv = FunctionalVectorEnv(loaded, num_envs=4)
    obs, _ = venv.reset(seed=0)
    for _ in range(3):
        obs, reward, term, _, _ = venv.step(venv.action_space.sample())
    assert obs.shape == (4, env.spec.obs_dim) and reward.shape == (4,) and term.dtype == bool
    venv.reset(options={"reset_mask": [True, False, True, False]})
    pytest.importorskip("torchrl")
    from torchrl.envs.utils import check_env_specs

    from torch_distill.envs.torchrl_adapter import TorchRLEnv
    trl = TorchRLEnv(loaded, num_envs=4)
    check_env_specs(trl)
    td = trl.rollout(5, break_when_any_done=False)
    assert td.batch_size == torch.Size([4, 5])
