"""One inference path for the CLI, the server and the tests: ``Predictor``."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from digitrec.checkpoint import load_checkpoint
from digitrec.evaluate import predict_logits
from digitrec.models import Preprocessing, to_input


@dataclass
class Predictor:
    """A model in eval mode plus the preprocessing it was trained with."""

    model: nn.Module
    preprocessing: Preprocessing
    device: torch.device
    meta: dict

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "cpu") -> Predictor:
        """Load a checkpoint file or run directory; it describes itself."""
        ckpt = load_checkpoint(path, device=device)
        return cls(ckpt.model, ckpt.preprocessing, torch.device(device), ckpt.meta)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``float32 (N, 10)`` for MNIST-style ``uint8 (N, 28, 28)``."""
        images = np.asarray(images, dtype=np.uint8).reshape(-1, 28, 28)
        if len(images) == 0:
            return np.zeros((0, self.preprocessing.num_classes), dtype=np.float32)
        x = to_input(images, self.preprocessing, self.device)
        return torch.softmax(predict_logits(self.model, x).float(), 1).cpu().numpy()

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted digits ``int64 (N,)``."""
        return self.predict_proba(images).argmax(1)
