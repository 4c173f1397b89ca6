"""Page cleanup: tell what is page from what is writing, before the digits are cut out.

A phone photo of a written digit shows more than ink on paper: the paper's edge and the table
beyond it, shadow edges, a dark strip at a border, ruled or squared lines, a red margin, a
frame drawn round the number. All of them are told apart from the writing by shape:

- **Illumination steps** (a hard shadow edge, the table beyond the paper): the paper level is
  a grey *opening* of the ink-bright image (:func:`paper_level`), which removes every bright
  structure narrower than a quarter of the image but follows a straight step exactly, however
  sharp; ink is what stands above it.
- **Regions at a border** (a dark strip, a strip of table narrower than the opening): ink that
  runs along a border for a long stretch and ends in a straight edge is cut at that edge.
- **Lines** (ruled, squared, a margin): thin straight runs found with a Hough transform that
  reach from border to border; only their thin pixels are dropped, so a stroke crossing a line
  keeps the pixels where ink continues above and below it.
- **Frames**: a hollow component that encloses other ink is dropped.

All arrays are at the working size of :func:`digitrec.images.normalise.ink_map`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
from scipy import ndimage

# The paper level is a grey opening over squares of this fraction of the image's short side:
# wider than any stroke of a digit that fits the image, narrower than the table or a shadow.
OPENING_FRACTION = 0.25
# Ink along a border for at least this fraction of the side, ending in a straight edge, is page.
EDGE_CONTACT = 0.2
# A straight edge: this fraction of the depth profile lies within EDGE_TOLERANCE px (+10 %)
# of a fitted line.
EDGE_STRAIGHT = 0.8
EDGE_TOLERANCE = 2.0
# Lines: pixels whose ink run across the line is at most this many px (at 320 x 240, scaled
# with the short side) and a Hough peak of at least LINE_LENGTH of the image's extent.
LINE_THICK = 8.0
LINE_LENGTH = 0.3
# Hough angles: lines within this many degrees of horizontal (and of vertical), in steps.
LINE_ANGLES = 45.0
ANGLE_STEP = 0.5
# A line reaches a border (or removed page) at both ends: within this fraction of the extent.
LINE_END = 0.06
# A frame: its ink is at most this fraction of the area it encloses, and what it encloses is
# at least FRAME_CONTENT of its height tall.
FRAME_FILL = 0.4
FRAME_CONTENT = 0.25
MAX_LINES = 60
# Page structures are found on a copy at most this long (px); the writing keeps full size.
ANALYSIS_SIDE = 512
# The paper's edge: the paper level changes by more than this many grey levels per px, along
# a straight line; the side beyond it is table when ink-like clutter covers this fraction of it.
STEP_LEVEL = 8.0
TABLE_SPREAD = 0.2

_8 = np.ones((3, 3), dtype=bool)


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


def _runs(mask: np.ndarray, axis: int) -> np.ndarray:
    """Per pixel, the length of the run of ``mask`` along ``axis`` that it belongs to (0 off)."""
    m = np.moveaxis(np.asarray(mask, dtype=bool), axis, -1)
    flat = m.reshape(-1, m.shape[-1])
    padded = np.zeros((flat.shape[0], flat.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = flat
    diff = np.diff(padded, axis=1)  # +1 where a run starts, -1 one past where it ends
    rs, cs = np.nonzero(diff == 1)
    _, ce = np.nonzero(diff == -1)  # row-major order pairs each start with its end
    first = np.zeros(flat.shape, dtype=np.int64)
    first[rs, cs] = 1
    run = np.cumsum(first.ravel()).reshape(flat.shape) - 1  # runs never cross rows
    out = np.where(flat, (ce - cs)[np.maximum(run, 0)] if rs.size else 0, 0).astype(np.int32)
    return np.moveaxis(out.reshape(m.shape), -1, axis)


def _fit_edge(pos: np.ndarray, depth: np.ndarray) -> np.ndarray | None:
    """Robust straight-line fit ``depth ~ a + b * pos``; None unless most points lie on it.

    Returns the (a, b) coefficients as float (2,).
    """
    use = np.ones(pos.size, dtype=bool)
    coef = np.zeros(2)
    for _ in range(4):  # refit on the points near the previous fit
        if use.sum() < 2:
            return None
        coef = np.polyfit(pos[use].astype(float), depth[use].astype(float), 1)[::-1]
        resid = np.abs(depth - (coef[0] + coef[1] * pos))
        use = resid <= EDGE_TOLERANCE + 0.1 * np.median(depth)
    return coef if use.mean() >= EDGE_STRAIGHT else None


def _border_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Ink that runs along a border and ends in a straight edge: a strip, a piece of table.

    Returns the page pixels (bool (H, W)) and how many sides had such a region.
    """
    page = np.zeros_like(mask)
    found = 0
    for side in range(4):  # bring each side to the left (column 0)
        m = np.rot90(mask, side)
        n, width = m.shape
        # Depth of the ink run that starts within 2 px of the border, per row.
        run = _runs(m, axis=1)
        start = np.argmax(m[:, :3], axis=1)
        touching = m[:, :3].any(axis=1)
        depth = np.where(touching, run[np.arange(n), start] + start, 0)
        pos = np.nonzero(depth)[0]
        if pos.size < EDGE_CONTACT * n:
            continue
        coef = _fit_edge(pos, depth[pos])
        if coef is None:
            continue
        rows = np.arange(n)[:, None]
        cols = np.arange(width)[None, :]
        limit = coef[0] + coef[1] * rows + EDGE_TOLERANCE
        inside = (rows >= pos.min()) & (rows <= pos.max()) & (cols < limit)
        page |= np.rot90(m & inside, -side)
        found += 1
    return page, found


