"""Reading a multi-digit number: segmentation scored by the packaged splitter, then a model."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from digitrec.errors import DigitrecError, NoDigitError
from digitrec.images import load_image
from digitrec.images.segment import segment_report
from digitrec.inference.confidence import low_confidence
from digitrec.inference.files import check_image_source
from digitrec.inference.predictor import Predictor

SPLITTER = Path(__file__).parent.parent / "weights" / "splitter.safetensors"


@functools.cache
def default_splitter() -> Predictor:
    """The packaged ``splitter`` model (trained as the README says), loaded once."""
    return Predictor.from_checkpoint(SPLITTER)


def read_number(
    predictor: Predictor,
    source: str | os.PathLike | bytes,
    splitter: Predictor | None = None,
    reject: bool = True,
) -> dict:
    """Segment a photo of a multi-digit number and read it left to right.

    Args:
        predictor: Reads each digit (over digits 0-9 only, even for an 11-class model).
        source: Image path or bytes.
        splitter: Scores candidate cuts: the packaged ``splitter`` model by default, which has a
            "not one digit" class; pass ``predictor`` itself to score cuts by its own
            confidence.
        reject: Apply ``predictor``'s calibrated "not a digit" threshold, when it has one: a
            rejected piece is never turned into a digit; it reads as ``?`` in ``number``, with
            ``digit`` None and ``rejected`` true (issue 14).

    Returns:
        ``{"number": "2026", "low_confidence": bool, "low_confidence_reason": str | None,
        "digits": [{"digit", "prob", "box", "low_confidence"}...], "crops": uint8 (K,28,28)}``;
        a digit whose probability is low (:mod:`digitrec.inference.confidence`) is flagged,
        and so is the number.

    Raises:
        NoDigitError: No ink, or every piece is "not a digit".
    """
    splitter = splitter or default_splitter()
    knows_nondigits = splitter.preprocessing.num_classes > 10

    def score(crops: np.ndarray) -> np.ndarray:
        return splitter.predict_proba(crops)[:, :10].max(1)  # P(the most likely single digit)

    check_image_source(source)
    try:
        gray = load_image(source)
    except OSError as exc:  # unreadable: the decoder does not catch this itself
        reason = str(exc.strerror or exc).lower()
        raise DigitrecError(f"cannot read image '{source!s}': {reason}") from None
    pieces, page = segment_report(gray, score=score, straight_cuts=knows_nondigits)
    crops = np.stack([crop for _, crop in pieces])
    use = reject and predictor.reject_threshold is not None
    _, probs, rejected, reject_scores = predictor.predict_with_reject(crops, reject=use)
    digits: list[dict] = []
    for (box, _), p, rej, sc in zip(pieces, probs, rejected, reject_scores, strict=True):
        d = {"digit": None if rej else int(p.argmax()), "prob": float(p.max()), "box": list(box)}
        if use:
            d.update(rejected=bool(rej), reject_score=float(sc))
        reason = None if d["digit"] is None else low_confidence(d["prob"], page)
        d.update(low_confidence=reason is not None)
        if reason:
            d.update(low_confidence_reason=reason)
        digits.append(d)
    if use and all(d["rejected"] for d in digits):
        lowest = float(reject_scores.min())
        raise NoDigitError(f"no digit found: not a digit (reject score {lowest:.3f})")
    doubtful = [
        f"digit {i + 1}: {d['low_confidence_reason']}"
        for i, d in enumerate(digits)
        if d["low_confidence"]
    ]
    return {
        "number": "".join("?" if d["digit"] is None else str(d["digit"]) for d in digits),
        "low_confidence": bool(doubtful),
        "low_confidence_reason": "; ".join(doubtful) or None,
        "digits": digits,
        "crops": crops,
        "gray": gray,
    }
