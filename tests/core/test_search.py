"""The method-free search orchestration: ES options -> strategy keywords, and one whole run of a toy method
(run folder, config.json, candidates, summary.json, resume) through :func:`run_search`."""

import json
from dataclasses import asdict

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from torch_distill.algorithms.direct_es import DirectESConfig
from torch_distill.algorithms.hades import HadesConfig
from torch_distill.algorithms.synthetic_env import SynthEnvConfig
from torch_distill.search import Candidate, ESOptions, Finished, SearchMethod, run_search


@pytest.mark.parametrize(
    "config,kwargs",
    [  # the keywords each method recorded in config.json before the options were shared
        (HadesConfig(), {"popsize": 64, "sigma_init": 0.5, "temperature": 20.0, "lrate_mean": 1.0}),
        (HadesConfig(strategy="open_es", sigma=0.1), {"popsize": 64, "sigma_init": 0.1, "lr": 0.05, "beta1": 0.99}),
        (DirectESConfig(), {"popsize": 64, "sigma_init": 0.05, "lr": 0.02, "beta1": 0.9, "shaping": "centered_rank"}),
        (DirectESConfig(strategy="snes"), {"popsize": 64, "sigma_init": 0.05, "lrate_mean": 0.02}),
        (SynthEnvConfig(), {"popsize": 32, "sigma_init": 0.05, "temperature": 0.0, "lrate_mean": 1.0}),
        (SynthEnvConfig(strategy="open_es", es_lr=0.01), {"popsize": 32, "sigma_init": 0.05, "lr": 0.01}),
    ],
)
def test_strategy_kwargs_of_every_method(config, kwargs):
    config.validate()
    assert config.strategy_kwargs() == kwargs
    assert list(config.strategy_kwargs()) == list(kwargs)  # recorded in the strategy config's field order


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"strategy": "cma"}, "strategy='cma'"),
        ({"strategy": "open_es", "popsize": 7}, "antithetic pairs"),
        ({"popsize": 0}, "popsize=0"),
        ({"sigma": -1.0}, "sigma=-1.0"),
        ({"es_lr": float("nan")}, "es_lr=nan"),
        ({"generations": 1.5}, "generations=1.5"),
    ],
)
def test_bad_es_options_name_the_value(kw, needle):
    with pytest.raises(ValueError, match=needle):
        ESOptions(**kw).validate()


class Sphere:
    """A toy problem: maximise ``-|x - 1|^2`` in 3 dimensions (no env)."""

    num_dims = 3

    def initial_mean(self):
        return torch.zeros(3)

    def fitness(self, genomes, generation):
        zero = torch.zeros(())
        return -((genomes - 1) ** 2).sum(-1), {"env_steps": zero, "episode_steps": zero}

    def evaluate_mean(self, mean, generation):
        return {"return_mean": float(-((mean - 1) ** 2).sum())}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class SphereSearch(SearchMethod):
    artefact = "mean"

    def __init__(self, config, device, resumed):
        self.config = config
        self.problem = Sphere()

    def run_name(self):
        return f"sphere-s{self.config.seed}"

    def record(self):
        return {"config": asdict(self.config)}

    def banner(self, where):
        return f"sphere [{where}]"

    def title(self):
        return "sphere"

    def finish(self, candidate: Candidate, run_dir):
        path = candidate.file(run_dir, "mean")
        save_file({"mean": candidate.mean}, str(path), metadata={"meta": json.dumps(candidate.metadata())})
        ev = self.problem.evaluate_mean(candidate.mean, 0)
        return Finished(path, ev, [{"mean": candidate.which, "return": ev["return_mean"]}])

    def summary(self, common, entries):
        return {**common, "means": entries}

    def headline(self, summary):
        return f"sphere after {summary['generations']} generations"


def _options(tmp_path, name, **kw):
    base = dict(out=str(tmp_path), name=name, popsize=8, generations=6, sigma=0.3, eval_every=2, checkpoint_every=2,
                log_every=100, device="cpu")
    return ESOptions(**{**base, **kw})


def test_run_search_writes_the_run_folder(tmp_path, capsys):
    summary = run_search(_options(tmp_path, "a"), SphereSearch)
    run = tmp_path / "a"
    for f in ("config.json", "metrics.jsonl", "checkpoint.pt", "summary.json", "mean.safetensors"):
        assert (run / f).is_file(), f
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["popsize"] == 8 and "command" in record and "library_version" in record
    assert json.loads((run / "summary.json").read_text()) == summary
    assert summary["env"] == "CartPole-v1" and summary["generations"] == 6
    assert set(summary) >= {"train_time_s", "env_steps", "episode_steps", "final_population_mean_fitness"}
    final = summary["means"]["final"]
    assert final["generation"] == 6 and final["path"] == str(run / "mean.safetensors")
    with safe_open(str(run / "mean.safetensors"), "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    assert meta["selected_as"] == "final ES mean" and meta["generations"] == 6
    assert final["eval"]["return_mean"] > -3.0  # the initial mean scores -3
    if "best" in summary["means"]:  # a periodic evaluation beat the last mean: saved next to it
        assert (run / "mean_best.safetensors").is_file()
    out = capsys.readouterr().out
    assert "sphere [cpu, world size 1]" in out and "sphere after 6 generations" in out and "mean (final)" in out
    with pytest.raises(FileExistsError):
        run_search(_options(tmp_path, "a"), SphereSearch)


def test_run_search_resume_equals_uninterrupted(tmp_path):
    run_search(_options(tmp_path, "full"), SphereSearch)
    run_search(_options(tmp_path, "part", generations=4), SphereSearch)
    run_search(_options(tmp_path, "ignored", generations=6), SphereSearch, resume=str(tmp_path / "part"),
               resume_overrides={"generations"})
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    part = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)
    assert full["generation"] == part["generation"] == 6
    torch.testing.assert_close(full["es_state"]["mean"], part["es_state"]["mean"])
    assert json.loads((tmp_path / "part" / "config.json").read_text())["config"]["generations"] == 6
    assert not (tmp_path / "ignored").exists()
    with pytest.raises(ValueError, match="cannot change"):
        run_search(_options(tmp_path, "x", popsize=4), SphereSearch, resume=str(tmp_path / "part"),
                   resume_overrides={"popsize"})


def test_bad_options_leave_nothing_on_disk(tmp_path):
    with pytest.raises(ValueError, match="antithetic"):
        run_search(_options(tmp_path, "odd", strategy="open_es", popsize=7), SphereSearch)
    assert not list(tmp_path.iterdir())
