"""``evaluate_checkpoint``: a saved model on a dataset split, with metrics and per-image output."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from digitrec.data import dataset_of, load_split, train_val_split
from digitrec.errors import DigitrecError
from digitrec.inference.metrics import classification_report
from digitrec.inference.predictor import Predictor

SPLITS = ("test", "val", "train")


@dataclass
class Evaluation:
    """What ``evaluate_checkpoint`` returns.

    Attributes:
        report: accuracy, loss, errors, per-class precision/recall/F1 and the confusion matrix.
        probs: float32 (N, C) class probabilities, one row per image.
        labels: int64 (N,) true labels.
        indices: int64 (N,) each image's index in the dataset split it came from.
        dataset: the dataset's name (``mnist``, ``fashion-mnist``, ``idx:FOLDER`` ...).
    """

    report: dict[str, Any]
    probs: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    dataset: str = "mnist"


def split_images(
    meta: dict[str, Any],
    split: str,
    data_dir: str | os.PathLike | None,
    dataset: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images, labels, indices)`` of a split; ``val``/``train`` re-derive the run's split.

    ``dataset`` None means the one the checkpoint was trained on (``mnist`` for old ones).
    """
    if split not in SPLITS:
        raise DigitrecError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    dataset = dataset or dataset_of(meta)
    if split == "test":
        images, labels = load_split(dataset, "test", data_dir)
        return images, labels, np.arange(len(images))
    if meta.get("same_val_split") is False:  # an ensemble whose members held out different images
        raise DigitrecError(
            f"the ensemble's members were trained on different splits (seeds or --val-size), so "
            f"no {split} image is held out from all of them; evaluate it on --split test"
        )
    images, labels = load_split(dataset, "train", data_dir)
    cfg = meta.get("train_config") or {}
    val_size, seed = int(cfg.get("val_size") or 0), int(cfg.get("seed") or 0)
    if split == "val" and not val_size:
        raise DigitrecError("this model was trained without a validation split (--val-size 0)")
    pick = np.arange(len(images))
    if val_size:
        train_idx, val_idx = train_val_split(len(images), val_size, seed)
        pick = val_idx if split == "val" else train_idx
    return images[pick], labels[pick], pick


def evaluate_checkpoint(
    path: str | os.PathLike,
    split: str = "test",
    data_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    tta: bool = False,
    dataset: str | None = None,
) -> Evaluation:
    """Evaluate a checkpoint, run directory or ONNX export on a split of a dataset.

    ``val`` is the run's own held-out split and ``train`` the rest of its training images,
    both re-derived from the seed and size saved in the checkpoint. ``dataset`` defaults to
    the one recorded in the checkpoint (``mnist`` for checkpoints that record none).
    """
    predictor = Predictor.from_checkpoint(path, device=device, tta=tta)
    dataset = dataset or dataset_of(predictor.meta)
    try:
        images, labels, indices = split_images(predictor.meta, split, data_dir, dataset)
    except DigitrecError as exc:
        raise DigitrecError(f"{path}: {exc}") from None
    probs = predictor.predict_proba(images)
    if labels.size and int(labels.max()) >= probs.shape[1]:
        raise DigitrecError(
            f"{path}: {dataset} has label {int(labels.max())}, but the model knows only "
            f"{probs.shape[1]} classes"
        )
    report = classification_report(probs, labels)
    report.update(
        split=split,
        dataset=dataset,
        checkpoint=str(path),
        arch=predictor.meta["arch"],
        tta=tta,
    )
    return Evaluation(report, probs, labels, indices, dataset)
