"""All of a run directory's file output, in one place that a rank check can silence.

A run directory holds ``config.json`` (the run's TrainConfig and resolved recipe),
``metrics.jsonl`` (one JSON line per finished epoch), ``best.safetensors`` (the best validation
score so far) and ``last.safetensors`` (the latest state, resumable). Every write is atomic, so a
crash or ``kill -9`` mid-write leaves the previous file whole. In a distributed run,
``RunWriter(path, enabled=rank == 0)`` makes every other rank write nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from digitrec.errors import DigitrecError
from digitrec.inference.checkpoint import SUFFIX, save_checkpoint
from digitrec.io import atomic_write

# The files that make a directory "hold a run"; --force deletes them before a new run starts.
RUN_FILES = ("config.json", "metrics.jsonl", f"best{SUFFIX}", f"last{SUFFIX}")
# Made from a run's checkpoints after training (evaluate, export): stale once the run is replaced.
DERIVED_FILES = ("test_metrics.json", "best.onnx", "report.html")


def holds_run(path: str | os.PathLike) -> bool:
    """True when ``path`` is a directory with a run's files in it."""
    return Path(path).is_dir() and any((Path(path) / name).exists() for name in RUN_FILES)


class RunWriter:
    """Writes one run directory; ``enabled=False`` (or no directory) makes every call a no-op."""

    def __init__(self, run_dir: str | os.PathLike | None, enabled: bool = True) -> None:
        self.path = Path(run_dir) if run_dir is not None else None
        self.enabled = enabled and self.path is not None
        self._created = False  # by prepare(): abandon() may remove it
        self._prepared = False

    def _dir(self) -> Path:
        assert self.path is not None  # only called when enabled
        return self.path

    def prepare(self, *, resume: bool = False, force: bool = False) -> None:
        """Check the directory before any data loads: not a file, writable, and not holding
        another run unless resuming it or ``force`` (then :meth:`start` deletes that run).

        Only the first call checks; the CLI calls it before printing anything, then ``train``.
        """
        if not self.enabled or self._prepared:
            return
        path = self._dir()
        if path.exists() and not path.is_dir():
            raise DigitrecError(f"{path} is a file, not a run directory; pass another --out")
        if not resume and not force and holds_run(path):
            raise DigitrecError(
                f"{path} already holds a run; pass --force to replace it, or --out NEW"
            )
        self._created = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise DigitrecError(f"cannot write to run directory {path}: {_reason(exc)}") from None
        self._prepared = True

    def abandon(self) -> None:
        """Remove the directory :meth:`prepare` created when the run failed before writing."""
        if self.enabled and self._created:
            with contextlib.suppress(OSError):
                self._dir().rmdir()  # only when still empty

    def start(self, config: dict[str, Any], *, resume: bool = False, force: bool = False) -> None:
        """Just before the first step: replace an earlier run (``force``), write config.json."""
        if not self.enabled:
            return
        self._created = False
        replace = force and not resume
        doomed = [self._dir() / name for name in RUN_FILES + DERIVED_FILES] if replace else []
        for name in RUN_FILES + DERIVED_FILES:  # writes that a kill -9 cut short (atomic_path)
            doomed += self._dir().glob(f".{name}.*.tmp")
        for target in doomed:
            with self._writing(target):
                target.unlink(missing_ok=True)
        self.write_json("config.json", config)

    def write_json(self, name: str, obj: Any) -> None:
        """``name`` in the run directory, as indented JSON."""
        if self.enabled:
            target = self._dir() / name
            with self._writing(target):
                atomic_write(target, json.dumps(obj, indent=2) + "\n")

    def append_metrics(self, record: dict[str, Any]) -> None:
        """One line of metrics.jsonl (rewritten atomically: a kill never leaves half a line)."""
        if not self.enabled:
            return
        target = self._dir() / "metrics.jsonl"
        with self._writing(target):
            old = target.read_text(encoding="utf-8") if target.exists() else ""
            atomic_write(target, old + json.dumps(record) + "\n")

    def save(
        self,
        name: str,
        weights: dict[str, torch.Tensor],
        meta: dict[str, Any],
        train_tensors: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """``best`` or ``last``: weights, metadata and (for resuming) the training tensors."""
        if self.enabled:
            target = self._dir() / f"{name}{SUFFIX}"
            with self._writing(target):
                save_checkpoint(target, weights, meta, train_tensors)

    @contextlib.contextmanager
    def _writing(self, target: Path) -> Iterator[None]:
        """A failed write (read-only, disk full) is one line; earlier files stay as they were."""
        keep = "files written before are unchanged"
        try:
            yield
        except OSError as exc:
            raise DigitrecError(f"cannot write {target}: {_reason(exc)}; {keep}") from None
        except DigitrecError as exc:
            raise DigitrecError(f"{exc}; {keep}") from None


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc) or type(exc).__name__).lower()
