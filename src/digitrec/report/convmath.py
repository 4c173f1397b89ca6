"""The tutorial's arithmetic in plain numpy: convolution, padding, output sizes and pooling.

"Convolution" here is what deep-learning libraries compute: a dot product of the filter with
each window (cross-correlation, no kernel flip).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# The classic 3x3 edge filters: a vertical edge is bright on one side, dark on the other.
VERTICAL_EDGE = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], dtype=np.float64)
HORIZONTAL_EDGE = VERTICAL_EDGE.T.copy()  # rows [1, 1, 1], [0, 0, 0], [-1, -1, -1]


def output_size(n: int, f: int, p: int = 0, s: int = 1) -> int:
    """Output side for an ``f`` x ``f`` filter on ``n`` x ``n`` input: ⌊(n + 2p - f) / s⌋ + 1."""
    if f > n + 2 * p:
        raise ValueError(f"a {f}x{f} filter does not fit a {n}x{n} input with padding {p}")
    return (n + 2 * p - f) // s + 1


def same_padding(f: int) -> int:
    """Padding that keeps the size at stride 1 (odd ``f``): p = (f - 1) / 2."""
    return (f - 1) // 2


def conv2d(image: np.ndarray, kernel: np.ndarray, padding: int = 0, stride: int = 1) -> np.ndarray:
    """2-D convolution of one channel, zero padding; float64 (out, out).

    Args:
        image: (n, n) values.
        kernel: (f, f) filter.
        padding: zeros added on every side.
        stride: step between windows.
    """
    x = np.pad(np.asarray(image, np.float64), padding)
    windows = sliding_window_view(x, kernel.shape)[::stride, ::stride]  # (out, out, f, f)
    return np.einsum("ijkl,kl->ij", windows, np.asarray(kernel, np.float64))


def pool2d(x: np.ndarray, f: int, s: int, mode: str = "max") -> np.ndarray:
    """Max or average pooling over ``f`` x ``f`` windows with stride ``s`` (no padding)."""
    windows = sliding_window_view(np.asarray(x, np.float64), (f, f))[::s, ::s]
    if mode == "max":
        return windows.max(axis=(2, 3))
    if mode == "average":
        return windows.mean(axis=(2, 3))
    raise ValueError(f"unknown pooling {mode!r}; use 'max' or 'average'")


def coverage(n: int, f: int, p: int = 0, s: int = 1) -> np.ndarray:
    """How many output pixels each input pixel takes part in: int (n, n).

    Under 'valid' padding a corner pixel is in one window only while a central one is in f*f:
    the information at the border is used less.
    """
    out = output_size(n, f, p, s)
    counts = np.zeros((n + 2 * p, n + 2 * p), dtype=np.int64)
    for r in range(out):
        for c in range(out):
            counts[r * s : r * s + f, c * s : c * s + f] += 1
    return counts[p : p + n, p : p + n]


def dot_product_terms(window: np.ndarray, kernel: np.ndarray) -> list[list[str]]:
    """The products of a window and a filter written out, one row of ``a×b`` per filter row."""
    rows = []
    for wrow, krow in zip(window, kernel, strict=True):
        rows.append([f"{_fmt(a)}×{_signed(b)}" for a, b in zip(wrow, krow, strict=True)])
    return rows


def strongest_window(response: np.ndarray) -> tuple[int, int]:
    """``(row, col)`` of the output pixel with the largest absolute response (first on ties)."""
    flat = int(np.argmax(np.abs(response)))
    return divmod(flat, response.shape[1])


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _signed(value: float) -> str:
    text = _fmt(value)
    return f"({text.replace('-', '−')})" if value < 0 else text
