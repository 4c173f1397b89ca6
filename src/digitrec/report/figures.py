"""The report's figures as PNG bytes, all drawn in one style (matplotlib, Agg backend).

Conventions: white ink on black for digits (as MNIST stores them); a diverging map centred on
zero (blue negative, red positive) for weights and signed responses; viridis for feature maps.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image

from digitrec.report.inside import FeatureMap
from digitrec.report.plots import _pyplot
from digitrec.report.runs import Run

STYLE: dict[Any, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "image.interpolation": "nearest",
}
DIVERGING = "RdBu_r"
MAPS = "viridis"


@contextlib.contextmanager
def styled() -> Iterator[object]:
    """pyplot with the report style applied, for drawing and saving alike."""
    plt = _pyplot()
    with plt.rc_context(STYLE):
        yield plt


def plain(text: str) -> str:
    """A user's text (a run name) for a matplotlib title: ``$`` would start mathtext."""
    return text.replace("$", r"\$")


def to_png(fig) -> bytes:
    """Render and close a figure; PNG bytes."""
    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def digit_png(image: np.ndarray, scale: int = 3) -> bytes:
    """A uint8 (H, W) image as a PNG enlarged ``scale`` times with crisp pixels (no matplotlib)."""
    im = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="L")
    im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _grid(n: int, cols: int) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def image_grid(
    images: np.ndarray,
    title: str,
    labels: Sequence[str] | None = None,
    cols: int = 8,
    cmap: str = MAPS,
    symmetric: bool = False,
    colorbar: str | None = None,
) -> bytes:
    """Small images (K, h, w) in a grid, optionally labelled; one shared colour scale.

    ``symmetric``: the scale is centred on zero (for weights and signed responses).
    """
    rows, cols = _grid(len(images), cols)
    lim = float(np.abs(images).max()) or 1.0
    vmin, vmax = (-lim, lim) if symmetric else (float(images.min()), float(images.max()) or 1.0)
    with styled() as plt:
        fig, axes = plt.subplots(  # type: ignore[attr-defined]
            rows, cols, figsize=(1.1 * cols + 0.8, 1.15 * rows + 0.5), squeeze=False
        )
        im = None
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < len(images):
                im = ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
                if labels is not None:
                    ax.set_title(labels[i], fontsize=8, fontweight="normal")
        fig.suptitle(title, fontsize=11, fontweight="bold")
        if colorbar and im is not None:
            fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=colorbar)
        return to_png(fig)


CURVE_PANELS = [
    ("Loss", "cross-entropy (nats)", [("train_loss", "train"), ("val_loss", "validation")]),
    ("Accuracy", "accuracy (%)", [("train_acc", "train"), ("val_acc", "validation")]),
    ("Learning rate", "learning rate (end of epoch)", [("lr", "learning rate")]),
    ("Throughput", "training images / s", [("images_per_s", "images/s")]),
]


def _epoch_axis(ax, xs: Sequence[float]) -> None:
    """Whole epochs on the x axis, with room around a single point."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if xs and len(set(xs)) == 1:
        ax.set_xlim(xs[0] - 1, xs[0] + 1)


def training_curves(run: Run) -> list[tuple[str, bytes]]:
    """``(title, png)`` for loss, accuracy, learning rate and throughput per epoch.

    Four separate figures rather than one 2x2: on a phone they stack at full width.
    """
    out = []
    for title, ylabel, series in CURVE_PANELS:
        with styled() as plt:
            fig, ax = plt.subplots(figsize=(5, 3.4))  # type: ignore[attr-defined]
            xs_all: list[float] = []
            for key, label in series:
                xs, ys = run.series(key)
                if not xs:
                    continue
                if key.endswith("_acc"):
                    ys = [100 * y for y in ys]
                ax.plot(xs, ys, marker="o", label=label)
                xs_all += xs
            if not xs_all:
                ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
            elif len(series) > 1:
                ax.legend()
            if title == "Learning rate" and xs_all and min(run.series("lr")[1]) > 0:
                ax.set_yscale("log")
            ax.set_title(f"{title}: {plain(run.name)}")
            ax.set_ylabel(ylabel)
            _epoch_axis(ax, xs_all)
            fig.tight_layout()
            out.append((title, to_png(fig)))
    return out


def confusion_heatmap(cm: np.ndarray, split: str) -> bytes:
    """Counts ``cm[true, predicted]`` as a heatmap, every cell labelled with its count."""
    cm = np.asarray(cm)
    n = len(cm)
    with styled() as plt:
        fig, ax = plt.subplots(figsize=(6.4, 5.6))  # type: ignore[attr-defined]
        # log(1 + count): the diagonal is hundreds of times the errors; a linear scale hides them.
        im = ax.imshow(np.log1p(cm), cmap="Blues")
        top = np.log1p(cm).max() or 1.0
        for t in range(n):
            for p in range(n):
                dark = np.log1p(cm[t, p]) > 0.6 * top
                ax.text(
                    p,
                    t,
                    str(cm[t, p]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xlabel("predicted digit")
        ax.set_ylabel("true digit")
        ax.grid(False)
        ax.set_title(f"Confusion matrix, {split} split ({int(cm.sum()):,} images)")
        fig.colorbar(im, ax=ax, shrink=0.8, label="log(1 + count)")
        return to_png(fig)


def feature_map_figure(fm: FeatureMap, limit: int = 16) -> bytes:
    """Up to ``limit`` channels of one layer's output for one digit."""
    maps = fm.maps[:limit]
    c, h, w = fm.maps.shape
    shown = f", first {len(maps)} of {c}" if c > len(maps) else ""
    title = f"{fm.name}: {fm.description} → {c}×{h}×{w}{shown}"
    return image_grid(maps, title, [f"ch {i}" for i in range(len(maps))], cols=8)


def validation_curves(runs: Sequence[Run]):  # -> matplotlib Figure
    """Validation accuracy and loss of several runs, overlaid (returns the figure)."""
    with styled() as plt:
        fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(11, 4.2))  # type: ignore[attr-defined]
        names = [run.name for run in runs]
        for run in runs:
            # Two runs called "run" in different folders: label them by their paths instead.
            shown = run.name if names.count(run.name) == 1 else str(run.path)
            label = f"{plain(shown)} ({run.model})"
            xs, ys = run.series("val_acc")
            if xs:
                acc_ax.plot(xs, [100 * y for y in ys], marker="o", label=label)
            xs, ys = run.series("val_loss")
            if xs:
                loss_ax.plot(xs, ys, marker="o", label=label)
        for ax, title, ylabel in (
            (acc_ax, "Validation accuracy", "accuracy (%)"),
            (loss_ax, "Validation loss", "cross-entropy (nats)"),
        ):
            ax.set_title(title)
            ax.set_ylabel(ylabel)
            _epoch_axis(ax, [x for line in ax.lines for x in line.get_xdata()])
            if ax.lines:
                ax.legend()
            else:
                ax.text(
                    0.5,
                    0.5,
                    "no validation records",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                )
        fig.tight_layout()
        return fig
