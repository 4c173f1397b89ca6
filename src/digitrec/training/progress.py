"""Progress reporting for training: a silent default and a Keras-style tqdm reporter.

The library prints nothing itself; the CLI passes a reporter.
"""

from __future__ import annotations

import sys
from typing import Any


class Reporter:
    """Receives training events. The base class ignores them (library default)."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        """An epoch (1-based) of ``steps`` optimizer steps begins."""

    def step(self, done: int, loss: float, acc: float, images_per_s: float) -> None:
        """``done`` steps of the epoch are finished; running loss and accuracy so far."""

    def epoch_end(self, record: dict[str, Any]) -> None:
        """The epoch's metrics, as written to metrics.jsonl."""

    def message(self, text: str) -> None:
        """A one-line note (checkpoint saved, resumed, interrupted)."""

    def close(self) -> None:
        """Training ended, also by an error: clear anything half-drawn."""


def format_epoch(record: dict[str, Any]) -> str:
    """Keras-like one-line summary of an epoch."""
    parts = [
        f"Epoch {record['epoch']}/{record['epochs']}",
        f"{record['epoch_time_s']:.1f}s",
        f"loss: {record['train_loss']:.4f}",
        f"acc: {record['train_acc']:.4f}",
    ]
    if record.get("val_acc") is not None:
        parts += [f"val_loss: {record['val_loss']:.4f}", f"val_acc: {record['val_acc']:.4f}"]
    parts += [f"lr: {record['lr']:.3g}", f"{record['images_per_s']:,.0f} img/s"]
    return " - ".join(parts)


class TqdmReporter(Reporter):
    """A tqdm bar per epoch on stderr, then a one-line summary."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.bar = None

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=steps,
            desc=f"Epoch {epoch}/{epochs}",
            file=self.stream,
            leave=False,
            dynamic_ncols=True,
            mininterval=0.5,
        )

    def step(self, done: int, loss: float, acc: float, images_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(
                loss=f"{loss:.4f}", acc=f"{acc:.4f}", img_s=f"{images_per_s:,.0f}", refresh=False
            )

    def epoch_end(self, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(format_epoch(record), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:  # an error mid-epoch: its message must start a clean line
            self.bar.close()
            self.bar = None
