"""Progress bars of long commands (log.progress_bar): drawn on a terminal, quiet under CI or when piped."""

from __future__ import annotations

import io

import pytest
import torch

from torch_distill.cli import main
from torch_distill.envs.vec import make_vec_env
from torch_distill.evaluation import rollout
from torch_distill.log import PROGRESS_ENV, progress_bar, progress_enabled


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_on_for_a_terminal_and_off_under_ci_or_a_pipe(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert progress_enabled(_Tty())
    assert not progress_enabled(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled(_Tty())
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert progress_enabled(io.StringIO())
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert not progress_enabled(_Tty())


@pytest.mark.parametrize("env_id,live_only", [("CartPole-v1", True), ("CartPole-v1", False)])
def test_rollout_reports_every_step_it_takes(env_id, live_only):
    backend = "gymnasium" if live_only else "native"
    venv = make_vec_env(env_id, 6, backend=backend)
    obs = venv.reset(3)
    gen = torch.Generator().manual_seed(0)
    seen: list[int] = []
    res = rollout(venv, obs, lambda o: torch.randint(0, 2, (o.shape[0],), generator=gen), 500, check_every=8,
                  progress=seen.append)
    taken = int(res.lengths.max())
    if live_only:  # one call per step while any episode runs
        assert seen == [1] * taken
    else:  # one call per early-exit check
        assert set(seen) == {8} and taken <= sum(seen) < taken + 8
    venv.close()


def test_evaluate_draws_a_bar_when_asked_and_nothing_when_piped(capsys, monkeypatch):
    args = ["evaluate", "CartPole-v1", "--seeds", "1", "--episodes", "2"]
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "evaluating 1 policies x 2 episodes" in err and "step" in err
    monkeypatch.delenv(PROGRESS_ENV)
    monkeypatch.setenv("CI", "true")
    assert main(args) == 0
    assert capsys.readouterr().err == ""


def test_a_disabled_bar_takes_the_same_calls_and_prints_nothing(capsys):
    with progress_bar(10, "quiet", enabled=False) as bar:
        bar.update(3)
        bar.update(7)
    with progress_bar(10, "drawn", enabled=True) as bar:
        bar.update(10)
    out = capsys.readouterr()
    assert out.out == "" and "quiet" not in out.err and "drawn" in out.err and "/10" in out.err
