"""Direct tests of ``torch_distill.distributed``: sharding, fitness gathering, and a real 2-process gloo run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from torch_distill.distributed import (DistInfo, barrier, cleanup, gather_fitness, gather_fitness_and_counts,
                                      init_distributed, shard)

REPO = Path(__file__).resolve().parents[2]


def test_dist_info_defaults():
    info = DistInfo()
    assert info.is_main and not info.enabled and info.world_size == 1 and info.device == torch.device("cpu")
    assert not DistInfo(rank=1, world_size=2).is_main and DistInfo(rank=1, world_size=2).enabled


@pytest.mark.parametrize("popsize", [1, 2, 5, 7, 8, 13, 64, 101])
@pytest.mark.parametrize("world", [1, 2, 3, 4, 7, 8])
def test_shard_covers_every_member_once_in_contiguous_balanced_slices(popsize, world):
    slices = [shard(popsize, DistInfo(rank=r, world_size=world)) for r in range(world)]
    covered = [i for s in slices for i in range(popsize)[s]]
    assert covered == list(range(popsize))  # every index exactly once, in rank order
    assert all(s.step is None for s in slices)  # contiguous
    assert slices[0].start == 0 and slices[-1].stop == popsize
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))
    sizes = [s.stop - s.start for s in slices]
    assert max(sizes) - min(sizes) <= 1 and sorted(sizes, reverse=True) == sizes  # larger shards first


def test_shard_examples():
    assert [shard(7, DistInfo(rank=r, world_size=3)) for r in range(3)] == [slice(0, 3), slice(3, 5), slice(5, 7)]
    assert [shard(2, DistInfo(rank=r, world_size=3)) for r in range(3)] == [slice(0, 1), slice(1, 2), slice(2, 2)]
    assert shard(10, DistInfo()) == slice(0, 10)


def test_gather_fitness_single_process_is_identity():
    local = torch.tensor([3.0, -1.0, 2.5])
    assert gather_fitness(local, 3, DistInfo()) is local
    barrier(DistInfo())  # no-ops without a process group
    cleanup(DistInfo())
    assert not dist.is_initialized()


def test_gather_fitness_and_counts_single_process():
    local = torch.tensor([3.0, -1.0])
    fit, counts = gather_fitness_and_counts(local, torch.tensor([7, 5]), 2, DistInfo())
    assert fit is local and counts.dtype == torch.float64 and counts.tolist() == [7.0, 5.0]


def test_init_distributed_without_torchrun_is_a_noop(monkeypatch):
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    info = init_distributed("cpu")
    assert info == DistInfo(0, 1, 0, torch.device("cpu"))
    assert not dist.is_initialized()
    auto = init_distributed("auto")
    assert auto.device == (torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu"))
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "3")
    info = init_distributed("cpu")
    assert (info.world_size, info.local_rank, info.enabled) == (1, 3, False)
    assert not dist.is_initialized()


WORKER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    import torch
    import torch.distributed as dist
    from torch_distill.distributed import DistInfo, cleanup, gather_fitness, init_distributed, shard
    from torch_distill.es import make_strategy
    from torch_distill.runner import RunnerConfig, run_es

    torch.set_num_threads(1)
    out = sys.argv[1]
    info = init_distributed("cpu")
    res = {"rank": info.rank, "world": info.world_size, "local_rank": info.local_rank,
           "initialized": dist.is_initialized(), "backend": dist.get_backend(), "gathers": {}}
    for P in (5, 7, 2, 1, 10):
        full = torch.arange(P, dtype=torch.float32) * 1.5 - 2.0
        sl = shard(P, info)
        got = gather_fitness(full[sl].clone(), P, info)
        res["gathers"][str(P)] = {"slice": [sl.start, sl.stop], "got": got.tolist()}

    class Sphere:
        num_dims = 3
        def initial_mean(self): return torch.ones(3)
        def fitness(self, x, g):
            n = x.shape[0]
            return -(x * x).sum(1), {"env_steps": torch.tensor(float(n)), "episode_steps": torch.tensor(float(n))}
        def evaluate_mean(self, m, g): return {"return_mean": float(-(m * m).sum())}
        def state_dict(self): return {}
        def load_state_dict(self, s): pass

    es = make_strategy("snes", 3, popsize=5, sigma_init=0.3)  # 5 members: shards of 3 and 2
    state, rows, best = run_es(Sphere(), es, RunnerConfig(6, seed=2, eval_every=3, log_every=100),
                               Path(out) / "run", info)
    res["mean"] = state.mean.tolist()
    res["n_rows"] = len(rows)
    res["episode_steps"] = rows[-1]["episode_steps"] if rows else None
    with open(os.path.join(out, f"rank{info.rank}.json"), "w") as f:
        json.dump(res, f)
    cleanup(info)
    """
)


