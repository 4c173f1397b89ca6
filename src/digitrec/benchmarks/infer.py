"""Inference benchmark: batch throughput and single-image latency, eager and ONNX Runtime."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from digitrec.benchmarks.machine import Log, machine_info
from digitrec.data import load_mnist
from digitrec.inference.logits import predict_logits
from digitrec.inference.onnx import export_onnx
from digitrec.inference.predictor import Predictor
from digitrec.models import to_input


def bench_infer(
    checkpoints: dict[str, str],
    data_dir: str | None = None,
    batch_size: int = 1000,
    repeats: int = 10,
    latency_n: int = 2000,
    onnx: bool = True,
    log: Log = lambda msg: None,
) -> dict[str, Any]:
    """Batch throughput and single-image latency (p50/p99) through ``Predictor``.

    Each checkpoint runs on PyTorch eager and, with ``onnx``, on ONNX Runtime (exported to a
    temporary directory first); the keys are prefixed ``eager_`` and ``onnx_``.
    """
    import tempfile

    images, _ = load_mnist("test", data_dir)
    out: dict[str, Any] = {"machine": machine_info(torch.device("cpu")), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in checkpoints.items():
            backends = {"eager": path}
            if str(path).lower().endswith(".onnx"):
                backends = {"onnx": path}
            elif onnx:
                backends["onnx"] = str(export_onnx(path, Path(tmp) / f"{name}.onnx"))
            res: dict[str, float] = {}
            for backend, src in backends.items():
                # Progress only: the caller prints the results (once).
                log(f"  timing {name} ({backend}), batch {batch_size} ...")
                r = _infer_one(
                    Predictor.from_checkpoint(src), images, batch_size, repeats, latency_n
                )
                res.update({f"{backend}_{k}": v for k, v in r.items()})
            out["models"][name] = res
    return out


def _infer_one(pred, images: np.ndarray, batch_size: int, repeats: int, n: int) -> dict[str, float]:
    """Best-of-``repeats`` batch throughput and ``n`` single-image ``predict_proba`` latencies."""
    x = to_input(images, pred.preprocessing)
    predict_logits(pred.model, x, batch_size)  # warm-up: oneDNN primitives, thread pool
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict_logits(pred.model, x, batch_size)
        best = min(best, time.perf_counter() - t0)
    for i in range(20):
        pred.predict_proba(images[i : i + 1])
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        pred.predict_proba(images[i : i + 1])
        lat.append(time.perf_counter() - t0)
    return {
        "images_per_s": len(images) / best,
        "latency_p50_ms": float(np.percentile(lat, 50) * 1e3),
        "latency_p99_ms": float(np.percentile(lat, 99) * 1e3),
    }
