"""Long straight things on a page: ruled lines, the paper's edge, regions cut off by a border.

Used by :mod:`digitrec.images.page`; every function takes and returns bool masks (H, W) at
the analysis size. Straight lines are found with a Hough transform (:func:`hough_peaks`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

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
MAX_LINES = 60
# The paper's edge: the paper level changes by more than this many grey levels per px, along
# a straight line; the side beyond it is table when ink-like clutter covers this fraction of it.
STEP_LEVEL = 4.0
TABLE_SPREAD = 0.2


def runs(mask: np.ndarray, axis: int) -> np.ndarray:
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


def border_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Ink that runs along a border and ends in a straight edge: a strip, a piece of table.

    Returns the page pixels (bool (H, W)) and how many sides had such a region.
    """
    page = np.zeros_like(mask)
    found = 0
    for side in range(4):  # bring each side to the left (column 0)
        m = np.rot90(mask, side)
        n, width = m.shape
        # Depth of the ink run that starts within 2 px of the border, per row.
        run = runs(m, axis=1)
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


def hough_peaks(xs: np.ndarray, ys: np.ndarray, angles: np.ndarray, min_count: float):
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


def find_lines(mask: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, int]:
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
        ys, xs = np.nonzero(mask & (runs(mask, axis=axis) <= thick))
        if axis == 1:  # transpose: the line runs along y
            xs, ys = ys, xs
        extent = w if axis == 0 else h
        if xs.size < LINE_LENGTH * extent:
            continue
        for angle, sel in hough_peaks(xs, ys, angles, LINE_LENGTH * extent):
            along = xs[sel] * np.cos(angle) + ys[sel] * np.sin(angle)
            first, last = int(np.argmin(along)), int(np.argmax(along))
            px, py = (xs[sel], ys[sel]) if axis == 0 else (ys[sel], xs[sel])
            if ends[py[first], px[first]] and ends[py[last], px[last]]:
                page[py, px] = True
                found += 1
    return page, found


def beyond_edges(mask: np.ndarray, paper: np.ndarray) -> tuple[np.ndarray, int]:
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
    for angle, sel in hough_peaks(xs, ys, angles, LINE_LENGTH * min(h, w)):
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
