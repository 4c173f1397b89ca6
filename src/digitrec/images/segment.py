"""Split a photo of a multi-digit number into MNIST-style single digits, left to right.

Ink is found exactly as for single digits (:func:`digitrec.images.normalise.ink_map`), then:
connected components -> drop specks -> merge pieces stacked in the same columns (broken
strokes) -> cut components that may hold several digits (touching digits) along ink seams ->
MNIST-normalise each digit with :func:`digitrec.images.normalise.center_digit`. With a recogniser,
the cuts and the number of digits are chosen by dynamic programming over candidate seams,
maximising the product of digit confidences times a prior on digit size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy import ndimage

from digitrec.errors import NoDigitError
from digitrec.images.marks import find_dots, find_separators
from digitrec.images.normalise import SPECK_FRACTION, center_digit, ink_map
from digitrec.images.page import PageReport

# Pieces overlapping in x by this fraction of the narrower one, and in y by less than it,
# belong to the same digit.
MERGE_OVERLAP = 0.6
# Without a recogniser, a component wider than this times the line's digit height holds several
# digits (99 % of MNIST digits have width / height <= 1.43, a touching pair ~1.6) ...
SPLIT_ASPECT = 1.3
# ... about this many: typical digit width / height.
DIGIT_ASPECT = 0.8
# With a recogniser, components wider than this are searched for touching digits.
SEARCH_ASPECT = 0.5
# Candidate cuts: seams pulled towards columns this fraction of the digit height apart.
SEAM_STEP = 0.08
# Seams: pull towards their target column (per row, per digit height off), cost of a diagonal step.
SEAM_PULL = 0.3
SEAM_BEND = 0.02
# Digit width / height range searched for one digit (MNIST '1's are ~0.15, wide '2's ~1.4).
MIN_ASPECT = 0.1
MAX_ASPECT = 1.6
# Log-prior of a digit: ink shorter than LOW_HEIGHT or wider than HIGH_ASPECT times the line's
# digit height is penalised by ((distance beyond) / PRIOR_SCALE) ** 2. (MNIST scales a digit's
# longer side to 20 px, so hardly any digit is wider than the line's 20 px height.)
LOW_HEIGHT = 0.75
HIGH_ASPECT = 1.0
PRIOR_SCALE = 0.1
# Log-cost of a cut per digit height of full-strength ink it crosses: a cut through a loop
# crosses two strokes, a cut between touching digits about one short overlap.
CUT_INK_COST = 1.0
# Log-reward per digit read (negative: a cost). A recogniser trained with shift augmentation
# confidently reads a '1' in a sliver of an '8' or '7', so each extra digit must pay its way.
# This and the constants below were tuned on make_numbers seeds 2-5, never on the seed-0
# benchmark (the README's "Your own photos" section gives the measurements).
DIGIT_BONUS = -0.1
# A digit holds at least this much full-strength ink per squared digit height (MNIST: 99.9 % of
# '1's >= 0.058); seams leave faint slivers that a shift-trained model reads as a confident '1'.
MIN_INK = 0.03
# The line's digit height is this percentile of the pieces' heights: with 2-3 pieces the median
# is dragged down by one short digit, and a wide '5' then looks like two digits.
TYPICAL_PCT = 75
# A digit's ink is boosted at most this much to match MNIST's saturated strokes.
MAX_BOOST = 4.0
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
    """``center_digit`` with the part's own ink level; an ink-free slice maps to an empty image."""
    if not part.any():
        return np.zeros((28, 28), dtype=np.uint8)
    return center_digit(_own_level(part))


def _own_level(part: np.ndarray) -> np.ndarray:
    """Rescale one digit's ink so its stroke cores reach 255, as in MNIST.

    The ink map's level is set by the whole line, so a digit written lighter than its
    neighbours would reach the model thin and faint (a faint '6' reads as '1').
    """
    level = float(np.percentile(part[part > 0], 90))
    return np.clip(part * min(MAX_BOOST, 255.0 / max(level, 1.0)), 0.0, 255.0)


def _seams(crop: np.ndarray, targets: np.ndarray, unit: float) -> np.ndarray:
    """Cheapest top-to-bottom paths through the ink, one pulled towards each target column.

    Seam carving by dynamic programming, all targets at once.

    Args:
        crop: float (h, w) ink in 0..255.
        targets: float (T,) columns the paths are pulled towards.
        unit: Digit height in pixels (scales the pull).

    Returns:
        int (T, h): column of each path in each row; a pixel is left of a path when its column
        is smaller.
    """
    band = crop / max(float(crop.max()), 1e-6)
    h, w = band.shape
    pen = SEAM_PULL * np.abs(np.arange(w)[None, :] - np.asarray(targets)[:, None]) / unit
    cost = band[0] + pen
    back = np.zeros((h, *pen.shape), dtype=np.int8)
    inf = np.full((len(pen), 1), np.inf)
    for r in range(1, h):  # one vectorised step per row: come from column c-1, c or c+1
        padded = np.concatenate((inf, cost, inf), axis=1)
        options = np.stack([padded[:, :-2] + SEAM_BEND, padded[:, 1:-1], padded[:, 2:] + SEAM_BEND])
        step = options.argmin(axis=0)
        back[r] = step - 1
        cost = band[r] + pen + np.take_along_axis(options, step[None], 0)[0]
    paths = np.empty((len(pen), h), dtype=np.int64)
    paths[:, -1] = cost.argmin(axis=1)
    rows = np.arange(len(pen))
    for r in range(h - 1, 0, -1):
        paths[:, r - 1] = paths[:, r] + back[r, rows, paths[:, r]]
    return paths


