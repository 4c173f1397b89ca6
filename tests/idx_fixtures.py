"""Tiny IDX files, valid and broken, written the way the MNIST authors describe the format."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def idx_images(images: np.ndarray, magic: int = 2051, count: int | None = None) -> bytes:
    n, rows, cols = images.shape
    header = struct.pack(">IIII", magic, n if count is None else count, rows, cols)
    return header + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray, magic: int = 2049, count: int | None = None) -> bytes:
    header = struct.pack(">II", magic, len(labels) if count is None else count)
    return header + labels.astype(np.uint8).tobytes()


def write_split(folder: Path, split: str, images: bytes, labels: bytes, gz: bool = True) -> None:
    stems = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }[split]
    folder.mkdir(parents=True, exist_ok=True)
    for stem, payload in zip(stems, (images, labels), strict=True):
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / stem).write_bytes(payload)