def _hough_peaks(xs: np.ndarray, ys: np.ndarray, angles: np.ndarray, min_count: float):
    """Straight lines through points, strongest first, each point used by one line at most.

    A Hough transform: each point (``xs``, ``ys``: int (N,)) votes for the lines through it at
    each of ``angles`` (radians from the x axis, float (A,)), 1 px apart. Yields
    ``(angle, selected)`` while a line holds at least ``min_count`` points; ``selected`` is the
    bool (N,) mask of the points in the line's band (the peak's offset and its neighbours still
    holding 30 % of it, +-1 px).
    """
    # rho: signed distance of each point from the line through the origin at each angle.
    rho = np.rint(ys[:, None] * np.cos(angles) - xs[:, None] * np.sin(angles)).astype(np.int32)
    lo = int(rho.min())
    span = int(rho.max()) - lo + 1
    flat = np.arange(angles.size, dtype=np.int64)[None, :] * span + (rho - lo)
    acc = np.bincount(flat.ravel(), minlength=angles.size * span).reshape(angles.size, span)
    alive = np.ones(xs.size, dtype=bool)
    for _ in range(MAX_LINES):
        a, r = np.unravel_index(int(np.argmax(acc)), acc.shape)
        peak = int(acc[a, r])
        if peak < min_count:
            return
        r0, r1 = r, r
        while r0 > 0 and acc[a, r0 - 1] >= 0.3 * peak:
            r0 -= 1
        while r1 < span - 1 and acc[a, r1 + 1] >= 0.3 * peak:
            r1 += 1
        sel = alive & (rho[:, a] - lo >= r0 - 1) & (rho[:, a] - lo <= r1 + 1)
        yield float(angles[a]), sel
        # Take the band's points out of the accumulator: each is looked at once.
        acc.ravel()[:] -= np.bincount(flat[sel].ravel(), minlength=acc.size)
        alive &= ~sel


def _hough_lines(mask: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, int]:
    """Thin straight lines reaching ``ends`` (borders, removed page) at both of their ends.

    Returns the line pixels to drop (bool (H, W)) and how many lines were found. Only pixels
    whose ink run across the line is thin are dropped: where a stroke crosses, ink continues
    above and below the line and stays.
    """
    h, w = mask.shape
    thick = max(2.0, LINE_THICK * min(h, w) / 240.0)
    page = np.zeros_like(mask)
    found = 0
    angles = np.deg2rad(np.arange(-LINE_ANGLES, LINE_ANGLES + 1e-9, ANGLE_STEP))
    for axis in (0, 1):  # 0: lines near horizontal (thin across rows); 1: near vertical
        ys, xs = np.nonzero(mask & (_runs(mask, axis=axis) <= thick))
        if axis == 1:  # transpose: the line runs along y
            xs, ys = ys, xs
        extent = w if axis == 0 else h
        if xs.size < LINE_LENGTH * extent:
            continue
        for angle, sel in _hough_peaks(xs, ys, angles, LINE_LENGTH * extent):
            along = xs[sel] * np.cos(angle) + ys[sel] * np.sin(angle)
            first, last = int(np.argmin(along)), int(np.argmax(along))
            px, py = (xs[sel], ys[sel]) if axis == 0 else (ys[sel], xs[sel])
            if ends[py[first], px[first]] and ends[py[last], px[last]]:
                page[py, px] = True
                found += 1
    return page, found


