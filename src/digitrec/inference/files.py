"""Predicting a user's image files: directory walking, per-file errors, top-k guesses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.images import load_image, to_mnist
from digitrec.inference.predictor import Predictor

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class ImageResult:
    """One file's outcome: a prediction, or the one-line reason it failed."""

    source: str
    digit: int | None = None
    prob: float | None = None
    top: list[tuple[int, float]] | None = None
    probs: np.ndarray | None = None  # float32 (C,)
    image: np.ndarray | None = None  # uint8 (28, 28): what the model saw
    original: np.ndarray | None = None  # uint8 (H, W) grey, as loaded
    error: str | None = None

    def as_dict(self) -> dict:
        out = {"source": self.source, "digit": self.digit, "prob": self.prob}
        out["top"] = [{"digit": d, "prob": p} for d, p in self.top or []]
        if self.error:
            out["error"] = self.error
        return out


def expand_sources(paths: list[str]) -> list[str]:
    """Files as given, plus image files found by walking any directories (sorted)."""
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            out.extend(str(f) for f in found if f.is_file())
        else:
            out.append(str(p))
    return out


def top_k(probs: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` most likely digits with their probabilities, most likely first."""
    order = np.argsort(-probs)[:k]
    return [(int(d), float(probs[d])) for d in order]


def predict_files(predictor: Predictor, sources: list[str], k: int = 3) -> list[ImageResult]:
    """Preprocess every file MNIST-style and classify the good ones in one batch.

    A file that cannot be read, or holds no digit, gets an ``error`` and does not stop the rest.
    """
    results = []
    for src in sources:
        try:
            original = load_image(src)
            results.append(ImageResult(src, image=to_mnist(original), original=original))
        except DigitrecError as exc:
            msg = str(exc)
            results.append(ImageResult(src, error=msg if src in msg else f"{src}: {msg}"))
    good = [r for r in results if r.error is None]
    if good:
        probs = predictor.predict_proba(np.stack([r.image for r in good]))
        for r, p in zip(good, probs, strict=True):
            r.probs, r.top = p, top_k(p, k)
            r.digit, r.prob = r.top[0]
    return results
