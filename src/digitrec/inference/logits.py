"""Batched, eval-mode logits with optional test-time augmentation (TTA)."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

# Test-time augmentation views: the image itself and 1-pixel shifts up, down, left, right.
TTA_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


@torch.inference_mode()
def predict_logits(
    model: nn.Module, x: torch.Tensor, batch_size: int = 2000, tta: bool = False
) -> torch.Tensor:
    """Logits ``(N, C)`` for normalised inputs ``(N, 1, 28, 28)``, in eval mode.

    With ``tta``, returns the log of the softmax averaged over :data:`TTA_SHIFTS` views
    (``torch.roll`` wraps only blank MNIST borders around).
    """
    was_training = model.training
    if was_training:
        model.eval()
    try:
        if not tta and len(x) <= batch_size:  # one batch: skip the loop and cat (latency)
            return model(x)
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            if not tta:
                out.append(model(xb))
                continue
            probs = cast(
                torch.Tensor,  # sum() of tensors; its start value 0 is never returned
                sum(
                    torch.softmax(model(torch.roll(xb, shift, dims=(2, 3))).float(), 1)
                    for shift in TTA_SHIFTS
                ),
            )
            out.append(torch.log(probs / len(TTA_SHIFTS)))
        return torch.cat(out)
    finally:
        if was_training:
            model.train()
