"""Loading a dataset: where its files are, reading and checking them, checksums, splits.

Every reader in digitrec converges on the same shapes early: images are ``uint8 (N, H, W)``
(28x28 for MNIST) with white ink on black, labels are ``int64 (N,)``.

Data folder of a registered dataset, first match wins: ``--data-dir``; its environment variable
(``$DIGITREC_DATA`` for mnist, ``$DIGITREC_DATA_FASHION_MNIST`` ...); a system copy holding all
its files (Debian's ``/usr/share/datasets/fashion-mnist``); ``~/.cache/digitrec/<name>``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from digitrec.data.datasets import (
    DATA_ENV,
    FASHION_MNIST,
    MNIST,
    MNIST_FILES,
    SPLITS,
    DatasetSpec,
    dataset_of,
    get_dataset,
    list_datasets,
    pixel_mean_std,
)
from digitrec.data.idx import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    check_images,
    check_labels,
    parse_idx,
    read_bytes,
)
from digitrec.errors import DataError

__all__ = [
    "DATA_ENV",
    "FASHION_MNIST",
    "MNIST",
    "MNIST_FILES",
    "SPLITS",
    "DatasetSpec",
    "checksum_status",
    "class_counts",
    "dataset_of",
    "default_cache_dir",
    "file_sha256",
    "find_file",
    "get_dataset",
    "has_files",
    "list_datasets",
    "load_mnist",
    "load_split",
    "pixel_mean_std",
    "resolve_data_dir",
    "train_val_split",
]

Dataset = str | DatasetSpec | None  # a name for get_dataset, a spec, or None for mnist


def default_cache_dir() -> Path:
    """The per-user cache directory, ``~/.cache/digitrec`` on Linux."""
    from platformdirs import user_cache_path

    return user_cache_path("digitrec")


def _existing(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def has_files(folder: Path, dataset: Dataset = None) -> bool:
    """True when ``folder`` holds every file of the dataset (``.gz`` or raw)."""
    spec = get_dataset(dataset)
    stems = [stem for pair in spec.files.values() for stem in pair]
    return all(_existing(folder, stem) for stem in stems)


def resolve_data_dir(
    dataset: Dataset = None, data_dir: str | os.PathLike | None = None, *, system: bool = True
) -> Path:
    """The dataset's folder: ``data_dir``, then its env variable, a system copy, the cache.

    ``system=False`` skips system copies (``data fetch`` writes only where the user can).
    A user's dataset names its own folder, so ``data_dir`` must not be given for it.
    """
    spec = get_dataset(dataset)
    if spec.path is not None:
        if data_dir is not None:
            raise DataError(f"--data-dir does not apply to {spec.name}: it names its own files")
        return spec.path if spec.kind == "idx" else spec.path.parent
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(spec.env_var) if spec.env_var else None
    if env:
        return Path(env).expanduser()
    if system:
        for folder in map(Path, spec.system_dirs):
            if has_files(folder, spec):
                return folder
    return default_cache_dir() / spec.name


# Glob patterns for a user's IDX folder whose files do not have MNIST's names.
_USER_PATTERNS = {
    ("train", 0): ("*train*images*",),
    ("train", 1): ("*train*labels*",),
    ("test", 0): ("*t10k*images*", "*test*images*"),
    ("test", 1): ("*t10k*labels*", "*test*labels*"),
}


def find_file(data_dir: Path, stem: str, dataset: Dataset = None) -> Path:
    """Return ``stem.gz`` or the raw ``stem`` inside ``data_dir``; raise if neither exists."""
    spec = get_dataset(dataset)
    path = _existing(data_dir, stem)
    if path is None and spec.is_user_data:
        split, which = next(
            (s, i) for s, pair in spec.files.items() for i, st in enumerate(pair) if st == stem
        )
        hits = {
            p.name.removesuffix(".gz"): p
            for pattern in _USER_PATTERNS[split, which]
            for p in sorted(data_dir.glob(pattern))
            if p.is_file() and not p.name.startswith(".")
        }
        if len(hits) > 1:
            raise DataError(f"{data_dir}: several files could be {stem}: {', '.join(hits)}")
        path = next(iter(hits.values()), None)
    if path is None:
        where = f"--data-dir / ${spec.env_var}" if spec.env_var else "--data-dir"
        fetch = "" if spec.is_user_data else f"run `digitrec data fetch --dataset {spec.name}` or "
        raise DataError(
            f"{spec.name} file {stem}.gz not found in {data_dir}; "
            f"{fetch}point {where} at a folder with the {spec.name} files"
        )
    return path


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's decompressed content (``.gz`` is gunzipped first)."""
    return hashlib.sha256(read_bytes(path)).hexdigest()


