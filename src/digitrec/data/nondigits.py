"""Images that are not a digit, for training and testing a reject option (issue 14).

Four kinds, all seeded and MNIST-normalised (uint8 (N, 28, 28), white ink on black):

- ``letters``: letters and symbols from handwriting-style fonts (:mod:`digitrec.data.fonts`),
  elastically distorted; glyphs that honestly look like digits (O o I l S Z B ...) are left out;
- ``doodles``: random strokes: circles with tails, zig-zags, smileys, hatching, spirals, stars;
- ``pieces``: the splitter's touching digit pairs (:func:`digitrec.data.synth.make_nondigits`);
- ``noise``: Gaussian and uniform noise, blobs, gratings, and filled textured silhouettes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from digitrec.data.fonts import font_files, glyph
from digitrec.errors import DataError, NoDigitError
from digitrec.images.normalise import center_digit

# Letters and symbols that do not look like a digit. Left out, because some writer's digit looks
# like them: ? (2), O o Q D (0), I l i j J T t (1, 7), S s $ (5), Z z (2), B (8), G b (6), g q (9),
# A (4 in some fonts), Y y L (4, 7), E e (6 in cursive), / \ | ! ( ) [ ] (1).
LETTERS = "CFHKMNPRUVWXacfhkmnpruvwx"
SYMBOLS = "#%&@+*=~<>"
GLYPHS = LETTERS + SYMBOLS
# Mix of a "mixed" source: fraction of each kind.
KINDS = ("letters", "doodles", "pieces", "noise")
MIX = {"letters": 0.45, "doodles": 0.25, "pieces": 0.15, "noise": 0.15}


def elastic(
    img: np.ndarray, rng: np.random.Generator, alpha: float = 2.0, sigma: float = 4.0
) -> np.ndarray:
    """Elastic distortion (Simard et al. 2003) of a float (h, w) image; ``alpha`` in px."""
    h, w = img.shape
    # Smoothed random fields scaled to ``alpha`` px standard deviation.
    dx, dy = (ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma) for _ in range(2))
    dx = dx / (dx.std() + 1e-9) * alpha
    dy = dy / (dy.std() + 1e-9) * alpha
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return ndimage.map_coordinates(img, [yy + dy, xx + dx], order=1, mode="constant")


def _normalised(ink: np.ndarray) -> np.ndarray:
    """MNIST-normalise float ink (0..255); an empty image becomes all zeros."""
    ink = np.where(ink > 8, ink, 0.0)
    try:
        return center_digit(ink)
    except NoDigitError:
        return np.zeros((28, 28), dtype=np.uint8)


def make_letters(
    n: int, seed: int = 0, split: str = "train", glyphs: str = GLYPHS, distort: bool = True
) -> np.ndarray:
    """``n`` letters and symbols from the fonts of ``split`` (see ``fonts.FONT_SPLITS``).

    Returns:
        uint8 (n, 28, 28).
    """
    rng = np.random.default_rng(seed)
    files = font_files(split)
    out = np.empty((n, 28, 28), dtype=np.uint8)
    for k in range(n):
        char = glyphs[int(rng.integers(0, len(glyphs)))]
        alpha = glyph(char, files[int(rng.integers(0, len(files)))], 40.0, rng)
        alpha = np.pad(alpha, 6)
        if distort:
            alpha = elastic(alpha, rng, alpha=float(rng.uniform(0.5, 2.5)), sigma=4.0)
        out[k] = _normalised(np.clip(alpha, 0, 1) * 255.0)
    return out


def _doodle(draw: ImageDraw.ImageDraw, rng: np.random.Generator, width: int) -> None:
    """One random doodle on a 112x112 canvas."""
    kind = int(rng.integers(0, 7))
    c = rng.uniform(40, 72, 2)
    r = float(rng.uniform(20, 40))
    if kind == 0:  # circle with two or more tails
        draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], outline=255, width=width)
        for _ in range(int(rng.integers(2, 4))):
            a = rng.uniform(0, 2 * math.pi)
            p = (c[0] + r * math.cos(a), c[1] + r * math.sin(a))
            q = (p[0] + 30 * math.cos(a), p[1] + 30 * math.sin(a))
            draw.line([p, q], fill=255, width=width)
    elif kind == 1:  # zig-zag
        m = int(rng.integers(4, 9))
        xs = np.linspace(10, 102, m)
        ys = np.where(np.arange(m) % 2 == 0, rng.uniform(10, 45), rng.uniform(65, 102))
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255, width=width)
    elif kind == 2:  # smiley
        draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], outline=255, width=width)
        e = r * 0.35
        for sx in (-1, 1):
            draw.ellipse([c[0] + sx * e - 3, c[1] - e - 3, c[0] + sx * e + 3, c[1] - e + 3], 255)
        draw.arc([c[0] - r / 2, c[1] - r / 3, c[0] + r / 2, c[1] + r / 2], 20, 160, 255, width)
    elif kind == 3:  # hatching
        m = int(rng.integers(4, 9))
        slope = float(rng.uniform(-1, 1))
        for t in np.linspace(15, 97, m):
            draw.line([(t - 20, 20 + slope * 20), (t + 20, 92 - slope * 20)], 255, width)
        if rng.random() < 0.5:
            for t in np.linspace(15, 97, m):
                draw.line([(20, t), (92, t + slope * 10)], 255, width)
    elif kind == 4:  # spiral
        turns = float(rng.uniform(1.5, 3.5))
        ts = np.linspace(0, turns * 2 * math.pi, 80)
        rs = np.linspace(3, r, 80)
        pts = [
            (c[0] + q * math.cos(t), c[1] + q * math.sin(t)) for t, q in zip(ts, rs, strict=True)
        ]
        draw.line(pts, fill=255, width=width)
    elif kind == 5:  # star or asterisk
        m = int(rng.integers(3, 7))
        for a in np.linspace(0, math.pi, m, endpoint=False) + rng.uniform(0, 1):
            dx, dy = r * math.cos(a), r * math.sin(a)
            draw.line([(c[0] - dx, c[1] - dy), (c[0] + dx, c[1] + dy)], 255, width)
    else:  # scribble: a random smooth polyline
        pts = np.cumsum(rng.normal(0, 18, (int(rng.integers(6, 14)), 2)), axis=0)
        pts = pts - pts.mean(axis=0) + 56
        draw.line([tuple(p) for p in pts.tolist()], fill=255, width=width, joint="curve")


def make_doodles(n: int, seed: int = 0) -> np.ndarray:
    """``n`` random doodles. Returns uint8 (n, 28, 28)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 28, 28), dtype=np.uint8)
    for k in range(n):
        img = Image.new("L", (112, 112), 0)
        _doodle(ImageDraw.Draw(img), rng, int(rng.integers(5, 12)))
        ink = np.asarray(img, dtype=np.float32)
        out[k] = _normalised(elastic(ink, rng, alpha=float(rng.uniform(1, 4)), sigma=8.0))
    return out


