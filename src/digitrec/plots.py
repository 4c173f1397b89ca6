"""Matplotlib figures, rendered off-screen and saved atomically."""

from __future__ import annotations

import os

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.io import atomic_path


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