def load_split(
    dataset: Dataset, split: str, data_dir: str | os.PathLike | None = None, *, verify: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of a dataset, checked against its spec.

    Args:
        dataset: a name (``mnist``, ``fashion-mnist``, ``idx:FOLDER``, ``kaggle-csv:FILE``),
            a spec, or None for mnist.
        split: ``"train"`` or ``"test"``.
        data_dir: the dataset's folder; see :func:`resolve_data_dir`.
        verify: also check each file's sha256 against the spec (registered datasets).

    Returns:
        ``(images uint8 (N, H, W), labels int64 (N,))``.
    """
    spec = get_dataset(dataset)
    if split not in spec.files:
        if split in SPLITS:
            why = " (Kaggle's test.csv has no labels)" if spec.kind == "kaggle-csv" else ""
            raise DataError(f"{spec.name} has no {split} split{why}")
        raise DataError(f"unknown split {split!r}; choose from {', '.join(spec.splits)}")
    if spec.kind == "kaggle-csv":
        return _load_kaggle(spec)
    folder = resolve_data_dir(spec, data_dir)
    arrays = []
    for stem, magic in zip(spec.files[split], (IMAGES_MAGIC, LABELS_MAGIC), strict=True):
        path = find_file(folder, stem, spec)
        raw = read_bytes(path)
        want = spec.sha256.get(stem)
        if verify and want and (got := hashlib.sha256(raw).hexdigest()) != want:
            raise DataError(f"{path}: sha256 of the content is {got}, expected {want}")
        arrays.append((parse_idx(raw, expect_magic=magic, name=str(path)), str(path)))
    (images, img_name), (labels, lbl_name) = arrays
    images = check_images(images, spec.image_size, img_name)
    labels = check_labels(labels, spec.num_classes, lbl_name)
    if len(images) != len(labels):
        raise DataError(
            f"{img_name} has {len(images)} images but {lbl_name} has {len(labels)} labels"
        )
    return images, labels


def _load_kaggle(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    from digitrec.data.kaggle import read_kaggle_csv

    assert spec.path is not None  # kaggle specs are always a user's file
    images, labels = read_kaggle_csv(spec.path)
    if labels is None:
        raise DataError(f"{spec.path}: no label column; a training CSV starts with 'label'")
    return images, check_labels(labels, spec.num_classes, str(spec.path))


def load_mnist(
    split: str, data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST split: ``load_split("mnist", split, data_dir)``.

    Returns:
        ``(images uint8 (N, 28, 28), labels int64 (N,))``; 60,000 train, 10,000 test.
    """
    return load_split(MNIST, split, data_dir)


def checksum_status(
    dataset: Dataset = None, data_dir: str | os.PathLike | None = None
) -> dict[str, str]:
    """For each file with a published sha256: ``"ok"``, ``"missing"`` or ``"MISMATCH (<sha>)"``.

    Keys are file stems (``train-images-idx3-ubyte``); the ``.gz`` or raw file is checked
    alike, by its decompressed content. A user's dataset has no checksums: ``{}``.
    """
    spec = get_dataset(dataset)
    folder = resolve_data_dir(spec, data_dir)
    status = {}
    for stem, want in spec.sha256.items():
        path = _existing(folder, stem)
        if path is None:
            status[stem] = "missing"
            continue
        try:
            got = file_sha256(path)
        except DataError:
            got = "unreadable"
        status[stem] = "ok" if got == want else f"MISMATCH ({got})"
    return status


def class_counts(labels: np.ndarray, num_classes: int = 10) -> list[int]:
    """Number of examples of each class ``0..num_classes-1``."""
    return np.bincount(labels, minlength=num_classes).tolist()


def train_val_split(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into (train indices, validation indices).

    The validation set is carved from the training set, so the test set is never used to
    choose hyperparameters or epochs.
    """
    if not 0 <= val_size < n:
        raise DataError(f"--val-size must be in 0..{n - 1}, got {val_size}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])