def _silhouette(rng: np.random.Generator) -> np.ndarray:
    """A large filled polygon or ellipse with shading and texture, float (28, 28) in 0..1."""
    img = Image.new("L", (112, 112), 0)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.5:
            box = np.sort(rng.uniform(4, 108, (2, 2)), axis=0).ravel().tolist()
            draw.ellipse([box[0], box[1], box[2], box[3]], fill=255)
        else:
            pts = rng.uniform(4, 108, (int(rng.integers(3, 8)), 2))
            draw.polygon([tuple(p) for p in pts.tolist()], fill=255)
    mask = np.asarray(img.resize((28, 28), Image.Resampling.BILINEAR), np.float32) / 255.0
    shade = ndimage.gaussian_filter(rng.normal(0, 1, (28, 28)), float(rng.uniform(1, 6)))
    shade = (shade - shade.min()) / (np.ptp(shade) + 1e-9)
    texture = rng.uniform(0.7, 1.0, (28, 28)) if rng.random() < 0.5 else 1.0
    return mask * (0.3 + 0.7 * shade) * texture


def make_noise(n: int, seed: int = 0) -> np.ndarray:
    """``n`` noise images and textures, raw 28x28 (not recentred). Returns uint8 (n, 28, 28)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 28, 28), dtype=np.uint8)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    for k in range(n):
        kind = k % 7
        level = float(rng.uniform(0.2, 1.0)) * 255
        if kind == 0:  # Gaussian noise
            img = rng.normal(0.5, float(rng.uniform(0.1, 0.5)), (28, 28)) * level
        elif kind == 1:  # uniform noise
            img = rng.uniform(0, 1, (28, 28)) * level
        elif kind == 2:  # blobs: smoothed noise, thresholded
            g = ndimage.gaussian_filter(rng.normal(0, 1, (28, 28)), float(rng.uniform(1, 3)))
            img = (g > np.quantile(g, rng.uniform(0.5, 0.9))) * level
        elif kind == 3:  # grating
            f, a = float(rng.uniform(0.3, 1.5)), float(rng.uniform(0, math.pi))
            img = (np.sin(f * (xx * math.cos(a) + yy * math.sin(a))) > 0) * level
        elif kind == 4:  # checkerboard / grid
            s = int(rng.integers(2, 7))
            img = (((yy // s) + (xx // s)) % 2) * level
        else:  # a filled, shaded, textured silhouette (clothes, objects, stains)
            img = _silhouette(rng) * level
            if kind == 6:
                img = _normalised(img)
        out[k] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def _pairs(digits: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The splitter's touching pairs only: its digits cut in half too often look like a digit
    (a 4 cut to a 1), which cost 0.5 point of digit accuracy in a 5-epoch run."""
    from digitrec.data.synth import make_nondigits

    made = make_nondigits(digits, 3 * (n // 2 + 1), seed)  # items k % 3 < 2 are pairs
    return made[np.arange(len(made)) % 3 < 2][:n]


def make_mixed(
    n: int,
    digits: np.ndarray,
    seed: int = 0,
    kinds: Sequence[str] = KINDS,
) -> np.ndarray:
    """``n`` non-digits of ``kinds``, in :data:`MIX` proportions, shuffled (seeded).

    Args:
        n: How many images.
        digits: uint8 (N, 28, 28) training digits for the ``pieces`` (never the test set).
        seed: Seed for reproducibility.
        kinds: Which of :data:`KINDS` to use.

    Returns:
        uint8 (n, 28, 28).
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise DataError(f"unknown non-digit kind {unknown}; choose from {', '.join(KINDS)}")
    makers: dict[str, Callable[[int, int], np.ndarray]] = {
        "letters": lambda m, s: make_letters(m, s),
        "doodles": make_doodles,
        "pieces": lambda m, s: _pairs(digits, m, s),
        "noise": make_noise,
    }
    total = sum(MIX[k] for k in kinds)
    counts = [round(n * MIX[k] / total) for k in kinds]
    counts[0] += n - sum(counts)
    parts = [
        makers[k](c, seed + 1000 * i) for i, (k, c) in enumerate(zip(kinds, counts, strict=True))
    ]
    out = np.concatenate(parts)
    return out[np.random.default_rng(seed).permutation(len(out))]


def parse_source(source: str) -> tuple[str, ...]:
    """``"letters+doodles+pieces+noise"`` -> the kinds; ``""`` or ``"pieces"`` -> ("pieces",)."""
    kinds = tuple(k.strip() for k in (source or "pieces").split("+") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise DataError(f"nondigit_source {source!r}: use kinds {'+'.join(KINDS)}")
    return kinds
