"""Batch augmentation with torch ops: whole batches at once, on the training device.

Inputs and outputs are normalised float batches ``(B, 1, 28, 28)``; ``background`` is the value a
blank pixel has after normalisation, used to fill what a shift uncovers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

AUGMENTS = ("none", "shift", "affine")


def random_shift(x: torch.Tensor, max_shift: int, background: float) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels in x and y (pad, then random crop)."""
    b, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=background)  # (B, C, H + 2s, W + 2s)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), device=x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def random_affine(
    x: torch.Tensor,
    background: float,
    degrees: float = 10.0,
    scale: tuple[float, float] = (0.9, 1.1),
    translate: float = 0.1,
) -> torch.Tensor:
    """Random rotation, scale and translation per image, via one batched ``grid_sample``."""
    b = x.shape[0]
    angle = (torch.rand(b, device=x.device) * 2 - 1) * degrees * torch.pi / 180
    s = torch.empty(b, device=x.device).uniform_(*scale)
    t = (torch.rand(b, 2, device=x.device) * 2 - 1) * translate * 2  # grid units span 2
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack(
        [torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    shifted = x - background  # grid_sample pads with zeros: make blank pixels zero first
    return F.grid_sample(shifted, grid, align_corners=False, padding_mode="zeros") + background


def augment_batch(x: torch.Tensor, kind: str, background: float) -> torch.Tensor:
    """Apply the named augmentation to a training batch."""
    if kind == "none":
        return x
    if kind == "shift":
        return random_shift(x, 2, background)
    if kind == "affine":
        return random_affine(x, background)
    raise ValueError(f"unknown augmentation {kind!r}; choose from {', '.join(AUGMENTS)}")
