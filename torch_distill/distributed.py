"""Population sharding over ``torch.distributed`` ranks (``torchrun``; gloo on CPU, NCCL on GPU).

Every rank holds the same ES state and regenerates the full population from shared seeds, evaluates its own
contiguous slice of members, and exchanges only fitness scalars: each rank writes its slice into a zero tensor of
length ``P`` and an ``all_reduce(SUM)`` assembles the whole vector (this works on every backend). Every rank then
applies the identical ES update, so parameters are never broadcast.
"""

from __future__ import annotations

import os
from datetime import timedelta
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "resolve_device", "init_distributed", "shard", "gather_fitness", "gather_fitness_and_counts",
           "barrier", "cleanup"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


PROCESS_GROUP_TIMEOUT_S = 4 * 3600
"""Collective timeout: how long ranks wait for rank 0's evaluations (periodic, final) before failing."""


def resolve_device(device: str) -> torch.device:
    """The torch device of a device option: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N``;
    a device this machine lacks raises ``ValueError``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device={device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available on this machine")
    return dev


def init_distributed(device: str = "auto") -> DistInfo:
    """Read torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and initialise the process group if needed.

    ``device="auto"`` picks ``cuda:LOCAL_RANK`` when CUDA is available (NCCL backend), else CPU (gloo).
    Without torchrun (no ``WORLD_SIZE``) this is a no-op returning a world of size 1.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        # rank 0 alone runs the periodic ES-mean and final evaluations while the other ranks wait in the next
        # collective: allow long waits (the default is 10 min for NCCL, 30 min for gloo)
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=PROCESS_GROUP_TIMEOUT_S))
    return DistInfo(rank, world, local, dev)


def shard(popsize: int, info: DistInfo) -> slice:
    """The contiguous slice of members that ``info.rank`` evaluates (sizes differ by at most one)."""
    base, extra = divmod(popsize, info.world_size)
    start = info.rank * base + min(info.rank, extra)
    return slice(start, start + base + (1 if info.rank < extra else 0))


def gather_fitness(local: torch.Tensor, popsize: int, info: DistInfo) -> torch.Tensor:
    """Assemble the full fitness vector ``[P]`` from every rank's slice (zero-padded ``all_reduce(SUM)``)."""
    if not info.enabled:
        return local
    full = torch.zeros(popsize, dtype=local.dtype, device=local.device)
    full[shard(popsize, info)] = local
    dist.all_reduce(full, op=dist.ReduceOp.SUM)
    return full


def gather_fitness_and_counts(local: torch.Tensor, counts: torch.Tensor, popsize: int,
                              info: DistInfo) -> tuple[torch.Tensor, torch.Tensor]:
    """The full fitness ``[P]`` and the per-rank ``counts [K]`` summed over ranks, in one collective.

    One zero-padded ``float64`` ``all_reduce(SUM)`` of ``[P + K]`` (one round trip per generation instead of one
    per tensor). Exact: each fitness slot holds one rank's value plus zeros (float32 -> float64 -> float32 is the
    identity) and integer counts stay exact in float64 up to 2**53. Returns ``fitness`` in ``local``'s dtype and
    ``counts`` in float64; without a process group, ``local`` itself and ``counts`` as float64.
    """
    if not info.enabled:
        return local, counts.to(torch.float64)
    k = counts.numel()
    full = torch.zeros(popsize + k, dtype=torch.float64, device=local.device)
    full[shard(popsize, info)] = local.to(torch.float64)
    full[popsize:] = counts.to(device=local.device, dtype=torch.float64).reshape(k)
    dist.all_reduce(full, op=dist.ReduceOp.SUM)
    return full[:popsize].to(local.dtype), full[popsize:]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Tear the process group down on every rank together: a rank that destroyed its group and exited while rank 0
    was still writing outputs made gloo abort ("terminate called without an active exception") under load."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
