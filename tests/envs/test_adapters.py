"""gymnasium VectorEnv and torchrl EnvBase adapters over FunctionalEnvs (MiniGrid and classic control)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torch_distill.envs.classic_control import CLASSIC_CONTROL
from torch_distill.envs.gym_adapter import FunctionalVectorEnv
from torch_distill.envs.minigrid import make

MINIGRID_IDS = ["MiniGrid-DoorKey-5x5-v0", "MiniGrid-Dynamic-Obstacles-5x5-v0", "MiniGrid-GoToDoor-5x5-v0"]


def _envs() -> list:
    return [make(i) for i in MINIGRID_IDS] + [c() for c in CLASSIC_CONTROL.values()]


def _ids() -> list[str]:
    return MINIGRID_IDS + list(CLASSIC_CONTROL)


def _obs_items(obs) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    return {"observation": obs} if isinstance(obs, torch.Tensor) else dict(obs._asdict())


def _actions(env, n: int, g: torch.Generator) -> torch.Tensor:  # type: ignore[no-untyped-def]
    s = env.spec
    if s.discrete:
        return torch.randint(0, s.n_actions, (n,), generator=g)
    lo, hi = torch.tensor(s.action_low), torch.tensor(s.action_high)
    return lo + (hi - lo) * torch.rand(n, s.action_dim, generator=g)


@pytest.mark.parametrize("env_id", _ids())
def test_gym_vector_env_equals_functional_env(env_id: str) -> None:
    env = make(env_id) if env_id.startswith("MiniGrid") else CLASSIC_CONTROL[env_id]()
    n = 6
    venv = FunctionalVectorEnv(env, n, seed=3)
    obs, info = venv.reset(seed=5)
    assert venv.observation_space.contains(obs) and info == {}
    assert venv.metadata["autoreset_mode"].value == "SameStep"
    g = torch.Generator().manual_seed(5)
    state, ref_obs = env.reset(n, g)
    ga = torch.Generator().manual_seed(0)
    for _ in range(60):
        a = _actions(env, n, ga)
        obs, r, te, tr, _ = venv.step(a.numpy())
        state, ref_obs, rr, rte, rtr = env.step(state, a, g)
        assert venv.observation_space.contains(obs)
        for k, v in _obs_items(ref_obs).items():
            got = obs if k == "observation" else obs[k]
            np.testing.assert_array_equal(got, v.numpy())
        np.testing.assert_array_equal(r, rr.numpy())
        np.testing.assert_array_equal(te, rte.numpy())
        np.testing.assert_array_equal(tr, rtr.numpy())
        assert r.dtype == np.float32 and te.dtype == np.bool_ and tr.dtype == np.bool_
    venv.close()


def test_gym_partial_reset_and_errors() -> None:
    venv = FunctionalVectorEnv(make("MiniGrid-Empty-Random-6x6-v0"), 8, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros(8, dtype=np.int64))
    venv.reset(seed=1)
    for _ in range(5):
        obs, *_ = venv.step(np.zeros(8, dtype=np.int64))  # turning never ends an episode
    mask = np.arange(8) % 2 == 0
    obs2, _ = venv.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(obs2["image"][~mask], obs["image"][~mask])
    assert (venv._state.step_count[torch.from_numpy(mask)] == 0).all()
    assert (venv._state.step_count[torch.from_numpy(~mask)] == 5).all()
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": np.ones(3, dtype=bool)})
    with pytest.raises(ValueError, match="num_envs"):
        FunctionalVectorEnv(make("MiniGrid-Empty-5x5-v0"), 0)




def _torchrl():  # type: ignore[no-untyped-def]
    pytest.importorskip("torchrl")
    pytest.importorskip("tensordict")
    from torchrl.envs.utils import check_env_specs

    from torch_distill.envs.torchrl_adapter import TorchRLEnv

    return TorchRLEnv, check_env_specs


def _registered() -> list[str]:
    from torch_distill.envs.gym_registry import SYNTHETIC_FILE_ID, registered_ids

    return [n for n in registered_ids() if n != SYNTHETIC_FILE_ID]


@pytest.mark.parametrize("env_id", _registered())
def test_torchrl_check_env_specs(env_id: str) -> None:
    """Every native env and every shipped synthetic env (the ids of the gymnasium registry) as a torchrl env."""
    TorchRLEnv, check_env_specs = _torchrl()
    from torch_distill.envs.gym_registry import make_functional

    env = make_functional(env_id)
    tenv = TorchRLEnv(env, 4, seed=0)
    assert tenv.batch_size == torch.Size([4])
    assert all(s.device == torch.device("cpu") for s in (tenv.action_spec, tenv.reward_spec))
    check_env_specs(tenv, seed=0)
    td = tenv.rollout(30, break_when_any_done=False)
    assert td.shape == torch.Size([4, 30])
    assert td["next", "reward"].shape == (4, 30, 1)


def test_torchrl_rollout_equals_functional_env() -> None:
    """``("next", obs)`` is the last observation of an ended row (torchrl's convention, from ``transition``);
    a masked reset restarts those rows as ``reset_done`` does: step + masked reset == ``step_with_final_obs``."""
    TorchRLEnv, _ = _torchrl()
    from tensordict import TensorDict

    from torch_distill.envs.core import step_with_final_obs

    env = make("MiniGrid-Empty-5x5-v0")  # 100-step time limit: rows end during the loop
    n = 5
    tenv = TorchRLEnv(env, n, seed=7)
    td = tenv.reset()
    g = torch.Generator().manual_seed(7)
    state, obs = env.reset(n, g)
    assert torch.equal(td["image"], obs.image) and torch.equal(td["mission"], obs.mission)
    ga = torch.Generator().manual_seed(1)
    ended = 0
    for _ in range(130):
        a = torch.randint(0, 3, (n,), generator=ga)
        out = tenv.step(TensorDict({"action": a}, batch_size=[n]))
        ref = step_with_final_obs(env, state, a, g)
        done = ref.terminated | ref.truncated
        assert torch.equal(out["next", "image"], ref.final_obs.image)
        assert torch.equal(out["next", "reward"].view(n), ref.reward)
        assert torch.equal(out["next", "terminated"].view(n), ref.terminated)
        assert torch.equal(out["next", "done"].view(n), done)
        if bool(done.any()):
            td = tenv.reset(TensorDict({"_reset": done.view(n, 1)}, batch_size=[n]))
            assert torch.equal(td["image"][done], ref.obs.image[done])  # torchrl returns the reset rows
            ended += int(done.sum())
        state = ref.state
    assert ended > 0


def test_torchrl_partial_reset_keeps_state() -> None:
    """``_reset`` with a mask restarts the masked rows only; unmasked rows keep their state."""
    TorchRLEnv, _ = _torchrl()
    from tensordict import TensorDict

    n = 6
    tenv = TorchRLEnv(make("MiniGrid-Empty-5x5-v0"), n, seed=0)
    tenv.reset()
    for _ in range(3):
        tenv.step(TensorDict({"action": torch.full((n,), 2)}, batch_size=[n]))
    before = tenv._state
    mask = torch.tensor([True, False, True, False, False, False]).view(n, 1)
    tenv.reset(TensorDict({"_reset": mask}, batch_size=[n]))
    after = tenv._state
    assert after.step_count.tolist() == [0, 3, 0, 3, 3, 3]
    assert torch.equal(after.agent_pos[1], before.agent_pos[1])
    tenv.reset(TensorDict({"_reset": torch.ones(n, 1, dtype=torch.bool)}, batch_size=[n]))
    assert tenv._state.step_count.tolist() == [0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MiniGrid-Empty-5x5-v0"])
def test_gym_vector_env_final_obs(env_id: str) -> None:
    """SAME_STEP autoreset: ``info["final_obs"]`` holds the last observation of the rows that ended (the
    functional env's ``transition`` observation), ``info["_final_obs"]`` marks them."""
    from torch_distill.envs.core import step_with_final_obs

    env = make(env_id) if env_id.startswith("MiniGrid") else CLASSIC_CONTROL[env_id]()
    n = 8
    venv = FunctionalVectorEnv(env, n, seed=3)
    venv.reset(seed=3)
    g = torch.Generator().manual_seed(3)
    state, _ = env.reset(n, g)
    ga = torch.Generator().manual_seed(0)
    ended = 0
    for _ in range(120):
        a = _actions(env, n, ga)
        if env_id.startswith("MiniGrid"):
            a = a % 3
        _, _, term, trunc, info = venv.step(a.numpy())
        ref = step_with_final_obs(env, state, a, g)
        done = (ref.terminated | ref.truncated).numpy()
        assert np.array_equal(term | trunc, done)
        if done.any():
            assert np.array_equal(info["_final_obs"], done)
            final = _obs_items(ref.final_obs)
            for i in np.flatnonzero(done):
                row = info["final_obs"][i]
                got = row if isinstance(row, dict) else {"observation": row}
                assert all(np.array_equal(got[k], v[i].numpy()) for k, v in final.items())
            assert all(info["final_obs"][i] is None for i in np.flatnonzero(~done))
            ended += int(done.sum())
        else:
            assert "final_obs" not in info
        state = ref.state
    assert ended > 0
