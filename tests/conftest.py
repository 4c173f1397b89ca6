"""Shared fixtures: the real MNIST directory and small real slices of it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from digitrec.data.specs import has_files, load_mnist

REPO = Path(__file__).resolve().parent.parent


def _find_mnist() -> Path:
    """$DIGITREC_DATA, else ../shared/data/mnist beside the repo (as in CI), else the cache."""
    from digitrec.data.specs import default_cache_dir

    candidates = [
        os.environ.get("DIGITREC_DATA"),
        REPO.parent / "shared/data/mnist",
        default_cache_dir() / "mnist",
    ]
    for cand in candidates:
        if cand and has_files(Path(cand), "mnist"):
            return Path(cand)
    raise RuntimeError(
        "MNIST not found: set DIGITREC_DATA, place it at ../shared/data/mnist, "
        "or run `digitrec data fetch`"
    )


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return _find_mnist()


@pytest.fixture(scope="session")
def mnist_train(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    return load_mnist("train", mnist_dir)


@pytest.fixture(scope="session")
def mnist_test(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    return load_mnist("test", mnist_dir)


@pytest.fixture(scope="session")
def mnist(mnist_test: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The first 500 MNIST test digits and labels: enough for the image-path tests."""
    images, labels = mnist_test
    return images[:500], labels[:500]


def corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images' pixels (1.0: the same picture up to contrast)."""
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


@pytest.fixture(autouse=True)
def _data_env(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Point DIGITREC_DATA at real MNIST so in-process CLI calls find it like a user's would."""
    if "no_data_env" not in request.keywords:
        monkeypatch.setenv("DIGITREC_DATA", str(_find_mnist()))


@pytest.fixture(scope="session")
def fast_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `fast` model trained once per session on all 60k images (about 20 s on 1 core).

    One thread: two torch threads slow down many times over when another process holds a core.
    """
    from digitrec.training import TrainConfig, train

    out = tmp_path_factory.mktemp("fast") / "run"
    train(
        TrainConfig(
            model="fast",
            val_size=0,
            device="cpu",
            out=str(out),
            threads=1,
            data_dir=str(_find_mnist()),
        )
    )
    return out
