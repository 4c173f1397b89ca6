"""Training on every kind of DatasetSpec: Fashion-MNIST, a user's IDX folder, a Kaggle CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitrec.cli import main
from digitrec.data.kaggle import write_kaggle_csv
from digitrec.errors import DigitrecError
from digitrec.inference.checkpoint import load_checkpoint
from digitrec.inference.evaluate import evaluate_checkpoint
from digitrec.training import TrainConfig, train
from idx_fixtures import find_fashion_mnist, user_dataset


def _cfg(out: Path, **kw: object) -> TrainConfig:
    base: dict = dict(
        model="fast", max_steps=40, train_limit=3000, val_size=500, threads=1, out=str(out)
    )
    return TrainConfig(**{**base, **kw})


def test_fashion_mnist_end_to_end(tmp_path: Path) -> None:
    data = str(find_fashion_mnist())
    result = train(_cfg(tmp_path / "run", dataset="fashion-mnist", data_dir=data))
    assert not result.interrupted
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.meta["dataset"]["name"] == "fashion-mnist"
    assert ckpt.meta["dataset"]["class_names"][9] == "Ankle boot"
    # Standardised with Fashion-MNIST's own statistics, not MNIST's.
    assert ckpt.preprocessing.mean == pytest.approx(0.286) and ckpt.preprocessing.std == 0.353
    # evaluate picks the checkpoint's dataset: Fashion-MNIST's 10,000 test images.
    ev = evaluate_checkpoint(tmp_path / "run", "test", data_dir=data)
    assert ev.report["n"] == 10_000 and ev.report["accuracy"] > 0.5  # 40 steps: far above 0.1


def test_a_user_folder_sets_the_number_of_classes(tmp_path: Path) -> None:
    user_dataset(
        tmp_path / "data", size=(28, 28), num_classes=5, counts={"train": 600, "test": 100}
    )
    train(
        _cfg(tmp_path / "run", dataset=f"idx:{tmp_path / 'data'}", train_limit=None, val_size=100)
    )
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.meta["arch_kwargs"]["num_classes"] == 5
    assert ckpt.model.head[-1].out_features == 5
    ev = evaluate_checkpoint(tmp_path / "run", "test")
    assert ev.probs.shape == (100, 5)


def test_images_of_another_size_are_refused(tmp_path: Path) -> None:
    user_dataset(tmp_path / "data", size=(32, 32), num_classes=3, counts={"train": 60, "test": 9})
    with pytest.raises(DigitrecError, match="32x32; the models here take 28x28"):
        train(_cfg(tmp_path / "run", dataset=f"idx:{tmp_path / 'data'}", val_size=10))


def test_train_csv_trains_and_skips_the_missing_test_split(
    tmp_path: Path, mnist: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = mnist
    csv = tmp_path / "train.csv"
    write_kaggle_csv(csv, images, labels)
    run = tmp_path / "run"
    args = ["train", "--train-csv", str(csv), "--max-steps", "5", "--val-size", "100"]
    assert main([*args, "--threads", "1", "--out", str(run), "--no-report"]) == 0
    assert "no test split" in capsys.readouterr().err
    assert load_checkpoint(run).meta["dataset"]["name"].startswith("kaggle-csv:")
    assert not (run / "test_metrics.json").exists()
    # --resume keeps the run's dataset and refuses another one.
    assert main(["train", "--resume", str(run), "--dataset", "mnist"]) == 1
    assert "--dataset cannot change a resumed run" in capsys.readouterr().err
