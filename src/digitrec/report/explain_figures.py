"""Figures for the explain page: one small panel per PNG, so they reflow on a phone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digitrec.report.figures import DIVERGING, MAPS, styled, to_png


@dataclass(frozen=True)
class Box:
    """A rectangle drawn over a panel, in pixel coordinates (row, col of the top-left)."""

    row: float
    col: float
    height: float
    width: float
    color: str = "#ff3b30"


def panel(
    data: np.ndarray,
    title: str,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    symmetric: bool = False,
    colorbar: str | None = None,
    boxes: Sequence[Box] = (),
    overlay: np.ndarray | None = None,
    annotate: bool = False,
) -> bytes:
    """One 2-D array as an image with a title, optional colour bar, boxes and overlay.

    ``symmetric``: the colour scale is centred on zero (signed responses and weights).
    ``overlay``: a second array drawn half-transparent over the first (a heat map on a digit).
    ``annotate``: write each cell's value (for small arrays).
    """
    from matplotlib.patches import Rectangle

    if symmetric:
        lim = float(np.abs(data).max()) or 1.0
        vmin, vmax = -lim, lim
    with styled() as plt:
        fig, ax = plt.subplots(figsize=(3.3, 3.1) if colorbar else (2.9, 3.1))  # type: ignore[attr-defined]
        im = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax)
        if overlay is not None:
            lim = float(np.abs(overlay).max()) or 1.0
            im = ax.imshow(overlay, cmap=DIVERGING, vmin=-lim, vmax=lim, alpha=0.6)
        for b in boxes:
            ax.add_patch(
                Rectangle(
                    (b.col - 0.5, b.row - 0.5),
                    b.width,
                    b.height,
                    fill=False,
                    edgecolor=b.color,
                    linewidth=2,
                )
            )
        if annotate:
            top = max(abs(vmin or 0.0), abs(vmax or 0.0), float(np.abs(data).max())) or 1.0
            for (r, c), v in np.ndenumerate(data):
                text = f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
                dark = cmap == "gray" and v < 0.5 * top
                ax.text(
                    c,
                    r,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"column (0–{data.shape[1] - 1})", fontsize=8)
        ax.set_ylabel(f"row (0–{data.shape[0] - 1})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(False)
        if colorbar:
            cb = fig.colorbar(im, ax=ax, shrink=0.8)
            cb.set_label(colorbar, fontsize=8)
            cb.ax.tick_params(labelsize=7)
        return to_png(fig)


def activation_curves(values: np.ndarray, model_uses: str) -> bytes:
    """ReLU and sigmoid (and their slopes) over the range of real pre-activations, with their
    histogram underneath."""
    x = np.linspace(min(float(values.min()), -4.0), max(float(values.max()), 4.0), 400)
    sig = 1 / (1 + np.exp(-x))
    with styled() as plt:
        fig, (top, bottom) = plt.subplots(  # type: ignore[attr-defined]
            2, 1, figsize=(5.2, 4.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
        )
        top.plot(x, np.maximum(x, 0), label="ReLU(x) = max(0, x)")
        top.plot(x, sig, label="sigmoid(x) = 1 / (1 + e^(−x))")
        top.plot(x, sig * (1 - sig), "--", label="sigmoid slope (at most 0.25)")
        top.set_ylim(-0.3, min(float(x.max()), 6.0))
        top.set_ylabel("output")
        top.set_title("The two functions over this digit's values")
        top.legend(loc="upper left")
        bottom.hist(values.ravel(), bins=60, color="tab:gray")
        bottom.set_xlabel(f"pre-activation value x (input of the {model_uses})")
        bottom.set_ylabel("pixels")
        fig.tight_layout()
        return to_png(fig)


def probability_bars(probs: np.ndarray, title: str) -> bytes:
    """Class probabilities as bars, the chosen class highlighted."""
    pred = int(np.argmax(probs))
    with styled() as plt:
        fig, ax = plt.subplots(figsize=(5.2, 3.2))  # type: ignore[attr-defined]
        colors = ["tab:orange" if c == pred else "tab:blue" for c in range(len(probs))]
        ax.bar(range(len(probs)), 100 * probs, color=colors)
        for c, p in enumerate(probs):
            if p >= 0.01:
                ax.text(c, 100 * p + 1, f"{100 * p:.0f}%", ha="center", fontsize=8)
        ax.set_xticks(range(len(probs)))
        ax.set_ylim(0, 110)
        ax.set_xlabel("class (digit)")
        ax.set_ylabel("probability (%)")
        ax.set_title(title)
        fig.tight_layout()
        return to_png(fig)


def vector_strip(vector: np.ndarray, title: str, per_row: int = 64) -> bytes:
    """A long 1-D vector folded into rows of ``per_row`` numbers, so its length is visible."""
    rows = -(-len(vector) // per_row)
    grid = np.full(rows * per_row, np.nan)
    grid[: len(vector)] = vector
    with styled() as plt:
        fig, ax = plt.subplots(figsize=(6.2, max(1.4, 0.09 * rows + 1.0)))  # type: ignore[attr-defined]
        im = ax.imshow(grid.reshape(rows, per_row), cmap=MAPS, aspect="auto")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"position within a row of {per_row}")
        ax.set_ylabel("row")
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.9, label="value")
        fig.tight_layout()
        return to_png(fig)
