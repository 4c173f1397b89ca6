"""Reproducible synthetic "user photos" of MNIST digits and multi-digit numbers.

Used by the tests and by the README measurement of how well accuracy transfers from MNIST to
photographed handwriting. Every image goes through the full realistic path: dark ink on
coloured, unevenly lit paper, off-centre at 3-7x scale, slightly rotated, noisy, and finally
JPEG-encoded. The generators return the encoded JPEG **bytes**, exactly what a user would upload;
decode them with :func:`digitrec.images.load_image`. A page ``condition``
(:mod:`digitrec.data.pages`: the table beyond the paper's edge, ruled lines, glare, ...) adds
what a phone photo of a page shows besides the writing; numbers can also be written in
handwriting fonts (:func:`make_font_numbers`, :mod:`digitrec.data.fonts`).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from digitrec.data import pages

# Canvas of a photo, (width, height) in pixels.
CANVAS = (320, 240)
# Height of a number strip at MNIST scale: 28 px digits plus +-2 px vertical jitter.
FRAME_H = 32
# Fraction of gaps in a number where neighbouring strokes touch (0 or 1 px overlap at 28 px).
TOUCHING = 0.15


def _scaled_alpha(alpha: np.ndarray, factor: float, angle: float) -> np.ndarray:
    """Upscale and rotate an ink mask in 0..1 (float32 (h, w)); the canvas grows to fit."""
    h, w = alpha.shape
    pil = Image.fromarray(alpha.astype(np.float32), mode="F")
    pil = pil.resize((round(w * factor), round(h * factor)), Image.Resampling.BICUBIC)
    pil = pil.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0.0)
    return np.clip(np.asarray(pil, dtype=np.float32), 0.0, 1.0)


def _photo(
    alpha: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    conds: frozenset[str] = frozenset(),
) -> bytes:
    """Render ink ``alpha`` (0..1, float32 (h, w)) as a JPEG photo of ``size`` = (W, H).

    The ink is placed at a random off-centre position; ``alpha`` must fit inside ``size``.
    ``conds`` (from :func:`digitrec.data.pages.expand`) adds what a phone photo of a page shows
    besides the writing; without them nothing extra is drawn from ``rng``.
    """
    width, height = size
    h, w = alpha.shape
    y0 = int(rng.integers(0, height - h + 1))
    x0 = int(rng.integers(0, width - w + 1))
    # Paper: light grey or tinted; ink: dark grey, blue-ish or black pen (RGB in 0..255).
    paper = rng.uniform(150, 245) - rng.uniform(0, 40, size=3) * (rng.random() < 0.5)
    ink = rng.uniform(0, 70) + rng.uniform(0, 40, size=3) * (rng.random() < 0.5)
    # Keep the pen at least 80 grey levels darker than the paper (luma), as on a usable photo.
    luma = np.array([0.299, 0.587, 0.114])
    ink = np.clip(ink - max(0.0, 80 - (paper - ink) @ luma), 0, 255)
    # Contrast of the pen varies: faint pencil still stays well above the noise.
    a = np.zeros((height, width), dtype=np.float32)
    a[y0 : y0 + h, x0 : x0 + w] = alpha * rng.uniform(0.75, 1.0)
    if conds:
        rows = np.nonzero(a.max(axis=1) > 0.25)[0]
        cols = np.nonzero(a.max(axis=0) > 0.25)[0]
        box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        if "squared" in conds:
            a = pages.pencil(a, rng)
        sheet = pages.paper(size, paper, box, conds, rng)
        img = pages.scene(sheet + a[..., None] * (ink.astype(np.float32) - sheet), box, conds, rng)
    else:
        img = paper.astype(np.float32) + a[..., None] * (ink - paper).astype(np.float32)
    # Lighting: a gentle linear gradient (+-15 %) and a soft vignette (both separable in x, y).
    u = np.linspace(-1.0, 1.0, width, dtype=np.float32)
    v = np.linspace(-1.0, 1.0, height, dtype=np.float32)
    gx, gy = rng.uniform(-0.15, 0.15, size=2)
    vignette = rng.uniform(0.0, 0.2) / 2
    light = (1.0 + gy * v - vignette * v**2)[:, None] + (gx * u - vignette * u**2)[None, :]
    # Sensor noise on the luma (one field for all channels: half the cost of RGB noise).
    light = light[..., None]
    light = light + rng.standard_normal(light.shape, dtype=np.float32) * (rng.uniform(2, 8) / 200)
    img *= light
    out = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=int(rng.integers(60, 91)))
    return buf.getvalue()


def photoize(digits: np.ndarray, seed: int = 0, condition: str = "clean") -> list[bytes]:
    """Make a photographed-on-paper version of each MNIST digit.

    Args:
        digits: uint8 (N, 28, 28) MNIST digits (white on black).
        seed: Seed; the same digits, seed and condition give the same bytes.
        condition: One of :data:`digitrec.data.pages.CONDITIONS`: what else the photo shows
            (the table beyond the paper's edge, ruled lines, ...). "clean" photos are the same
            as before the conditions existed.

    Returns:
        N JPEG-encoded RGB photos of 320x240 pixels.
    """
    rng = np.random.default_rng(seed)
    photos = []
    for digit in np.asarray(digits, dtype=np.uint8):
        alpha = _scaled_alpha(digit / 255.0, rng.uniform(3.0, 7.0), rng.uniform(-10.0, 10.0))
        conds = pages.expand(condition, rng)
        alpha = pages.pen_marks(alpha, conds, rng)
        fit = min(1.0, (CANVAS[1] - 4) / alpha.shape[0], (CANVAS[0] - 4) / alpha.shape[1])
        if fit < 1.0:  # a 7x digit rotated by 10 degrees can outgrow the 240 px height
            alpha = _scaled_alpha(alpha, fit, 0.0)
        photos.append(_photo(alpha, CANVAS, rng, conds))
    return photos


def compose_number(
    digits: list[np.ndarray], gaps: list[int], rng: np.random.Generator
) -> np.ndarray:
    """Paste 28x28 digits side by side at MNIST scale.

    Args:
        digits: uint8 (28, 28) digits, left to right.
        gaps: Pixels between the visible ink (> 64) of neighbours; <= 0 makes touching pairs.
        rng: Random generator for a +-2 px vertical jitter.

    Returns:
        float32 (28 + 4, W) ink alpha in 0..1.
    """
    trimmed = []
    for d in digits:
        cols = np.nonzero(d.max(axis=0) > 64)[0]  # visible ink; faint fringes may overlap
        trimmed.append(d[:, cols.min() : cols.max() + 1] / 255.0)
    width = sum(t.shape[1] for t in trimmed) + sum(gaps)
    strip = np.zeros((FRAME_H, width + 4), dtype=np.float32)
    x = 2
    for i, t in enumerate(trimmed):
        dy = 2 + int(rng.integers(-2, 3))
        region = strip[dy : dy + 28, x : x + t.shape[1]]
        np.maximum(region, t, out=region)  # touching strokes merge like ink on paper
        x += t.shape[1] + (gaps[i] if i < len(gaps) else 0)
    return strip


def _gaps(k: int, rng: np.random.Generator) -> list[int]:
    """Gaps between ``k`` digits at MNIST scale: 2-8 px, or 0/-1 px (touching) 15 % of the time."""
    return [
        int(rng.integers(-1, 1)) if rng.random() < TOUCHING else int(rng.integers(2, 9))
        for _ in range(k - 1)
    ]


def _number_photo(strip: np.ndarray, rng: np.random.Generator, condition: str) -> bytes:
    """A number strip (ink alpha at MNIST scale) scaled 2.5-5x, rotated up to 4 degrees, shot."""
    factor = rng.uniform(2.5, 5.0)
    width = max(CANVAS[0], int(strip.shape[1] * factor) + 40)
    alpha = _scaled_alpha(strip, factor, rng.uniform(-4.0, 4.0))
    conds = pages.expand(condition, rng)
    alpha = pages.pen_marks(alpha, conds, rng)
    size = (max(width, alpha.shape[1] + 8), max(CANVAS[1], alpha.shape[0] + 8))
    return _photo(alpha, size, rng, conds)


def make_numbers(
    digits: np.ndarray, labels: np.ndarray, n: int = 200, seed: int = 0, condition: str = "clean"
) -> list[tuple[bytes, str]]:
    """Photos of multi-digit numbers written with MNIST digits.

    Each number has 2-6 digits with varied spacing (2-8 px between visible ink at 28 px scale);
    15 % of the gaps are 0 or -1 px, so neighbouring strokes touch (touching pairs). The strip
    is scaled 2.5-5x, rotated by up to 4 degrees and rendered like :func:`photoize`.

    Args:
        digits: uint8 (N, 28, 28) MNIST digits.
        labels: int (N,) their labels.
        n: How many numbers.
        seed: Seed for reproducibility.
        condition: Page condition of the photos (:data:`digitrec.data.pages.CONDITIONS`; a
            "frame" goes round the whole number, a "point" after it).

    Returns:
        ``n`` pairs of (JPEG bytes, the number as a string such as ``"2026"``).
    """
    rng = np.random.default_rng(seed)
    digits = np.asarray(digits, dtype=np.uint8)
    out = []
    for _ in range(n):
        k = int(rng.integers(2, 7))
        idx = rng.choice(len(digits), size=k, replace=False)
        strip = compose_number([digits[i] for i in idx], _gaps(k, rng), rng)
        text = "".join(str(int(labels[i])) for i in idx)
        out.append((_number_photo(strip, rng, condition), text))
    return out


def make_font_numbers(
    split: str, n: int = 200, seed: int = 0, condition: str = "clean"
) -> list[tuple[bytes, str]]:
    """Photos of 2-6 digit numbers written in the handwriting fonts of one split.

    Like :func:`make_numbers`, but each number's digits come from one font file of
    :data:`digitrec.data.fonts.FONT_SPLITS` ``[split]`` (one writer per number), with that
    writer's weight and slant varying per digit.

    Returns:
        ``n`` pairs of (JPEG bytes, the number as a string).
    """
    from digitrec.data import fonts

    files = fonts.font_files(split)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(2, 7))
        path = files[int(rng.integers(0, len(files)))]
        chars = [str(int(c)) for c in rng.integers(0, 10, size=k)]
        glyphs = [fonts.glyph(c, path, 20.0, rng) for c in chars]
        gaps = _gaps(k, rng)
        # Glyphs share their top (the font's ascender line), so their baselines line up.
        height = max(g.shape[0] for g in glyphs)
        strip = np.zeros((height, sum(g.shape[1] for g in glyphs) + sum(gaps) + 4), np.float32)
        x = 2
        for i, g in enumerate(glyphs):
            region = strip[: g.shape[0], x : x + g.shape[1]]
            np.maximum(region, g, out=region)
            x += g.shape[1] + (gaps[i] if i < len(gaps) else 0)
        rows = np.nonzero(strip.max(axis=1) > 0.1)[0]
        strip = np.pad(strip[rows[0] : rows[-1] + 1], ((2, 2), (0, 0)))
        out.append((_number_photo(strip, rng, condition), "".join(chars)))
    return out


def make_nondigits(digits: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """MNIST-normalised images that are not one digit: what a bad cut of a number yields.

    Two thirds are touching or nearly touching pairs (gap -2..1 px), one third are digits cut
    at 30-70 % of their width with one side kept. A model trained to put these in an 11th
    class tells ``read`` that a candidate piece holds two digits, or part of one.

    Args:
        digits: uint8 (N, 28, 28) MNIST digits (training digits: never the test set).
        n: How many images.
        seed: Seed for reproducibility.

    Returns:
        uint8 (n, 28, 28).
    """
    from digitrec.images.normalise import center_digit

    rng = np.random.default_rng(seed)
    out = np.empty((n, 28, 28), dtype=np.uint8)
    for k in range(n):
        if k % 3 < 2:
            i, j = rng.integers(0, len(digits), 2)
            strip = compose_number([digits[i], digits[j]], [int(rng.integers(-2, 2))], rng)
            out[k] = center_digit(strip * 255.0)
            continue
        part = digits[rng.integers(0, len(digits))].astype(np.float32)
        cols = np.nonzero(part.max(axis=0) > 64)[0]
        cut = int(cols[0] + rng.uniform(0.3, 0.7) * (cols[-1] + 1 - cols[0]))
        if rng.random() < 0.5:
            part[:, cut:] = 0
        else:
            part[:, :cut] = 0
        out[k] = center_digit(part) if part.any() else 0
    return out
