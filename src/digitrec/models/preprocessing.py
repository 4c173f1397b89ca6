"""How raw pixels become model input; it travels with every model into its checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Preprocessing:
    """How raw ``uint8`` pixels become model input: ``(x / 255 - mean) / std``."""

    input_size: int = 28  # pixels per side
    mean: float = 0.1307  # MNIST training-set mean of x / 255
    std: float = 0.3081  # MNIST training-set std of x / 255
    num_classes: int = 10


# The TensorFlow and Keras tutorials feed x / 255 without standardising.
UNIT_RANGE = Preprocessing(mean=0.0, std=1.0)


def to_input(images, pre: Preprocessing, device: str | torch.device = "cpu"):
    """``uint8 (N, 28, 28)`` (numpy or tensor) -> normalised ``float32 (N, 1, 28, 28)`` on device.

    The conversion happens on the device, so a GPU receives 1 byte per pixel, not 4.
    """
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # torch refuses to wrap read-only memory without a warning
    x = torch.as_tensor(images).to(device)
    if x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {x.dtype}")
    # (x / 255 - mean) / std as one multiply and one subtract.
    x = x.reshape(-1, 1, pre.input_size, pre.input_size).float().mul_(1.0 / (255.0 * pre.std))
    return x.sub_(pre.mean / pre.std)
