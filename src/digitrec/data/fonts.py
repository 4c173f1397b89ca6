"""Digits written in handwriting-style fonts, for development and benchmark sets.

The fonts are Debian packages (fonts-dkg-handwriting, fonts-breip, fonts-rufscript,
fonts-sjfonts, fonts-dancingscript, fonts-comic-neue); nothing is downloaded at run time. Each
family belongs to exactly one split of :data:`FONT_SPLITS`, so a number of a benchmark family
is never seen while tuning.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitrec.errors import DataError

FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))
# Font files of each family (several styles count as one family).
FAMILIES: dict[str, tuple[str, ...]] = {
    "comic-neue": (
        "comic-neue/ComicNeue-Regular.otf",
        "comic-neue/ComicNeue-Bold.otf",
        "comic-neue/ComicNeue-Italic.otf",
        "comic-neue/ComicNeue-Light.otf",
    ),
    "dancing-script": ("dancingscript/DancingScript-Regular.otf",),
    "rufscript": ("rufscript/Rufscript010.ttf",),
    "dkg": ("fifthhorseman/dkg.ttf", "fifthhorseman/dkgBd.ttf", "fifthhorseman/dkgIt.ttf"),
    "delphine": ("sjfonts/Delphine.ttf",),
    "breip": ("breip/Breip.ttf",),
    "stevehand": ("sjfonts/SteveHand.ttf",),
}
# Which families each set may use. "train": reserved for training (e.g. a sequence reader);
# "dev": the only fonts any tuning constant was chosen on; "bench": held out for the
# benchmark tables and never looked at while tuning. (fonts-femkeklaver is left out: its
# glyphs are outlined and shaded, not pen strokes.)
FONT_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("comic-neue", "dancing-script", "rufscript"),
    "dev": ("dkg", "delphine"),
    "bench": ("breip", "stevehand"),
}
# Glyphs are rendered at this pixel size, then scaled to the wanted digit height.
RENDER_SIZE = 160


def font_files(split: str) -> list[Path]:
    """The installed font files of a split's families.

    Raises:
        DataError: Unknown split, or a family of the split is not installed.
    """
    if split not in FONT_SPLITS:
        raise DataError(f"unknown font split '{split}' (choose from {', '.join(FONT_SPLITS)})")
    out = []
    for family in FONT_SPLITS[split]:
        for rel in FAMILIES[family]:
            found = [d / rel for d in FONT_DIRS if (d / rel).is_file()]
            if not found:
                raise DataError(
                    f"font family '{family}' is not installed ({rel}); install the Debian "
                    "fonts listed in digitrec.data.fonts"
                )
            out.append(found[0])
    return out


@functools.lru_cache(maxsize=64)
def _font(path: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, RENDER_SIZE)


@functools.lru_cache(maxsize=64)
def _digit_height(path: str) -> int:
    """Height in pixels of the font's '0' at :data:`RENDER_SIZE`: the family's digit height."""
    _, y0, _, y1 = _font(path).getbbox("0")
    return max(1, int(y1 - y0))


def glyph(char: str, path: Path, height: float, rng: np.random.Generator) -> np.ndarray:
    """One character in a font as ink alpha, scaled so the font's digits are ``height`` px tall.

    Stroke weight (up to 3 % of the size thicker) and slant (shear up to 0.2) vary at random,
    as between writers.

    Returns:
        float32 (h, w) ink alpha in 0..1, cropped to the ink, with its baseline-relative
        vertical offset kept by a top margin: the glyph's top sits at its place in the line.
    """
    font = _font(str(path))
    stroke = int(rng.integers(0, 4))  # px at RENDER_SIZE
    x0, _, x1, y1 = (int(v) for v in font.getbbox(char, stroke_width=stroke))
    pad = 8
    img = Image.new("L", (x1 - x0 + 2 * pad, y1 + 2 * pad), 0)
    ImageDraw.Draw(img).text(
        (pad - x0, pad), char, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    shear = float(rng.uniform(-0.2, 0.2))
    w, h = img.size
    extra = int(abs(shear) * h) + 1
    # Shear about the baseline: x' = x + shear * (y - h), the canvas widened to keep the ink.
    img = img.transform(
        (w + extra, h),
        Image.Transform.AFFINE,
        (1, shear, -shear * h - (extra if shear < 0 else 0), 0, 1, 0),
        resample=Image.Resampling.BICUBIC,
    )
    factor = height / _digit_height(str(path))
    img = img.resize(
        (max(1, round(img.width * factor)), max(1, round(img.height * factor))),
        Image.Resampling.LANCZOS,
    )
    arr = np.asarray(img, dtype=np.float32) / 255.0
    cols = np.nonzero(arr.max(axis=0) > 0.25)[0]
    if cols.size == 0:
        return np.zeros((max(1, round(height)), 1), dtype=np.float32)
    return np.ascontiguousarray(arr[:, cols[0] : cols[-1] + 1])


def font_digits(split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Digits written in a split's fonts, MNIST-normalised like MNIST's own digits.

    Each is a random digit in a random font file of the split, with random weight and slant,
    rendered at 20 px digit height, then centred by its centre of mass in a 28x28 frame
    (:func:`digitrec.images.normalise.center_digit`); feed them to
    :func:`digitrec.data.synth.photoize` like MNIST digits.

    Returns:
        uint8 (n, 28, 28) white-on-black digits and int64 (n,) labels.
    """
    from digitrec.images.normalise import center_digit

    files = font_files(split)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    out = np.empty((n, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        path = files[int(rng.integers(0, len(files)))]
        alpha = glyph(str(label), path, 20.0, rng)
        rows = np.nonzero(alpha.max(axis=1) > 0.1)[0]
        out[i] = center_digit(alpha[rows[0] : rows[-1] + 1] * 255.0)
    return out, labels.astype(np.int64)
