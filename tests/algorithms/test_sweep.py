"""Learner-invariance tools: BC snapshots, the torch init scheme, HaDES's random learners and ``torch-distill sweep``.

Snapshots equal separate BC runs; the ``torch`` init draws what ``nn.Linear`` draws; a random-learner HaDES run
trains a different learner each generation and records its space; the sweep of the shipped CartPole dataset scores
the recipe it was evolved with at 500 and a learner that barely moves at random-policy level; THC is 0 for
identical rankings and 1 for reversed ones; the CLI writes its CSV, heatmap and JSON and rejects bad grids.
"""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from torch_distill.algorithms.bc import BCConfig, bc_train, bc_train_snapshots
from torch_distill.algorithms.hades import HadesConfig, HadesProblem, LearnerSpace, resolve_hades
from torch_distill.algorithms.sweep import SweepGrid, sweep_dataset, thc_scores
from torch_distill.cli import main
from torch_distill.evaluation import RealEnvEvaluator
from torch_distill.io import load_dataset
from torch_distill.policies import PolicyConfig, PolicyNet


def test_snapshots_equal_separate_runs():
    ds = load_dataset("CartPole-v1")
    net = PolicyNet(ds.spec, PolicyConfig((16, 16)))
    inits = net.init(3, torch.Generator().manual_seed(0))
    states = ds.states.expand(3, *ds.states.shape)
    actions = ds.actions.expand(3, *ds.actions.shape)
    bc = BCConfig(steps=40, lr=0.01)
    snaps = bc_train_snapshots(net, inits, states, actions, bc, (0, 7, 40))
    assert torch.equal(snaps[0], inits)
    for k, got in zip((7, 40), snaps[1:]):
        want = bc_train(net, inits, states, actions, BCConfig(steps=k, lr=0.01))
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_torch_init_scheme_is_nn_linear_default():
    spec = load_dataset("CartPole-v1").spec
    net = PolicyNet(spec, PolicyConfig((256,), "tanh", init="torch"))
    flat = net.init(64, torch.Generator().manual_seed(1))
    p = net.unflatten(flat)
    w0, b0, w1 = p["layers.0.weight"], p["layers.0.bias"], p["layers.1.weight"]
    for x, fan_in in ((w0, 4), (b0, 4), (w1, 256)):
        bound = 1 / math.sqrt(fan_in)
        assert x.abs().max() <= bound and x.abs().max() > 0.98 * bound
        assert abs(float(x.std()) - bound / math.sqrt(3)) < 0.03 * bound  # U(-b, b) has std b / sqrt(3)
        assert abs(float(x.mean())) < 0.03 * bound
    ref = torch.nn.Linear(256, 2)  # the same law as PyTorch's own default
    assert abs(float(ref.weight.detach().std()) - float(w1.std())) < 0.1 * float(w1.std())
    with pytest.raises(ValueError, match="init='xavier'"):
        PolicyConfig((8,), init="xavier")


def test_learner_space_draws_and_errors():
    cfg = HadesConfig(learner="random", learner_widths="16,512", learner_depths="1,2", learner_lr="1e-3,3e-2",
                      learner_steps="32,1000")
    space = LearnerSpace.from_config(cfg)
    base, bc = PolicyConfig((64, 64)), BCConfig()
    draws = [space.sample(s, base, bc) for s in range(200)]
    assert draws[0] == space.sample(0, base, bc)
    assert {p.hidden for p, _ in draws} == {(16,), (512,), (16, 16), (512, 512)}
    assert {p.activation for p, _ in draws} == {"relu", "tanh"} and {p.init for p, _ in draws} == {"orthogonal", "torch"}
    lrs = torch.tensor([b.lr for _, b in draws])
    steps = torch.tensor([b.steps for _, b in draws])
    assert lrs.min() >= 1e-3 and lrs.max() <= 3e-2 and steps.min() >= 32 and steps.max() <= 1000
    assert abs(float(lrs.log().mean()) - math.log(math.sqrt(1e-3 * 3e-2))) < 0.25  # log-uniform
    for field, bad, msg in [("learner_lr", "0.1,0.01", "learner_lr"), ("learner_steps", "0,10", "learner_steps"),
                            ("learner_activations", "relu,swish", "swish"), ("learner_inits", "he", "'he'"),
                            ("learner_widths", "a,b", "learner_widths")]:
        with pytest.raises(ValueError, match=msg):
            HadesConfig(learner="random", **{field: bad}).validate()


def test_random_learner_problem_trains_a_different_learner_per_generation():
    cfg = HadesConfig(env="CartPole-v1", learner="random", popsize=4, episodes=2, learner_steps="2,4")
    ev = RealEnvEvaluator("CartPole-v1", torch.device("cpu"))
    problem = HadesProblem(resolve_hades(cfg, ev.spec), ev)
    learners = [problem.learner(g) for g in range(6)]
    assert len({(n.config, b.lr, b.steps) for n, b, _ in learners}) == 6
    net, bc, fixed = problem.learner(3)
    again = problem.learner(3)
    assert again[0] is net and torch.equal(again[2], fixed)  # HaDES-F: one fixed init per drawn learner
    genomes = torch.randn(4, problem.num_dims, generator=torch.Generator().manual_seed(0))
    fit, counts = problem.fitness(genomes, 3)
    assert fit.shape == (4,) and torch.isfinite(fit).all() and counts["env_steps"] > 0
    assert problem.dataset(genomes[0], {}).metadata["learner_space"]["widths"] == [16, 32, 64, 256, 512]


