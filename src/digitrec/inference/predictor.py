"""One inference path for the CLI, the server and the tests: ``Predictor``."""

from __future__ import annotations

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
        """Load a checkpoint file, run directory or ONNX export; each describes itself.

        An ``.onnx`` file (from :func:`digitrec.inference.onnx.export_onnx`) runs on ONNX Runtime
        (CPU).
        """
        dev = pick_device(device)
        if Path(path).suffix.lower() == ".onnx":
            from digitrec.inference.onnx import load_onnx

            if dev.type != "cpu":
                raise DigitrecError(f"{path}: ONNX models run on the CPU here (not {device})")
            module, meta, pre = load_onnx(path)
            return cls(module, pre, dev, meta, tta)
        ckpt = load_checkpoint(path, device=dev)
        model = fold_batchnorm(ckpt.model)
        if ckpt.meta.get("recipe", {}).get("channels_last"):
            # Trained channels-last: its strided convs also infer ~2x faster in NHWC on CPU.
            model = model.to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
        return cls(model, ckpt.preprocessing, dev, ckpt.meta, tta)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``float32 (N, C)`` for MNIST-style ``uint8 (N, 28, 28)``.

        C is the checkpoint's ``num_classes``: 10, or 11 for the ``splitter``.
        """
        images = np.asarray(images, dtype=np.uint8).reshape(-1, 28, 28)
        if len(images) == 0:
            return np.zeros((0, self.preprocessing.num_classes), dtype=np.float32)
        x = to_input(images, self.preprocessing, self.device)
        logits = predict_logits(self.model, x, tta=self.tta).float()
        return torch.softmax(logits, 1).cpu().numpy()

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted digits ``int64 (N,)``."""
        return self.predict_proba(images).argmax(1)


def ensemble_proba(predictors: list[Predictor], images: np.ndarray) -> np.ndarray:
    """Average the class probabilities of several models (an ensemble)."""
    return np.mean([p.predict_proba(images) for p in predictors], axis=0)
