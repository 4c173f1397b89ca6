"""The sequence reader: a CRNN reads a whole number strip, decoded greedily (CTC).

The packaged reader (``weights/reader.safetensors``, rebuilt by ``make reader``) is a small
CRNN trained on synthetic strips of MNIST training digits and handwriting fonts
(:mod:`digitrec.data.strips`). The file holds safetensors weights plus JSON metadata under
``__metadata__["digitrec"]``; nothing is unpickled.
"""

from __future__ import annotations

import functools
import json
import os
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch

from digitrec.data.strips import HEIGHT, Strip, normalise_strip
from digitrec.errors import CheckpointError
from digitrec.models.sequence import BLANK, CRNN, STRIDE

FORMAT = "digitrec-reader"
FORMAT_VERSION = 1
READER = Path(__file__).parent.parent / "weights" / "reader.safetensors"
Decoded = tuple[str, list[float], list[int]]  # text, probability and column of each digit


def ctc_greedy(logp: np.ndarray) -> Decoded:
    """Greedy CTC decoding of one strip's (T, 11) log-probabilities (class 0 = blank).

    The best class of each column; runs of one class collapse to one digit and blanks drop out
    (a digit twice in a row needs a blank between). Each digit's probability is the highest
    it reaches in its run, its column the output column where it does.

    Returns:
        (text, per-digit probabilities, per-digit output columns); ("", [], []) when every
        column is blank.
    """
    logp = np.asarray(logp, dtype=np.float64)
    best = logp.argmax(axis=1)
    text, probs, cols = [], [], []
    t = 0
    while t < len(best):
        k = int(best[t])
        end = t
        while end + 1 < len(best) and best[end + 1] == k:
            end += 1
        if k != BLANK:
            run = logp[t : end + 1, k]
            text.append(str(k - 1))
            probs.append(float(np.exp(run.max())))
            cols.append(t + int(run.argmax()))
        t = end + 1
    return "".join(text), probs, cols


def decode_batch(logp: torch.Tensor, lengths: torch.Tensor) -> list[Decoded]:
    """:func:`ctc_greedy` of each strip of a (T, N, 11) batch, over its own ``lengths``."""
    arr = logp.detach().cpu().numpy()
    return [ctc_greedy(arr[: int(n), i]) for i, n in enumerate(lengths)]


class SequenceReader:
    """A loaded CRNN reader (eval mode, CPU unless moved) and its metadata."""

    def __init__(self, model: CRNN, meta: dict[str, Any]) -> None:
        self.model = model.eval()
        self.meta = meta

    @classmethod
    def from_file(cls, path: str | os.PathLike = READER) -> SequenceReader:
        """Load a reader written by :func:`digitrec.training.sequence.save_reader`.

        Raises:
            CheckpointError: Missing, not a reader, or weights that do not fit.
        """
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"sequence reader not found: {path} (rebuild it: make reader)")
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = json.loads((fh.metadata() or {}).get("digitrec", "{}"))
                state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (no __iter__)
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read sequence reader {path}: {exc}") from None
        if meta.get("format") != FORMAT or meta.get("height") != HEIGHT:
            raise CheckpointError(f"{path} is not a digitrec sequence reader")
        model = CRNN(**meta.get("arch_kwargs", {}))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise CheckpointError(f"weights of {path} do not fit the reader: {first}") from None
        return cls(model, meta)

    @torch.no_grad()
    def read_strip(self, strip: np.ndarray) -> Decoded:
        """Read one float (32, W) strip in 0..1: (text, probabilities, strip columns)."""
        x = torch.from_numpy(np.array(strip, dtype=np.float32))[None, None]  # a writable copy
        text, probs, cols = ctc_greedy(self.model(x)[:, 0].numpy())
        # Output column t covers strip columns [4t, 4t + 4): its centre.
        return text, probs, [STRIDE * c + STRIDE // 2 for c in cols]

    def read_gray(self, gray: np.ndarray, clean_page: bool = True) -> dict[str, Any]:
        """Read the number in a grey photo or drawing.

        Returns:
            ``{"number", "digits": [{"digit", "prob", "box"}...], "strip": Strip}``; each box
            spans the image's columns from halfway to the previous digit to halfway to the
            next one, and the rows of the writing.

        Raises:
            NoDigitError: No ink. DigitrecError: too wide for one line.
        """
        strip = normalise_strip(gray, clean_page)
        text, probs, cols = self.read_strip(strip.image)
        return {"number": text, "digits": digit_boxes(text, probs, cols, strip), "strip": strip}


def digit_boxes(text: str, probs: list[float], cols: list[int], strip: Strip) -> list[dict]:
    """Each read digit with its probability and an approximate box in the source image."""
    width = strip.image.shape[1]
    mids = [(a + b) / 2 for a, b in pairwise(cols)]
    # A digit spans about 0.7 strip heights: the outer ones reach that far out.
    edges = [max(0.0, cols[0] - 0.35 * HEIGHT)] if cols else []
    edges += [*mids, min(float(width), cols[-1] + 0.35 * HEIGHT)] if cols else []
    out = []
    for i, (ch, p) in enumerate(zip(text, probs, strict=True)):
        x0 = strip.x0 + edges[i] * strip.per_col
        x1 = strip.x0 + edges[i + 1] * strip.per_col
        box = [max(0, int(x0)), strip.y0, max(int(np.ceil(x1)), int(x0) + 1), strip.y1]
        out.append({"digit": int(ch), "prob": p, "box": box})
    return out


@functools.cache
def default_reader() -> SequenceReader:
    """The packaged sequence reader, loaded once."""
    return SequenceReader.from_file(READER)
