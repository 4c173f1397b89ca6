"""Marks between the digits of a written number: a decimal point and a separator space.

``read`` turns "3.14" into ``"3.14"`` and "1 250.75" into ``"1 250.75"``:

- a **decimal point** is a small, compact, isolated blob of ink near the line's baseline with a
  digit on each side (:func:`find_dots`). It must be about as thick as the pen's strokes: a
  noise speck (a crumb, a JPEG or sensor blotch) is thinner than that and is not a point;
- a **separator space** is a gap between neighbouring digits much wider than the number's other
  gaps and at least about half a digit wide (:func:`find_separators`).

All thresholds are in units of the line's digit height or of the pen's stroke width, so they
hold at any photo scale. They were chosen on development examples built from MNIST
*validation* digits (``python bench/marks.py``, results in ``bench/results/marks.json``):
points drawn as ``digitrec.data.pages`` draws them (1.1-1.6 stroke widths across) and specks
of 0.2-0.6 stroke widths, separator gaps of 0.5-1.0 digit heights and ordinary gaps up to 0.4.
Out of scope: a point that touches a digit (it is read as part of that digit), a comma, and
several lines. numpy/scipy only, like the rest of :mod:`digitrec.images`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# A point is no wider or taller than this fraction of the line's digit height ...
DOT_MAX_SIZE = 0.35
# ... at most this elongated (longer side / shorter side) and fills at least this much of its
# box (a disc fills 0.79; a stroke fragment on a diagonal much less) ...
DOT_MAX_ASPECT = 2.2
DOT_MIN_FILL = 0.45
# ... and at least this many of the pen's stroke widths across (equivalent disc diameter).
# Chosen on bench/marks.py's dev set: its points measure >= 1.17, its specks <= 0.87.
DOT_MIN_STROKES = 1.0
# Its centre lies within this fraction of the digit height above the local baseline (the
# bottoms of its two neighbours) and no more than DOT_DROP below it.
DOT_RISE = 0.35
DOT_DROP = 0.2
# Neighbours whose ink comes within this many digit heights of the point set its baseline.
DOT_REACH = 1.0
# A component at least this fraction of the digit height tall is writing, not a mark.
TALL = 0.5
# A separator gap is at least SEP_MIN digit heights wide and SEP_RATIO times the number's
# typical gap (the median of its other gaps, at least SEP_FLOOR digit heights). On
# bench/marks.py's dev set the spaces measure >= 0.61 digit heights, ordinary gaps <= 0.49.
SEP_MIN = 0.55
SEP_RATIO = 1.5
SEP_FLOOR = 0.1
Box = tuple[int, int, int, int]


@dataclass
class Dot:
    """A candidate point: its component label, centre (x, y) in working pixels, and size."""

    label: int
    x: float
    y: float
    strokes: float  # equivalent disc diameter / the pen's stroke width
    box: Box  # x0, y0, x1, y1 in working pixels, exclusive ends


def stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width of a bool ink mask in pixels: its area over half its outline."""
    edges = (mask[1:] != mask[:-1]).sum() + (mask[:, 1:] != mask[:, :-1]).sum()
    return max(1.0, 2.0 * float(mask.sum()) / max(int(edges), 1))


def _boxes(labels: np.ndarray, areas: np.ndarray) -> dict[int, Box]:
    """Box of each label that has strong ink."""
    objects = ndimage.find_objects(labels, max_label=areas.size - 1)
    return {
        lab: (s[1].start, s[0].start, s[1].stop, s[0].stop)
        for lab, s in enumerate(objects, start=1)
        if s is not None and areas[lab] > 0
    }


