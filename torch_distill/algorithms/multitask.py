"""Multi-task datasets: the HaDES paper's zero-padding merge (``torch-distill merge``).

:func:`merge_datasets` stacks datasets of several envs into one: states (already in each task's normalised
observation space) zero-padded to the widest observation, actions padded to the widest action space (discrete
labels keep their class index; label logits get :data:`PAD_LOGIT` for the classes a task lacks; continuous targets
get 0). The merged file's env is the padded space (``multitask:A+B``, no normaliser of its own) and its metadata
``tasks`` records, per task, the env spec, its observation normaliser, its rows ``[start, stop)`` of the stacked
pairs and its observation / action widths, i.e. which env each pair and each dimension belongs to.

One policy trained by BC on the merged set is evaluated on every task by :class:`TaskPolicy`: the task's observation
is normalised with the task's normaliser and zero-padded to the merged input, and the policy's output is cut to the
task's action space (the first ``n_actions`` logits or ``action_dim`` means and log-stds).
:func:`evaluate_multitask` trains fresh policies on a merged set and reports each task's return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from torch_distill.algorithms.bc import BCConfig, bc_train
from torch_distill.algorithms.hades import recorded_bc, recorded_policy
from torch_distill.envs.core import EnvSpec
from torch_distill.evaluation import ObsNormalizer, RealEnvEvaluator
from torch_distill.io import Dataset
from torch_distill.log import progress_bar
from torch_distill.policies import PolicyConfig, PolicyNet

__all__ = ["PAD_LOGIT", "merge_datasets", "is_multitask", "task_specs", "TaskPolicy", "evaluate_multitask",
           "MultitaskEvalResult"]

PAD_LOGIT = -30.0  # label logit of a class the task does not have (softmax weight ~1e-13)
MULTITASK_PREFIX = "multitask:"


def is_multitask(dataset: Dataset) -> bool:
    """True for a dataset made by :func:`merge_datasets`."""
    return isinstance(dataset.metadata.get("tasks"), list)


def task_specs(dataset: Dataset) -> list[tuple[EnvSpec, dict[str, Any]]]:
    """``(env spec, task record)`` of every task of a merged dataset (a ``ValueError`` for a single-task one)."""
    if not is_multitask(dataset):
        raise ValueError(f"{dataset.spec.env_id}: not a multi-task dataset (no 'tasks' metadata; see merge_datasets)")
    out = []
    for i, t in enumerate(dataset.metadata["tasks"]):
        try:
            spec = EnvSpec.from_json(t["env"])
            start, stop = (int(x) for x in t["rows"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"metadata entry 'tasks'[{i}] is corrupt ({type(e).__name__}: {e}); expected "
                             "{env: spec, rows: [start, stop], obs_normalizer}") from None
        if not (0 <= start < stop <= dataset.size) or spec.obs_dim > dataset.spec.obs_dim or (
                spec.discrete != dataset.spec.discrete) or spec.act_dim > dataset.spec.act_dim:
            raise ValueError(f"metadata entry 'tasks'[{i}] ({spec.env_id}, rows {t['rows']}) does not fit the merged "
                             f"dataset ({dataset.size} pairs, obs_dim {dataset.spec.obs_dim}, act_dim {dataset.spec.act_dim})")
        out.append((spec, t))
    return out


def merge_datasets(datasets: Sequence[Dataset], names: Sequence[str] | None = None) -> Dataset:
    """Zero-padding merge of single-task datasets of one action type (module docstring)."""
    if len(datasets) < 2:
        raise ValueError(f"merge_datasets: expected at least two datasets, got {len(datasets)}")
    names = list(names) if names is not None else [d.spec.env_id for d in datasets]
    for n, d in zip(names, datasets):
        if is_multitask(d):
            raise ValueError(f"{n}: already a merged dataset; merge the single-task datasets instead")
        if len(d.spec.obs_shape) != 1:
            raise ValueError(f"{n}: observations of shape {d.spec.obs_shape}; the padding merge needs flat vectors")
    kinds = {d.spec.discrete for d in datasets}
    if len(kinds) > 1:
        raise ValueError("merge_datasets: " + ", ".join(f"{n} ({'discrete' if d.spec.discrete else 'continuous'})"
                                                        for n, d in zip(names, datasets))
                         + ": expected datasets with the same kind of action space")
    discrete = kinds.pop()
    obs_dim = max(d.spec.obs_dim for d in datasets)
    act_dim = max(d.spec.act_dim for d in datasets)
    logits = discrete and any(d.labels == "logits" for d in datasets)
    states, actions, tasks, start = [], [], [], 0
    for n, d in zip(names, datasets):
        s = torch.zeros(d.size, obs_dim)
        s[:, : d.spec.obs_dim] = d.states.cpu()
        a = d.actions.cpu()
        if discrete and logits:
            full = torch.full((d.size, act_dim), PAD_LOGIT)
            if d.labels == "logits":
                full[:, : d.spec.n_actions] = a
            else:  # hard labels as near one-hot logits
                full[:, : d.spec.n_actions] = PAD_LOGIT
                full[torch.arange(d.size), a] = 0.0
            a = full
        elif not discrete:
            full = torch.zeros(d.size, act_dim)
            full[:, : d.spec.action_dim] = a
            a = full
        states.append(s)
        actions.append(a)
        tasks.append({"name": n, "env": d.spec.to_json(), "obs_normalizer": d.metadata.get("obs_normalizer"),
                      "rows": [start, start + d.size], "obs_dims": d.spec.obs_dim, "action_dims": d.spec.act_dim,
                      "source": {k: d.metadata.get(k) for k in ("variant", "command", "eval")}})
        start += d.size
    if discrete:
        spec = EnvSpec(MULTITASK_PREFIX + "+".join(d.spec.env_id for d in datasets), (obs_dim,), True,
                       n_actions=act_dim, max_episode_steps=max(d.spec.max_episode_steps for d in datasets))
    else:
        low = [min((d.spec.action_low[i] for d in datasets if i < d.spec.action_dim), default=-1.0) for i in range(act_dim)]
        high = [max((d.spec.action_high[i] for d in datasets if i < d.spec.action_dim), default=1.0) for i in range(act_dim)]
        spec = EnvSpec(MULTITASK_PREFIX + "+".join(d.spec.env_id for d in datasets), (obs_dim,), False,
                       action_dim=act_dim, action_low=tuple(low), action_high=tuple(high),
                       max_episode_steps=max(d.spec.max_episode_steps for d in datasets))
    first = datasets[0].metadata
    meta = {"variant": "merged", "obs_normalizer": None, "tasks": tasks, "policy": first.get("policy"),
            "bc": first.get("bc"), "init_seeds": None}
    merged = Dataset(torch.cat(states).contiguous(), torch.cat(actions).contiguous(), spec, meta)
    merged.validate("merged dataset")
    return merged


class TaskPolicy(PolicyNet):
    """A policy of the merged space acting in one task: observations zero-padded to the merged width, outputs cut
    to the task's action space. Same flat parameters as the merged :class:`~torch_distill.policies.PolicyNet`."""

    def __init__(self, merged: PolicyNet, task: EnvSpec) -> None:
        self.__dict__.update(merged.__dict__)
        self.merged, self.task = merged, task

    def batched_forward(self, flat: Tensor, obs: Tensor) -> Tensor:
        pad = self.merged.spec.obs_dim - obs.shape[-1]
        x = torch.nn.functional.pad(obs, (0, pad)) if pad else obs
        return self.merged.batched_forward(flat, x)[..., : self.task.act_dim]

    def log_std(self, flat: Tensor) -> Tensor:
        return self.merged.log_std(flat)[..., : self.task.action_dim]


