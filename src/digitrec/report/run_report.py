"""``write_run_report``: one self-contained ``report.html`` for a training run."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from digitrec import __version__
from digitrec.data import load_split
from digitrec.inference.checkpoint import load_checkpoint
from digitrec.inference.evaluate import Evaluation, evaluate_checkpoint
from digitrec.report import figures
from digitrec.report.html import environment, png_uri, write_page
from digitrec.report.inside import architecture_facts, feature_maps, first_layer_filters
from digitrec.report.runs import Run, read_run

GALLERY_SIZE = 24  # most confidently wrong test digits shown
FEATURE_DIGIT = 0  # test-set index of the digit whose feature maps are shown


def report_path(run_dir: str | os.PathLike, out: str | os.PathLike | None) -> Path:
    """Where the report goes: ``out`` if it names an .html file, else ``out``/report.html."""
    if out is None:
        return Path(run_dir) / "report.html"
    out = Path(out)
    return out if out.suffix.lower() in (".html", ".htm") else out / "report.html"


def write_run_report(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    evaluation: Evaluation | None = None,
) -> Path:
    """Write ``report.html`` for a run directory and return its path.

    Args:
        run_dir: A run directory with ``metrics.jsonl`` (and ``config.json``, checkpoints).
        out: A folder for ``report.html`` or an ``.html`` path; default: inside the run.
        data_dir: MNIST folder for the test-split sections; default: the run's, else the usual.
        device: Where to evaluate the test split.
        evaluation: The run's checkpoint already evaluated on the test split (as ``digitrec
            train`` just did): reused instead of evaluating it again.
    """
    environment()  # no Jinja2: say so before the slow part
    run = read_run(run_dir)
    path = report_path(run_dir, out)
    context = _run_context(run)
    if run.checkpoint is None:
        context["model"] = None
    else:
        data = data_dir if data_dir is not None else run.config.get("data_dir")
        context["model"] = _model_context(run.checkpoint, data, device, evaluation)
    return write_page(path, "run_report.html", **context)


def _run_context(run: Run) -> dict[str, Any]:
    cfg = {k: v for k, v in run.config.items() if k != "resolved_recipe"}
    recipe = run.config.get("resolved_recipe")
    last = run.epochs[-1]
    summary = [
        ("model", run.model),
        ("epochs recorded", len(run.epochs)),
        ("optimizer steps", last.get("step")),
        (
            "training wall time",
            f"{run.wall_time_s:.1f} s (sum of epoch times, evaluation excluded)",
        ),
        ("final train accuracy", _pct(run.final("train_acc"))),
        ("final validation accuracy", _pct(run.final("val_acc"))),
        ("final validation loss", _fmt(run.final("val_loss"))),
    ]
    if run.test:
        summary.append(("test accuracy (test_metrics.json)", _pct(run.test.get("accuracy"))))
    return {
        "title": f"Run report: {run.name}",
        "run_name": run.name,
        "run_path": str(run.path),
        "generated": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "version": __version__,
        "curves": [(t, png_uri(png)) for t, png in figures.training_curves(run)],
        "summary": summary,
        "cards": [
            (f"{run.wall_time_s:.1f} s", "training time"),
            (_pct(run.final("val_acc")), "final validation accuracy"),
        ],
        "config": _flat(cfg),
        "recipe": _flat(recipe) if isinstance(recipe, dict) else [],
        "epochs": run.epochs,
        "epoch_columns": _epoch_columns(run.epochs),
        "machine": _machine(run),
    }


def _model_context(
    checkpoint: Path, data_dir: Any, device: str, ev: Evaluation | None = None
) -> dict[str, Any]:
    ckpt = load_checkpoint(checkpoint)
    pre = ckpt.preprocessing
    if ev is None:
        ev = evaluate_checkpoint(checkpoint, "test", data_dir, device)
    report = ev.report
    images, _ = load_split(ev.dataset, "test", data_dir)  # the dataset the model learned
    preds = ev.probs.argmax(1)
    confidence = ev.probs[np.arange(len(preds)), preds]
    wrong = np.flatnonzero(preds != ev.labels)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:GALLERY_SIZE]
    gallery = [
        {
            "index": int(ev.indices[i]),
            "true": int(ev.labels[i]),
            "pred": int(preds[i]),
            "prob": float(confidence[i]),
            "prob_true": float(ev.probs[i, ev.labels[i]]),
            "png": png_uri(figures.digit_png(images[ev.indices[i]])),
        }
        for i in wrong
    ]
    facts = architecture_facts(ckpt.model, pre.input_size)
    filters = first_layer_filters(ckpt.model)
    filter_png = None
    if filters is not None:
        desc, weights = filters
        filter_png = png_uri(
            figures.image_grid(
                weights[:64],
                f"First-layer filters: {desc}",
                cmap=figures.DIVERGING,
                symmetric=True,
                colorbar="weight",
            )
        )
    digit = images[FEATURE_DIGIT]
    maps = [
        {"name": fm.name, "png": png_uri(figures.feature_map_figure(fm))}
        for fm in feature_maps(ckpt.model, pre, digit)
    ]
    return {
        "checkpoint": str(checkpoint),
        "arch": ckpt.meta.get("arch"),
        "created": ckpt.meta.get("created"),
        "torch_version": ckpt.meta.get("torch_version"),
        "facts": facts,
        "report": report,
        "confusion_png": png_uri(
            figures.confusion_heatmap(np.asarray(report["confusion"]), "test")
        ),
        "gallery": gallery,
        "errors": int(report["errors"]),
        "filters_png": filter_png,
        "digit_png": png_uri(figures.digit_png(digit)),
        "digit_index": FEATURE_DIGIT,
        "digit_pred": int(preds[FEATURE_DIGIT]),
        "digit_label": int(ev.labels[FEATURE_DIGIT]),
        "feature_maps": maps,
    }


def _machine(run: Run) -> dict[str, Any]:
    """The run's own machine record if it kept one, else this machine's (and it says so)."""
    for source in (run.config, run.epochs[-1]):
        recorded = source.get("machine")
        if isinstance(recorded, dict):
            return {"where": "recorded by the run", "info": _flat(recorded)}
    import torch

    from digitrec.benchmarks.machine import machine_info

    info = machine_info(torch.device("cpu"))
    return {"where": "the machine that wrote this report", "info": _flat(info)}


def _epoch_columns(epochs: list[dict[str, Any]]) -> list[str]:
    preferred = [
        "epoch",
        "step",
        "lr",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "epoch_time_s",
        "images_per_s",
    ]
    present = {k for e in epochs for k, v in e.items() if isinstance(v, (int, float))}
    return [k for k in preferred if k in present]


def _flat(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Key/value rows for a table; nested values as compact JSON."""
    rows = []
    for key, value in data.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        rows.append((str(key), text))
    return rows


def _pct(value: Any) -> str:
    return "—" if not isinstance(value, (int, float)) else f"{100 * value:.2f}%"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
