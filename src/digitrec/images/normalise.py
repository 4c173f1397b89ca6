"""Turn any photo or drawing of a digit into an MNIST-style 28x28 image.

MNIST digits are white ink on black, anti-aliased, scaled so the ink's bounding box fits a 20x20
box (aspect ratio kept) and placed in a 28x28 frame so the ink's centre of mass sits at pixel
(14, 14). A classifier trained on MNIST transfers to user images only if they are normalised the
same way, so :func:`to_mnist` reproduces that procedure after removing the paper background.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from PIL import Image
from scipy import ndimage

from digitrec.errors import DigitrecError, NoDigitError
from digitrec.images.decode import load_image
from digitrec.images.page import EIGHT_CONNECTED, PageReport, find_page, ink_above_paper
from digitrec.images.page import dark_ink as page_dark_ink

# Images are shrunk to at most this side before analysis; digits stay far above 20 px.
WORK_SIDE = 1024
# MNIST geometry: ink box side, frame side, and where the centre of mass lands (row, col).
BOX = 20
FRAME = 28
CENTRE = 14.0
# Background grid: about this many blocks along the long side (block >= 8 px).
GRID_BLOCKS = 10
# Ink must exceed this many noise sigmas above the paper to count as ink.
NOISE_SIGMAS = 3.0
# Components smaller than this fraction of the largest one are specks.
SPECK_FRACTION = 0.05
# A small piece entirely beside the digit, no bigger than this fraction of its height, is a dot.
DOT_SIZE = 0.25
# A digit needs at least this many strong-ink pixels in one component.
MIN_INK_PIXELS = 4
# Page cleanup (images/page.py) runs on photo-sized images: short side at least this (px).
PHOTO_SIDE = 64


@dataclass
class InkMap:
    """Background-free ink of a grey image, white (255) on black (0).

    Attributes:
        ink: float32 (H, W) ink strength in 0..255; 0 wherever there is no ink.
        labels: int32 (H, W) connected components of the ink (0 = background).
        areas: int64 (K + 1,) strong-ink pixel count per label (index 0 unused).
        scale: working-size / original-size factor (<= 1) applied before analysis.
        page: What page cleanup dropped (nothing for small images or ``clean_page=False``).
    """

    ink: np.ndarray
    labels: np.ndarray
    areas: np.ndarray
    scale: float
    page: PageReport = field(default_factory=PageReport)


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased resize of a float image to ``size`` = (width, height)."""
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F")
    return np.asarray(pil.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)


