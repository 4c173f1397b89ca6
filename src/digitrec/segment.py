"""Split a photo of a multi-digit number into MNIST-style single digits, left to right.

Ink is found exactly as for single digits (:func:`digitrec.preprocess.ink_map`), then:
connected components -> drop specks -> merge pieces stacked in the same columns (broken
strokes) -> split components too wide for one digit (touching pairs) at the column of least ink
-> MNIST-normalise each piece with :func:`digitrec.preprocess.center_digit`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from digitrec.errors import NoDigitError
from digitrec.preprocess import SPECK_FRACTION, center_digit, ink_map

# Pieces overlapping in x by this fraction of the narrower one, and in y by less than it,
# belong to the same digit.
MERGE_OVERLAP = 0.6
# A component wider than this times its height holds several digits (99 % of MNIST digits
# have width / height <= 1.43, a touching pair ~1.6).
SPLIT_ASPECT = 1.3
# Typical digit width / height, to guess how many digits a wide component holds.
DIGIT_ASPECT = 0.8
# Cuts are searched within +-this fraction of the expected digit width around the even split.
CUT_WINDOW = 0.45
# With a recogniser, components wider than this are also tried as a pair of digits, and split
# when both halves are recognised with a joint confidence above SPLIT_CONFIDENCE and the whole.
MAYBE_SPLIT_ASPECT = 0.75
SPLIT_CONFIDENCE = 0.5
# ... unless the recogniser is at least this confident in the whole piece.
WHOLE_CONFIDENT = 0.9
# Seams: pull towards the even split (per row, per digit width off) and cost of a diagonal step.
SEAM_PULL = 0.2
SEAM_BEND = 0.02
# With a recogniser, this many seams (pulled towards evenly spread columns) are compared.
SEAM_CANDIDATES = 7
# Pieces shorter than this fraction of the typical digit height are fragments of a neighbour.
FRAGMENT_HEIGHT = 0.55

Box = tuple[int, int, int, int]
Scorer = Callable[[np.ndarray], np.ndarray]


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


def _digit(part: np.ndarray) -> np.ndarray:
    """``center_digit`` that maps an ink-free slice to an empty image instead of raising."""
    return center_digit(part) if part.any() else np.zeros((28, 28), dtype=np.uint8)


def _seam_paths(band: np.ndarray, expect: float, unit: float, count: int) -> np.ndarray:
    """Cheapest top-to-bottom paths through ``band`` (seam carving by dynamic programming).

    Args:
        band: float (h, n) ink in 0..1, the columns where a cut may go.
        expect: Column (in ``band``) of the even split; paths are pulled towards it.
        unit: Expected digit width in pixels (scales the pull).
        count: How many paths to return, cheapest first, ending at distinct columns.

    Returns:
        int (m <= count, h): column of each path in each row.
    """
    h, n = band.shape
    pen = SEAM_PULL * np.abs(np.arange(n) - expect) / unit
    cost = band[0] + pen
    back = np.zeros((h, n), dtype=np.int64)
    idx = np.arange(n)
    for r in range(1, h):  # one vectorised step per row: come from column c-1, c or c+1
        padded = np.concatenate(([np.inf], cost, [np.inf]))
        options = np.stack([padded[:-2] + SEAM_BEND, padded[1:-1], padded[2:] + SEAM_BEND])
        step = options.argmin(axis=0)
        back[r] = step - 1
        cost = band[r] + pen + options[step, idx]
    ends: list[int] = []
    for c in np.argsort(cost, kind="stable"):
        if all(abs(int(c) - e) > 2 for e in ends):
            ends.append(int(c))
        if len(ends) == count:
            break
    paths = np.empty((len(ends), h), dtype=np.int64)
    paths[:, -1] = ends
    for r in range(h - 1, 0, -1):
        paths[:, r - 1] = paths[:, r] + back[r, paths[:, r]]
    return paths


def _split(crop: np.ndarray, k: int, score: Scorer | None) -> tuple[list[np.ndarray], list[float]]:
    """Cut ``crop`` (float (h, w) ink of one component) into ``k`` digits along ink seams.

    Returns:
        The ``k`` parts (float (h, w), zero outside each part) and, per cut, the ink the seam
        crosses (in pixels of full-strength ink).
    """
    w = crop.shape[1]
    top = max(float(crop.max()), 1e-6)
    cols = np.arange(w)[None, :]
    unit = w / k
    rest = crop
    parts = []
    for j in range(1, k):
        expect = j * unit
        lo = max(int(expect - CUT_WINDOW * unit), 1)
        hi = min(int(np.ceil(expect + CUT_WINDOW * unit)) + 1, w - 1)
        if hi - lo < 2:
            lo, hi = max(1, int(expect) - 1), min(w - 1, int(expect) + 2)
        band = rest[:, lo:hi] / top
        if score is None:
            paths = _seam_paths(band, expect - lo, unit, 1) + lo
        else:  # diverse candidates: seams pulled towards several columns of the window
            targets = np.linspace(0, hi - lo - 1, SEAM_CANDIDATES)
            paths = np.unique(
                np.concatenate([_seam_paths(band, t, unit, 1) for t in targets]), axis=0
            )
            paths = paths + lo
        lefts = [np.where(cols < p[:, None], rest, 0.0) for p in paths]
        best = 0
        if score is not None and len(paths) > 1:
            # Keep the seam whose two sides a recogniser finds most digit-like.
            conf = np.asarray(score(np.stack([_digit(lp) for lp in lefts])))
            conf = conf * np.asarray(score(np.stack([_digit(rest - lp) for lp in lefts])))
            best = int(np.argmax(conf))
        parts.append(lefts[best])
        rest = rest - lefts[best]
    parts.append(rest)
    return parts


def segment_digits(gray: np.ndarray, score: Scorer | None = None) -> list[tuple[Box, np.ndarray]]:
    """Find the digits of a written number and MNIST-normalise each one.

    Args:
        gray: uint8 (H, W) grey photo or drawing, any polarity (RGB (H, W, 3) is accepted).
        score: Optional recogniser: uint8 (N, 28, 28) -> (N,) confidence in 0..1 (e.g. the top
            softmax probability). When given, it decides whether a wide or slightly wide piece
            is one digit or several, and which ink seam separates touching digits best;
            without it, pieces wider than 1.3x the line's digit height are cut along the seam
            of least ink.

    Returns:
        Left to right, ``(box, digit)`` pairs: ``box`` = (x0, y0, x1, y1) in ``gray``'s pixels
        (exclusive ends) and ``digit`` uint8 (28, 28) white on black.

    Raises:
        NoDigitError: No ink in the image.
    """
    m = ink_map(gray)
    if not m.areas.any():
        raise NoDigitError("no digit found")
    pieces = _merge(_pieces(m.labels, m.areas))
    out: list[tuple[Box, np.ndarray]] = []
    inv = 1.0 / m.scale
    typical = float(np.median([p.height for p in pieces])) if pieces else 1.0
    for piece in pieces:
        crop = _crop(m.ink, m.labels, piece)
        parts = [crop]
        # Against the line's typical height: a wide, flat '2' or '5' is not two digits.
        aspect = piece.width / max(piece.height, typical)
        wide = aspect > SPLIT_ASPECT
        if wide or (score is not None and aspect > MAYBE_SPLIT_ASPECT):
            split = _split(crop, max(2, round(aspect / DIGIT_ASPECT)), score)
            if score is None:
                parts = split
            else:
                # Narrow touching pairs ('11', '64') look like one wide digit and wide digits
                # like two: let the recogniser compare the whole with the pieces.
                conf = np.asarray(score(np.stack([_digit(p) for p in [crop, *split]])))
                joint = float(np.prod(conf[1:]))
                geometric = wide and joint > 0.5 * conf[0]
                recognised = conf[0] < WHOLE_CONFIDENT and joint > max(conf[0], SPLIT_CONFIDENCE)
                if geometric or recognised:
                    parts = split
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
            out.append((box, center_digit(part)))
    if not out:
        raise NoDigitError("no digit found")
    return out
