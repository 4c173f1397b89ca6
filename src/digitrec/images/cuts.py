"""Cutting a piece of ink that may hold several touching digits into single digits.

Candidate cuts are seams of least ink (seam carving, pulled towards evenly spaced columns). With
a recogniser, dynamic programming over the seams picks the number of digits and the cuts that
maximise the product of digit confidences times a prior on digit size
(:func:`best_split`); without one, the piece is cut evenly by its width (:func:`even_split`).
Used by :func:`digitrec.images.segment.segment_number`.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np

from digitrec.images.normalise import center_digit

# Without a recogniser, a component wider than this times the line's digit height holds several
# digits (99 % of MNIST digits have width / height <= 1.43, a touching pair ~1.6) ...
SPLIT_ASPECT = 1.3
# ... about this many: typical digit width / height.
DIGIT_ASPECT = 0.8
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
# This and the constants below (and TYPICAL_PCT, FRAGMENT_HEIGHT in images/segment.py) were
# tuned on make_numbers seeds 2-5, never on the seed-0 benchmark (the README's "Your own photos"
# section gives the measurements).
DIGIT_BONUS = -0.1
# A digit holds at least this much full-strength ink per squared digit height (MNIST: 99.9 % of
# '1's >= 0.058); seams leave faint slivers that a shift-trained model reads as a confident '1'.
MIN_INK = 0.03
# A digit's ink is boosted at most this much to match MNIST's saturated strokes.
MAX_BOOST = 4.0
# A recogniser: uint8 (N, 28, 28) -> (N,) confidence in 0..1.
Scorer = Callable[[np.ndarray], np.ndarray]


def to_digit(part: np.ndarray) -> np.ndarray:
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


def even_split(crop: np.ndarray, typical: float) -> list[np.ndarray]:
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


def best_split(
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
    logp = np.log(np.maximum(np.asarray(score(np.stack([to_digit(p) for p in parts]))), 1e-6))
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
