"""Reading a multi-digit number: by segmentation, by the sequence reader, or both.

``segment``: candidate cuts scored by the packaged splitter, then each digit read by a model.
``seq``: the packaged CRNN reads the whole strip (:mod:`digitrec.inference.sequence`).
``auto``: both, combined by the rule chosen on the development set (see :data:`AUTO_MARGIN`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitrec.errors import DigitrecError, NoDigitError
from digitrec.images import load_image
from digitrec.images.marks import mark_columns, place_marks
from digitrec.images.segment import segment_number
from digitrec.inference.confidence import low_confidence
from digitrec.inference.files import check_image_source
from digitrec.inference.predictor import Predictor

if TYPE_CHECKING:
    from digitrec.inference.sequence import SequenceReader

SPLITTER = Path(__file__).parent.parent / "weights" / "splitter.safetensors"
METHODS = ("seq", "segment", "auto")
# The default method: the best whole-number accuracy on the development set (bench/read.py
# --set dev).
DEFAULT_METHOD = "auto"
# auto: when the two readings differ, the sequence reader's wins if its lowest digit probability
# beats the segmenter's by more than this. Chosen on the development set (bench/read.py --set
# dev: validation digits and the "dev" fonts, 740 numbers, every page condition; digits model
# "best", reader 7993bafbdadb): whole numbers right 86.1 % at 0.9, 85.1 % at 0.3, 85.7 % for
# the segmenter alone (1.0) and 82.4 % for the sequence reader alone (-1.0)
# (bench/results/read_dev.json, "auto_by_margin"; one number is 0.14 points).
AUTO_MARGIN = 0.9
# auto: a sequence reading whose every digit is at least this sure is taken without running
# the segmenter (5x slower); it then has the reader's own boxes. None: always run both.
AUTO_SURE: float | None = None


@functools.cache
def default_splitter() -> Predictor:
    """The packaged ``splitter`` model (trained as the README says), loaded once."""
    return Predictor.from_checkpoint(SPLITTER)


def read_number(
    predictor: Predictor,
    source: str | os.PathLike | bytes,
    splitter: Predictor | None = None,
    reject: bool = True,
    method: str = DEFAULT_METHOD,
    reader: SequenceReader | None = None,
) -> dict:
    """Read a photo of a multi-digit number left to right.

    Args:
        predictor: Reads each digit (over digits 0-9 only, even for an 11-class model).
        source: Image path or bytes.
        splitter: Scores candidate cuts: the packaged ``splitter`` model by default, which has a
            "not one digit" class; pass ``predictor`` itself to score cuts by its own
            confidence.
        reject: Apply ``predictor``'s calibrated "not a digit" threshold, when it has one: a
            rejected piece is never turned into a digit; it reads as ``?`` in ``number``, with
            ``digit`` None and ``rejected`` true (issue 14). (``segment`` only.)
        method: ``segment``, ``seq`` or ``auto`` (see the module docstring).
        reader: The sequence reader; the packaged one by default.

    Returns:
        ``{"number": "2026", "low_confidence": bool, "low_confidence_reason": str | None,
        "digits": [{"digit", "prob", "box", "low_confidence"}...], "crops": uint8 (K,28,28),
        "gray", "method"}``; a digit whose probability is low
        (:mod:`digitrec.inference.confidence`) is flagged, and so is the number; the number is
        also flagged for a rejected piece (``?``) and, in ``auto``, when the two readers
        disagree (the reason names both readings). ``method``
        says what gave the answer: ``segment``, ``seq``, ``auto: both agree`` (the segmenter's
        boxes), ``auto: seq`` or ``auto: segment``.

    Raises:
        NoDigitError: No ink, or every piece is "not a digit", or nothing read.
        DigitrecError: Unknown method, or writing too wide for one line (``seq``).
    """
    if method not in METHODS:
        raise DigitrecError(f"unknown read method {method!r}; choose from {', '.join(METHODS)}")
    check_image_source(source)
    try:
        gray = load_image(source)
    except OSError as exc:  # unreadable: the decoder does not catch this itself
        reason = str(exc.strerror or exc).lower()
        raise DigitrecError(f"cannot read image '{source!s}': {reason}") from None
    if method == "segment":
        return _marked(_read_segment(predictor, gray, splitter, reject))
    if method == "seq":
        return _read_seq(gray, reader)
    try:
        seq = _read_seq(gray, reader)
    except DigitrecError:  # nothing read, or too wide for one line: the segmenter alone
        seq = None
    if seq and AUTO_SURE is not None and lowest_prob(seq) >= AUTO_SURE:
        return {**seq, "method": "auto: seq (sure)"}
    # The segmenter's NoDigitError stands: "not a digit" (a letter, a doodle) is its call.
    seg = _read_segment(predictor, gray, splitter, reject)
    return _marked(combine(seq, seg) if seq else {**seg, "method": "auto: segment"}, seg)


def _marked(reading: dict, seg: dict | None = None) -> dict:
    """``number`` with the segmenter's decimal points and separator spaces (images/marks.py),
    placed by column among the answer's digits."""
    marks = (seg or reading).get("marks")
    if not marks:
        return reading
    boxes = [d["box"] for d in reading["digits"]]
    return {**reading, "number": place_marks(reading["number"], boxes, marks)}