def _between(crop: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The ink of ``crop`` right of path ``left`` and left of path ``right``."""
    cols = np.arange(crop.shape[1])[None, :]
    return np.where((cols >= left[:, None]) & (cols < right[:, None]), crop, 0.0)


def _even_split(crop: np.ndarray, typical: float) -> list[np.ndarray]:
    """Without a recogniser: cut a wide piece into as many digits as its width suggests."""
    h, w = crop.shape
    k = round(w / max(h, typical) / DIGIT_ASPECT)
    if w / max(h, typical) <= SPLIT_ASPECT or k < 2:
        return [crop]
    paths = _seams(crop, np.arange(1, k) * w / k, w / k)
    edges = [np.zeros(h, np.int64), *np.maximum.accumulate(paths, axis=0), np.full(h, w)]
    return [_between(crop, a, b) for a, b in pairwise(edges)]


def _log_prior(part: np.ndarray, typical: float) -> float:
    """Log-prior that ``part`` is one whole digit, from its ink's height and width."""
    rows = np.nonzero(part.any(axis=1))[0]
    cols = np.nonzero(part.any(axis=0))[0]
    short = max(0.0, LOW_HEIGHT - (rows[-1] + 1 - rows[0]) / typical)
    wide = max(0.0, (cols[-1] + 1 - cols[0]) / typical - HIGH_ASPECT)
    return -((short / PRIOR_SCALE) ** 2) - (wide / PRIOR_SCALE) ** 2


def _best_split(
    crop: np.ndarray, typical: float, score: Scorer, straight_cuts: bool = False
) -> list[np.ndarray]:
    """Cut a piece into the digits that maximise the product of recogniser confidences.

    Candidate cuts are ink seams pulled towards evenly spaced columns (plus straight vertical
    cuts at those columns with ``straight_cuts``); dynamic programming over them picks the
    number of digits and the cuts, each digit weighted by a prior on its size and each cut by
    the ink it crosses.
    """
    h, w = crop.shape
    lo = MIN_ASPECT * typical
    targets = np.arange(lo, w - lo + 1, max(1.0, SEAM_STEP * typical))
    paths = _seams(crop, targets, typical) if targets.size else np.zeros((0, h), np.int64)
    if straight_cuts and targets.size:
        # Where two digits touch along a vertical stretch, every seam goes round the stretch
        # and the pair is never cut; a straight cut goes through it.
        straight = np.round(targets).astype(np.int64)[:, None]
        paths = np.concatenate((paths, np.broadcast_to(straight, (targets.size, h))))
    # Seams left to right, made non-crossing so that chosen cuts partition the ink; seams that
    # many targets pulled into the same valley are kept once.
    paths = np.maximum.accumulate(paths[np.argsort(paths.mean(axis=1), kind="stable")], axis=0)
    keep = [i for i in range(len(paths)) if i == 0 or np.abs(paths[i] - paths[i - 1]).mean() > 1]
    paths = paths[keep]
    edges = [np.zeros(h, np.int64), *paths, np.full(h, w)]
    cut_cost = [0.0] * len(edges)
    for i, path in enumerate(edges[1:-1], start=1):
        crossed = crop[np.arange(h), np.clip(path, 0, w - 1)].sum() / 255.0
        cut_cost[i] = CUT_INK_COST * crossed / typical
    spans, parts = [], []
    for i in range(len(edges) - 1):
        for j in range(i + 1, len(edges)):
            width = float((edges[j] - edges[i]).mean())
            if width > MAX_ASPECT * typical:
                break
            if width < lo and not (i == 0 and j == len(edges) - 1):
                continue  # too narrow for a digit (unless it is the whole piece)
            part = _between(crop, edges[i], edges[j])
            whole = i == 0 and j == len(edges) - 1
            if whole or part.sum() / 255.0 >= MIN_INK * typical**2:
                spans.append((i, j))
                parts.append(part)
    if not parts:
        return [crop]
    logp = np.log(np.maximum(np.asarray(score(np.stack([_digit(p) for p in parts]))), 1e-6))
    logp += np.array([_log_prior(p, typical) for p in parts]) + DIGIT_BONUS
    # best[j]: best log-score of the ink left of edge j, ending with a cut at j.
    best = np.full(len(edges), -np.inf)
    best[0] = 0.0
    choice: list[int] = [-1] * len(edges)
    for k, (i, j) in enumerate(spans):  # spans are ordered by their left edge i
        total = best[i] + logp[k] - (cut_cost[j] if j < len(edges) - 1 else 0)
        if total > best[j]:
            best[j], choice[j] = total, k
    if choice[-1] < 0:
        return [crop]
    out, j = [], len(edges) - 1
    while j > 0:
        k = choice[j]
        out.append(parts[k])
        j = spans[k][0]
    return out[::-1]


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
            are cut into the digits it is most confident about (see :func:`_best_split`);
            without it, pieces wider than 1.3x the line's digit height are cut evenly along
            seams of least ink.
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
            parts = _even_split(crop, typical)
        elif piece.width > SEARCH_ASPECT * max(piece.height, typical):
            parts = _best_split(crop, typical, score, straight_cuts)
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
            out.append((box, _digit(part)))
    if not out:
        raise NoDigitError("no digit found")
    return Segmentation(out, _marks([b for b, _ in out], [d.x * inv for d in dots]), m.page)


def _marks(boxes: list[Box], dots: list[float]) -> list[tuple[int, str]]:
    """Points (centre columns, photo pixels) between two digits, then separator spaces."""
    centres = [(b[0] + b[2]) / 2.0 for b in boxes]
    points = {i for i in (int(np.searchsorted(centres, x)) for x in dots) if 0 < i < len(boxes)}
    spaces = find_separators(boxes, skip=points)
    return sorted([(i, ".") for i in points] + [(i, " ") for i in spaces])
