"""Choosing a torch device by name, with a one-line error for one that is not there."""

from __future__ import annotations

import torch

from digitrec.errors import DigitrecError

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an unavailable device is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in DEVICES:
        raise DigitrecError(f"unknown device {name!r}; choose from {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise DigitrecError("--device cuda: no CUDA GPU is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise DigitrecError("--device mps: Apple MPS is not available")
    return torch.device(name)
