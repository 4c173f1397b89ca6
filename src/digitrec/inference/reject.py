"""The "not a digit" reject rule (issue 14): a score, a threshold, a decision.

A model trained with an extra "not a digit" class (``Recipe.nondigit_source``) gives, per image,
class probabilities ``p`` of shape (N, 11). The reject score is the probability that the image
is *not* a digit, ``1 - max(p[:, :10])``: high for letters, doodles and noise, low for digits.
For a 10-class model the same formula is the max-softmax baseline.

The threshold is chosen on held-out *digits* (never test data) so that a stated fraction of them
is accepted, and is stored in the checkpoint metadata::

    meta["reject"] = {"score": "1-max-digit-prob", "threshold": t, "accept_rate": 0.995, ...}

An image is rejected when its score is above the threshold.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from digitrec.errors import CheckpointError

SCORE = "1-max-digit-prob"
# Real digits accepted at the calibrated threshold, by default.
ACCEPT_RATE = 0.995
NUM_DIGITS = 10


def reject_score(proba: np.ndarray) -> np.ndarray:
    """``float32 (N,)`` reject scores in 0..1 from class probabilities ``(N, C)``, C >= 10."""
    proba = np.asarray(proba, dtype=np.float32)
    return (1.0 - proba[:, :NUM_DIGITS].max(axis=1)).astype(np.float32)


def choose_threshold(digit_scores: np.ndarray, accept_rate: float = ACCEPT_RATE) -> float:
    """The smallest threshold that accepts ``accept_rate`` of these held-out digits' scores."""
    if not 0 < accept_rate <= 1:
        raise ValueError(f"accept_rate must be in (0, 1], got {accept_rate}")
    scores = np.sort(np.asarray(digit_scores, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("no digit scores to calibrate on")
    k = int(np.ceil(accept_rate * scores.size)) - 1  # index of the last accepted score
    return float(scores[k])


def reject_info(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint's reject record, type-checked, or None when it has none."""
    info = meta.get("reject")
    if info is None:
        return None
    if (
        not isinstance(info, dict)
        or info.get("score") != SCORE
        or not isinstance(info.get("threshold"), int | float)
    ):
        raise CheckpointError(f"unusable reject record in checkpoint metadata: {info!r}")
    return info


def decide(proba: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(digits int64 (N,), rejected bool (N,), score float32 (N,))``.

    ``digits`` is the argmax over the ten digit classes only, so a rejected image still has a
    best-guess digit (what ``--no-reject`` and ``submit`` print).
    """
    proba = np.asarray(proba)
    score = reject_score(proba)
    digits = proba[:, :NUM_DIGITS].argmax(axis=1).astype(np.int64)
    return digits, score > threshold, score


def calibrate_reject(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    digits: np.ndarray,
    accept_rate: float = ACCEPT_RATE,
    source: str = "",
) -> dict[str, Any]:
    """Choose the threshold on held-out ``digits`` (uint8 (N, 28, 28)); write ``out`` atomically.

    ``out`` is ``checkpoint`` with ``meta["reject"]`` added (it may be the same path). Returns
    the reject record.
    """
    import torch

    from digitrec.inference.checkpoint import load_checkpoint, save_checkpoint
    from digitrec.inference.predictor import Predictor

    pred = Predictor.from_checkpoint(checkpoint)
    scores = reject_score(pred.predict_proba(digits))
    threshold = choose_threshold(scores, accept_rate)
    info = {
        "score": SCORE,
        "threshold": threshold,
        "accept_rate": accept_rate,
        "calibrated_on": source or f"{len(digits)} held-out digits",
        "accepted": float(np.mean(scores <= threshold)),
    }
    ckpt = load_checkpoint(checkpoint)
    meta = {**ckpt.meta, "reject": info}
    state = {k: v.to(torch.float32) for k, v in ckpt.model.state_dict().items()}
    save_checkpoint(Path(out), state, meta)
    return info


def describe(info: dict[str, Any] | None) -> str:
    """One line for logs and ``--help``: the rule in words."""
    if info is None:
        return "no reject threshold in this checkpoint"
    return f"reject when {info['score']} > {info['threshold']:.4g} " + json.dumps(
        {"accept_rate": info.get("accept_rate")}
    )
