"""Matplotlib figures, rendered off-screen and saved atomically."""

from __future__ import annotations

import os

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.io import atomic_path

SHOW_LIMIT = 12  # images in a `predict --show` figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike) -> None:
    """Save a figure atomically; the format follows the file extension."""
    plt = _pyplot()
    fmt = os.path.splitext(str(path))[1].lstrip(".") or "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        plt.close(fig)
        raise DigitrecError(f"{path}: unsupported image format {fmt!r}; use .png, .pdf or .svg")
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)


def save_digit(image: np.ndarray, title: str, path: str | os.PathLike) -> None:
    """One 28x28 digit, enlarged, with a title (the tutorial's "look at one example")."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    save_figure(fig, path)


def prediction_title(r) -> str:
    """The figure's title for one ImageResult: what the terminal line says (a rejected image is
    "not a digit" with its reject score, not its best-guess digit)."""
    if r.rejected:
        return f"not a digit ({r.reject_score:.3f})"
    return f"predicted {r.digit} ({r.prob:.1%})"


def save_predictions(results: list, path: str | os.PathLike, limit: int = SHOW_LIMIT) -> None:
    """Per image: the original, the 28x28 the model saw, and the class probabilities."""
    plt = _pyplot()
    shown = [r for r in results if r.error is None][:limit]
    if not shown:
        raise DigitrecError("nothing to show: no image was predicted")
    fig, axes = plt.subplots(len(shown), 3, figsize=(9, 2.6 * len(shown)), squeeze=False)
    for row, r in zip(axes, shown, strict=True):
        row[0].imshow(r.original, cmap="gray", vmin=0, vmax=255)
        row[0].set_title(os.path.basename(r.source)[:30], fontsize=9)
        row[1].imshow(r.image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        row[1].set_title("model input (28x28)", fontsize=9)
        for ax in row[:2]:
            ax.axis("off")
        colors = ["tab:orange" if d == r.digit else "tab:blue" for d in range(len(r.probs))]
        row[2].bar(range(len(r.probs)), r.probs, color=colors)
        row[2].set_xticks(range(len(r.probs)))
        row[2].set_ylim(0, 1)
        row[2].set_title(prediction_title(r), fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def save_reading(reading: dict, path: str | os.PathLike) -> None:
    """The photo with a box and the predicted digit over each segmented digit."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    digits = reading["digits"]
    fig = plt.figure(figsize=(8, 5))
    top = fig.add_axes((0.02, 0.32, 0.96, 0.62))
    top.imshow(reading["gray"], cmap="gray", vmin=0, vmax=255)
    for d in digits:
        x0, y0, x1, y1 = d["box"]
        top.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="red", lw=1.5))
        top.text(
            x0, y0 - 3, f"{d['digit']} ({d['prob']:.0%})", color="red", fontsize=10, va="bottom"
        )
    top.set_title(f"read: {reading['number']}")
    top.axis("off")
    for i, (d, crop) in enumerate(zip(digits, reading["crops"], strict=True)):
        ax = fig.add_axes((0.02 + i * 0.96 / max(len(digits), 6), 0.02, 0.14, 0.24))
        ax.imshow(crop, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(str(d["digit"]), fontsize=9)
        ax.axis("off")
    save_figure(fig, path)
