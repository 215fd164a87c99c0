"""Population sharding over ``torch.distributed`` ranks (``torchrun``; gloo on CPU, NCCL on GPU).

Every rank holds the same ES state and regenerates the full population from shared seeds, evaluates its own
contiguous slice of members, and exchanges only fitness scalars: each rank writes its slice into a zero tensor of
length ``P`` and an ``all_reduce(SUM)`` assembles the whole vector (this works on every backend). Every rank then
applies the identical ES update, so parameters are never broadcast.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from collections.abc import Iterator
from datetime import timedelta
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "RankFailure", "COLLECTIVE_TIMEOUT_ENV", "collective_timeout", "resolve_device",
           "init_distributed", "shard", "gather_fitness", "gather_fitness_and_counts", "stop_together", "barrier",
           "cleanup", "sigterm_as_rank_failure"]


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
"""Timeout of the process group's own collectives (the start and end barriers): how long ranks wait for rank 0's
final evaluation before failing."""

COLLECTIVE_TIMEOUT_ENV = "TORCH_DISTILL_COLLECTIVE_TIMEOUT"
"""Environment variable: seconds a rank waits in a per-generation collective (fitness gather, stop flag) before it
gives up with :class:`RankFailure` (default :data:`DEFAULT_COLLECTIVE_TIMEOUT_S`). It must exceed rank 0's periodic
ES-mean evaluation, which the other ranks wait for in the next generation's collective."""

DEFAULT_COLLECTIVE_TIMEOUT_S = 600.0


class RankFailure(RuntimeError):
    """A distributed run lost a rank: a collective failed (a peer died: gloo sees the closed connection at once),
    timed out (a peer hangs: after :func:`collective_timeout` seconds), or the launcher stopped this rank (torchrun
    sends SIGTERM to every rank once one fails). Every surviving rank raises it; the message names this rank, the
    generation and the checkpoint to resume from (the CLI prints it as one line and exits with status 2)."""

    def __init__(self, rank: int, world_size: int, reason: str, generation: int | None = None,
                 resume: str | None = None) -> None:
        self.rank, self.world_size, self.reason = rank, world_size, reason
        self.generation, self.resume = generation, resume
        where = f" in generation {generation}" if generation is not None else ""
        tail = f"; {resume}" if resume else ""
        super().__init__(f"rank {rank} of {world_size}: the distributed run failed{where}: {reason}{tail}")

    def at(self, generation: int, resume: str) -> "RankFailure":
        """The same failure with the generation and the resume hint filled in (by the ES loop)."""
        return RankFailure(self.rank, self.world_size, self.reason, generation, resume)


def collective_timeout() -> timedelta:
    """The per-generation collective timeout (:data:`COLLECTIVE_TIMEOUT_ENV`, default 600 s)."""
    raw = os.environ.get(COLLECTIVE_TIMEOUT_ENV, "")
    if not raw:
        return timedelta(seconds=DEFAULT_COLLECTIVE_TIMEOUT_S)
    try:
        s = float(raw)
    except ValueError:
        s = float("nan")
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"{COLLECTIVE_TIMEOUT_ENV}={raw!r}: expected a positive number of seconds")
    return timedelta(seconds=s)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def _wait(work: object, info: "DistInfo", what: str) -> None:
    """Wait for an async collective with the per-generation timeout; a failure becomes :class:`RankFailure`."""
    timeout = collective_timeout()
    try:
        work.wait(timeout=timeout)  # type: ignore[attr-defined]
    except RuntimeError as e:  # gloo / NCCL raise RuntimeError subclasses (DistBackendError, ...)
        msg = _first_line(e)
        if "timed out" in msg.lower() or "timeout" in msg.lower():
            reason = (f"{what} timed out after {timeout.total_seconds():g} s (a rank hangs; "
                      f"{COLLECTIVE_TIMEOUT_ENV} sets the timeout)")
        else:
            reason = f"{what} failed, another rank died ({msg})"
        raise RankFailure(info.rank, info.world_size, reason) from None


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
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device={device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if world > 1:
        collective_timeout()  # a bad timeout setting fails before the process group exists
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
    _wait(dist.all_reduce(full, op=dist.ReduceOp.SUM, async_op=True), info, "the fitness all_reduce")
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
    _wait(dist.all_reduce(full, op=dist.ReduceOp.SUM, async_op=True), info, "the fitness all_reduce")
    return full[:popsize].to(local.dtype), full[popsize:]


def stop_together(stop: bool, info: DistInfo) -> bool:
    """True on every rank when ``stop`` is true on any rank (a 1-element ``all_reduce(MAX)``)."""
    if not info.enabled:
        return stop
    flag = torch.tensor([float(stop)], device=info.device)
    _wait(dist.all_reduce(flag, op=dist.ReduceOp.MAX, async_op=True), info, "the stop-flag all_reduce")
    return bool(flag[0] > 0)


@contextlib.contextmanager
def sigterm_as_rank_failure(info: DistInfo) -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`RankFailure` (torchrun stops every rank with SIGTERM once one rank
    fails): the rank ends with a named error instead of dying silently, and a checkpoint being written is either
    complete or not there (atomic writes). A no-op for world size 1 or outside the main thread."""
    if not info.enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: object) -> None:
        raise RankFailure(info.rank, info.world_size, "stopped by SIGTERM (torchrun stops every rank when one fails)")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        try:
            dist.barrier()
        except RuntimeError as e:
            raise RankFailure(info.rank, info.world_size, f"a barrier failed ({_first_line(e)})") from None


def cleanup(info: DistInfo) -> None:
    """Tear the process group down on every rank together: a rank that destroyed its group and exited while rank 0
    was still writing outputs made gloo abort ("terminate called without an active exception") under load."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