def _beyond_edges(mask: np.ndarray, paper: np.ndarray) -> tuple[np.ndarray, int]:
    """What lies beyond the paper's edge: a straight step of the paper level with clutter.

    A shadow's edge is a straight step too, but the paper beyond it is as smooth as before,
    while a table's grain leaves ink-like clutter all over its side. The side of a long
    straight step whose clutter is spread over at least TABLE_SPREAD of it, and twice as
    widely as on the other side, is dropped whole.
    """
    h, w = mask.shape
    gy, gx = np.gradient(ndimage.uniform_filter(paper, 3))
    steps = np.hypot(gx, gy) > STEP_LEVEL
    rim = max(3, int(LINE_END * min(h, w)))  # a step along the border itself beyonds nothing
    steps[:rim], steps[-rim:], steps[:, :rim], steps[:, -rim:] = False, False, False, False
    ys, xs = np.nonzero(steps)
    page = np.zeros_like(mask)
    if xs.size < LINE_LENGTH * min(h, w):
        return page, 0
    found = 0
    angles = np.deg2rad(np.arange(-90.0, 90.0, ANGLE_STEP))
    yy, xx = np.mgrid[0:h, 0:w]
    cell = max(4, min(h, w) // 30)
    for angle, sel in _hough_peaks(xs, ys, angles, LINE_LENGTH * min(h, w)):
        offset = float(np.median(ys[sel] * np.cos(angle) - xs[sel] * np.sin(angle)))
        dist = yy * np.cos(angle) - xx * np.sin(angle) - offset  # signed px from the step
        band = np.abs(dist) <= 0.02 * min(h, w) + 2
        spread = []
        for side in (dist > 0, dist < 0):
            region = side & ~band
            occupied = ndimage.maximum_filter(mask & region, size=cell)[::cell, ::cell]
            cells = region[::cell, ::cell]
            spread.append(occupied[cells].mean() if cells.any() else 0.0)
        far = int(np.argmax(spread))
        beyond = (dist > 0) if far == 0 else (dist < 0)
        # The paper holds the writing: the side beyond the edge is the smaller one.
        small = beyond.mean() <= 0.5
        if small and spread[far] >= TABLE_SPREAD and spread[far] >= 2 * spread[1 - far]:
            page |= beyond | band
            found += 1
    return page & mask, found


def _frames(mask: np.ndarray, inner_only: bool = False) -> tuple[np.ndarray, int]:
    """Hollow components that enclose other ink: frames drawn round a number.

    With ``inner_only``, components touching the image's border are left alone.
    """
    labels = cast("tuple[np.ndarray, int]", ndimage.label(mask, structure=_8))[0]
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
        closed = ndimage.binary_closing(np.pad(comp, pad), structure=_8, iterations=pad)
        filled = np.asarray(ndimage.binary_fill_holes(closed), dtype=bool)[pad:-pad, pad:-pad]
        if comp.sum() > FRAME_FILL * filled.sum():
            continue
        # The frame's line: the component's ink near the outline of what it encloses.
        line = float(np.median(np.minimum(_runs(comp, 0), _runs(comp, 1))[comp]))
        inner = np.asarray(
            ndimage.binary_erosion(filled, structure=_8, iterations=int(2 * line) + 2), dtype=bool
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
        near = np.asarray(ndimage.binary_dilation(page, structure=_8), dtype=bool)
        report.touched = bool((near & kept).any())
    return page, report


def _find_page(
    mask: np.ndarray, paper: np.ndarray, strong: np.ndarray
) -> tuple[np.ndarray, PageReport]:
    """:func:`find_page` at the analysis size (``touched`` is left for the caller)."""
    report = PageReport()
    # Frames first where they stand free of the borders (lines would cut them open).
    page, n_frames = _frames(mask, inner_only=True)
    border, sides = _border_regions(strong & ~page)
    beyond, n_edges = _beyond_edges(mask & ~page, paper)
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
    lines, n_lines = _hough_lines(mask & ~page, ends)
    if n_lines:
        report.removed.append(f"{n_lines} long straight line(s) (ruled, squared, margin)")
    page |= lines
    frames, more = _frames(mask & ~page)
    n_frames += more
    if n_frames:
        report.removed.append("a frame around the writing")
    return page | frames, report
