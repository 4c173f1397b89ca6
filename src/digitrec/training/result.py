"""What a run reports (:class:`TrainResult`) and the live state the loop passes around."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.inference.checkpoint import build_meta
from digitrec.models import Preprocessing
from digitrec.training.config import TrainConfig
from digitrec.training.distributed import Dist
from digitrec.training.optim import EMA, lr_at
from digitrec.training.progress import Reporter
from digitrec.training.recipes import Recipe
from digitrec.training.run_writer import RunWriter
from digitrec.training.state import inference_weights
from digitrec.training.stop import StopFn


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`~digitrec.training.train`; plain data (see :meth:`to_dict`)."""

    model: str  # registry name
    metrics: dict[str, Any]  # the last epoch's record, as in metrics.jsonl ({} if none ran)
    step: int  # optimizer steps done, counting those before a resume
    total_steps: int  # the schedule's length
    train_time_s: float  # seconds spent in training steps by this call (not validation)
    best_score: float | None  # best val_acc (train_acc without validation); None: no run dir
    interrupted: bool  # stopped early by the stop function (SIGINT/SIGTERM)
    run_dir: str | None  # where the files went; None when nothing was written

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return dataclasses.asdict(self)


class EpochStats:
    """Running sums over one epoch, kept on the device so that a step never waits for them.

    ``eager`` reads each loss on the host at once (0.2 us on CPU, against 13 us for the device
    flag's three ops); otherwise the first non-finite step is kept on the device until a sync.
    """

    def __init__(self, device: torch.device, eager: bool) -> None:
        self.seen = 0
        self.loss = torch.zeros((), device=device)  # sum of per-image losses
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.eager = eager
        self._bad: int | None = None  # eager: the first step with a non-finite loss
        self._bad_on_device = torch.full((), -1, device=device, dtype=torch.long)  # -1: none

    def add(self, step: int, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Count one step's batch; remember ``step`` if it is the first with a non-finite loss."""
        self.seen += len(y)
        self.loss += loss * len(y)
        self.correct += (logits.argmax(1) == y).sum()
        if self.eager:
            if self._bad is None and not math.isfinite(loss.item()):
                self._bad = step
        else:
            first = (self._bad_on_device < 0) & ~torch.isfinite(loss)
            self._bad_on_device = torch.where(first, step, self._bad_on_device)

    def first_bad_step(self) -> int | None:
        """The 0-based step of the first non-finite loss so far (a device sync), or None."""
        if self.eager:
            return self._bad
        bad = int(self._bad_on_device.item())
        return bad if bad >= 0 else None

    def means(self) -> tuple[float, float]:
        """(mean loss, accuracy) over the images seen so far (a device sync)."""
        n = max(self.seen, 1)
        return self.loss.item() / n, self.correct.item() / n


@dataclass
class Run:
    """Everything one training run holds while it runs (built by ``loop._setup``)."""

    cfg: TrainConfig
    recipe: Recipe
    pre: Preprocessing
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    ema: EMA | None
    data: dict[str, torch.Tensor]
    writer: RunWriter
    rep: Reporter
    should_stop: StopFn
    steps_per_epoch: int
    total_steps: int
    stop_at: int  # total_steps, or fewer with max_steps (the schedule stays total_steps long)
    step: int = 0  # optimizer steps done
    best: float = -1.0  # best score so far (val_acc, else train_acc)
    rng: dict[str, torch.Tensor] | None = None  # RNG state to continue from (mid-epoch resume)
    train_time: float = 0.0  # seconds
    stopping: bool = False  # the stop function said so
    record: dict[str, Any] = field(default_factory=dict)  # the last epoch's metrics
    saved_step: int | None = None  # the step last.safetensors holds
    # The builder's arguments as saved: the config's model_kwargs plus num_classes.
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)  # meta["dataset"]: the spec's record
    last_save: float = 0.0  # time.perf_counter() of the last save of last.safetensors
    # A distributed run's place (rank, world) and the DDP wrapper that the steps call; the
    # other code keeps using ``model``, the unwrapped module (see training.distributed).
    dist: Dist = field(default_factory=Dist)
    net: nn.Module | None = None

    @property
    def epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)

    @property
    def background(self) -> float:
        """A blank pixel after normalisation (what augmentation fills with)."""
        return (0.0 - self.pre.mean) / self.pre.std

    @property
    def check_every(self) -> int:
        """Steps between loss checks: each one on CPU (~free); on a GPU a check is a sync."""
        return 1 if self.device.type == "cpu" else 50

    def meta(self, record: dict[str, Any], epoch: int) -> dict[str, Any]:
        """The metadata of a checkpoint saved now."""
        return build_meta(
            self.cfg.model,
            self.arch_kwargs,
            self.pre,
            dataset=self.dataset,
            train_config=dataclasses.asdict(self.cfg),
            recipe=dataclasses.asdict(self.recipe),
            metrics=record,
            epoch=epoch + 1,
            step=self.step,
            total_steps=self.total_steps,
            steps_per_epoch=self.steps_per_epoch,
            best_score=self.best,
        )


def epoch_record(run: Run, epoch: int, stats: EpochStats, seconds: float) -> dict[str, Any]:
    """The epoch's metrics so far, as one line of metrics.jsonl."""
    loss, acc = stats.means()
    return {
        "epoch": epoch + 1,
        "epochs": run.epochs,
        "step": run.step,
        "lr": lr_at(run.recipe, max(run.step - 1, 0), run.total_steps, run.steps_per_epoch),
        "train_loss": loss,
        "train_acc": acc,
        "epoch_time_s": seconds,
        "images_per_s": stats.seen / max(seconds, 1e-9),
    }


def diverged(run: Run, what: str, step: int) -> DigitrecError:
    """The error for a run whose loss or weights stopped being finite at ``step`` (0-based)."""
    lr = lr_at(run.recipe, step, run.total_steps, run.steps_per_epoch)
    if run.writer.enabled and run.saved_step is not None:
        kept = f"{run.writer.path}/last.safetensors keeps step {run.saved_step}, still finite"
    else:
        kept = "nothing was saved"
    return DigitrecError(f"training diverged: {what} (lr {lr:.3g}); {kept}. Try a lower --lr")


def check_weights(run: Run) -> None:
    """Refuse to save weights that are not finite (a step can blow up without a bad loss)."""
    weights = inference_weights(run.model, run.ema)
    if not all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point()):
        raise diverged(run, f"the weights are not finite after step {run.step}", run.step - 1)
