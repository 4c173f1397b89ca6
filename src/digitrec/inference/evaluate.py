"""``evaluate_checkpoint``: a saved model on a dataset split, with metrics and per-image output."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from digitrec.data import load_mnist, train_val_split
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
    """

    report: dict[str, Any]
    probs: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


def split_images(
    meta: dict[str, Any], split: str, data_dir: str | os.PathLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images, labels, indices)`` of a split; ``val``/``train`` re-derive the run's split."""
    if split not in SPLITS:
        raise DigitrecError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if split == "test":
        images, labels = load_mnist("test", data_dir)
        return images, labels, np.arange(len(images))
    images, labels = load_mnist("train", data_dir)
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
) -> Evaluation:
    """Evaluate a checkpoint, run directory or ONNX export on a split.

    ``val`` is the run's own held-out split and ``train`` the rest of its training images,
    both re-derived from the seed and size saved in the checkpoint.
    """
    predictor = Predictor.from_checkpoint(path, device=device, tta=tta)
    try:
        images, labels, indices = split_images(predictor.meta, split, data_dir)
    except DigitrecError as exc:
        raise DigitrecError(f"{path}: {exc}") from None
    probs = predictor.predict_proba(images)
    report = classification_report(probs, labels)
    report.update(split=split, checkpoint=str(path), arch=predictor.meta["arch"], tta=tta)
    return Evaluation(report, probs, labels, indices)
