"""Reading a run directory: its config, per-epoch metrics and test metrics.

Tolerant by design: the training loop may add fields to ``config.json`` or ``metrics.jsonl``
records at any time; anything not used here is kept and ignored.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitrec.errors import DigitrecError

CHECKPOINT_NAMES = ("best.safetensors", "last.safetensors")


@dataclass
class Run:
    """One training run as saved on disk.

    Attributes:
        path: the run directory.
        config: ``config.json`` (TrainConfig fields plus ``resolved_recipe``); {} if absent.
        epochs: one dict per line of ``metrics.jsonl``, in file order.
        test: ``test_metrics.json`` (``evaluate``'s report); None if the run was not evaluated.
    """

    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    test: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model(self) -> str:
        return str(self.config.get("model") or "?")

    @property
    def checkpoint(self) -> Path | None:
        """``best.safetensors``, else ``last.safetensors``, else None."""
        for name in CHECKPOINT_NAMES:
            if (self.path / name).is_file():
                return self.path / name
        return None

    @property
    def wall_time_s(self) -> float:
        """Training time: the sum of the epochs' ``epoch_time_s`` (evaluation excluded)."""
        return float(sum(_number(e.get("epoch_time_s")) or 0.0 for e in self.epochs))

    def final(self, key: str) -> float | None:
        """The last epoch's value of ``key`` that is a finite number, else None."""
        for record in reversed(self.epochs):
            value = _number(record.get(key))
            if value is not None:
                return value
        return None

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """``(epochs, values)`` of the records that hold a finite ``key``."""
        xs, ys = [], []
        for i, record in enumerate(self.epochs):
            value = _number(record.get(key))
            if value is not None:
                xs.append(_number(record.get("epoch")) or float(i + 1))
                ys.append(value)
        return xs, ys


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DigitrecError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DigitrecError(f"{path}: not valid JSON ({exc})") from None


def read_run(run_dir: str | os.PathLike) -> Run:
    """Read a run directory; a clear error if it is not one or has no metrics yet."""
    path = Path(run_dir)
    if not path.is_dir():
        raise DigitrecError(f"{path}: no such run directory")
    metrics = path / "metrics.jsonl"
    if not metrics.is_file():
        raise DigitrecError(
            f"{path}: not a finished run directory (no metrics.jsonl); "
            "train first: digitrec train --out DIR"
        )
    epochs = []
    try:
        lines = metrics.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DigitrecError(f"{metrics}: cannot read: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # a line cut short by a crash mid-write: skip it
                continue
            raise DigitrecError(f"{metrics}:{number}: not a JSON record") from None
        if isinstance(record, dict):
            epochs.append(record)
    if not epochs:
        raise DigitrecError(f"{metrics}: no epoch records yet; the run has not finished an epoch")
    config = _read_json(path / "config.json") if (path / "config.json").is_file() else {}
    test = None
    if (path / "test_metrics.json").is_file():
        test = _read_json(path / "test_metrics.json")
    return Run(
        path=path,
        config=config if isinstance(config, dict) else {},
        epochs=epochs,
        test=test if isinstance(test, dict) else None,
    )