def test_sweep_discriminates_learners_on_the_shipped_dataset():
    ds = load_dataset("CartPole-v1")
    grid = SweepGrid(hidden=((64, 64),), activation=("relu",), init=("orthogonal",), lr=(1e-3, 0.03), steps=(4, 32),
                     seeds=2)
    rows = sweep_dataset(ds, grid, episodes=10)
    cell = {(r["lr"], r["steps"]): r for r in rows}
    assert len(rows) == 4 and all(r["policies"] == 2 for r in rows)
    assert cell[(0.03, 32)]["return_mean"] >= 450  # the recipe the dataset was evolved for
    assert cell[(1e-3, 4)]["return_mean"] < 100  # four tiny steps leave the policy near its init


def _rows(order: list[float]) -> list[dict]:
    return [{"lr": lr, "steps": s, "return_mean": ret + 0.01 * s} for (lr, ret) in zip((1e-3, 1e-2, 1e-1), order)
            for s in (1, 2)]


def test_thc_scores():
    assert thc_scores({"a": _rows([10, 200, 400]), "b": _rows([20, 300, 450])})["lr"] == 0.0
    rev = thc_scores({"a": _rows([10, 200, 400]), "b": _rows([400, 200, 10])})
    assert rev["lr"] == pytest.approx((2 + 0 + 2) / (3 * 2))
    with pytest.raises(ValueError, match="at least two"):
        thc_scores({"a": _rows([1, 2, 3])})


def test_cli_sweep_writes_table_heatmap_and_json(tmp_path, capsys):
    out = str(tmp_path / "sw")
    code = main(["sweep", "CartPole-v1", "Acrobot-v1", "--hidden", "16,16", "--activation", "relu", "--init", "torch",
                 "--lr", "0.03", "--steps", "8", "32", "--seeds", "1", "--episodes", "2", "--threshold", "450",
                 "--out", out])
    assert code == 0
    with open(out + "-CartPole-v1.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["steps"]) for r in rows] == [8, 32] and all(float(r["return_mean"]) > 0 for r in rows)
    assert (tmp_path / "sw-Acrobot-v1.png").stat().st_size > 1000
    rec = json.loads((tmp_path / "sw.json").read_text())
    assert set(rec["sweeps"]) == {"CartPole-v1", "Acrobot-v1"} and set(rec["thc"]) == {"steps"}  # one lr: nothing to rank
    assert "cells < 450" in capsys.readouterr().out


@pytest.mark.parametrize("args, msg", [(["--lr", "-1"], "lr=-1"), (["--steps", "0"], "steps=0"),
                                       (["--seeds", "0"], "seeds=0"), (["--init", "he"], "init='he'"),
                                       (["--episodes", "0"], "--episodes 0")])
def test_cli_sweep_bad_grid(args, msg, tmp_path, capsys):
    assert main(["sweep", "CartPole-v1", "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written


def _grid_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "invariance_grid.py"
    spec = importlib.util.spec_from_file_location("invariance_grid", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_invariant_dataset_trains_an_off_recipe_plain_torch_learner():
    """The random-learner dataset trains a learner the fixed-learner one fails with (64 tanh, Adam 0.03 without
    clipping, 100 steps; plain torch and gymnasium, as scripts/invariance_grid.py)."""
    import numpy as np

    from torch_distill.io import resolve_dataset

    g = _grid_script()
    returns = {}
    for name in ("CartPole-v1", "invariant/CartPole-v1"):
        states, actions, meta = g.load(str(resolve_dataset(name)))
        norm = meta["obs_normalizer"]
        mean, std = np.asarray(norm["obs_mean"]), np.sqrt(np.asarray(norm["obs_var"]) + norm["eps"])
        pols = []
        for seed in range(2):
            torch.manual_seed(seed)
            net = g.make_policy(4, 2, 64, 2, "tanh", "orthogonal")
            net.load_state_dict(g.train(net, None, states, actions, 0.03, [100])[0])
            pols.append(net)
        returns[name] = float(g.evaluate("CartPole-v1", pols, mean, std, 10, 12345, True, None, None).mean())
    assert returns["invariant/CartPole-v1"] >= 450, returns
    assert returns["CartPole-v1"] < 350, returns


def test_shipped_invariant_datasets_load_by_name():
    from torch_distill.io import shipped_invariant_datasets

    assert set(shipped_invariant_datasets()) == {"invariant/CartPole-v1", "invariant/Pendulum-v1"}
    for name in shipped_invariant_datasets():
        ds = load_dataset(name)
        assert ds.metadata["learner_space"]["widths"] and ds.metadata["invariance_grid"]["cells_total"] == 320
        assert "/tmp" not in ds.metadata["command"]