@dataclass
class MultitaskEvalResult:
    """Per-task returns of fresh policies trained on a merged dataset."""

    rows: list[dict[str, Any]]  # one per task: env, return_mean, return_std (across policies), return_min
    policies: int
    episodes: int

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "policies": self.policies, "episodes": self.episodes}


def evaluate_multitask(dataset: Dataset, policy: PolicyConfig | None = None, bc: BCConfig | None = None,
                       seeds: Sequence[int] = range(5), episodes: int = 20, env_seed: int = 12345,
                       device: torch.device | str = "cpu", deterministic: bool = False,
                       progress: bool | None = None) -> MultitaskEvalResult:
    """Train ``len(seeds)`` fresh policies by BC on the merged ``dataset`` (its recorded recipe unless given) and
    evaluate each on every task's real env."""
    device = torch.device(device)
    tasks = task_specs(dataset)
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: expected at least one policy seed")
    policy = policy or recorded_policy(dataset)
    bc = bc or recorded_bc(dataset)
    net = PolicyNet(dataset.spec, policy)
    inits = torch.cat([net.init(1, torch.Generator(device=device).manual_seed(int(s))) for s in seeds])
    n = len(seeds)
    states = dataset.states.to(device).unsqueeze(0).expand(n, *dataset.states.shape)
    actions = dataset.actions.to(device).unsqueeze(0).expand(n, *dataset.actions.shape)
    params = bc_train(net, inits, states, actions, bc)
    rows = []
    with progress_bar(len(tasks), f"evaluating {n} policies on {len(tasks)} tasks", "task", progress) as bar:
        for spec, t in tasks:
            ev = RealEnvEvaluator(spec.env_id, device, deterministic=deterministic)
            if (ev.spec.obs_dim, ev.spec.act_dim) != (spec.obs_dim, spec.act_dim):
                raise ValueError(f"task {spec.env_id}: the env provides obs_dim {ev.spec.obs_dim}, act_dim "
                                 f"{ev.spec.act_dim}; the merged dataset recorded {spec.obs_dim}, {spec.act_dim}")
            ev.normalizer = ObsNormalizer.from_json(t.get("obs_normalizer"), device)
            res = ev.evaluate(TaskPolicy(net, spec), params, episodes, env_seed)
            ev.close()
            per = res.returns.mean(-1)
            rows.append({"env": spec.env_id, "pairs": t["rows"][1] - t["rows"][0], "return_mean": float(per.mean()),
                         "return_std": float(per.std()) if n > 1 else 0.0, "return_min": float(per.min())})
            bar.update(1)
    return MultitaskEvalResult(rows, n, episodes)
