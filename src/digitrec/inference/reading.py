"""Reading a multi-digit number: segmentation scored by the packaged splitter, then a model."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.images import load_image, segment_digits
from digitrec.inference.files import check_image_source, digit_proba
from digitrec.inference.predictor import Predictor

SPLITTER = Path(__file__).parent.parent / "weights" / "splitter.safetensors"


@functools.cache
def default_splitter() -> Predictor:
    """The packaged ``splitter`` model (trained as the README says), loaded once."""
    return Predictor.from_checkpoint(SPLITTER)


def read_number(
    predictor: Predictor, source: str | os.PathLike | bytes, splitter: Predictor | None = None
) -> dict:
    """Segment a photo of a multi-digit number and read it left to right.

    Args:
        predictor: Reads each digit (over digits 0-9 only, even for an 11-class model).
        source: Image path or bytes.
        splitter: Scores candidate cuts: the packaged ``splitter`` model by default, which has a
            "not one digit" class; pass ``predictor`` itself to score cuts by its own
            confidence.

    Returns:
        ``{"number": "2026", "digits": [{"digit", "prob", "box"}...], "crops": uint8 (K,28,28)}``
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
    pieces = segment_digits(gray, score=score, straight_cuts=knows_nondigits)
    crops = np.stack([crop for _, crop in pieces])
    probs = digit_proba(predictor, crops)
    digits = [
        {"digit": int(p.argmax()), "prob": float(p.max()), "box": list(box)}
        for (box, _), p in zip(pieces, probs, strict=True)
    ]
    return {
        "number": "".join(str(d["digit"]) for d in digits),
        "digits": digits,
        "crops": crops,
        "gray": gray,
    }
