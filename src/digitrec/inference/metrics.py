"""Metrics: accuracy, mean loss, per-class precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitrec.inference.logits import predict_logits


def evaluate_tensors(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, tta: bool = False
) -> dict[str, float]:
    """Accuracy and mean cross-entropy of a model on normalised tensors."""
    logits = predict_logits(model, x, tta=tta).float()
    return {
        "accuracy": (logits.argmax(1) == y).float().mean().item(),
        "loss": F.cross_entropy(logits, y).item(),
        "n": len(y),
    }


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """``cm[true, predicted]`` counts, ``int64 (C, C)``."""
    return np.bincount(labels * num_classes + preds, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def classification_report(probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Everything ``digitrec evaluate`` reports, from probabilities ``(N, C)`` and labels."""
    num_classes = probs.shape[1]
    preds = probs.argmax(1)
    cm = confusion_matrix(labels, preds, num_classes)
    tp = np.diag(cm).astype(np.float64)
    precision = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    recall = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    picked = probs[np.arange(len(labels)), labels]
    return {
        "n": len(labels),
        "accuracy": float((preds == labels).mean()),
        "loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
        "errors": int((preds != labels).sum()),
        "per_class": [
            {
                "class": c,
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(cm[c].sum()),
            }
            for c in range(num_classes)
        ],
        "confusion": cm.tolist(),
    }


def format_report(report: dict[str, Any]) -> str:
    """Human-readable text: headline, per-class table and confusion matrix."""
    lines = [
        f"accuracy: {report['accuracy']:.4f} ({report['n'] - report['errors']}/{report['n']})"
        f"   mean loss: {report['loss']:.4f}",
        "",
        f"{'class':>5} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}",
    ]
    for row in report["per_class"]:
        lines.append(
            f"{row['class']:>5} {row['precision']:>9.4f} {row['recall']:>7.4f} "
            f"{row['f1']:>7.4f} {row['support']:>8}"
        )
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    lines.append("     " + "".join(f"{c:>6}" for c in range(len(report["confusion"]))))
    for c, row in enumerate(report["confusion"]):
        lines.append(f"{c:>5}" + "".join(f"{v:>6}" for v in row))
    return "\n".join(lines)
