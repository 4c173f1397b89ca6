"""Synthetic numbers with a decimal point and separator spaces, such as "1 250.75".

The digits are pasted side by side as in :func:`digitrec.data.synth.compose_number`; a point is
a filled, anti-aliased disc drawn on the baseline of its left neighbour, in a gap of its own; a
separator space is a gap of half a digit height or more. The same code draws noise specks
(discs thinner than the pen) where a point would go: ``read`` must not turn them into points.
Used by ``bench/marks.py`` (validation digits: the development set the thresholds of
:mod:`digitrec.images.marks` were chosen on) and by the tests.
"""

from __future__ import annotations

import numpy as np

from digitrec.data.synth import FRAME_H, _gaps, _number_photo
from digitrec.images.marks import stroke_width

# Gap of a separator space, px at MNIST scale (digits' ink ~20 px tall): 0.7-1.2 digit heights,
# at least ~2x the widest ordinary gap (8 px).
SPACE_GAP = (14, 25)
# Clear space either side of a point, px at MNIST scale.
POINT_MARGIN = (2, 6)
# A point's diameter in the pen's stroke widths, as digitrec.data.pages draws one.
POINT_STROKES = (1.1, 1.6)
# Below this diameter (stroke widths) a "point" is a noise speck: it sits in an ordinary gap
# with this clear space either side, and the expected reading has no point.
SPECK_STROKES = 0.7
SPECK_MARGIN = (1, 4)


def _disc(d: float) -> np.ndarray:
    """An anti-aliased filled disc of diameter ``d`` px: float32 (s, s) alpha in 0..1."""
    s = int(np.ceil(d)) + 2
    yy, xx = np.mgrid[0:s, 0:s] - (s - 1) / 2.0
    return np.clip(d / 2.0 + 0.5 - np.hypot(yy, xx), 0.0, 1.0).astype(np.float32)


def compose_marked(
    digits: list[np.ndarray],
    text: str,
    rng: np.random.Generator,
    point_strokes: float | None = None,
) -> np.ndarray:
    """Paste 28x28 digits at MNIST scale with the marks of ``text`` between them.

    Args:
        digits: uint8 (28, 28) digits, one per digit character of ``text``, left to right.
        text: The number, e.g. "1 250.75": digits, "." (a point) and " " (a separator space).
        rng: Random generator: gaps, +-2 px vertical jitter, point size and placement.
        point_strokes: Diameter of every point in stroke widths (default: 1.1-1.6 each, as a
            pen draws one); below :data:`SPECK_STROKES` the "points" are noise specks.

    Returns:
        float32 (FRAME_H + 4, W) ink alpha in 0..1.
    """
    trimmed = []
    for d in digits:
        cols = np.nonzero(d.max(axis=0) > 64)[0]
        trimmed.append(d[:, cols.min() : cols.max() + 1] / 255.0)
    stroke = stroke_width(np.concatenate([t for t in trimmed], axis=1) > 0.5)
    gaps = iter(_gaps(len(digits) + 1, rng))
    strip = np.zeros((FRAME_H + 4, 28 * len(text) + 40), dtype=np.float32)
    x, k, bottom = 2, 0, 0
    for i, c in enumerate(text):
        if c == ".":
            size = point_strokes or rng.uniform(*POINT_STROKES)
            disc = _disc(size * stroke)
            # A speck lands in an ordinary gap (2-8 px in all); a point gets room of its own.
            margin = SPECK_MARGIN if size < SPECK_STROKES else POINT_MARGIN
            x += int(rng.integers(*margin))
            y = bottom - disc.shape[0] + 1 - int(rng.integers(0, 2))
            region = strip[y : y + disc.shape[0], x : x + disc.shape[1]]
            np.maximum(region, disc, out=region)
            x += disc.shape[1] + int(rng.integers(*margin))
        elif c == " ":
            x += int(rng.integers(*SPACE_GAP))
        else:
            t = trimmed[k]
            k += 1
            dy = 2 + int(rng.integers(-2, 3))
            region = strip[dy : dy + 28, x : x + t.shape[1]]
            np.maximum(region, t, out=region)
            bottom = dy + int(np.nonzero(t.max(axis=1) > 0.25)[0][-1])
            x += t.shape[1]
            if i + 1 < len(text) and text[i + 1].isdigit():
                x += next(gaps)
    return strip[:, : x + 2]


def marked_text(rng: np.random.Generator, max_digits: int = 12) -> str:
    """A random number of 3..``max_digits`` digits: a decimal, a grouped one or both."""
    k = int(rng.integers(3, max_digits + 1))
    digits = "".join(str(int(v)) for v in rng.integers(0, 10, size=k))
    kind = rng.integers(0, 3)  # 0: "3.14", 1: "12 345", 2: "1 250.75"
    fraction = int(rng.integers(1, min(3, k - 1) + 1)) if kind != 1 else 0
    whole, frac = digits[: k - fraction], digits[k - fraction :]
    if kind != 0 and len(whole) >= 4:
        head = len(whole) % 3 or 3
        whole = " ".join([whole[:head]] + [whole[j : j + 3] for j in range(head, len(whole), 3)])
    return whole + ("." + frac if frac else "")


def make_marked_numbers(
    digits: np.ndarray,
    labels: np.ndarray,
    n: int = 100,
    seed: int = 0,
    point_strokes: float | None = None,
    max_digits: int = 12,
) -> list[tuple[bytes, str]]:
    """Photos of numbers such as "3.14" and "1 250.75" written with MNIST digits.

    With ``point_strokes`` below :data:`SPECK_STROKES` every "point" is a noise speck in an
    ordinary gap, and the expected text has no point (a speck must not be read as one).

    Returns:
        ``n`` pairs of (JPEG bytes, the expected reading).
    """
    rng = np.random.default_rng(seed)
    by_label = [np.nonzero(labels == d)[0] for d in range(10)]
    out = []
    for _ in range(n):
        text = marked_text(rng, max_digits)
        idx = [int(rng.choice(by_label[int(c)])) for c in text if c.isdigit()]
        strip = compose_marked([digits[i] for i in idx], text, rng, point_strokes)
        speck = point_strokes is not None and point_strokes < SPECK_STROKES
        out.append((_number_photo(strip, rng, "clean"), text.replace(".", "") if speck else text))
    return out
