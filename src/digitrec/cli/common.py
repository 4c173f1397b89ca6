"""Small helpers that several command modules share."""

from __future__ import annotations

import sys
from pathlib import Path


def say(msg: str) -> None:
    """A status line on stderr (stdout is kept for results)."""
    print(msg, file=sys.stderr)


def apply_threads(threads: int | None) -> None:
    """``--threads``: set torch's intra-op thread count (None keeps torch's choice)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def checkpoint_or_default(path: str | None) -> str | Path:
    """``--checkpoint`` as given, else the model shipped in the package."""
    if path:
        return path
    from digitrec.inference.checkpoint import default_checkpoint

    return default_checkpoint()
