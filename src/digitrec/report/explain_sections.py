"""The explain page's sections that need no model: convolution, edges, padding and pooling.

Each returns a dict for the template: the numbers it shows (tests check them against the
formulas) and its figures as ``data:`` URIs. Pixel values are the raw 0..255 intensities, so
every dot product written out on the page is exact integer arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitrec.report import convmath as cm
from digitrec.report.explain_figures import Box, panel
from digitrec.report.figures import DIVERGING
from digitrec.report.html import png_uri

FILTER = 3  # the tutorial's 3x3 filters


def window_section(image: np.ndarray) -> dict[str, Any]:
    """One 3x3 window, the vertical-edge filter and the dot product that makes one output pixel.

    The window shown is the one with the strongest response, so the products are not all zero.
    """
    response = cm.conv2d(image, cm.VERTICAL_EDGE)
    r, c = cm.strongest_window(response)
    window = image[r : r + FILTER, c : c + FILTER].astype(np.int64)
    kernel = cm.VERTICAL_EDGE.astype(np.int64)
    value = int((window * kernel).sum())
    return {
        "row": r,
        "col": c,
        "window": window.tolist(),
        "kernel": kernel.tolist(),
        "terms": cm.dot_product_terms(window, kernel),
        "value": value,
        "out_size": response.shape[0],
        "digit_png": png_uri(
            panel(
                image,
                f"window at rows {r}–{r + 2}, columns {c}–{c + 2}",
                boxes=[Box(r, c, FILTER, FILTER)],
            )
        ),
        "output_png": png_uri(
            panel(
                response,
                f"output pixel ({r}, {c}) = {value}",
                cmap=DIVERGING,
                symmetric=True,
                colorbar="response",
                boxes=[Box(r, c, 1, 1, "black")],
            )
        ),
    }


def edges_section(image: np.ndarray) -> dict[str, Any]:
    """The vertical and horizontal edge filters applied to the digit ('valid', stride 1)."""
    vertical = cm.conv2d(image, cm.VERTICAL_EDGE)
    horizontal = cm.conv2d(image, cm.HORIZONTAL_EDGE)
    lim = float(max(np.abs(vertical).max(), np.abs(horizontal).max())) or 1.0
    return {
        "vertical": vertical,
        "horizontal": horizontal,
        "vertical_kernel": cm.VERTICAL_EDGE.astype(int).tolist(),
        "horizontal_kernel": cm.HORIZONTAL_EDGE.astype(int).tolist(),
        "vertical_png": png_uri(
            panel(
                vertical,
                "vertical-edge filter",
                cmap=DIVERGING,
                vmin=-lim,
                vmax=lim,
                colorbar="response",
            )
        ),
        "horizontal_png": png_uri(
            panel(
                horizontal,
                "horizontal-edge filter",
                cmap=DIVERGING,
                vmin=-lim,
                vmax=lim,
                colorbar="response",
            )
        ),
    }


def padding_section(image: np.ndarray) -> dict[str, Any]:
    """Output sizes under 'valid' and 'same' padding, and how often each pixel is used."""
    n = image.shape[0]
    rows = []
    for f in (3, 5):
        for name, p in (("valid", 0), ("same", cm.same_padding(f))):
            for s in (1, 2):
                out = cm.output_size(n, f, p, s)
                exact = (n + 2 * p - f) / s + 1
                formula = f"({n} + 2×{p} − {f}) / {s} + 1 = {_num(exact)}"
                if not exact.is_integer():
                    formula += f", rounded down: {out}"
                rows.append(
                    {"padding": name, "f": f, "p": p, "s": s, "formula": formula, "out": out}
                )
    valid = cm.coverage(n, FILTER, 0)
    same = cm.coverage(n, FILTER, cm.same_padding(FILTER))
    padded = np.pad(image, 1)
    lim = int(max(valid.max(), same.max()))
    return {
        "n": n,
        "rows": rows,
        "f": FILTER,
        "valid_out": cm.output_size(n, FILTER, 0),
        "same_out": cm.output_size(n, FILTER, cm.same_padding(FILTER)),
        "valid_corner": int(valid[0, 0]),
        "valid_edge": int(valid[0, n // 2]),
        "valid_centre": int(valid[n // 2, n // 2]),
        "same_corner": int(same[0, 0]),
        "same_edge": int(same[0, n // 2]),
        "same_centre": int(same[n // 2, n // 2]),
        "valid_coverage": valid,
        "same_coverage": same,
        "valid_png": png_uri(
            panel(
                valid,
                f"'valid': {FILTER}×{FILTER} windows per pixel",
                cmap="magma",
                vmin=0,
                vmax=lim,
                colorbar="windows",
            )
        ),
        "same_png": png_uri(
            panel(
                same,
                "'same' (p = 1): windows per pixel",
                cmap="magma",
                vmin=0,
                vmax=lim,
                colorbar="windows",
            )
        ),
        "padded_png": png_uri(
            panel(
                padded,
                f"'same': zero-padded to {n + 2}×{n + 2}",
                boxes=[Box(1, 1, n, n, "#30a0ff"), Box(0, 0, FILTER, FILTER)],
            )
        ),
    }


def pooling_section(image: np.ndarray) -> dict[str, Any]:
    """Max against average pooling on the digit, with one 4x4 patch worked by hand."""
    f = s = 2
    maxed = cm.pool2d(image, f, s, "max")
    averaged = cm.pool2d(image, f, s, "average")
    r, c = _busiest_block(image, 4)
    patch = image[r : r + 4, c : c + 4].astype(np.int64)
    sizes = []
    for pf, ps in ((2, 2), (3, 2), (3, 3)):
        exact = (image.shape[0] - pf) / ps + 1
        sizes.append(
            {
                "f": pf,
                "s": ps,
                "exact": _num(exact),
                "out": cm.output_size(image.shape[0], pf, 0, ps),
            }
        )
    return {
        "f": f,
        "s": s,
        "n": image.shape[0],
        "out": maxed.shape[0],
        "sizes": sizes,
        "patch_row": r,
        "patch_col": c,
        "patch": patch.tolist(),
        "patch_max": cm.pool2d(patch, f, s, "max").astype(np.int64).tolist(),
        "patch_avg": [[_num(v) for v in row] for row in cm.pool2d(patch, f, s, "average")],
        "maxed": maxed,
        "averaged": averaged,
        "digit_png": png_uri(
            panel(
                image,
                f"digit {image.shape[0]}×{image.shape[1]}",
                vmin=0,
                vmax=255,
                boxes=[Box(r, c, 4, 4)],
            )
        ),
        **{
            key: png_uri(
                panel(
                    pooled,
                    f"{kind} pool {f}×{f}, stride {s}",
                    vmin=0,
                    vmax=255,
                    boxes=[Box(r // 2, c // 2, 2, 2)],
                )
            )
            for key, pooled, kind in (("max_png", maxed, "max"), ("avg_png", averaged, "average"))
        },
    }


def _busiest_block(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left of the ``size`` x ``size`` block, on the even grid, where max and average
    pooling disagree most (the patch that shows the difference best)."""
    best, where = -1.0, (0, 0)
    for r in range(0, image.shape[0] - size + 1, 2):
        for c in range(0, image.shape[1] - size + 1, 2):
            block = image[r : r + size, c : c + size]
            gap = float((cm.pool2d(block, 2, 2, "max") - cm.pool2d(block, 2, 2, "average")).sum())
            if gap > best:
                best, where = gap, (r, c)
    return where


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"
