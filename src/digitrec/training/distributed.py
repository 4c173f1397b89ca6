"""One model across processes: ``torchrun`` + DistributedDataParallel on the in-memory tensors.

The semantics (the README's "Training on several processes" says the same):

- ``batch_size`` is the **global** batch. Each of the W ranks takes ``batch_size / W`` images a
  step and DDP averages the gradients, so a run on W processes follows the same schedule, with
  the same learning rate, as one process with the same batch (no lr scaling). A batch that W
  does not divide is refused.
- Every rank draws the same permutation of the epoch from ``(seed, epoch)``; rank r takes
  positions ``r::W`` of it (:func:`shard`), padded by wrapping to a multiple of W as
  ``DistributedSampler`` does. Step i's images over all ranks are then exactly step i's batch of a
  one-process run (the epoch's last batch gains up to W-1 repeats), and the steps per epoch and
  the checkpoints' step counts do not depend on W: a run may resume on another number of ranks.
- The initial weights are equal on every rank (the same seed; DDP also broadcasts rank 0's); the
  augmentation and dropout streams are offset by the rank.
- BatchNorm: ``SyncBatchNorm`` on CUDA. On CPU torch has no SyncBatchNorm kernel, so each rank
  normalises with its own half-batch statistics and the running statistics are rank 0's
  (DDP broadcasts its buffers every forward); bench/ddp_speedup.py measures the effect.
- Only rank 0 writes (``RunWriter(out, enabled=rank == 0)``) and validates.
- Once per step one all-reduce (MAX) agrees on the stop flag and on the first non-finite loss, so
  SIGTERM on any rank stops every rank after the same step (rank 0 saves once), and a divergence
  raises the same error on every rank instead of leaving the others waiting.
- ``init_process_group`` gets a timeout (:data:`DEFAULT_TIMEOUT_S`, ``--dist-timeout``): a rank
  that died fails its peers at once ("connection closed by peer"), one that hangs fails them
  after the timeout, each with one line (:func:`comm_error`).

From Python, under ``torchrun``: ``dist = init_from_env("auto")``, then
``train(cfg, dist=dist)`` and finally :func:`shutdown`.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass, field

import torch
import torch.distributed as tdist
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.inference.device import pick_device

DEFAULT_TIMEOUT_S = 120.0  # long enough for a slow rank's data loading and validation
_NONE = -(2**62)  # "no bad step" in the agreement tensor (MAX of -step picks the earliest)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s shuffle; ``+ 1 + rank`` seeds its augmentation."""
    return (seed * 1_000_003 + epoch * 7919) % (2**63 - 1)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The epoch's permutation of ``n`` training images: the same on every rank."""
    gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=gen)


