"""Blocking work (decoding, preprocessing, the model) kept off the event loop, and batching.

How requests share the model is the ``mode`` (``bench/load.py --modes`` measures all three):

- ``batch`` (default): single digits sent as ``pixels`` run on the event loop itself, and the
  requests parsed in the same turn of the loop share one forward pass. No thread hop, no waiting
  for a batch to fill: a lone request runs at once. Everything else runs in worker threads.
- ``lock``: the model runs in worker threads, one call at a time.
- ``threads``: the model runs in worker threads, concurrently.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import threading
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import numpy as np

from digitrec.inference.predictor import Predictor

MODES = ("batch", "lock", "threads")
T = TypeVar("T")


def png_base64(image: np.ndarray) -> str:
    """A uint8 (H, W) grey image as a base64 PNG (no Pillow: ~10x faster for a 28x28; zlib
    level 1: ~7% larger than level 6 for a 28x28 digit, and twice as fast)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = image.shape
    raw = np.hstack([np.zeros((h, 1), np.uint8), image]).tobytes()  # filter byte 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))  # 8-bit grey
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(png).decode("ascii")


def prediction(
    probs: np.ndarray, image: np.ndarray, threshold: float | None = None
) -> dict[str, Any]:
    """The API's answer for one digit: ``probs`` float (C,) and the model's uint8 (28, 28).

    With the checkpoint's reject ``threshold`` (issue 14) the answer adds ``rejected`` ("not a
    digit") and ``reject_score``; ``digit`` stays the most likely digit either way. A digit that
    is not rejected carries ``low_confidence`` (:mod:`digitrec.inference.confidence`) and, when
    set, ``low_confidence_reason``.
    """
    from digitrec.inference.confidence import low_confidence

    digits = probs[:10]
    best = int(digits.argmax())
    out: dict[str, Any] = {
        "digit": best,
        "confidence": round(float(digits[best]), 6),
        "probabilities": [round(float(p), 6) for p in digits],
        "preview_png": png_base64(image),
    }
    if threshold is not None:
        from digitrec.inference.reject import decide

        _, rejected, score = decide(probs[None], threshold)
        out.update(rejected=bool(rejected[0]), reject_score=round(float(score[0]), 6))
    if not out.get("rejected"):
        reason = low_confidence(float(digits[best]))
        out["low_confidence"] = reason is not None
        if reason:
            out["low_confidence_reason"] = reason
    return out


def read_digit(d: dict[str, Any], probs: np.ndarray, crop: np.ndarray) -> dict[str, Any]:
    """One digit of ``POST /api/read``: the reader's answer ``d`` (a digit of ``read_number``),
    with the digit model's ``probs`` float (C,) for its uint8 (28, 28) ``crop``.

    ``digit``, ``confidence``, ``rejected`` and the low-confidence flag are the reader's, so the
    digits always spell ``number`` (``auto`` may take the sequence reader's answer). The ten
    ``probabilities`` are the digit model's and are given only where its most likely digit is
    the reader's; ``preview_png`` is always the crop at the digit's box.
    """
    x0, y0, x1, y1 = (int(v) for v in d["box"])
    model = probs[:10]
    digit = int(model.argmax()) if d["digit"] is None else int(d["digit"])  # None: rejected
    out: dict[str, Any] = {
        "digit": digit,
        "confidence": round(float(d["prob"]), 6),
        "probabilities": [round(float(p), 6) for p in model] if model.argmax() == digit else None,
        "preview_png": png_base64(crop),
        "box": {"x0": x0, "y0": y0, "x1": x1, "y1": y1},
    }
    if "rejected" in d:  # the segmenter with a reject threshold; the sequence reader never rejects
        out.update(rejected=bool(d["rejected"]), reject_score=round(float(d["reject_score"]), 6))
    # The reader's own flag: its reason also names what page cleanup removed.
    out["low_confidence"] = bool(d.get("low_confidence"))
    if d.get("low_confidence_reason"):
        out["low_confidence_reason"] = d["low_confidence_reason"]
    return out


class _Batcher:
    """Model calls on the event loop: requests parsed in the same loop turn share one pass."""

    def __init__(self, predictor: Predictor, max_images: int) -> None:
        self.predictor = predictor
        self.max_images = max_images
        self.pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self.scheduled = False

    def submit(self, images: np.ndarray) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.pending.append((images, fut))
        if not self.scheduled:  # after the callbacks already queued: they may add images
            self.scheduled = True
            loop.call_soon(self._run)
        return fut

    def _run(self) -> None:
        batch: list[tuple[np.ndarray, asyncio.Future]] = []
        count = 0
        while self.pending and (not batch or count + len(self.pending[0][0]) <= self.max_images):
            job = self.pending.pop(0)
            batch.append(job)
            count += len(job[0])
        self.scheduled = bool(self.pending)
        if self.pending:
            asyncio.get_running_loop().call_soon(self._run)
        batch = [(images, fut) for images, fut in batch if not fut.done()]  # drop cancelled
        if not batch:
            return
        try:
            probs = self.predictor.predict_proba(np.concatenate([b[0] for b in batch]))
        except Exception as exc:
            for _, fut in batch:
                fut.set_exception(exc)
            return
        start = 0
        for images, fut in batch:
            fut.set_result(probs[start : start + len(images)])
            start += len(images)


class Runner:
    """Runs blocking request work in a bounded pool of threads, and the model per ``mode``."""

    def __init__(
        self, predictor: Predictor, mode: str = "batch", threads: int = 4, max_batch: int = 64
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown inference mode {mode!r}; choose from {', '.join(MODES)}")
        self.predictor = predictor
        self.mode = mode
        # Bounds the images being decoded at once, hence the memory a burst of photos takes.
        self.limiter = anyio.CapacityLimiter(threads)
        self._lock = threading.Lock()
        self._batcher = _Batcher(predictor, max_batch) if mode == "batch" else None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    def proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities float32 (N, C) for uint8 (N, 28, 28); call from a worker thread."""
        if self.mode == "lock":
            with self._lock:
                return self.predictor.predict_proba(images)
        return self.predictor.predict_proba(images)

    async def proba_async(self, images: np.ndarray) -> np.ndarray:
        """:meth:`proba` from the event loop: batched on the loop itself (``batch``, for 28x28
        inputs: a pass takes ~0.1-0.6 ms per image), else in a worker thread."""
        if self._batcher is not None:
            return await self._batcher.submit(images)
        return await self.call(self.proba, images)

    def close(self) -> None:
        """Nothing to stop: kept for the app's shutdown hook."""