def test_two_process_gloo_gather_and_run_es(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]

    for r, d in enumerate(res):
        assert (d["rank"], d["world"], d["local_rank"]) == (r, 2, r)
        assert d["initialized"] and d["backend"] == "gloo"
        for p, g in d["gathers"].items():
            P = int(p)
            assert g["got"] == [i * 1.5 - 2.0 for i in range(P)]  # the full vector, in order, on every rank
            assert g["slice"] == [shard(P, DistInfo(r, 2)).start, shard(P, DistInfo(r, 2)).stop]
    assert res[0]["gathers"]["5"]["slice"] == [0, 3] and res[1]["gathers"]["5"]["slice"] == [3, 5]

    # every rank applies the same update; the result equals a single-process run; rows on rank 0 only
    assert res[0]["mean"] == res[1]["mean"]
    assert res[0]["n_rows"] == 6 and res[1]["n_rows"] == 0
    assert res[0]["episode_steps"] == 6 * 5.0  # step counters are summed over ranks
    from torch_distill.es import make_strategy
    from torch_distill.runner import RunnerConfig, run_es

    class Sphere:
        num_dims = 3

        def initial_mean(self):
            return torch.ones(3)

        def fitness(self, x, g):
            n = x.shape[0]
            return -(x * x).sum(1), {"env_steps": torch.tensor(float(n)), "episode_steps": torch.tensor(float(n))}

        def evaluate_mean(self, m, g):
            return {"return_mean": float(-(m * m).sum())}

        def state_dict(self):
            return {}

        def load_state_dict(self, s):
            pass

    state, _, _ = run_es(Sphere(), make_strategy("snes", 3, popsize=5, sigma_init=0.3),
                         RunnerConfig(6, seed=2, eval_every=3, log_every=100), tmp_path / "single", DistInfo())
    assert res[0]["mean"] == state.mean.tolist()  # bitwise: same populations, same fitness, same update


# ---------------------------------------------------------------------------------- world 1 == world 2, per search
COMMON = ["--generations", "3", "--episodes", "2", "--max-steps", "60", "--eval-every", "2",
          "--eval-episodes", "2", "--checkpoint-every", "1", "--final-episodes", "2", "--threads", "1",
          "--device", "cpu"]
SEARCHES = {  # popsize 5: uneven shards (3 + 2); ES-mean evaluations at generations 2 and 3 (rank 0 only)
    "hades": ["hades", "--env", "CartPole-v1", "--popsize", "5", "--variant", "R", "--bc-steps", "8",
              "--hidden", "16,16", "--final-seeds", "0"],
    "direct-es": ["direct-es", "--env", "Pendulum-v1", "--hidden", "8", "--popsize", "6"],  # OpenES: even
    "synth-env": ["synth-env", "--env", "CartPole-v0", "--kind", "scb", "--popsize", "5", "--algos", "dqn,ppo",
                  "--inner-steps", "200", "--eval-agents", "1", "--final-seeds", "0"],
}


@pytest.mark.parametrize("search", sorted(SEARCHES))
def test_world_one_and_two_give_identical_searches(search, tmp_path):
    """Every search (HaDES, direct ES, synthetic env) sharded over 2 gloo ranks ends in bitwise the same ES state
    and the same metric rows (fitness statistics, episode steps summed over ranks, ES-mean evaluations) as one
    process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    args = [*SEARCHES[search], *COMMON, "--out", str(tmp_path)]
    one = subprocess.run([sys.executable, "-m", "torch_distill.cli", *args, "--name", "w1"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stdout[-3000:] + one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "torch_distill.cli", *args, "--name", "w2"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    assert "world size 2" in two.stdout
    a = torch.load(tmp_path / "w1" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "w2" / "checkpoint.pt", weights_only=True)
    assert a["generation"] == b["generation"] == 3
    for k in ("mean", "sigma"):
        torch.testing.assert_close(a["es_state"][k], b["es_state"][k], rtol=0, atol=0)
    # executed vector-env steps differ: each rank's rollout exits early when its own envs are done
    drop = {"wall_time", "gens_per_s", "env_steps_per_s", "env_steps"}
    rows = [[{k: v for k, v in json.loads(x).items() if k not in drop}
             for x in (tmp_path / w / "metrics.jsonl").read_text().splitlines()] for w in ("w1", "w2")]
    assert rows[0] == rows[1] and len(rows[0]) == 3
    assert "es_mean_return" in rows[0][1] and "es_mean_return" in rows[0][2]
