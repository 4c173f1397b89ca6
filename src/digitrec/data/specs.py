"""MNIST loading: strict IDX parsing, data-directory resolution, md5 checks, splits.

Every reader in digitrec converges on the same shapes early: images are ``uint8 (N, 28, 28)``
with white ink on black, labels are ``int64 (N,)``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from digitrec.data.idx import read_idx_images, read_idx_labels
from digitrec.errors import DataError

# Environment variable that points at a directory holding the four MNIST files.
DATA_ENV = "DIGITREC_DATA"

SPLITS = ("train", "test")

# Canonical file stems per split: (images, labels).
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# md5 of the canonical gzip files, as published with the dataset.
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

MNIST_SIZES = {"train": 60_000, "test": 10_000}



def default_cache_dir() -> Path:
    """The per-user cache directory, ``~/.cache/digitrec`` on Linux."""
    from platformdirs import user_cache_path

    return user_cache_path("digitrec")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Pick the MNIST directory: explicit argument, then ``$DIGITREC_DATA``, then the cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return default_cache_dir() / "mnist"


def find_file(data_dir: Path, stem: str) -> Path:
    """Return ``stem.gz`` or the raw ``stem`` inside ``data_dir``; raise if neither exists."""
    for name in (stem + ".gz", stem):
        path = data_dir / name
        if path.is_file():
            return path
    raise DataError(
        f"MNIST file {stem}.gz not found in {data_dir}; run `digitrec data fetch` "
        f"or point --data-dir / ${DATA_ENV} at a folder with the MNIST files"
    )


def load_mnist(
    split: str, data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST split.

    Args:
        split: ``"train"`` (60,000 digits) or ``"test"`` (10,000 digits).
        data_dir: Folder with the four MNIST files; see :func:`resolve_data_dir`.

    Returns:
        ``(images uint8 (N, 28, 28), labels int64 (N,))``.
    """
    if split not in MNIST_FILES:
        raise DataError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    folder = resolve_data_dir(data_dir)
    img_stem, lbl_stem = MNIST_FILES[split]
    img_path, lbl_path = find_file(folder, img_stem), find_file(folder, lbl_stem)
    images, labels = read_idx_images(img_path), read_idx_labels(lbl_path)
    if len(images) != len(labels):
        raise DataError(
            f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels"
        )
    return images, labels


def md5_file(path: Path) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def md5_status(data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """For each canonical ``.gz`` file: ``"ok"``, ``"missing"`` or ``"MISMATCH (<md5>)"``.

    A raw (already unzipped) IDX file is reported as ``"raw file, not checked"``.
    """
    folder = resolve_data_dir(data_dir)
    status = {}
    for name, want in MNIST_MD5.items():
        path = folder / name
        if path.is_file():
            got = md5_file(path)
            status[name] = "ok" if got == want else f"MISMATCH ({got})"
        elif (folder / name.removesuffix(".gz")).is_file():
            status[name] = "raw file, not checked"
        else:
            status[name] = "missing"
    return status


def class_counts(labels: np.ndarray) -> list[int]:
    """Number of examples of each digit 0..9."""
    return np.bincount(labels, minlength=10).tolist()


def train_val_split(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into (train indices, validation indices).

    The validation set is carved from the training set, so the test set is never used to
    choose hyperparameters or epochs.
    """
    if not 0 <= val_size < n:
        raise DataError(f"--val-size must be in 0..{n - 1}, got {val_size}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])
