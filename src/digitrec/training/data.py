"""The training and validation tensors of a run, normalised and on the training device."""

from __future__ import annotations

import numpy as np
import torch

from digitrec.data import load_mnist, train_val_split
from digitrec.models import Preprocessing, to_input
from digitrec.training.config import TrainConfig


def load_training_data(
    cfg: TrainConfig, device: torch.device, pre: Preprocessing, nondigits: float = 0.0
) -> dict[str, torch.Tensor]:
    """Train/val tensors on the device: normalised float images and int64 labels.

    Keys ``x`` (N, 1, 28, 28) and ``y`` (N,), plus ``val_x`` and ``val_y`` when ``val_size`` > 0.
    With ``nondigits`` > 0, that fraction of synthetic "not one digit" images, made from the
    training part only, joins the training tensors as class 10.
    """
    images, labels = load_mnist("train", cfg.data_dir)
    train_idx, val_idx = train_val_split(len(images), cfg.val_size, cfg.seed)
    if cfg.train_limit is not None:
        train_idx = train_idx[: cfg.train_limit]
    x, y = images[train_idx], labels[train_idx]
    if nondigits > 0:
        from digitrec.data.synth import make_nondigits

        extra = make_nondigits(x, round(nondigits * len(x)), seed=cfg.seed)
        x = np.concatenate([x, extra])
        y = np.concatenate([y, np.full(len(extra), 10, dtype=y.dtype)])
    out = {"x": to_input(x, pre, device), "y": torch.as_tensor(y).to(device)}
    if len(val_idx):
        out["val_x"] = to_input(images[val_idx], pre, device)
        out["val_y"] = torch.as_tensor(labels[val_idx]).to(device)
    return out
