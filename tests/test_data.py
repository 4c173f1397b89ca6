"""The MNIST loader on real files and on tiny broken fixtures."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from digitrec.data.specs import (
    MNIST,
    checksum_status,
    load_mnist,
    load_split,
    resolve_data_dir,
    train_val_split,
)
from digitrec.errors import DataError
from idx_fixtures import idx_images, idx_labels, write_split

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_shapes_and_counts(mnist_train, mnist_test) -> None:
    for (images, labels), n, counts in (
        (mnist_train, 60_000, TRAIN_COUNTS),
        (mnist_test, 10_000, TEST_COUNTS),
    ):
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int64
        assert np.bincount(labels, minlength=10).tolist() == counts
    # MNIST digits are white ink on black: the border is background (0).
    assert mnist_test[0][:, 0, :].max() == 0


def test_real_mnist_sha256(mnist_dir: Path) -> None:
    assert checksum_status("mnist", mnist_dir) == dict.fromkeys(MNIST.sha256, "ok")
    images, _ = load_split("mnist", "test", mnist_dir, verify=True)
    assert images.shape == (10_000, 28, 28)


def test_checksums_cover_raw_files(mnist_dir: Path, tmp_path: Path) -> None:
    """An unzipped file is checked by its content too (md5 of the .gz could not do that)."""
    raw = gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw)  # wrong content
    status = checksum_status("mnist", tmp_path)
    assert status["t10k-labels-idx1-ubyte"] == "ok"
    assert status["t10k-images-idx3-ubyte"].startswith("MISMATCH")
    assert status["train-images-idx3-ubyte"] == "missing"


def test_data_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path / "env"))
    assert resolve_data_dir("mnist", tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("DIGITREC_DATA")
    assert resolve_data_dir().parts[-2:] == ("digitrec", "mnist")


@pytest.fixture
def tiny() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.array([0, 1, 2, 3, 9])


@pytest.mark.parametrize("gz", [True, False])
def test_tiny_valid_roundtrip(tmp_path: Path, tiny, gz: bool) -> None:
    images, labels = tiny
    write_split(tmp_path, "test", idx_images(images), idx_labels(labels), gz=gz)
    got_x, got_y = load_mnist("test", tmp_path)
    np.testing.assert_array_equal(got_x, images)
    np.testing.assert_array_equal(got_y, labels)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda x, y: (idx_images(x, magic=2049), idx_labels(y)), "bad magic number 2049"),
        (lambda x, y: (idx_images(x), idx_labels(y, magic=2051)), "bad magic number 2051"),
        (lambda x, y: (idx_images(x)[:-100], idx_labels(y)), "truncated"),
        (lambda x, y: (idx_images(x, count=6), idx_labels(y)), "truncated"),
        (lambda x, y: (idx_images(x), idx_labels(y, count=4)), "trailing bytes"),
        (lambda x, y: (idx_images(x), idx_labels(y[:4])), "has 5 images but"),
        (lambda x, y: (idx_images(x)[:10], idx_labels(y)), "too short for an IDX header"),
        (lambda x, y: (idx_images(x[:, :, :27]), idx_labels(y)), "expected 28x28"),
        (lambda x, y: (idx_images(x), idx_labels(y + 10)), "out of range"),
    ],
)
def test_broken_files_name_the_file_and_problem(tmp_path: Path, tiny, make, message) -> None:
    images, labels = make(*tiny)
    write_split(tmp_path, "test", images, labels)
    with pytest.raises(DataError, match=message) as info:
        load_mnist("test", tmp_path)
    assert "idx" in str(info.value)  # names the file


def test_corrupt_gzip(tmp_path: Path, tiny) -> None:
    write_split(tmp_path, "test", idx_images(tiny[0]), idx_labels(tiny[1]))
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_images(tiny[0]))[:-20])  # cut the gzip stream short
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: cannot read"):
        load_mnist("test", tmp_path)


def test_missing_files_and_bad_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found in .*data fetch"):
        load_mnist("train", tmp_path)
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_mnist("val", tmp_path)


def test_train_val_split_is_seeded_and_disjoint() -> None:
    tr, va = train_val_split(100, 10, seed=3)
    _, va2 = train_val_split(100, 10, seed=3)
    assert len(va) == 10 and len(tr) == 90 and not set(tr) & set(va)
    np.testing.assert_array_equal(va, va2)
    assert not np.array_equal(va, train_val_split(100, 10, seed=4)[1])
    with pytest.raises(DataError, match="val-size"):
        train_val_split(100, 100, seed=0)
