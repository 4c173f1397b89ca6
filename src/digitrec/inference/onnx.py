"""ONNX export and ONNX Runtime inference.

An exported ``.onnx`` file describes itself like a checkpoint: its ``metadata_props`` hold the
checkpoint's JSON metadata (architecture, preprocessing, training config, metrics) under
``"digitrec"``, so ``Predictor.from_checkpoint("model.onnx")`` needs only the path. The graph
takes normalised ``float32 (N, 1, 28, 28)`` input named ``x`` (any N) and returns ``(N, C)``
logits; BatchNorm is folded into the convolutions before export.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from digitrec.errors import CheckpointError, DigitrecError
from digitrec.inference.checkpoint import (
    load_checkpoint,
    preprocessing_from_meta,
    resolve_checkpoint_path,
)
from digitrec.io import atomic_path
from digitrec.models import Preprocessing, fold_batchnorm

OPSET = 17
META_KEY = "digitrec"
# Exported logits must match PyTorch's to this (float32, folded BatchNorm: ~1e-5 in practice).
TOLERANCE = 1e-3


class OnnxModule(nn.Module):
    """An ONNX Runtime session behind the ``nn.Module`` call interface (inference only).

    ``predict_logits``, test-time augmentation and ``Predictor`` use it like any model.
    """

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feed = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: feed})[0])


def export_onnx(checkpoint: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Export a checkpoint (file or run directory) to ONNX, verified with ONNX Runtime.

    Args:
        checkpoint: A digitrec checkpoint or run directory (its ``best`` checkpoint).
        out: The ``.onnx`` path; default: next to the checkpoint, same name, ``.onnx``.

    Returns:
        The path written (atomically).

    Raises:
        DigitrecError: onnx/onnxruntime missing, or the exported graph disagrees with PyTorch.
    """
    onnx = _require("onnx")

    src = resolve_checkpoint_path(checkpoint)
    ckpt = load_checkpoint(src)
    model = fold_batchnorm(ckpt.model).eval()
    out = Path(out) if out is not None else src.with_suffix(".onnx")
    if out.suffix != ".onnx":
        raise DigitrecError(f"{out}: the output name must end in .onnx")
    size = ckpt.preprocessing.input_size
    example = torch.zeros(1, 1, size, size)
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            # The TorchScript-based exporter: fast, no extra dependencies; torch marks it
            # deprecated in favour of the dynamo exporter, which needs onnxscript.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                dynamo=False,
                input_names=["x"],
                output_names=["logits"],
                dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=OPSET,
            )
        graph = onnx.load(str(tmp))
        meta = {**ckpt.meta, "exported_from": str(src)}
        entry = graph.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps(meta)
        onnx.save(graph, str(tmp))
        _verify(tmp, model, size)
    return out


def _verify(path: Path, model: nn.Module, size: int) -> None:
    """Compare ONNX Runtime with PyTorch on a seeded random batch of 8."""
    x = torch.randn(8, 1, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = model(x).numpy()
    got = OnnxModule(_session(path))(x).numpy()
    diff = float(np.abs(got - want).max())
    if not diff <= TOLERANCE:
        raise DigitrecError(f"ONNX export disagrees with PyTorch (max |diff| {diff:.3g})")


def load_onnx(path: str | os.PathLike) -> tuple[OnnxModule, dict[str, Any], Preprocessing]:
    """An exported model as ``(module, meta, preprocessing)``; a foreign ``.onnx`` is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    session = _session(path)
    raw = session.get_modelmeta().custom_metadata_map.get(META_KEY)
    if raw is None:
        raise CheckpointError(f"{path}: not a digitrec ONNX export (no {META_KEY!r} metadata)")
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{path}: corrupt digitrec metadata ({exc})") from exc
    if not isinstance(meta, dict) or "preprocessing" not in meta:
        raise CheckpointError(f"{path}: corrupt digitrec metadata (no preprocessing)")
    pre = preprocessing_from_meta(meta["preprocessing"], str(path))
    # The graph's own shapes: (batch, 1, H, W) in and (batch, C) out, batch symbolic.
    size, classes = pre.input_size, pre.num_classes
    if not session.get_inputs() or not session.get_outputs():
        raise CheckpointError(f"{path}: not a digitrec ONNX export (no input or output)")
    shape_in, shape_out = session.get_inputs()[0].shape, session.get_outputs()[0].shape
    if any(isinstance(d, int) and d != size for d in shape_in[2:]):
        raise CheckpointError(
            f"{path}: preprocessing input_size {size} does not fit the graph's input {shape_in}"
        )
    if shape_out and isinstance(shape_out[-1], int) and shape_out[-1] != classes:
        raise CheckpointError(
            f"{path}: preprocessing num_classes {classes} does not match the graph's "
            f"{shape_out[-1]} outputs"
        )
    return OnnxModule(session), meta, pre


def _session(path: Path) -> Any:
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # --threads applies to both
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        raise CheckpointError(f"{path}: not a readable ONNX model ({exc})") from exc


def _require(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise DigitrecError(f"{name} is not installed: pip install onnx onnxruntime") from exc
