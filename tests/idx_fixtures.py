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


REPO = Path(__file__).resolve().parent.parent


def find_fashion_mnist() -> Path:
    """$DIGITREC_DATA_FASHION_MNIST, else ../shared/data/fashion-mnist (as in CI), else Debian's."""
    import os

    from digitrec.data.specs import has_files

    candidates = [
        os.environ.get("DIGITREC_DATA_FASHION_MNIST"),
        REPO.parent / "shared/data/fashion-mnist",
        "/usr/share/datasets/fashion-mnist",  # Debian's dataset-fashion-mnist package
    ]
    for cand in candidates:
        if cand and has_files(Path(cand), "fashion-mnist"):
            return Path(cand)
    raise RuntimeError(
        "Fashion-MNIST not found: place it at ../shared/data/fashion-mnist or set "
        "DIGITREC_DATA_FASHION_MNIST"
    )


def user_dataset(
    folder: Path,
    size: tuple[int, int] = (32, 32),
    num_classes: int = 5,
    counts: dict[str, int] | None = None,
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write a random IDX dataset (MNIST's file names, .gz) and return its ``split -> (x, y)``.

    Every class appears in every split, so ``num_classes`` is recoverable from the labels.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (counts or {"train": 20, "test": 10}).items():
        images = rng.integers(0, 256, (n, *size), dtype=np.uint8)
        labels = np.arange(n) % num_classes
        write_split(folder, split, idx_images(images), idx_labels(labels))
        out[split] = (images, labels)
    return out
