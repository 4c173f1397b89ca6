"""The IDX file format (MNIST's): strict parsing of magic number, dimensions and size.

The reader takes any image size and label range; what a dataset expects (28x28, labels 0..9)
is checked by :func:`check_images` / :func:`check_labels`, which the dataset loader calls with
the numbers from its ``DatasetSpec``.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from digitrec.errors import DataError

# IDX magic numbers: 0x00000803 (unsigned byte, 3 dims) and 0x00000801 (unsigned byte, 1 dim).
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def read_bytes(path: Path) -> bytes:
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

    Any image size is accepted; callers check it against what they expect.

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
    if ndim == 3 and 0 in dims[1:]:
        raise DataError(f"{name}: images are {dims[1]}x{dims[2]}, which holds no pixels")
    # Python ints: dims up to 2**32 each cannot overflow the product.
    expected = header_len + int(np.prod(dims, dtype=object))
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(
            f"{name}: {what}: header says {dims[0]} items ({expected} bytes), file has {len(raw)}"
        )
    # Copy so callers get a writable array (frombuffer views of bytes are read-only).
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def check_images(images: np.ndarray, image_size: tuple[int, int] | None, name: str) -> np.ndarray:
    """Refuse images whose ``(H, W)`` is not ``image_size`` (None: any size)."""
    if image_size is not None and tuple(images.shape[1:]) != tuple(image_size):
        h, w = image_size
        raise DataError(f"{name}: images are {images.shape[1]}x{images.shape[2]}, expected {h}x{w}")
    return images


def check_labels(labels: np.ndarray, num_classes: int | None, name: str) -> np.ndarray:
    """Labels as ``int64 (N,)``, refusing any outside ``0..num_classes-1`` (None: any)."""
    if num_classes is not None and labels.size and int(labels.max()) >= num_classes:
        raise DataError(f"{name}: label {int(labels.max())} out of range 0..{num_classes - 1}")
    return labels.astype(np.int64)


def read_idx_images(path: Path, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an IDX3 image file (``.gz`` or raw) as ``uint8 (N, H, W)``."""
    images = parse_idx(read_bytes(path), expect_magic=IMAGES_MAGIC, name=str(path))
    return check_images(images, image_size, str(path))


def read_idx_labels(path: Path, num_classes: int | None = None) -> np.ndarray:
    """Read an IDX1 label file (``.gz`` or raw) as ``int64 (N,)``."""
    labels = parse_idx(read_bytes(path), expect_magic=LABELS_MAGIC, name=str(path))
    return check_labels(labels, num_classes, str(path))
