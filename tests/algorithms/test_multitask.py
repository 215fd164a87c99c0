"""Multi-task datasets (algorithms/multitask.py, ``torch-distill merge``).

The zero-padding merge keeps every source pair in its rows and records which env each pair and dimension belongs
to; a merged file round-trips; a task policy sees its own observation padded and acts in its own action space (the
merged net restricted to a task equals a single-task net with the padded weights dropped); one policy trained on
the merged CartPole + Acrobot set is scored on both envs; the continuous pair Pendulum + Hopper (MuJoCo through
envpool) merges and evaluates; bad merges get clear errors; the CLI writes the file and compares with the sources.
"""

from __future__ import annotations

import pytest
import torch

from torch_distill.algorithms.multitask import (
    PAD_LOGIT,
    TaskPolicy,
    evaluate_multitask,
    is_multitask,
    merge_datasets,
    task_specs,
)
from torch_distill.cli import main
from torch_distill.envs.vec import make_native
from torch_distill.io import Dataset, load_dataset, save_dataset
from torch_distill.policies import PolicyConfig, PolicyNet


def test_merge_layout_and_round_trip(tmp_path):
    a, b = load_dataset("CartPole-v1"), load_dataset("Acrobot-v1")
    m = merge_datasets([a, b])
    assert m.spec.obs_dim == 6 and m.spec.n_actions == 3 and m.size == a.size + b.size and is_multitask(m)
    assert torch.equal(m.states[: a.size, :4], a.states) and (m.states[: a.size, 4:] == 0).all()
    assert torch.equal(m.states[a.size :], b.states)
    assert torch.equal(m.actions, torch.cat([a.actions, b.actions]))
    save_dataset(tmp_path / "m.safetensors", m)
    back = load_dataset(tmp_path / "m.safetensors")
    specs = task_specs(back)
    assert [s.env_id for s, _ in specs] == ["CartPole-v1", "Acrobot-v1"]
    assert [t["rows"] for _, t in specs] == [[0, a.size], [a.size, a.size + b.size]]
    assert specs[0][1]["obs_normalizer"] == a.metadata["obs_normalizer"]


def test_logit_labels_are_padded_with_a_tiny_probability():
    spec2, spec3 = make_native("CartPole-v1").spec, make_native("Acrobot-v1").spec
    a = Dataset(torch.zeros(2, 4), torch.tensor([[1.0, 2.0], [0.5, -1.0]]), spec2, {})
    b = Dataset(torch.zeros(3, 6), torch.tensor([0, 1, 2]), spec3, {})
    m = merge_datasets([a, b])
    assert m.actions.shape == (5, 3) and (m.actions[:2, 2] == PAD_LOGIT).all()
    assert torch.softmax(m.actions[2:], -1).argmax(-1).tolist() == [0, 1, 2]


def test_task_policy_is_the_merged_net_on_the_task():
    m = merge_datasets([load_dataset("CartPole-v1"), load_dataset("Acrobot-v1")])
    net = PolicyNet(m.spec, PolicyConfig((8,)))
    flat = net.init(2, torch.Generator().manual_seed(0))
    task = make_native("CartPole-v1").spec
    pol = TaskPolicy(net, task)
    obs = torch.randn(2, 5, 4)
    out = pol.batched_forward(flat, obs)
    want = net.batched_forward(flat, torch.cat([obs, torch.zeros(2, 5, 2)], -1))[..., :2]
    assert out.shape == (2, 5, 2) and torch.equal(out, want)
    assert pol.act(flat, obs, None).max() <= 1  # never an action CartPole lacks


def test_merged_policy_on_both_envs():
    m = merge_datasets([load_dataset("CartPole-v1"), load_dataset("Acrobot-v1")])
    res = evaluate_multitask(m, seeds=range(3), episodes=5)
    rows = {r["env"]: r for r in res.rows}
    assert set(rows) == {"CartPole-v1", "Acrobot-v1"}
    assert rows["CartPole-v1"]["return_mean"] > 60  # random policy: ~22
    assert rows["Acrobot-v1"]["return_mean"] > -500  # random policy: -500 (never swings up)


def test_continuous_pair_with_mujoco():
    pytest.importorskip("envpool")
    m = merge_datasets([load_dataset("Pendulum-v1"), load_dataset("Hopper-v4")])
    assert m.spec.obs_dim == 11 and m.spec.action_dim == 3 and not m.spec.discrete
    res = evaluate_multitask(m, seeds=range(1), episodes=2)
    assert {r["env"] for r in res.rows} == {"Pendulum-v1", "Hopper-v4"}
    assert all(torch.isfinite(torch.tensor(r["return_mean"])) for r in res.rows)


def test_bad_merges():
    cp = load_dataset("CartPole-v1")
    with pytest.raises(ValueError, match="at least two"):
        merge_datasets([cp])
    with pytest.raises(ValueError, match="same kind of action space"):
        merge_datasets([cp, load_dataset("Pendulum-v1")])
    with pytest.raises(ValueError, match="already a merged dataset"):
        merge_datasets([merge_datasets([cp, load_dataset("Acrobot-v1")]), cp])
    with pytest.raises(ValueError, match="not a multi-task dataset"):
        task_specs(cp)


def test_cli_merge_and_evaluate(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["merge", "CartPole-v1", "Acrobot-v1", "--out", str(out), "--seeds", "1", "--episodes", "2"]) == 0
    text = capsys.readouterr().out
    assert "single-task: return" in text and "CartPole-v1" in text and out.exists()
    assert load_dataset(out).metadata["command"].startswith("torch-distill merge")
    assert main(["evaluate", str(out), "--seeds", "1", "--episodes", "2"]) == 0
    assert "Acrobot-v1" in capsys.readouterr().out
    assert main(["merge", "CartPole-v1", "Pendulum-v1", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "same kind of action space" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


def test_shipped_merged_dataset_loads_by_name():
    from torch_distill.io import shipped_datasets, shipped_multitask_datasets

    assert "CartPole-v1+Acrobot-v1" in shipped_multitask_datasets()
    assert "CartPole-v1+Acrobot-v1" not in shipped_datasets()  # single-task names stay env ids
    m = load_dataset("CartPole-v1+Acrobot-v1")
    assert is_multitask(m) and [s.env_id for s, _ in task_specs(m)] == ["CartPole-v1", "Acrobot-v1"]
    assert set(m.metadata["eval"]) == {"CartPole-v1 (merged)", "Acrobot-v1 (merged)"}
