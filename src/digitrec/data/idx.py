"""The IDX file format (MNIST's): strict parsing of magic number, dimensions and size."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from digitrec.errors import DataError

# IDX magic numbers: 0x00000803 (unsigned byte, 3 dims) and 0x00000801 (unsigned byte, 1 dim).
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def _read_bytes(path: Path) -> bytes:
    """Read a file, transparently gunzipping ``.gz``; corrupt archives become DataError."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc}); the file is truncated or corrupt") from exc


def parse_idx(raw: bytes, *, expect_magic: int, name: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes into a uint8 array, checking the magic number, dimensions and size.

    Args:
        raw: The whole (decompressed) file.
        expect_magic: 2051 for images (3 dims) or 2049 for labels (1 dim).
        name: Used in error messages, usually the file path.
    """
    ndim = expect_magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{name}: file is {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expect_magic:
        kind = "images" if expect_magic == IMAGES_MAGIC else "labels"
        raise DataError(f"{name}: bad magic number {magic}, expected {expect_magic} ({kind})")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if ndim == 3 and dims[1:] != [28, 28]:
        raise DataError(f"{name}: images are {dims[1]}x{dims[2]}, expected 28x28")
    expected = header_len + int(np.prod(dims))
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(
            f"{name}: {what}: header says {dims[0]} items ({expected} bytes), file has {len(raw)}"
        )
    # Copy so callers get a writable array (frombuffer views of bytes are read-only).
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def read_idx_images(path: Path) -> np.ndarray:
    """Read an IDX3 image file (``.gz`` or raw) as ``uint8 (N, 28, 28)``."""
    return parse_idx(_read_bytes(path), expect_magic=IMAGES_MAGIC, name=str(path))


def read_idx_labels(path: Path) -> np.ndarray:
    """Read an IDX1 label file (``.gz`` or raw) as ``int64 (N,)``, checking values are 0..9."""
    labels = parse_idx(_read_bytes(path), expect_magic=LABELS_MAGIC, name=str(path))
    if labels.size and labels.max() > 9:
        raise DataError(f"{path}: label {int(labels.max())} out of range 0..9")
    return labels.astype(np.int64)
