"""Dataset specs: the registry, Fashion-MNIST, a user's IDX folder, Kaggle CSV, data-dir order."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest

from digitrec.cli import main
from digitrec.data import specs
from digitrec.data.kaggle import write_kaggle_csv
from digitrec.data.specs import (
    FASHION_MNIST,
    MNIST,
    checksum_status,
    dataset_of,
    get_dataset,
    list_datasets,
    load_split,
    pixel_mean_std,
    resolve_data_dir,
)
from digitrec.errors import DataError
from digitrec.inference.evaluate import split_images
from idx_fixtures import find_fashion_mnist, idx_images, idx_labels, user_dataset, write_split


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    return find_fashion_mnist()


@pytest.fixture(scope="session")
def fashion_train(fashion_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    return load_split("fashion-mnist", "train", fashion_dir, verify=True)


def test_registry() -> None:
    assert list_datasets() == ["mnist", "fashion-mnist"]
    assert get_dataset(None) is MNIST and get_dataset("mnist") is MNIST
    assert get_dataset(FASHION_MNIST) is FASHION_MNIST
    for spec in (MNIST, FASHION_MNIST):
        stems = sorted(stem for pair in spec.files.values() for stem in pair)
        assert sorted(spec.sha256) == stems and all(len(h) == 64 for h in spec.sha256.values())
        assert spec.image_size == (28, 28) and spec.num_classes == len(spec.class_names) == 10
        assert spec.split_sizes == {"train": 60_000, "test": 10_000} and spec.mirrors
    assert MNIST.class_names == tuple("0123456789")
    assert FASHION_MNIST.class_names[0] == "T-shirt/top" and FASHION_MNIST.class_names[9] == (
        "Ankle boot"
    )
    with pytest.raises(DataError, match="unknown dataset 'nope'; choose from mnist, fashion"):
        get_dataset("nope")


def test_user_dataset_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    for name in (f"idx:{tmp_path}/mine", str(tmp_path / "mine"), "./mine", "idx:mine"):
        spec = get_dataset(name)
        assert spec.name == f"idx:{tmp_path}/mine" and spec.path == tmp_path / "mine"
        assert spec.num_classes is None and spec.image_size is None  # read from the data
    with pytest.raises(DataError, match="does not exist"):
        get_dataset("idx:nowhere")
    with pytest.raises(DataError, match="no such file"):
        get_dataset("kaggle-csv:train.csv")


def test_fashion_mnist_loads_and_verifies(fashion_dir: Path, fashion_train) -> None:
    images, labels = fashion_train
    assert images.shape == (60_000, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [6000] * 10
    test_x, test_y = load_split("fashion-mnist", "test", fashion_dir, verify=True)
    assert test_x.shape == (10_000, 28, 28) and np.bincount(test_y).tolist() == [1000] * 10
    assert checksum_status("fashion-mnist", fashion_dir) == dict.fromkeys(
        FASHION_MNIST.sha256, "ok"
    )
    # The spec's normalisation is the training split's, to the 4 decimals it is given with.
    mean, std = pixel_mean_std(images)
    assert (round(mean, 4), round(std, 4)) == (FASHION_MNIST.mean, FASHION_MNIST.std)


def test_mnist_spec_statistics(mnist_train) -> None:
    mean, std = pixel_mean_std(mnist_train[0])
    assert (round(mean, 4), round(std, 4)) == (MNIST.mean, MNIST.std)


def test_sha256_verification_refuses_changed_content(fashion_dir: Path, tmp_path: Path) -> None:
    for stem in FASHION_MNIST.files["test"]:
        (tmp_path / f"{stem}.gz").write_bytes((fashion_dir / f"{stem}.gz").read_bytes())
    labels = gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())
    changed = labels[:-1] + bytes([(labels[-1] + 1) % 10])  # still a valid label file
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(changed))
    assert load_split("fashion-mnist", "test", tmp_path)[1].shape == (10_000,)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: sha256 of the content is"):
        load_split("fashion-mnist", "test", tmp_path, verify=True)
    status = checksum_status("fashion-mnist", tmp_path)
    assert status["t10k-labels-idx1-ubyte"].startswith("MISMATCH")
    assert (
        status["t10k-images-idx3-ubyte"] == "ok" and status["train-images-idx3-ubyte"] == "missing"
    )


def test_data_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fashion_dir: Path) -> None:
    monkeypatch.setattr(specs, "default_cache_dir", lambda: tmp_path / "cache")
    monkeypatch.delenv("DIGITREC_DATA_FASHION_MNIST", raising=False)
    spec = dataclasses.replace(
        FASHION_MNIST, system_dirs=(str(tmp_path / "none"), str(fashion_dir))
    )
    assert resolve_data_dir(spec) == fashion_dir  # the first system copy holding every file
    assert resolve_data_dir(spec, system=False) == tmp_path / "cache/fashion-mnist"
    monkeypatch.setenv("DIGITREC_DATA_FASHION_MNIST", str(tmp_path / "env"))
    assert resolve_data_dir(spec) == tmp_path / "env"
    assert resolve_data_dir(spec, tmp_path / "arg") == tmp_path / "arg"
    # mnist keeps its own variable, which does not leak into other datasets.
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path / "mnist-env"))
    assert resolve_data_dir("mnist") == tmp_path / "mnist-env"
    monkeypatch.delenv("DIGITREC_DATA")
    assert resolve_data_dir("mnist") == tmp_path / "cache/mnist"


def test_user_idx_folder_any_size_and_classes(tmp_path: Path) -> None:
    data = user_dataset(tmp_path, size=(32, 32), num_classes=5)
    spec = get_dataset(f"idx:{tmp_path}")
    for split, (images, labels) in data.items():
        got_x, got_y = load_split(spec, split)
        np.testing.assert_array_equal(got_x, images)
        np.testing.assert_array_equal(got_y, labels)
    fitted = spec.fit(*load_split(spec, "train"))
    assert (fitted.num_classes, fitted.image_size) == (5, (32, 32))
    assert fitted.class_names == ("0", "1", "2", "3", "4")
    x = data["train"][0] / 255.0
    assert fitted.mean == pytest.approx(x.mean()) and fitted.std == pytest.approx(x.std())
    meta = {"dataset": fitted.to_meta()}
    assert meta["dataset"]["image_size"] == [32, 32] and dataset_of(meta) == spec.name
    assert FASHION_MNIST.fit(*data["train"]) == FASHION_MNIST  # a registered spec is complete
    with pytest.raises(DataError, match="does not apply"):
        load_split(spec, "train", tmp_path)


def test_user_folder_with_other_file_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 20, 24), dtype=np.uint8)
    (tmp_path / "letters-train-images-idx3-ubyte").write_bytes(idx_images(images))
    (tmp_path / "letters-train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_labels(np.array([0, 26, 3, 1])))
    )
    x, y = load_split(str(tmp_path), "train")
    assert x.shape == (4, 20, 24) and y.tolist() == [0, 26, 3, 1]
    with pytest.raises(DataError, match="not found"):
        load_split(str(tmp_path), "test")
    (tmp_path / "digits-train-images-idx3-ubyte").write_bytes(idx_images(images))
    with pytest.raises(DataError, match="several files could be train-images"):
        load_split(str(tmp_path), "train")


def test_spec_limits_are_enforced(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    write_split(tmp_path / "a", "test", idx_images(images), idx_labels(np.array([0, 12, 3])))
    with pytest.raises(DataError, match=r"label 12 out of range 0..9"):
        load_split("mnist", "test", tmp_path / "a")
    assert (
        get_dataset(str(tmp_path / "a")).fit(*load_split(str(tmp_path / "a"), "test")).num_classes
        == 13
    )
    user_dataset(tmp_path / "b", size=(32, 32), counts={"test": 3})
    with pytest.raises(DataError, match="images are 32x32, expected 28x28"):
        load_split("fashion-mnist", "test", tmp_path / "b")


def test_kaggle_csv_has_only_a_train_split(tmp_path: Path) -> None:
    images = np.random.default_rng(3).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    write_kaggle_csv(tmp_path / "train.csv", images, np.array([7, 0, 9, 1]))
    write_kaggle_csv(tmp_path / "test.csv", images)
    spec = get_dataset(f"kaggle-csv:{tmp_path}/train.csv")
    assert spec.splits == ("train",) and spec.num_classes == 10
    x, y = load_split(spec, "train")
    np.testing.assert_array_equal(x, images)
    assert y.tolist() == [7, 0, 9, 1] and y.dtype == np.int64
    with pytest.raises(DataError, match=r"has no test split \(Kaggle's test.csv has no labels\)"):
        load_split(spec, "test")
    with pytest.raises(DataError, match="no label column"):
        load_split(f"kaggle-csv:{tmp_path}/test.csv", "train")


def test_data_info_and_show_fashion_mnist(
    fashion_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DIGITREC_DATA_FASHION_MNIST", str(fashion_dir))
    assert main(["data", "info", "--dataset", "fashion-mnist"]) == 0
    out = capsys.readouterr().out
    assert f"data directory: {fashion_dir}" in out and out.count("sha256 ok") == 4
    assert "train   60000   6000  6000" in out and "test    10000   1000  1000" in out
    assert " 0 T-shirt/top     6000   1000" in out and " 9 Ankle boot      6000   1000" in out
    png = tmp_path / "shoe.png"
    assert main(["data", "show", "--dataset", "fashion-mnist", "--out", str(png)]) == 0
    assert "label 9, Ankle boot" in capsys.readouterr().out and png.is_file()


def test_data_info_user_folder_and_errors(tmp_path: Path, capsys) -> None:
    user_dataset(tmp_path, size=(32, 32), num_classes=5, counts={"train": 10})
    assert main(["data", "info", "--dataset", f"idx:{tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "no published checksums" in out and "(test split: no files)" in out
    assert (
        "per-class counts (0..4)" in out and "train      10      2     2     2     2     2" in out
    )
    assert main(["data", "info", "--dataset", "cifar"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("digitrec: error: unknown dataset 'cifar'") and err.count("\n") == 1


def test_evaluate_uses_the_checkpoints_dataset(fashion_dir: Path, mnist_dir: Path) -> None:
    fashion_meta = {"dataset": FASHION_MNIST.to_meta()}
    _, labels, idx = split_images(fashion_meta, "test", fashion_dir)
    assert np.bincount(labels).tolist() == [1000] * 10 and len(idx) == 10_000
    # Old checkpoints record no dataset: MNIST. --dataset overrides what the checkpoint says.
    assert np.bincount(split_images({}, "test", None)[1])[1] == 1135
    assert np.bincount(split_images(fashion_meta, "test", mnist_dir, "mnist")[1])[1] == 1135
    val_meta = {"dataset": "fashion-mnist", "train_config": {"val_size": 100, "seed": 1}}
    x, _, idx = split_images(val_meta, "val", fashion_dir)
    assert x.shape == (100, 28, 28) and len(set(idx.tolist())) == 100
