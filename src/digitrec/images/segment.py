"""Split a photo of a multi-digit number into MNIST-style single digits, left to right.

Ink is found exactly as for single digits (:func:`digitrec.images.normalise.ink_map`), then:
connected components -> drop specks -> merge pieces stacked in the same columns (broken
strokes) -> cut components that may hold several digits (touching digits) along ink seams ->
MNIST-normalise each digit with :func:`digitrec.images.normalise.center_digit`. With a recogniser,
the cuts and the number of digits are chosen by dynamic programming over candidate seams,
maximising the product of digit confidences times a prior on digit size (the cutting is in
:mod:`digitrec.images.cuts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from digitrec.errors import NoDigitError
from digitrec.images.cuts import Scorer, best_split, even_split, to_digit
from digitrec.images.marks import Box, find_dots, find_separators
from digitrec.images.normalise import SPECK_FRACTION, ink_map
from digitrec.images.page import PageReport

# Pieces overlapping in x by this fraction of the narrower one, and in y by less than it,
# belong to the same digit.
MERGE_OVERLAP = 0.6
# With a recogniser, components wider than this are searched for touching digits.
SEARCH_ASPECT = 0.5
# This and FRAGMENT_HEIGHT were tuned with the constants of images/cuts.py (see DIGIT_BONUS).
# The line's digit height is this percentile of the pieces' heights: with 2-3 pieces the median
# is dragged down by one short digit, and a wide '5' then looks like two digits.
TYPICAL_PCT = 75
# Pieces shorter than this fraction of the typical digit height are fragments of a neighbour.
FRAGMENT_HEIGHT = 0.55


@dataclass
class _Piece:
    """A candidate digit: labels it is made of and its box (working pixels, exclusive ends)."""

    labels: list[int]
    x0: int
    y0: int
    x1: int
    y1: int
    area: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def absorb(self, other: _Piece) -> None:
        self.labels += other.labels
        self.x0, self.y0 = min(self.x0, other.x0), min(self.y0, other.y0)
        self.x1, self.y1 = max(self.x1, other.x1), max(self.y1, other.y1)
        self.area += other.area


def _pieces(labels: np.ndarray, areas: np.ndarray) -> list[_Piece]:
    """Components as pieces, specks dropped, sorted by left edge."""
    objects = ndimage.find_objects(labels, max_label=areas.size - 1)
    big = int(areas.max())
    out = [
        _Piece([lab], sl[1].start, sl[0].start, sl[1].stop, sl[0].stop, int(areas[lab]))
        for lab, sl in enumerate(objects, start=1)
        if sl is not None and areas[lab] >= SPECK_FRACTION * big
    ]
    return sorted(out, key=lambda p: p.x0)


def _merge(pieces: list[_Piece]) -> list[_Piece]:
    """Merge pieces that share most of their columns (a broken '5', the dot-free parts of a '4')."""
    merged = True
    while merged:
        merged = False
        for i, a in enumerate(pieces):
            for b in pieces[i + 1 :]:
                overlap = min(a.x1, b.x1) - max(a.x0, b.x0)
                stacked = min(a.y1, b.y1) - max(a.y0, b.y0) <= MERGE_OVERLAP * min(
                    a.height, b.height
                )  # side-by-side digits share their rows; broken strokes sit above/below
                if overlap >= MERGE_OVERLAP * min(a.width, b.width) and stacked:
                    a.absorb(b)
                    pieces.remove(b)
                    merged = True
                    break
            if merged:
                break
    return _absorb_fragments(sorted(pieces, key=lambda p: p.x0))


def _absorb_fragments(pieces: list[_Piece]) -> list[_Piece]:
    """Join short pieces (a detached bar or hook) to the neighbour they overlap or touch most."""
    if len(pieces) < 2:
        return pieces
    typical = float(np.median([p.height for p in pieces]))
    for frag in sorted(pieces, key=lambda p: p.height):
        if frag.height >= FRAGMENT_HEIGHT * typical or frag not in pieces:
            continue
        others = [p for p in pieces if p is not frag]
        # Horizontal overlap (negative = gap) between the fragment and each neighbour.
        overlap = [min(frag.x1, p.x1) - max(frag.x0, p.x0) for p in others]
        best = int(np.argmax(overlap))
        if overlap[best] > -0.25 * typical:
            others[best].absorb(frag)
            pieces.remove(frag)
    return sorted(pieces, key=lambda p: p.x0)


def _crop(ink: np.ndarray, labels: np.ndarray, piece: _Piece) -> np.ndarray:
    """Ink of ``piece`` only (other digits reaching into its box are masked out)."""
    sl = (slice(piece.y0, piece.y1), slice(piece.x0, piece.x1))
    return np.where(np.isin(labels[sl], piece.labels), ink[sl], 0.0)


def segment_digits(
    gray: np.ndarray,
    score: Scorer | None = None,
    straight_cuts: bool = False,
    clean_page: bool = True,
) -> list[tuple[Box, np.ndarray]]:
    """Find the digits of a written number: :func:`segment_report` without the page report."""
    return segment_report(gray, score, straight_cuts, clean_page)[0]


def segment_report(
    gray: np.ndarray,
    score: Scorer | None = None,
    straight_cuts: bool = False,
    clean_page: bool = True,
) -> tuple[list[tuple[Box, np.ndarray]], PageReport]:
    """Find the digits of a written number: :func:`segment_number` without the marks."""
    seg = segment_number(gray, score, straight_cuts, clean_page)
    return seg.digits, seg.page


@dataclass
class Segmentation:
    """A written number, found: its digits, the marks between them, what cleanup dropped.

    Attributes:
        digits: Left to right, ``(box, digit)`` pairs: ``box`` = (x0, y0, x1, y1) in the
            photo's pixels (exclusive ends), ``digit`` uint8 (28, 28) white on black.
        marks: ``(i, mark)`` pairs, ``mark`` "." (a decimal point) or " " (a separator space)
            standing before digit ``i`` (:func:`digitrec.images.marks.insert_marks`).
        page: What page cleanup dropped.
    """

    digits: list[tuple[Box, np.ndarray]]
    marks: list[tuple[int, str]]
    page: PageReport


def segment_number(
    gray: np.ndarray,
    score: Scorer | None = None,
    straight_cuts: bool = False,
    clean_page: bool = True,
) -> Segmentation:
    """Find the digits of a written number, MNIST-normalise each one, and find the marks
    between them (a decimal point, a separator space: :mod:`digitrec.images.marks`).

    Args:
        gray: uint8 (H, W) grey photo or drawing, any polarity (RGB (H, W, 3) is accepted).
        score: Optional recogniser: uint8 (N, 28, 28) -> (N,) confidence in 0..1 (e.g. the top
            softmax probability). When given, pieces wider than half the line's digit height
            are cut into the digits it is most confident about (see
            :func:`digitrec.images.cuts.best_split`); without it, pieces wider than 1.3x the
            line's digit height are cut evenly along seams of least ink.
        straight_cuts: Also try straight vertical cuts. Only for a scorer that knows what is
            not one digit (the ``splitter`` model): a plain digit model is as sure of half a
            '0' as of a whole one, and straight cuts then split real digits.
        clean_page: Drop what is page rather than writing first (lines, the paper's edge, a
            frame: see :mod:`digitrec.images.page`).

    Raises:
        NoDigitError: No ink in the image.
    """
    m = ink_map(gray, clean_page)
    if not m.areas.any():
        raise NoDigitError("no digit found")
    # Points are marks, not digits (nor fragments of a neighbour): set aside before merging.
    dots = find_dots(m.labels, m.areas)
    areas = m.areas.copy()
    areas[[d.label for d in dots]] = 0
    pieces = _merge(_pieces(m.labels, areas)) if areas.any() else []
    out: list[tuple[Box, np.ndarray]] = []
    inv = 1.0 / m.scale
    typical = float(np.percentile([p.height for p in pieces], TYPICAL_PCT)) if pieces else 1.0
    for piece in pieces:
        crop = _crop(m.ink, m.labels, piece)
        if score is None:
            parts = even_split(crop, typical)
        elif piece.width > SEARCH_ASPECT * max(piece.height, typical):
            parts = best_split(crop, typical, score, straight_cuts)
        else:
            parts = [crop]
        for part in parts:
            rows = np.nonzero(part.any(axis=1))[0]
            cols = np.nonzero(part.any(axis=0))[0]
            if rows.size == 0:
                continue
            box = (
                int((piece.x0 + cols[0]) * inv),
                int((piece.y0 + rows[0]) * inv),
                int(np.ceil((piece.x0 + cols[-1] + 1) * inv)),
                int(np.ceil((piece.y0 + rows[-1] + 1) * inv)),
            )
            out.append((box, to_digit(part)))
    if not out:
        raise NoDigitError("no digit found")
    return Segmentation(out, _marks([b for b, _ in out], [d.x * inv for d in dots]), m.page)


def _marks(boxes: list[Box], dots: list[float]) -> list[tuple[int, str]]:
    """Points (centre columns, photo pixels) between two digits, then separator spaces."""
    centres = [(b[0] + b[2]) / 2.0 for b in boxes]
    points = {i for i in (int(np.searchsorted(centres, x)) for x in dots) if 0 < i < len(boxes)}
    spaces = find_separators(boxes, skip=points)
    return sorted([(i, ".") for i in points] + [(i, " ") for i in spaces])
