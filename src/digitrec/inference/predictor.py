"""One inference path for the CLI, the server and the tests: ``Predictor``."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.inference.checkpoint import load_checkpoint
from digitrec.inference.device import pick_device
from digitrec.inference.logits import predict_logits
from digitrec.models import Preprocessing, fold_batchnorm, to_input


def _as_pixels(images: object, side: int) -> np.ndarray:
    """``uint8 (N, side, side)`` from what a caller passed, or DigitrecError (never a silent
    cast: ``x / 255`` cast to uint8 is all zeros, and -1 wraps to 255)."""
    try:
        arr = np.asarray(images)
    except (ValueError, TypeError) as exc:  # ragged nested lists, unconvertible objects
        raise DigitrecError(f"expected an array of images: {exc}") from None
    if arr.size == 0:
        return np.zeros((0, side, side), dtype=np.uint8)
    if arr.shape[-2:] != (side, side) or arr.ndim not in (2, 3):
        raise DigitrecError(
            f"expected images of shape (N, {side}, {side}) or ({side}, {side}), "
            f"got {tuple(arr.shape)}"
        )
    if arr.dtype == np.uint8:
        return arr.reshape(-1, side, side)
    numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if not numeric:  # bool, complex, strings, objects
        raise DigitrecError(f"expected uint8 0..255 pixels (got {arr.dtype} values)")
    low, high = arr.min().item(), arr.max().item()  # plain Python numbers for the messages
    if isinstance(low, float):
        if not (math.isfinite(low) and math.isfinite(high)):
            raise DigitrecError("expected uint8 0..255 pixels (got NaN or infinite values)")
        if (arr != np.round(arr)).any():
            if low >= 0 and high <= 1:
                got = "float values in 0..1: multiply by 255"
            else:
                got = f"float values in {low:g}..{high:g}, not whole numbers"
            raise DigitrecError(f"expected uint8 0..255 pixels (got {got})")
    if low < 0 or high > 255:
        raise DigitrecError(f"expected uint8 0..255 pixels (got values in {low:g}..{high:g})")
    return arr.astype(np.uint8).reshape(-1, side, side)


@dataclass
class Predictor:
    """A model in eval mode plus the preprocessing it was trained with."""

    model: nn.Module
    preprocessing: Preprocessing
    device: torch.device
    meta: dict
    tta: bool = False  # average over 1-pixel shifted views (5x the compute)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str = "cpu", tta: bool = False
    ) -> Predictor:
        """Load a checkpoint file, run directory, ONNX export or ensemble file; each describes
        itself.

        An ``.onnx`` file (from :func:`digitrec.inference.onnx.export_onnx`) runs on ONNX Runtime
        (CPU). A ``.json`` ensemble file (:mod:`digitrec.inference.ensemble`) averages its
        members' probabilities.
        """
        dev = pick_device(device)
        model, pre, meta = load_model(path, dev)
        return cls(model, pre, dev, meta, tta)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``float32 (N, C)`` for MNIST-style ``uint8 (N, 28, 28)``.

        C is the checkpoint's ``num_classes``: 10, or 11 for the ``splitter``. One image may
        be given as ``(28, 28)``. Other integer types and float arrays holding whole numbers in
        0..255 are accepted too; anything else (floats scaled to 0..1, values outside 0..255,
        another shape) raises DigitrecError instead of being silently cast.
        """
        images = _as_pixels(images, self.preprocessing.input_size)
        if len(images) == 0:
            return np.zeros((0, self.preprocessing.num_classes), dtype=np.float32)
        x = to_input(images, self.preprocessing, self.device)
        logits = predict_logits(self.model, x, tta=self.tta).float()
        return torch.softmax(logits, 1).cpu().numpy()

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted digits ``int64 (N,)``."""
        return self.predict_proba(images).argmax(1)

    @property
    def reject_threshold(self) -> float | None:
        """The calibrated "not a digit" threshold of ``meta["reject"]``, or None (issue 14)."""
        from digitrec.inference.reject import reject_info

        info = reject_info(self.meta)
        return None if info is None else float(info["threshold"])

    def predict_with_reject(
        self, images: np.ndarray, reject: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(digits int64 (N,), probs float32 (N, 10), rejected bool (N,), score float32 (N,))``.

        ``digits`` is the most likely digit 0-9 (also for a rejected image); ``rejected`` is
        set where the reject score (:mod:`digitrec.inference.reject`) exceeds the checkpoint's
        threshold. Without a threshold, or with ``reject=False``, nothing is rejected.
        With ``reject=False`` (``--no-reject``, or callers that found no threshold) the answer
        is over the ten digits only, so an 11-class model's ``probs`` are renormalised over them
        (each row sums to 1); with ``reject=True`` they are the model's own (summing to less
        than 1 when it suspects a non-digit, which is what the reject score measures).
        """
        from digitrec.inference.reject import NUM_DIGITS, decide

        proba = self.predict_proba(images)
        threshold = self.reject_threshold if reject else None
        digits, rejected, score = decide(proba, np.inf if threshold is None else threshold)
        probs = proba[:, :NUM_DIGITS]
        if not reject and proba.shape[1] > NUM_DIGITS:
            probs = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
        return digits, probs.astype(np.float32), rejected, score


def load_model(
    path: str | os.PathLike, dev: torch.device, allow_ensemble: bool = True
) -> tuple[nn.Module, Preprocessing, dict]:
    """``(model in eval mode, preprocessing, meta)`` of any saved model: the one place that
    tells checkpoints, run directories, ONNX exports and ensemble files apart."""
    if allow_ensemble:
        from digitrec.inference.ensemble import is_ensemble_path, load_ensemble

        if is_ensemble_path(path):
            return load_ensemble(path, dev)
    if Path(path).suffix.lower() == ".onnx":
        from digitrec.inference.onnx import load_onnx

        if dev.type != "cpu":
            raise DigitrecError(f"{path}: ONNX models run on the CPU here (not {dev.type})")
        module, meta, pre = load_onnx(path)
        return module, pre, meta
    ckpt = load_checkpoint(path, device=dev)
    model = fold_batchnorm(ckpt.model)
    if ckpt.meta.get("recipe", {}).get("channels_last"):
        # Trained channels-last: its strided convs also infer ~2x faster in NHWC on CPU.
        model = model.to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
    return model, ckpt.preprocessing, ckpt.meta


def ensemble_proba(predictors: list[Predictor], images: np.ndarray) -> np.ndarray:
    """Average the class probabilities of several loaded models (an ``ensemble.json`` file,
    loaded as one ``Predictor``, does the same inside its model)."""
    return np.mean([p.predict_proba(images) for p in predictors], axis=0)
