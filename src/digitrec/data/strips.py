"""Number strips for the sequence reader: normalisation of a photo, and synthetic training strips.

A strip is one line of writing at a fixed height (:data:`HEIGHT` px, ink box :data:`INK_HEIGHT`
px tall), variable width, white ink in 0..1 on black. :func:`normalise_strip` makes one from any
photo through the ink map and page cleanup of ``read``
(:func:`digitrec.images.normalise.ink_map`).

Training strips (:func:`make_strips`) are whole numbers of 1-12 digits written with MNIST
*training* digits (the training part of ``train_val_split(60000, 5000, 0)``) or the "train" font
families (:data:`digitrec.data.fonts.FONT_SPLITS`), with random spacing, touching and
overlapping neighbours, lean and stroke width, then shot as photos with the page conditions of
:mod:`digitrec.data.synth` and normalised by :func:`normalise_strip`: the reader trains on exactly
what it will see. The "dev" split uses the validation digits and the "dev" fonts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from PIL import Image
from scipy import ndimage

from digitrec.data import fonts, synth
from digitrec.errors import DigitrecError
from digitrec.images.decode import load_image
from digitrec.images.normalise import SPECK_FRACTION, ink_map
from digitrec.images.page import PageReport

HEIGHT = 32
INK_HEIGHT = 28  # the ink box's height inside the strip; 2 px of margin above and below
SIDE = 4  # px of margin left and right
# A strip wider than this times its height is not one line of a number (12 wide digits with
# wide gaps are ~15).
MAX_ASPECT = 40
# Lines leaning by more than this (degrees) are straightened before the crop.
DESKEW_MIN = 1.0
DESKEW_MAX = 10.0
# Length distribution of training numbers (1..12 digits): most like the benchmark's 2-6.
LENGTH_WEIGHTS = np.array([1, 3, 3, 3, 3, 3, 2, 1.5, 1, 1, 1, 1], dtype=np.float64)
# Page conditions of training photos (a "point" would add a decimal point the label lacks).
TRAIN_CONDITIONS = ("table", "shadow", "strip", "ruled", "squared", "glare", "tilt", "frame")


@dataclass
class Strip:
    """A normalised strip and where it came from.

    Attributes:
        image: float32 (HEIGHT, W) ink in 0..1.
        x0: Column of the source image at strip column 0.
        per_col: Source-image pixels per strip column.
        y0, y1: Rows of the ink box in the source image.
        page: What page cleanup dropped.
    """

    image: np.ndarray
    x0: float
    per_col: float
    y0: int
    y1: int
    page: PageReport = field(default_factory=PageReport)


def _deskew(ink: np.ndarray) -> np.ndarray:
    """Rotate a wide line of ink level when it leans by DESKEW_MIN..DESKEW_MAX degrees."""
    h, w = ink.shape
    if w < 2 * h:
        return ink
    yy, xx = np.nonzero(ink > 64)
    if xx.size < 10:
        return ink
    wt = ink[yy, xx]
    xm, ym = np.average(xx, weights=wt), np.average(yy, weights=wt)
    slope = np.sum(wt * (xx - xm) * (yy - ym)) / max(np.sum(wt * (xx - xm) ** 2), 1e-6)
    angle = float(np.degrees(np.arctan(slope)))
    if not DESKEW_MIN <= abs(angle) <= DESKEW_MAX:
        return ink
    pil = Image.fromarray(ink.astype(np.float32), mode="F")
    # Image y points down: a line rising to the right has a negative slope; PIL turns
    # counter-clockwise for positive angles.
    out = pil.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=0.0)
    return np.asarray(out, dtype=np.float32)


def strip_from_ink(ink: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int], float]:
    """Crop white-on-black ink (float (h, w) in 0..255) to its box and scale it to a strip.

    Returns:
        (float32 (HEIGHT, W) strip in 0..1, the ink box (x0, y0, x1, y1) in ``ink``'s pixels,
        strip columns per ``ink`` pixel).

    Raises:
        DigitrecError: The ink is too wide for one line of a number.
    """
    rows = np.nonzero(ink.max(axis=1) > 0)[0]
    cols = np.nonzero(ink.max(axis=0) > 0)[0]
    if rows.size == 0:
        return np.zeros((HEIGHT, 2 * SIDE), np.float32), (0, 0, 0, 0), 1.0
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    crop = ink[box[1] : box[3], box[0] : box[2]]
    factor = INK_HEIGHT / crop.shape[0]
    width = max(1, round(crop.shape[1] * factor))
    if width > MAX_ASPECT * HEIGHT:
        raise DigitrecError(
            f"the writing is {crop.shape[1]} x {crop.shape[0]} pixels: too wide for one line of "
            f"a number (at most {MAX_ASPECT}x as wide as tall)"
        )
    pil = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), mode="F")
    small = np.asarray(pil.resize((width, INK_HEIGHT), Image.Resampling.BILINEAR, reducing_gap=2.0))
    out = np.zeros((HEIGHT, width + 2 * SIDE), np.float32)
    pad = (HEIGHT - INK_HEIGHT) // 2
    out[pad : pad + INK_HEIGHT, SIDE : SIDE + width] = np.clip(small / 255.0, 0.0, 1.0)
    return out, box, factor


def normalise_strip(gray: np.ndarray, clean_page: bool = True) -> Strip:
    """One line of writing in a photo or drawing as a strip (ink map and page cleanup of ``read``).

    Specks are dropped as in ``read``; a leaning line is straightened.

    Raises:
        NoDigitError: No ink.
        DigitrecError: The writing is too wide for one line of a number.
    """
    m = ink_map(gray, clean_page)
    keep = m.areas >= SPECK_FRACTION * m.areas.max()
    keep[0] = False
    ink = np.where(keep[m.labels], m.ink, 0.0)
    rows = np.nonzero(ink.max(axis=1) > 0)[0]
    cols = np.nonzero(ink.max(axis=0) > 0)[0]
    cx0, cy0 = int(cols[0]), int(rows[0])
    region = ink[cy0 : rows[-1] + 1, cx0 : cols[-1] + 1]
    level = _deskew(region)
    image, box, factor = strip_from_ink(level)
    # Columns of the straightened region map back to the original ones about its centre.
    shift = (level.shape[1] - region.shape[1]) / 2
    inv = 1.0 / m.scale
    return Strip(
        image=image,
        x0=(cx0 + box[0] - shift - SIDE / factor) * inv,
        per_col=inv / factor,
        y0=int(cy0 * inv),
        y1=int(np.ceil((rows[-1] + 1) * inv)),
        page=m.page,
    )


# --- synthetic training strips ------------------------------------------------------------


def _gaps(k: int, rng: np.random.Generator) -> list[int]:
    """Gaps at MNIST scale: 25 % touching or overlapping (-3..0 px), else 1-10 px."""
    return [
        int(rng.integers(-3, 1)) if rng.random() < 0.25 else int(rng.integers(1, 11))
        for _ in range(k - 1)
    ]


def _font_strip(chars: str, path: object, rng: np.random.Generator) -> np.ndarray:
    """Ink alpha (float32 (h, w)) of ``chars`` in one font, glyph tops aligned."""
    glyphs = [fonts.glyph(c, path, 20.0, rng) for c in chars]  # type: ignore[arg-type]
    gaps = _gaps(len(chars), rng)
    height = max(g.shape[0] for g in glyphs)
    width = sum(g.shape[1] for g in glyphs) + sum(gaps) + 4
    strip = np.zeros((height, max(width, 4)), np.float32)
    x = 2
    for i, g in enumerate(glyphs):
        x = max(x, 0)
        region = strip[: g.shape[0], x : x + g.shape[1]]
        np.maximum(region, g[:, : region.shape[1]], out=region)
        x += g.shape[1] + (gaps[i] if i < len(gaps) else 0)
    rows = np.nonzero(strip.max(axis=1) > 0.1)[0]
    return np.pad(strip[rows[0] : rows[-1] + 1], ((2, 2), (0, 0)))


def _style(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random lean (shear up to 0.3) and stroke width (bolder or thinner) of a strip."""
    if rng.random() < 0.3:
        alpha = ndimage.grey_dilation(alpha, size=(2, 2))
    elif rng.random() < 0.15:
        alpha = np.clip(alpha**2 * 1.2, 0.0, 1.0)
    shear = float(rng.uniform(-0.3, 0.3)) if rng.random() < 0.6 else 0.0
    if shear:
        h, w = alpha.shape
        extra = int(abs(shear) * h) + 1
        pil = Image.fromarray(alpha.astype(np.float32), mode="F")
        pil = pil.transform(
            (w + extra, h),
            Image.Transform.AFFINE,
            (1, shear, -shear * h - (extra if shear < 0 else 0), 0, 1, 0),
            resample=Image.Resampling.BILINEAR,
        )
        alpha = np.asarray(pil, dtype=np.float32)
    return np.clip(alpha, 0.0, 1.0)


