"""``--strategy`` of ``torch-distill hades``, ``direct-es`` and ``synth-env`` accepts every registered strategy: a
2-generation run with a tiny population through the Python entry point writes its run folder, and resuming it
for one more generation from its checkpoint (``extra`` of CMA-ES / PGPE included) works."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
import torch

from torch_distill.algorithms.direct_es import DirectESConfig
from torch_distill.algorithms.hades import HadesConfig
from torch_distill.algorithms.synthetic_env import SynthEnvConfig
from torch_distill.cli import main
from torch_distill.es import STRATEGIES
from torch_distill.search import LEARNING_RATE_FIELD, ESOptions

torch.set_num_threads(1)

COMMON = ["--generations", "2", "--episodes", "1", "--max-steps", "20", "--eval-every", "2", "--eval-episodes", "2",
          "--checkpoint-every", "1", "--final-episodes", "2", "--threads", "1", "--device", "cpu"]
COMMANDS = {  # popsize 4: even, as OpenES and PGPE need
    "hades": ["hades", "--env", "CartPole-v1", "--popsize", "4", "--bc-steps", "2", "--hidden", "8",
              "--final-seeds", "0", "--eval-inits", "1"],
    "direct-es": ["direct-es", "--env", "CartPole-v1", "--hidden", "8", "--popsize", "4"],
    "synth-env": ["synth-env", "--env", "CartPole-v0", "--kind", "scb", "--popsize", "4", "--algos", "bandit",
                  "--inner-steps", "100", "--eval-agents", "1", "--final-seeds", "0"],
}
ARTIFACT = {"hades": "dataset.safetensors", "direct-es": "policy.safetensors", "synth-env": "env.safetensors"}


def test_every_registered_strategy_is_a_choice() -> None:
    for cfg in (HadesConfig, DirectESConfig, SynthEnvConfig):
        choices = set(typing.get_args(typing.get_type_hints(cfg)["strategy"])) - {"auto"}
        assert choices == set(STRATEGIES), cfg.__name__
    assert set(LEARNING_RATE_FIELD) == set(STRATEGIES)
    for name, field in LEARNING_RATE_FIELD.items():  # the field es_lr sets exists in that strategy's config
        assert field is None or field in {f for f in STRATEGIES[name][1].__dataclass_fields__}, name


@pytest.mark.parametrize(
    "strategy,kwargs",
    [
        ("cma_es", {"popsize": 64, "sigma_init": 0.5, "lrate_mean": 1.0}),
        ("sep_cma_es", {"popsize": 64, "sigma_init": 0.2, "lrate_mean": 0.5}),
        ("pgpe", {"popsize": 64, "sigma_init": 0.1, "center_learning_rate": 0.05}),
        ("cem", {"popsize": 64, "sigma_init": 0.5}),
    ],
)
def test_sigma_and_es_lr_mapping(strategy: str, kwargs: dict) -> None:
    over = {"sigma": 0.2, "es_lr": 0.5} if strategy == "sep_cma_es" else {}
    cfg = HadesConfig(strategy=strategy, **over)  # type: ignore[arg-type]
    cfg.validate()
    assert cfg.strategy_kwargs() == kwargs
    # direct-es passes its shaping where the strategy has one (PGPE) and nothing OpenES-only otherwise
    direct = DirectESConfig(strategy=strategy).strategy_kwargs()  # type: ignore[arg-type]
    assert ("shaping" in direct) == (strategy == "pgpe") and "beta1" not in direct


def test_odd_popsize_rejected_where_pairs_are_sampled() -> None:
    for strategy in ("open_es", "pgpe"):
        with pytest.raises(ValueError, match="popsize=5.*antithetic pairs"):
            ESOptions(strategy=strategy, popsize=5).validate()
    for strategy in ("snes", "cma_es", "sep_cma_es", "cem"):
        ESOptions(strategy=strategy, popsize=5).validate()


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_runs_and_resumes(command: str, strategy: str, tmp_path: Path) -> None:
    name = f"{command}-{strategy}"
    assert main([*COMMANDS[command], *COMMON, "--strategy", strategy, "--out", str(tmp_path), "--name", name]) == 0
    run = tmp_path / name
    for f in ("config.json", "metrics.jsonl", "checkpoint.pt", "summary.json", ARTIFACT[command]):
        assert (run / f).is_file(), f
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["strategy"] == strategy
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["generation"] == 2
    assert ("extra" in ck["es_state"]) == (strategy in ("cma_es", "sep_cma_es", "pgpe"))
    assert main([command, "--resume", str(run), "--generations", "3"]) == 0
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["generation"] == 3 and int(ck["es_state"]["generation"]) == 3
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2, 3]
    assert all(torch.isfinite(v).all() for v in ck["es_state"].values() if isinstance(v, torch.Tensor))