def lowest_prob(reading: dict) -> float:
    """The lowest digit probability of a reading (0 for none; a rejected piece counts 0)."""
    return min(
        (d["prob"] if d["digit"] is not None else 0.0 for d in reading["digits"]), default=0.0
    )


def combine(seq: dict, seg: dict, margin: float = AUTO_MARGIN) -> dict:
    """The ``auto`` answer from a ``seq`` and a ``segment`` reading of the same image."""
    if seq["number"] == seg["number"]:
        # Same digits: the segmenter's boxes, each digit at the better of the two probabilities.
        digits = [
            {**d, "prob": max(d["prob"], s["prob"])}
            for d, s in zip(seg["digits"], seq["digits"], strict=True)
        ]
        return _flag({**seg, "digits": digits}, "auto: both agree")
    # Different digits: one reader is wrong, so the answer is doubtful however sure it looks.
    disagree = f"the segmenter read {seg['number']}, the sequence reader {seq['number']}"
    if lowest_prob(seq) > lowest_prob(seg) + margin:
        return _doubt({**seq, "method": "auto: seq"}, disagree)
    return _doubt({**seg, "method": "auto: segment"}, disagree)


def _doubt(reading: dict, reason: str) -> dict:
    """``reading`` flagged low-confidence at the number level, ``reason`` first."""
    others = reading.get("low_confidence_reason")
    joined = f"{reason}; {others}" if reading.get("low_confidence") and others else reason
    return {**reading, "low_confidence": True, "low_confidence_reason": joined}


def _number_doubts(digits: list[dict]) -> list[str]:
    """Why a number is doubtful: each low-confidence digit, and each rejected piece (a ``?``)."""
    doubts = []
    for i, d in enumerate(digits, 1):
        if d["digit"] is None:
            score = d.get("reject_score")
            why = "not a digit" + (f" (reject score {score:.3f})" if score is not None else "")
            doubts.append(f"digit {i}: {why}")
        elif d["low_confidence"]:
            doubts.append(f"digit {i}: {d['low_confidence_reason']}")
    return doubts


def _flag(reading: dict, method: str) -> dict:
    """Recompute the low-confidence flags of a reading's digits and name its method."""
    page = reading.get("page")
    for d in reading["digits"]:
        reason = None if d["digit"] is None else low_confidence(d["prob"], page)
        d["low_confidence"] = reason is not None
        d.pop("low_confidence_reason", None)
        if reason:
            d["low_confidence_reason"] = reason
    doubtful = _number_doubts(reading["digits"])
    return {
        **reading,
        "low_confidence": bool(doubtful),
        "low_confidence_reason": "; ".join(doubtful) or None,
        "method": method,
    }


def _read_seq(gray: np.ndarray, reader: SequenceReader | None) -> dict:
    """The sequence reader's reading, in ``read_number``'s format (crops cut at its boxes)."""
    from digitrec.images.normalise import center_digit
    from digitrec.inference.sequence import default_reader

    reader = reader or default_reader()
    out = reader.read_gray(gray)
    if not out["number"]:
        raise NoDigitError("no digit found: the sequence reader read no digit")
    strip = out["strip"]
    crops = []
    for d in out["digits"]:
        # The digit's columns of the strip, back from image pixels.
        a = max(0, int((d["box"][0] - strip.x0) / strip.per_col))
        b = max(a + 1, int(np.ceil((d["box"][2] - strip.x0) / strip.per_col)))
        part = strip.image[:, a:b] * 255.0
        crops.append(center_digit(part) if part.max() > 0 else np.zeros((28, 28), np.uint8))
    reading = {"number": out["number"], "digits": out["digits"], "page": strip.page}
    reading.update(crops=np.stack(crops), gray=gray)
    return _flag(reading, "seq")


def _read_segment(
    predictor: Predictor, gray: np.ndarray, splitter: Predictor | None, reject: bool
) -> dict:
    """The segmenter's reading (see :func:`read_number`)."""
    splitter = splitter or default_splitter()
    knows_nondigits = splitter.preprocessing.num_classes > 10

    def score(crops: np.ndarray) -> np.ndarray:
        return splitter.predict_proba(crops)[:, :10].max(1)  # P(the most likely single digit)

    seg = segment_number(gray, score=score, straight_cuts=knows_nondigits)
    pieces, page = seg.digits, seg.page
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
    doubtful = _number_doubts(digits)
    return {
        "number": "".join("?" if d["digit"] is None else str(d["digit"]) for d in digits),
        "low_confidence": bool(doubtful),
        "low_confidence_reason": "; ".join(doubtful) or None,
        "digits": digits,
        "crops": crops,
        "gray": gray,
        "page": page,
        "method": "segment",
        "marks": mark_columns([box for box, _ in pieces], seg.marks),  # (x, "." or " ")
    }