def _drawing(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A clean drawing of the ink (uint8 grey, either polarity), 1-4x scale: no photo."""
    factor = rng.uniform(1.0, 4.0)
    pil = Image.fromarray(alpha.astype(np.float32), mode="F")
    size = (max(1, round(alpha.shape[1] * factor)), max(1, round(alpha.shape[0] * factor)))
    big = np.pad(np.asarray(pil.resize(size, Image.Resampling.BICUBIC)), 8)
    ink = np.clip(big, 0.0, 1.0) * 255.0
    return (ink if rng.random() < 0.5 else 255.0 - ink).astype(np.uint8)


def render_strip(
    text: str,
    rng: np.random.Generator,
    digits: np.ndarray | None,
    by_label: list[np.ndarray] | None,
    font_paths: list | None,
) -> np.ndarray:
    """One synthetic photo (or drawing) of ``text``, normalised: float32 (HEIGHT, W).

    Digits come from ``digits`` (uint8 (N, 28, 28), indices per label ``by_label``) or, when
    ``digits`` is None, from one font of ``font_paths``.
    """
    if digits is not None and by_label is not None:
        chosen = [digits[rng.choice(by_label[int(c)])] for c in text]
        alpha = synth.compose_number(chosen, _gaps(len(text), rng), rng)
    else:
        assert font_paths is not None
        alpha = _font_strip(text, font_paths[int(rng.integers(0, len(font_paths)))], rng)
    alpha = _style(alpha, rng)
    if rng.random() < 0.15:
        return normalise_strip(_drawing(alpha, rng)).image
    cond = "clean" if rng.random() < 0.5 else str(rng.choice(TRAIN_CONDITIONS))
    gray = load_image(synth._number_photo(alpha, rng, cond))
    # Clean photos also without page cleanup: a reader may skip it when the page is plain.
    return normalise_strip(gray, clean_page=cond != "clean" or rng.random() < 0.7).image


def strip_sources(split: str) -> tuple[np.ndarray, list[np.ndarray], list]:
    """MNIST digits, their indices per label, and font files of a split ("train" or "dev")."""
    from digitrec.data.specs import load_mnist, train_val_split

    images, labels = load_mnist("train")  # never the test digits
    train, val = train_val_split(len(images), 5000, 0)
    idx = train if split == "train" else val
    digits, labs = images[idx], labels[idx]
    by_label = [np.nonzero(labs == d)[0] for d in range(10)]
    return digits, by_label, fonts.font_files(split)


def make_strips(
    split: str, n: int, seed: int, font_share: float = 0.35
) -> tuple[list[np.ndarray], list[str]]:
    """``n`` normalised strips of random 1-12 digit numbers, and their texts.

    Seeded: the same split, n and seed give the same strips. A strip whose photo loses all its
    ink (rare) is drawn again.
    """
    digits, by_label, paths = strip_sources(split)
    rng = np.random.default_rng(seed)
    probs = LENGTH_WEIGHTS / LENGTH_WEIGHTS.sum()
    images: list[np.ndarray] = []
    texts: list[str] = []
    while len(images) < n:
        k = int(rng.choice(len(probs), p=probs)) + 1
        text = "".join(str(int(c)) for c in rng.integers(0, 10, size=k))
        use_font = rng.random() < font_share
        try:
            image = render_strip(
                text,
                rng,
                None if use_font else digits,
                None if use_font else by_label,
                paths,
            )
        except DigitrecError:
            continue
        images.append((image * 255 + 0.5).astype(np.uint8))
        texts.append(text)
    return images, texts


def pack(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Strips (uint8 (HEIGHT, W_i)) side by side: (uint8 (HEIGHT, sum W_i), int64 widths)."""
    return np.concatenate(images, axis=1), np.array([i.shape[1] for i in images], np.int64)


def unpack(joined: np.ndarray, widths: np.ndarray) -> list[np.ndarray]:
    """The strips of :func:`pack`."""
    edges = np.concatenate(([0], np.cumsum(widths)))
    return [joined[:, a:b] for a, b in pairwise(edges)]
