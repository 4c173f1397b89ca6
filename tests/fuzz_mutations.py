"""Hypothesis strategies that break valid bytes the way real files break, and a hang guard.

Used by ``tests/fuzz_targets.py`` (and through it ``tests/test_fuzz.py`` and ``bench/fuzz.py``).
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

from hypothesis import strategies as st

HANG_SECONDS = 60.0  # a hang detector, not a speed check: examples take milliseconds


class FuzzHang(Exception):
    """An example ran past ``HANG_SECONDS``."""


@contextmanager
def hang_guard(seconds: float = HANG_SECONDS):
    """Interrupt the example with FuzzHang after ``seconds`` (main thread, where SIGALRM exists)."""

    def fire(signum, frame):
        raise FuzzHang(f"example still running after {seconds:g} s")

    if not hasattr(signal, "setitimer"):
        yield
        return
    try:
        previous = signal.signal(signal.SIGALRM, fire)
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- byte-level mutations ---------------------------------------------------------------------

_BYTES = st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, ord("{"), ord(","), ord('"'), 10]) | st.integers(
    0, 255
)


@st.composite
def mutated(draw, seed: bytes, hot: int = 64, max_ops: int = 4) -> bytes:
    """``seed`` after 1..max_ops edits; positions favour the first ``hot`` bytes (headers)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        end = len(data)
        pos = draw(st.integers(0, min(hot, end)) | st.integers(0, end))
        op = draw(st.sampled_from(["cut", "flip", "set", "insert", "delete", "repeat"]))
        if op == "cut":
            del data[pos:]
        elif op == "flip" and pos < end:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and pos < end:
            data[pos] = draw(_BYTES)
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "repeat":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


def bytes_like(seed: bytes, hot: int = 64) -> st.SearchStrategy[bytes]:
    return mutated(seed, hot) | st.binary(max_size=256)


def _containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    _containers,
    max_leaves=5,
)
ODD_VALUES = st.sampled_from(
    [
        0,
        -1,
        1,
        32,
        10**9,
        2**64,
        0.0,
        -0.5,
        float("nan"),
        float("inf"),
        "",
        "28",
        [],
        {},
        None,
        True,
    ]
)