def _block_medians(img: np.ndarray, block: int) -> np.ndarray:
    """Median of each ``block`` x ``block`` tile (edge tiles padded by replication)."""
    h, w = img.shape
    gh, gw = -(-h // block), -(-w // block)
    padded = np.pad(img, ((0, gh * block - h), (0, gw * block - w)), mode="edge")
    tiles = padded.reshape(gh, block, gw, block).transpose(0, 2, 1, 3).reshape(gh, gw, -1)
    return np.median(tiles, axis=2)


def _upsample(grid: np.ndarray, block: int, shape: tuple[int, int]) -> np.ndarray:
    """Smoothly interpolate a per-tile grid back to pixels (float32 ``shape``)."""
    gh, gw = grid.shape
    pil = Image.fromarray(grid.astype(np.float32), mode="F")
    full = np.asarray(pil.resize((gw * block, gh * block), Image.Resampling.BILINEAR))
    return full[: shape[0], : shape[1]]


def _detrend(img: np.ndarray, grid: np.ndarray, tile: int) -> np.ndarray:
    """Residual of ``img`` after a robust quadratic fit of the paper's lighting.

    The fit uses the tile medians ``grid`` (tile ``tile`` px): cheap, and tiles dominated by ink
    are rejected as outliers, so it does not depend on the ink's polarity.
    """
    gh, gw = grid.shape
    if gh * gw < 12:
        return img - float(np.median(grid))
    norm = float(max(img.shape))
    # Tile centres and pixel centres, in units of the long side.
    gv, gu = [(np.arange(n) + 0.5) * tile / norm for n in (gh, gw)]
    v, u = [np.arange(n, dtype=np.float32) / norm for n in img.shape]

    def basis(y: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
        return [np.ones_like(y * x), x + 0 * y, y + 0 * x, x * x + 0 * y, x * y, y * y + 0 * x]

    design = np.stack(basis(gv[:, None], gu[None, :]), axis=-1).reshape(-1, 6)
    target = grid.reshape(-1)
    use = np.ones(target.shape, dtype=bool)
    for _ in range(2):  # refit without the tiles that the first fit marks as ink
        d = design[use]
        coef = np.linalg.solve(d.T @ d + 1e-6 * np.eye(6), d.T @ target[use])
        resid = target - design @ coef
        mad = float(np.median(np.abs(resid - np.median(resid))))
        use = np.abs(resid) <= 3 * 1.4826 * mad + 2.0
        if use.sum() < 6:
            break
    fit = sum(c * b for c, b in zip(coef, basis(v[:, None], u[None, :]), strict=True))
    return img - fit


def _otsu(values: np.ndarray) -> float:
    """Otsu threshold of non-negative float values (256-bin histogram)."""
    top = float(values.max())
    if top <= 0:
        return 0.0
    hist, edges = np.histogram(values, bins=256, range=(0.0, top))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * centres)
    w1 = w0[-1] - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (w0 * w1 * (m0 / w0 - (m0[-1] - m0) / w1) ** 2)[:-1]
    if not np.isfinite(between).any():  # every value in one bin (a two-tone drawing): no split
        return 0.0
    return float(edges[int(np.nanargmax(between)) + 1])


def _as_gray(gray: np.ndarray) -> np.ndarray:
    arr = np.asarray(gray)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if arr.ndim != 2:
        raise DigitrecError(f"expected a grey image of shape (H, W), got shape {arr.shape}")
    if min(arr.shape) < 3:
        raise NoDigitError(f"no digit found: image is only {arr.shape[1]} x {arr.shape[0]} pixels")
    return arr.astype(np.float32)


def _threshold(ink: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Hysteresis threshold of ``ink``: (labels int32 (H, W), strong areas (K + 1,), low, high).

    Strong ink by Otsu (never inside the noise); faint anti-aliased edges are kept down to the
    noise floor and only where they touch strong ink.

    Raises:
        NoDigitError: Only specks stand out.
    """
    high = max(_otsu(ink[ink > NOISE_SIGMAS * sigma]), 2 * NOISE_SIGMAS * sigma, 8.0)
    low = max(NOISE_SIGMAS * sigma, 0.25 * high) if sigma > 0.5 else 0.5
    # (labels int32 (H, W), count): ndimage.label returns only the count when given `output=`.
    labels, count = cast(
        "tuple[np.ndarray, int]", ndimage.label(ink > low, structure=EIGHT_CONNECTED)
    )
    strong = labels[ink > high]
    areas = np.bincount(strong, minlength=count + 1)
    areas[0] = 0
    if areas.max() < MIN_INK_PIXELS:
        raise NoDigitError("no digit found: only faint specks or noise")
    keep = areas > 0
    labels[~keep[labels]] = 0
    return labels, areas, low, high


def ink_map(gray: np.ndarray, clean_page: bool = True) -> InkMap:
    """Find the ink of any photo or drawing: polarity, background removal, thresholding.

    Args:
        gray: uint8 (H, W) grey image (RGB (H, W, 3) is accepted and converted).
        clean_page: On photo-sized images, drop what is page rather than writing (see
            :mod:`digitrec.images.page`); False gives the plain ink map.

    Returns:
        The :class:`InkMap`; its arrays may be smaller than ``gray`` (see ``scale``).

    Raises:
        NoDigitError: The image is blank or too small to hold a digit.
    """
    g = _as_gray(gray)
    scale = min(1.0, WORK_SIDE / max(g.shape))
    if scale < 1.0:
        size = (max(3, round(g.shape[1] * scale)), max(3, round(g.shape[0] * scale)))
        k = min(g.shape[0] // size[1], g.shape[1] // size[0])
        if k >= 2:
            # A phone photo (4000 x 3000): average k x k blocks first (~30 ms); Lanczos over
            # all 12 megapixels costs ~150 ms. The <= k - 1 edge pixels dropped are paper.
            h, w = g.shape[0] // k * k, g.shape[1] // k * k
            g = g[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3), dtype=np.float32)
        g = _resize(g, size)
    if min(g.shape) >= 64:
        # Photo-sized: a 3x3 box blur cuts sensor/JPEG noise ~3x; strokes are several px wide.
        g = ndimage.uniform_filter(g, 3)
    # Statistics run on a strided subsample of ~8k pixels: plenty for medians, ~10x cheaper.
    step = max(1, int(np.sqrt(g.size / 8_000)))
    sub = g[::step, ::step]
    small = max(g.shape) < 96
    # Background tiles: ~GRID_BLOCKS along the long side; tiny images get one constant level.
    tile = max(sub.shape) if small else max(8 // step, -(-max(sub.shape) // GRID_BLOCKS))
    if not small:
        # A wide strip (a 12-digit number, 5:1) still gets >= 4 tiles across its height: with
        # 2 the writing fills whole tiles and the noise estimate triples ("no digit found").
        tile = max(8 // step, min(tile, -(-min(sub.shape) // 4)))
    grid = _block_medians(sub, tile)
    # Polarity: ink is the minority that deviates from the paper. Small images: compare how far
    # the dark and the bright tails reach beyond a smooth fit of the paper.
    photo = clean_page and not small and min(g.shape) >= PHOTO_SIDE
    if photo:  # a median follows shadow edges and the table's edge; a quadratic fit cannot
        dark_ink = page_dark_ink(g)
    else:
        dark, bright = np.percentile(_detrend(sub, grid, tile), [0.5, 99.5])
        dark_ink = bool(-dark > bright)
    if dark_ink:
        g, sub, grid = 255.0 - g, 255.0 - sub, 255.0 - grid
    if not small:
        # Grey opening: tiles dominated by (now bright) strokes take the paper level.
        grid = ndimage.grey_opening(grid, size=(3, 3), mode="nearest")
        grid = ndimage.uniform_filter(grid, size=3, mode="nearest")
    # Noise: spread of the paper around a smooth background (JPEG blocks and faint lighting
    # ripples included, so it stays conservative).
    resid_sub = sub - _upsample(grid, tile, sub.shape)
    med = float(np.median(resid_sub))
    sigma = 1.4826 * float(np.median(np.abs(resid_sub - med)))
    paper = None
    if photo:
        ink, paper = ink_above_paper(g, dark_ink)
    else:
        ink = np.maximum(g - _upsample(grid, tile * step, g.shape) - med, 0.0)
    if ink.max() <= max(NOISE_SIGMAS * sigma, 8.0):
        raise NoDigitError("no digit found: the image is blank")
    labels, areas, low, high = _threshold(ink, sigma)
    report = PageReport()
    if paper is not None:
        # Faint page lines are found whole, not only where they touch the writing.
        page, report = find_page(ink > low, paper, labels > 0)
        if page.any():
            ink = np.where(page, 0.0, ink)
            if ink.max() <= max(NOISE_SIGMAS * sigma, 8.0):
                raise NoDigitError("no digit found: only lines and edges of the page")
            labels, areas, low, high = _threshold(ink, sigma)
    strong = ink > high
    # Ink level: strokes' cores become 255 like MNIST's saturated strokes.
    level = float(np.percentile(ink[strong & (labels > 0)], 90)) if strong.any() else high
    scaled = np.clip((ink - low) / max(level - low, 1e-3), 0.0, 1.0) * 255.0
    scaled[labels == 0] = 0.0
    return InkMap(scaled.astype(np.float32), labels.astype(np.int32), areas, scale, report)


def center_digit(ink: np.ndarray) -> np.ndarray:
    """MNIST-normalise one digit's ink: fit its bounding box into 20x20, centre of mass at (14,14).

    Args:
        ink: float (h, w) ink strengths in 0..255 (white ink on black), any size.

    Returns:
        uint8 (28, 28).

    Raises:
        NoDigitError: ``ink`` holds no ink.
    """
    ink = np.asarray(ink, dtype=np.float32)
    rows, cols = np.nonzero(ink > 0)
    if rows.size == 0:
        raise NoDigitError("no digit found")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    if max(h, w) != BOX:
        factor = BOX / max(h, w)
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        crop = np.clip(_resize(crop, size), 0.0, 255.0)
    h, w = crop.shape
    mass = float(crop.sum())
    cy = float(crop.sum(axis=1) @ np.arange(h)) / mass
    cx = float(crop.sum(axis=0) @ np.arange(w)) / mass
    # Integer shift like MNIST; keep the whole box inside the frame.
    y0 = int(np.clip(round(CENTRE - cy), 0, FRAME - h))
    x0 = int(np.clip(round(CENTRE - cx), 0, FRAME - w))
    out = np.zeros((FRAME, FRAME), dtype=np.float32)
    out[y0 : y0 + h, x0 : x0 + w] = crop
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def keep_main(labels: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Mask of the components that form the digit: the largest plus nearby, non-speck parts.

    A dot beside the digit (a decimal point, a full stop) is not part of it.
    """
    big = int(np.argmax(areas))
    objects = ndimage.find_objects(labels, max_label=areas.size - 1)
    ys, xs = objects[big - 1]
    reach = 0.5 * max(ys.stop - ys.start, xs.stop - xs.start)
    keep = np.zeros(areas.size, dtype=bool)
    for lab, sl in enumerate(objects, start=1):
        if sl is None or areas[lab] < SPECK_FRACTION * areas[big]:
            continue
        # Gap between this box and the main box (0 when they overlap), in pixels.
        gap_y = max(sl[0].start - ys.stop, ys.start - sl[0].stop, 0)
        gap_x = max(sl[1].start - xs.stop, xs.start - sl[1].stop, 0)
        side = max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start)
        dot = gap_x > 0 and side <= DOT_SIZE * (ys.stop - ys.start)
        keep[lab] = areas[lab] >= 0.15 * areas[big] or (max(gap_y, gap_x) <= reach and not dot)
    return keep[labels]


def _is_mnist_like(g: np.ndarray) -> bool:
    """28x28, black clean border, bright ink whose box is already 20 px: only recentre it."""
    if g.shape != (FRAME, FRAME) or g.max() < 128:
        return False
    border = np.concatenate([g[:2].ravel(), g[-2:].ravel(), g[:, :2].ravel(), g[:, -2:].ravel()])
    if np.median(g) > 0 or border.max() > 64:
        return False
    rows, cols = np.nonzero(g)
    side = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    return side == BOX


def to_mnist(gray: np.ndarray, clean_page: bool = True) -> np.ndarray:
    """Normalise a grey photo or drawing of one digit to MNIST style.

    Args:
        gray: uint8 (H, W) grey image, any polarity (RGB (H, W, 3) is accepted).
        clean_page: Drop what is page rather than writing first (photo-sized images only).

    Returns:
        uint8 (28, 28), white ink on black, ink box within 20x20, centre of mass at (14, 14).

    Raises:
        NoDigitError: The image is blank or too small.
    """
    return to_mnist_report(gray, clean_page)[0]


def to_mnist_report(gray: np.ndarray, clean_page: bool = True) -> tuple[np.ndarray, PageReport]:
    """:func:`to_mnist`, plus what page cleanup dropped on the way."""
    g = _as_gray(gray)
    if _is_mnist_like(g):
        return center_digit(g), PageReport()
    m = ink_map(g, clean_page)
    return center_digit(np.where(keep_main(m.labels, m.areas), m.ink, 0.0)), m.page


def preprocess_file(source: str | os.PathLike | bytes) -> np.ndarray:
    """Load an image file (or encoded bytes) and MNIST-normalise it: uint8 (28, 28)."""
    return to_mnist(load_image(source))