def shard(order: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s positions ``r::world`` of ``order``, wrapped to a multiple of ``world``.

    Every rank gets ``ceil(n / world)`` indices; together they cover ``order`` once, plus the
    first ``pad`` indices again (``pad < world``), like ``DistributedSampler(drop_last=False)``.
    """
    if world == 1:
        return order
    pad = -len(order) % world
    padded = torch.cat([order, order[:pad]]) if pad else order
    return padded[rank::world]


@dataclass(frozen=True)
class Dist:
    """This process's place in a distributed run; ``Dist()`` is a single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Where collectives' tensors live: CPU for gloo, this rank's GPU for NCCL.
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def active(self) -> bool:
        return self.world > 1

    @classmethod
    def current(cls) -> Dist:
        """The initialised process group's ranks, else a single process."""
        if not (tdist.is_available() and tdist.is_initialized()):
            return cls()
        nccl = tdist.get_backend() == "nccl"
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local) if nccl else torch.device("cpu")
        return cls(tdist.get_rank(), tdist.get_world_size(), local, device=device)

    def per_rank_batch(self, batch_size: int) -> int:
        """Each rank's share of the global batch; one that the ranks do not divide is refused."""
        if batch_size % self.world:
            raise DigitrecError(
                f"batch size {batch_size} is not divisible by {self.world} processes: "
                "--batch-size is the global batch, split evenly over the ranks"
            )
        return batch_size // self.world

    def train_device(self, device: torch.device) -> torch.device:
        """A CUDA rank trains on its own GPU (``LOCAL_RANK``)."""
        if self.active and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def augment_seed(self, seed: int, epoch: int, step: int | None = None) -> int:
        """The seed of this rank's augmentation and dropout stream in an epoch.

        Rank 0's is a one-process run's. ``step``: a mid-epoch resume of a rank > 0 (the
        checkpoint holds rank 0's stream only), seeded from the step instead.
        """
        base = epoch_seed(seed, epoch) + 1 + self.rank
        if step is None or self.rank == 0:
            return base
        return (base * 1_000_003 + step) % (2**63 - 1)

    def prepare(self, model: nn.Module) -> nn.Module:
        """Before the optimizer is built: SyncBatchNorm on CUDA (CPU has no kernel for it)."""
        if self.active and self.device.type == "cuda":
            return nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the steps call: ``model`` in DDP (a collective: every rank, same point)."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def agree(self, stop: bool, bad: int | None) -> tuple[bool, int | None]:
        """All ranks' ``(stop, first bad step)``: any rank's stop, the earliest bad step.

        One all-reduce of two numbers; every rank must call it at the same point.
        """
        if not self.active:
            return stop, bad
        flags = torch.tensor([int(stop), _NONE if bad is None else -bad], device=self.device)
        tdist.all_reduce(flags, op=tdist.ReduceOp.MAX)
        any_stop, neg_bad = (int(v) for v in flags.tolist())
        return bool(any_stop), None if neg_bad == _NONE else -neg_bad

    def sum(self, values: list[float]) -> list[float]:
        """Each value summed over the ranks (float64; a collective)."""
        if not self.active:
            return values
        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        tdist.all_reduce(total, op=tdist.ReduceOp.SUM)
        return total.tolist()

    def barrier(self) -> None:
        if self.active:
            tdist.barrier()


def launched() -> bool:
    """True in a process that torchrun started as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device_name: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Dist:
    """Join the process group that torchrun's environment describes (RANK, WORLD_SIZE, ...).

    The backend follows the device: NCCL on CUDA, gloo on CPU.
    """
    if not launched():
        return Dist()
    if not (timeout_s > 0):
        raise DigitrecError(f"--dist-timeout must be a positive number, got {timeout_s}")
    device = pick_device(device_name)
    if device.type not in ("cpu", "cuda"):
        raise DigitrecError(f"distributed training runs on cpu or cuda, not {device.type}")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        tdist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as exc:
        raise comm_error(int(os.environ.get("RANK", "0")), exc, timeout_s) from None
    dist = Dist.current()
    return Dist(dist.rank, dist.world, local, timeout_s, dist.device)


def shutdown() -> None:
    """Leave the process group (a process that exits inside one aborts)."""
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


_COMM_MARKERS = ("gloo", "nccl", "connection", "timed out", "timeout", "socket", "store")


def is_comm_error(exc: BaseException) -> bool:
    """An error of the collectives (a peer died or hung), not of this rank's own work."""
    if isinstance(exc, getattr(tdist, "DistError", ())):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(m in text for m in _COMM_MARKERS)


def comm_error(rank: int, exc: BaseException, timeout_s: float) -> DigitrecError:
    """One line for a lost peer: what the backend said, without its source location."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[[^\]]*\.(cc|cpp|h|py):\d+\]\s*", "", text)  # "[.../pair.cc:553] ..."
    text = text.split(". This is typically")[0].rstrip(".")
    return DigitrecError(
        f"rank {rank}: lost contact with the other ranks ({text[:1].lower() + text[1:]}): "
        f"another rank died, or was silent for over {timeout_s:g}s (--dist-timeout); "
        "see its own error"
    )
