"""Metrics against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.inference.metrics import classification_report, confusion_matrix


def _one_hot(preds: list[int], num_classes: int = 3) -> np.ndarray:
    """Probabilities that put 0.8 on the predicted class (argmax = ``preds``)."""
    probs = np.full((len(preds), num_classes), 0.2 / (num_classes - 1), dtype=np.float32)
    probs[np.arange(len(preds)), preds] = 0.8
    return probs


def test_precision_recall_f1_by_hand() -> None:
    # true:  0 0 0 1 1 2
    # pred:  0 0 1 1 2 2
    labels = np.array([0, 0, 0, 1, 1, 2])
    report = classification_report(_one_hot([0, 0, 1, 1, 2, 2]), labels)
    assert report["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report["accuracy"] == pytest.approx(4 / 6) and report["errors"] == 2
    # class 0: tp 2, predicted 2, true 3 -> P 1, R 2/3, F1 0.8
    # class 1: tp 1, predicted 2, true 2 -> P 1/2, R 1/2, F1 1/2
    # class 2: tp 1, predicted 2, true 1 -> P 1/2, R 1, F1 2/3
    want = [(1.0, 2 / 3, 0.8, 3), (0.5, 0.5, 0.5, 2), (0.5, 1.0, 2 / 3, 1)]
    for row, (p, r, f1, support) in zip(report["per_class"], want, strict=True):
        assert row["precision"] == pytest.approx(p)
        assert row["recall"] == pytest.approx(r)
        assert row["f1"] == pytest.approx(f1)
        assert row["support"] == support
    assert report["loss"] == pytest.approx(-(4 * np.log(0.8) + 2 * np.log(0.1)) / 6, rel=1e-5)


def test_a_class_never_predicted_has_zero_precision_not_nan() -> None:
    report = classification_report(_one_hot([0, 0]), np.array([0, 1]))
    assert report["per_class"][1] == {
        "class": 1,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 1,
    }
    assert report["per_class"][2]["support"] == 0


def test_confusion_matrix_rows_are_true_labels() -> None:
    cm = confusion_matrix(np.array([2, 2, 0]), np.array([1, 2, 0]), num_classes=3)
    assert cm.tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
