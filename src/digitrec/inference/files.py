"""Predicting a user's image files: directory walking, per-file errors, top-k guesses.

Files are decoded and classified in batches (:func:`iter_predictions`), so memory stays bounded
however many photos are given, and results can be printed as each batch finishes.

A model with an extra "not one digit" class (the ``splitter``) is read over its 10 digit classes
only: the prediction is the most likely digit 0-9. With a reject rule applied the probabilities
are the model's own for those digits (they sum to less than 1 when it suspects a non-digit);
without one (``--no-reject``, or no threshold in the checkpoint) they are renormalised over the
ten digits.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.images import load_image
from digitrec.images.decode import ImageReadError
from digitrec.images.normalise import to_mnist_report
from digitrec.images.page import PageReport
from digitrec.inference.confidence import low_confidence
from digitrec.inference.predictor import Predictor

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
NUM_DIGITS = 10
BATCH = 64  # files decoded and classified together: bounds memory, sets the print rhythm


@dataclass
class ImageResult:
    """One file's outcome: a prediction, or the one-line reason it failed."""

    source: str
    digit: int | None = None
    prob: float | None = None
    top: list[tuple[int, float]] | None = None
    probs: np.ndarray | None = None  # float32 (10,): the digits' probabilities
    image: np.ndarray | None = None  # uint8 (28, 28): what the model saw
    original: np.ndarray | None = None  # uint8 (H, W) grey, as loaded (kept only when asked)
    error: str | None = None
    rejected: bool = False  # "not a digit": reject score above the checkpoint's threshold
    reject_score: float | None = None  # None: the model has no reject threshold, or --no-reject
    page: PageReport | None = None  # what page cleanup dropped before the digit
    low_confidence: bool = False  # the answer deserves a second look (inference/confidence.py)
    low_confidence_reason: str | None = None

    def as_dict(self) -> dict:
        out = {"source": self.source, "digit": self.digit, "prob": self.prob}
        out["top"] = [{"digit": d, "prob": p} for d, p in self.top or []]
        if self.reject_score is not None:
            out["rejected"] = self.rejected
            out["reject_score"] = self.reject_score
        if self.error is None:
            out["low_confidence"] = self.low_confidence
            if self.low_confidence_reason:
                out["low_confidence_reason"] = self.low_confidence_reason
        if self.error:
            out["error"] = self.error
        return out


def digit_proba(predictor: Predictor, images: np.ndarray) -> np.ndarray:
    """Probabilities of the 10 digits, ``float32 (N, 10)``, for any model.

    An 11-class model's "not one digit" class is dropped, so it never becomes a prediction.
    """
    return predictor.predict_proba(images)[:, :NUM_DIGITS]


def check_image_source(source: str | os.PathLike | bytes) -> None:
    """Say what a path that is not a readable file is, before it reaches the decoder.

    Raises:
        ImageReadError: A directory, a symlink loop, a dangling symlink, a missing or
            unreadable file.
    """
    if isinstance(source, bytes | bytearray):
        return
    path = Path(source)
    name = f"cannot read image '{os.fspath(source)}'"
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError(f"{name}: symlink loop") from None
        if path.is_symlink():
            raise ImageReadError(f"{name}: symlink to a missing file") from None
        if isinstance(exc, FileNotFoundError):
            raise ImageReadError(f"{name}: no such file") from None
        raise ImageReadError(f"{name}: {_reason(exc)}") from None
    if path.is_dir():
        raise ImageReadError(f"{name}: is a directory")
    if not os.access(path, os.R_OK):
        raise ImageReadError(f"{name}: permission denied")


def _reason(exc: OSError) -> str:
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def expand_sources(paths: Sequence[str]) -> list[str]:
    """Files as given, plus image files found by walking any directories (sorted).

    In a walked directory, an entry named like an image that is not a regular file (a symlink
    loop, a dangling link) is kept, so it is reported rather than silently skipped.
    """
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            out.extend(str(f) for f in found if not f.is_dir())
        else:
            out.append(str(p))
    return out


def top_k(probs: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` most likely digits with their probabilities, most likely first."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(d), float(probs[d])) for d in order]


def _decode(src: str | bytes, keep_original: bool) -> ImageResult:
    """Load and preprocess one file; any failure becomes the result's one-line ``error``."""
    label = src if isinstance(src, str) else "image data"
    try:
        check_image_source(src)
        original = load_image(src)
        image, page = to_mnist_report(original)
    except DigitrecError as exc:
        msg = str(exc)
        return ImageResult(label, error=msg if label in msg else f"{label}: {msg}")
    except OSError as exc:  # e.g. a file that became unreadable after the check
        return ImageResult(label, error=f"cannot read image '{label}': {_reason(exc)}")
    kept = original if keep_original else None
    return ImageResult(label, image=image, original=kept, page=page)


def iter_predictions(
    predictor: Predictor,
    sources: Sequence[str | bytes],
    k: int = 3,
    batch: int | None = None,
    keep_originals: int = 0,
    reject: bool = True,
) -> Iterator[ImageResult]:
    """Yield one result per source, in order, classifying ``batch`` files at a time.

    A file that cannot be read, or holds no digit, gets an ``error`` and does not stop the
    rest. Only the first ``keep_originals`` readable files keep their full-size ``original``
    (a 12-megapixel photo is 12 MB), so memory stays bounded. ``batch`` defaults to
    :data:`BATCH`. With ``reject`` and a checkpoint that has a reject threshold, each result
    also carries ``rejected`` and ``reject_score`` (issue 14); ``reject=False`` is plain argmax.
    """
    batch = batch or BATCH
    kept = 0
    for start in range(0, len(sources), batch):
        results = []
        for src in sources[start : start + batch]:
            r = _decode(src, keep_original=kept < keep_originals)
            kept += r.original is not None
            results.append(r)
        good = [r for r in results if r.error is None]
        if good:
            images = np.stack([r.image for r in good])
            use = reject and predictor.reject_threshold is not None
            _, probs, rejected, score = predictor.predict_with_reject(images, reject=use)
            for i, (r, p) in enumerate(zip(good, probs, strict=True)):
                r.probs, r.top = p, top_k(p, k)
                r.digit, r.prob = r.top[0]
                if use:
                    r.rejected, r.reject_score = bool(rejected[i]), float(score[i])
                if not r.rejected:
                    r.low_confidence_reason = low_confidence(r.prob, r.page)
                    r.low_confidence = r.low_confidence_reason is not None
        yield from results


def predict_files(
    predictor: Predictor, sources: Sequence[str | bytes], k: int = 3
) -> list[ImageResult]:
    """Preprocess every file MNIST-style and classify it; all results, originals kept."""
    return list(iter_predictions(predictor, sources, k, keep_originals=len(sources)))
