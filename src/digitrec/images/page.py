"""Page cleanup: tell what is page from what is writing, before the digits are cut out.

A phone photo of a written digit shows more than ink on paper: the paper's edge and the table
beyond it, shadow edges, a dark strip at a border, ruled or squared lines, a red margin, a
frame drawn round the number. All of them are told apart from the writing by shape:

- **Illumination steps** (a hard shadow edge, the table beyond the paper): the paper level is
  a grey *opening* of the ink-bright image (:func:`paper_level`), which removes every bright
  structure narrower than a quarter of the image but follows a straight step exactly, however
  sharp; ink is what stands above it.
  The image is padded by repeating its border first, so a strip along the border or a
  shadow's corner stays paper too. Which side is ink (:func:`dark_ink`) is decided against a
  median that follows such steps, not against a smooth fit of the lighting.
- **The surface beyond the paper's edge**: a long straight step of the paper level whose far
  (smaller) side is cluttered with ink-like grain, as a desk is and a shadow is not.
- **Regions at a border** (a strip of table narrower than the opening): ink that runs along a
  border for a long stretch and ends in a straight edge is cut at that edge.
- **Lines** (ruled, squared, a margin): thin straight runs found with a Hough transform that
  reach from border to border; only their thin pixels are dropped, so a stroke crossing a line
  keeps the pixels where ink continues above and below it.
- **Frames**: a hollow component that encloses other ink is dropped.

All arrays are at the working size of :func:`digitrec.images.normalise.ink_map`. The constants
here and in :mod:`digitrec.images.straight` were tuned on the development set only
(``bench/photos.py --set dev``: validation digits and the "dev" fonts), never on test digits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
from PIL import Image
from scipy import ndimage

from digitrec.images.straight import (
    LINE_END,
    STEP_LEVEL,
    beyond_edges,
    border_regions,
    find_lines,
    runs,
)

# The paper level is a grey opening over squares of this fraction of the image's short side:
# wider than any stroke of a digit that fits the image, narrower than the table or a shadow.
OPENING_FRACTION = 0.25
# Dark ink in a shadow or under glare is boosted back to the contrast it has on the lit
# paper, at most this much (a shadow at 40 % of the light, glare that leaves a third of it).
MAX_SHADOW_GAIN = 2.5
MAX_GLARE_GAIN = 3.0
# Glare is a bright bump of the paper narrower than this fraction of the short side.
GLARE_FRACTION = 0.5
# A frame: its ink is at most this fraction of the area it encloses, and what it encloses is
# at least FRAME_CONTENT of its height tall.
FRAME_FILL = 0.4
FRAME_CONTENT = 0.25
# Page structures are found on a copy at most this long (px); the writing keeps full size.
ANALYSIS_SIDE = 512

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)  # scipy.ndimage structure: diagonals touch


@dataclass
class PageReport:
    """What page cleanup dropped, and whether it touched the writing.

    Attributes:
        removed: Short descriptions ("3 ruled or squared lines", "a frame", ...).
        touched: True when dropped page ink was in contact with ink that was kept: the writing
            may have lost (or kept) a little at that contact.
    """

    removed: list[str] = field(default_factory=list)
    touched: bool = False


def paper_level(bright_ink: np.ndarray) -> np.ndarray:
    """The paper under ink-bright ``bright_ink`` (float32 (H, W)): its grey opening.

    The opening takes each pixel down to the brightest minimum over squares that contain it;
    structures narrower than the square (strokes) vanish, and a straight step (a shadow edge,
    the table's edge) is followed exactly. The image is first extended by repeating its border
    pixels, so a region cut by the border (a shadow's corner, a strip along the border) is as
    wide as the squares and stays paper.
    """
    k = max(9, int(OPENING_FRACTION * min(bright_ink.shape)))
    padded = np.pad(bright_ink, k, mode="edge")
    level = ndimage.maximum_filter(ndimage.minimum_filter(padded, size=k), size=k)
    return level[k:-k, k:-k]


def _without_bumps(bright: np.ndarray) -> np.ndarray:
    """The paper's brightness (float (H, W)) without bright bumps narrower than half the image.

    A grey opening on a 4x smaller copy (the brightness is smooth), bilinearly enlarged: glare
    goes, the lit side of a shadow's edge or a pale desk (wider than that) stays.
    """
    f = 4
    h, w = bright.shape
    small = _pool(bright, f, "mean").astype(np.float32)
    k = max(3, int(GLARE_FRACTION * min(small.shape)))
    padded = np.pad(small, k, mode="edge")
    opened = ndimage.maximum_filter(ndimage.minimum_filter(padded, size=k), size=k)[k:-k, k:-k]
    pil = Image.fromarray(opened, mode="F").resize((small.shape[1] * f, small.shape[0] * f))
    return np.minimum(np.asarray(pil, dtype=np.float32)[:h, :w], bright)


def ink_above_paper(g: np.ndarray, dark_ink: bool) -> tuple[np.ndarray, np.ndarray]:
    """Ink above the paper level of an ink-bright photo ``g`` (float32 (H, W)).

    Returns the ink (float32, >= 0) and the paper level. Dark ink keeps one stroke strength
    in a shadow and under glare: in a shadow (paper darker than the lit paper, its 90th
    percentile) it is boosted by the ratio of the two; under glare (a bright bump of the
    paper, narrower than half the image, on top of the paper around it) by how much the glare
    shrank the gap between the paper and white.
    """
    paper = paper_level(g)
    resid = g - paper
    step = max(1, int(np.sqrt(g.size / 8_000)))
    ink = np.maximum(resid - float(np.median(resid[::step, ::step])), 0.0)
    if dark_ink:
        bright = 255.0 - paper  # the paper's own brightness
        ref = float(np.percentile(bright[::step, ::step], 90))
        # Shadow multiplies paper and ink alike; glare adds white, shrinking the gap to 255.
        shadow = np.clip(ref / np.maximum(bright, 1.0), 1.0, MAX_SHADOW_GAIN)
        base = _without_bumps(bright)
        glare = np.clip((255.0 - base) / np.maximum(255.0 - bright, 1.0), 1.0, MAX_GLARE_GAIN)
        ink *= shadow * glare
    return ink, paper


def dark_ink(gray: np.ndarray) -> bool:
    """Whether the ink of a photo-sized grey image (float (H, W)) is darker than its paper.

    Ink is the minority that stands out of the local paper level. The paper level is a median
    over windows a quarter of the short side wide, which follows a shadow's edge and the
    table's edge (a smooth fit of the lighting cannot); rows then columns (a separable median:
    8x cheaper, as good here), on a ~8,000-pixel block-mean copy. The side whose squared
    deviations beyond the noise add up to more is the ink.
    """
    f = max(1, int(np.sqrt(gray.size / 8_000)))
    h, w = (gray.shape[0] // f) * f, (gray.shape[1] // f) * f
    small = gray[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3), dtype=np.float32)
    k = max(3, int(OPENING_FRACTION * min(small.shape)) | 1)
    level = ndimage.median_filter(small, size=(1, k), mode="nearest")
    resid = small - ndimage.median_filter(level, size=(k, 1), mode="nearest")
    noise = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    dark = (np.maximum(-resid - 3 * noise, 0.0) ** 2).sum()
    bright = (np.maximum(resid - 3 * noise, 0.0) ** 2).sum()
    return bool(dark > bright)


def _frames(mask: np.ndarray, inner_only: bool = False) -> tuple[np.ndarray, int]:
    """Hollow components that enclose other ink: frames drawn round a number.

    With ``inner_only``, components touching the image's border are left alone.
    """
    labels = cast("tuple[np.ndarray, int]", ndimage.label(mask, structure=EIGHT_CONNECTED))[0]
    page = np.zeros_like(mask)
    found = 0
    for lab, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        fh, fw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if min(fh, fw) < 12:
            continue
        at_border = sl[0].start == 0 or sl[1].start == 0
        if inner_only and (at_border or sl[0].stop == mask.shape[0] or sl[1].stop == mask.shape[1]):
            continue
        comp = labels[sl] == lab
        pad = max(2, int(0.03 * max(fh, fw)))
        closed = ndimage.binary_closing(
            np.pad(comp, pad), structure=EIGHT_CONNECTED, iterations=pad
        )
        filled = np.asarray(ndimage.binary_fill_holes(closed), dtype=bool)[pad:-pad, pad:-pad]
        if comp.sum() > FRAME_FILL * filled.sum():
            continue
        # The frame's line: the component's ink near the outline of what it encloses.
        line = float(np.median(np.minimum(runs(comp, 0), runs(comp, 1))[comp]))
        inner = np.asarray(
            ndimage.binary_erosion(filled, structure=EIGHT_CONNECTED, iterations=int(2 * line) + 2),
            dtype=bool,
        )
        band = comp & ~inner
        content = (mask[sl] & inner) | (comp & ~band)
        rows = np.nonzero(content.any(axis=1))[0]
        if rows.size == 0 or rows[-1] + 1 - rows[0] < FRAME_CONTENT * fh:
            continue
        page[sl] |= band
        found += 1
    return page, found


def _pool(img: np.ndarray, f: int, how: str) -> np.ndarray:
    """``f`` x ``f`` blocks of ``img`` (edge blocks padded by repetition): any, or mean."""
    h, w = img.shape
    padded = np.pad(img, ((0, -h % f), (0, -w % f)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f)
    return np.asarray(blocks.any(axis=(1, 3)) if how == "any" else blocks.mean(axis=(1, 3)))


def find_page(
    mask: np.ndarray, paper: np.ndarray, strong: np.ndarray | None = None
) -> tuple[np.ndarray, PageReport]:
    """Split an ink mask into page and writing.

    Page structures are large, so images longer than :data:`ANALYSIS_SIDE` are analysed on a
    copy pooled in blocks (a block holds ink if any of its pixels does; thin lines survive).

    Args:
        mask: bool (H, W) ink (strokes and whatever else stood out from the paper level).
        paper: float (H, W) paper level from :func:`paper_level`; its sharp steps (the paper's
            edge) count as places where ruled lines end.
        strong: bool (H, W) ink connected to strong ink (default ``mask``): regions along the
            border are judged on it, where faint texture does not blur their edge.

    Returns:
        The page pixels (bool (H, W)) and a :class:`PageReport`.
    """
    strong = mask if strong is None else strong
    h, w = mask.shape
    f = -(-max(h, w) // ANALYSIS_SIDE)
    if f > 1:
        small = _find_page(_pool(mask, f, "any"), _pool(paper, f, "mean"), _pool(strong, f, "any"))
        page, report = small[0].repeat(f, axis=0).repeat(f, axis=1)[:h, :w] & mask, small[1]
    else:
        page, report = _find_page(mask, paper, strong)
    if page.any():
        kept = mask & ~page
        near = np.asarray(ndimage.binary_dilation(page, structure=EIGHT_CONNECTED), dtype=bool)
        report.touched = bool((near & kept).any())
    return page, report


def _find_page(
    mask: np.ndarray, paper: np.ndarray, strong: np.ndarray
) -> tuple[np.ndarray, PageReport]:
    """:func:`find_page` at the analysis size (``touched`` is left for the caller)."""
    report = PageReport()
    # Frames first where they stand free of the borders (lines would cut them open).
    page, n_frames = _frames(mask, inner_only=True)
    border, sides = border_regions(strong & ~page)
    beyond, n_edges = beyond_edges(mask & ~page, paper)
    page |= border | beyond
    if n_edges:
        report.removed.append("the surface beyond the paper's edge")
    if sides:
        report.removed.append("ink along a border with a straight edge (paper edge, strip)")
    h, w = mask.shape
    reach = max(3, int(LINE_END * min(h, w)))
    ends = np.zeros_like(mask)
    ends[:reach], ends[-reach:], ends[:, :reach], ends[:, -reach:] = True, True, True, True
    gy, gx = np.gradient(ndimage.uniform_filter(paper, 3))
    steps = np.hypot(gx, gy) > STEP_LEVEL  # the paper's edge, not lighting
    ends |= ndimage.binary_dilation(page | steps, iterations=reach)
    lines, n_lines = find_lines(mask & ~page, ends)
    if n_lines:
        report.removed.append(f"{n_lines} long straight line(s) (ruled, squared, margin)")
    page |= lines
    frames, more = _frames(mask & ~page)
    n_frames += more
    if n_frames:
        report.removed.append("a frame around the writing")
    return page | frames, report
