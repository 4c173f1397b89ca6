"""``compare``: several runs side by side, as a table and overlaid validation curves."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from digitrec.errors import DigitrecError
from digitrec.report.figures import validation_curves
from digitrec.report.plots import save_figure
from digitrec.report.runs import Run, read_run

COLUMNS = (
    ("run", "run", "{}"),
    ("model", "model", "{}"),
    ("epochs", "epochs", "{}"),
    ("steps", "steps", "{}"),
    ("val_acc", "val acc", "{:.4f}"),
    ("val_loss", "val loss", "{:.4f}"),
    ("test_acc", "test acc", "{:.4f}"),
    ("test_loss", "test loss", "{:.4f}"),
    ("wall_s", "train s", "{:.1f}"),
    ("params", "params", "{:,}"),
)


def run_row(run: Run) -> dict[str, Any]:
    """One run's final numbers; missing ones are None."""
    test = run.test or {}
    return {
        "run": str(run.path),
        "model": run.model,
        "epochs": len(run.epochs),
        "steps": run.epochs[-1].get("step"),
        "val_acc": run.final("val_acc"),
        "val_loss": run.final("val_loss"),
        "test_acc": test.get("accuracy"),
        "test_loss": test.get("loss"),
        "wall_s": run.wall_time_s,
        "params": _params(run),
    }


def _params(run: Run) -> int | None:
    """Parameters of the run's model, built from the registry with the run's arguments."""
    from digitrec.models import count_parameters, create_model

    kwargs = run.config.get("model_kwargs") or {}
    try:
        return count_parameters(create_model(run.model, **kwargs))
    except DigitrecError:
        return None  # a run of a model this install does not have


def compare_runs(run_dirs: Sequence[str | os.PathLike]) -> tuple[list[Run], list[dict[str, Any]]]:
    """Read every run (any bad one is a clear error) and return the runs and their rows."""
    if not run_dirs:
        raise DigitrecError("give at least one run directory")
    runs = [read_run(d) for d in run_dirs]
    return runs, [run_row(r) for r in runs]


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table, one line per run; ``—`` where a number is missing."""
    cells = [[title for _, title, _ in COLUMNS]]
    for row in rows:
        cells.append(["—" if row[key] is None else fmt.format(row[key]) for key, _, fmt in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = []
    for line in cells:
        parts = [
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def save_validation_curves(runs: Sequence[Run], path: str | os.PathLike) -> None:
    """Overlaid validation accuracy and loss of the runs, as an image (format from the suffix)."""
    save_figure(validation_curves(runs), path)