def find_dots(
    labels: np.ndarray, areas: np.ndarray, min_strokes: float = DOT_MIN_STROKES
) -> list[Dot]:
    """Components of an ink map that are points: small, compact, thick enough, isolated,
    near the baseline, with writing on each side. Sorted left to right.

    Args:
        labels: int (H, W) connected components of the ink (0 = background).
        areas: int (K + 1,) strong-ink pixels per label; labels with none are ignored.
        min_strokes: Least diameter in stroke widths (:data:`DOT_MIN_STROKES`; bench/marks.py
            sweeps it).
    """
    boxes = _boxes(labels, areas)
    if len(boxes) < 3:  # a point needs a digit on each side
        return []
    heights = {lab: b[3] - b[1] for lab, b in boxes.items()}
    big = max(int(areas[lab]) for lab in boxes)
    # The line's digit height, as for the digits (the writing, not the specks).
    h = float(np.percentile([heights[lab] for lab in boxes if areas[lab] >= 0.05 * big], 75))
    tall = [lab for lab in boxes if heights[lab] >= TALL * h]
    if len(tall) < 2:
        return []
    stroke = stroke_width(np.isin(labels, tall))
    counts = np.bincount(labels.ravel(), minlength=areas.size)
    out = []
    for lab, (x0, y0, x1, y1) in boxes.items():
        w, hh = x1 - x0, y1 - y0
        if max(w, hh) > DOT_MAX_SIZE * h or max(w, hh) > DOT_MAX_ASPECT * min(w, hh):
            continue
        pixels = int(counts[lab])
        if pixels < DOT_MIN_FILL * w * hh:
            continue
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        near = [boxes[t] for t in tall if _x_distance(boxes[t], cx) <= DOT_REACH * h]
        left = [b for b in near if _centre_x(b) < cx]
        right = [b for b in near if _centre_x(b) > cx]
        if not left or not right:
            continue  # not between two digits
        # The baseline: the bottoms of the nearest digit on each side (a '9' or '7' may reach
        # lower than its neighbour).
        bottoms = [max(left, key=_centre_x)[3], min(right, key=_centre_x)[3]]
        low, high = min(bottoms), max(bottoms)
        if not low - DOT_RISE * h <= cy <= high + DOT_DROP * h:
            continue
        # Isolated: no other ink in its columns in the lower half of the line.
        band = labels[max(0, int(low - 0.5 * h)) : int(high + DOT_DROP * h) + 1, x0:x1]
        if np.any((band != 0) & (band != lab)):
            continue
        strokes = float(np.sqrt(4.0 * pixels / np.pi)) / stroke
        if strokes >= min_strokes:
            out.append(Dot(lab, cx, cy, strokes, (x0, y0, x1, y1)))
    return sorted(out, key=lambda d: d.x)


def _centre_x(box: Box) -> float:
    return (box[0] + box[2]) / 2.0


def _x_distance(box: Box, x: float) -> float:
    """Horizontal distance from column ``x`` to a box (0 inside it)."""
    return max(box[0] - x, x - box[2], 0.0)


def find_separators(boxes: list[Box], skip: set[int]) -> list[int]:
    """Gaps that are separator spaces: indices ``i`` of the gap between digit ``i - 1`` and
    digit ``i``.

    Args:
        boxes: The digits' boxes (x0, y0, x1, y1), left to right, any pixel unit.
        skip: Gap indices that already hold a mark (a point): never a space.
    """
    if len(boxes) < 2:
        return []
    h = float(np.percentile([b[3] - b[1] for b in boxes], 75))
    gaps = {i: float(boxes[i][0] - boxes[i - 1][2]) for i in range(1, len(boxes)) if i not in skip}
    out = []
    for i, gap in gaps.items():
        others = [g for j, g in gaps.items() if j != i]
        typical = max(float(np.median(others)) if others else 0.0, SEP_FLOOR * h)
        if gap >= SEP_MIN * h and gap >= SEP_RATIO * typical:
            out.append(i)
    return out


def insert_marks(chars: list[str], marks: list[tuple[int, str]]) -> str:
    """The number as text: ``chars`` (one per digit) with each mark ``(i, c)`` before digit i.

    >>> insert_marks(list("125075"), [(1, " "), (4, ".")])
    '1 250.75'
    """
    before: dict[int, str] = {}
    for i, c in marks:
        before[i] = before.get(i, "") + c
    return "".join(before.get(i, "") + c for i, c in enumerate(chars))


def mark_columns(boxes: list[Box], marks: list[tuple[int, str]]) -> list[tuple[float, str]]:
    """Each mark ``(i, c)`` as ``(x, c)``: the column midway between digits ``i - 1`` and ``i``
    (so a reading with other boxes, e.g. the sequence reader's, can place it)."""
    return [((boxes[i - 1][2] + boxes[i][0]) / 2.0, c) for i, c in marks if 0 < i < len(boxes)]


def place_marks(number: str, boxes: list[Box], columns: list[tuple[float, str]]) -> str:
    """``number`` (one character per digit, boxes alike) with marks at columns ``(x, c)``.

    A mark goes before the first digit whose box centre is right of ``x``; one that would
    stand before the first digit or after the last is left out.
    """
    if len(number) != len(boxes):
        return number
    centres = sorted(_centre_x(b) for b in boxes)
    marks = [(int(np.searchsorted(centres, x)), c) for x, c in columns]
    return insert_marks(list(number), [(i, c) for i, c in marks if 0 < i < len(boxes)])
