"""Checkpoint loading trusts only the safetensors framing, and refuses tampered metadata."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest
import torch

from digitrec.errors import CheckpointError
from digitrec.inference.checkpoint import (
    build_meta,
    load_checkpoint,
    preprocessing_from_meta,
    save_checkpoint,
)
from digitrec.models import Preprocessing, create_model


def small_checkpoint(path: Path, arch: str = "softmax", **extra: Any) -> Path:
    """A real (randomly initialised, seeded) checkpoint of a small model."""
    torch.manual_seed(0)
    model = create_model(arch)
    pre = Preprocessing(num_classes=11) if arch == "splitter" else Preprocessing()
    return save_checkpoint(path, model.state_dict(), build_meta(arch, {}, pre, **extra))


def split_file(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """``(JSON header, data section)`` of safetensors bytes."""
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def join_file(header: bytes, data: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header + data


def padded(raw: bytes, low_bytes: bytes) -> bytes:
    """The same file with its JSON header padded by spaces (as the format allows) until the
    little-endian header length starts with ``low_bytes``."""
    (n,) = struct.unpack("<Q", raw[:8])
    header, data = raw[8 : 8 + n], raw[8 + n :]
    want = int.from_bytes(low_bytes, "little")
    modulus = 256 ** len(low_bytes)
    total = len(header) + (want - len(header)) % modulus
    return join_file(header + b" " * (total - len(header)), data)


def rewritten(raw: bytes, change) -> bytes:
    """The file with its digitrec metadata changed by ``change(meta) -> meta``."""
    header, data = split_file(raw)
    meta = json.loads(header["__metadata__"]["digitrec"])
    header["__metadata__"]["digitrec"] = json.dumps(change(meta))
    return join_file(json.dumps(header).encode(), data)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("ckpt") / "good.safetensors"
    return small_checkpoint(path).read_bytes()


@pytest.mark.parametrize("low", [b"\x80", b"\x80\x02", b"PK"], ids=["x80", "x80-proto2", "PK"])
def test_header_length_that_looks_like_a_pickle_loads(tmp_path: Path, good: bytes, low) -> None:
    """Byte 0 of a safetensors file is the low byte of its header length (issue 10, item 1)."""
    from safetensors.torch import load_file

    raw = padded(good, low)
    assert raw.startswith(low)
    path = tmp_path / "padded.safetensors"
    path.write_bytes(raw)
    assert set(load_file(str(path))) == set(split_file(good)[0]) - {"__metadata__"}
    ckpt = load_checkpoint(path)
    reference = load_checkpoint_bytes(tmp_path, good).model.state_dict()
    for key, value in ckpt.model.state_dict().items():
        torch.testing.assert_close(value, reference[key])


def load_checkpoint_bytes(tmp_path: Path, raw: bytes, name: str = "c.safetensors", **kw: Any):
    path = tmp_path / name
    path.write_bytes(raw)
    return load_checkpoint(path, **kw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.", "pickle"),
        (b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.", "pickle"),  # legacy torch.save
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40), "pickle"),  # zip torch.save
        (b"\x80\x00\x00\x00\x00\x00\x00\x00{", "corrupt checkpoint"),  # framed, but cut short
        (b"hello world, not a checkpoint", "not a safetensors checkpoint"),
        (b"", "not a safetensors checkpoint"),
        (b"\x02\x00\x00\x00\x00\x00\x00\x00[]", "not a safetensors checkpoint"),
    ],
    ids=["pickle4", "legacy", "zip", "cut", "text", "empty", "json-list"],
)
def test_unframed_files_refused(tmp_path: Path, raw: bytes, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint_bytes(tmp_path, raw)


def _table(change):
    def mutate(raw: bytes) -> bytes:
        header, data = split_file(raw)
        key = next(k for k in header if k != "__metadata__")
        change(header, key)
        return join_file(json.dumps(header).encode(), data)

    return mutate


@pytest.mark.parametrize(
    "mutate",
    [
        lambda raw: raw + b"\x00" * 8,  # trailing bytes after the last tensor
        lambda raw: raw[:-4],  # data section cut short
        _table(lambda h, k: h[k].update(dtype="F64")),
        _table(lambda h, k: h[k].update(dtype="Q99")),
        _table(lambda h, k: h[k].update(shape=[1, -3])),
        _table(lambda h, k: h[k].update(shape="big")),
        _table(lambda h, k: h[k].update(data_offsets=[0, 10**12])),
        _table(lambda h, k: h[k].update(data_offsets=[True, 4])),
        _table(lambda h, k: h[k].pop("dtype")),
        _table(lambda h, k: h.update({k: [1, 2]})),
        _table(lambda h, k: h.update(__metadata__={"digitrec": 3})),
    ],
    ids=[
        "trailing", "cut", "dtype-size", "dtype-unknown", "negative-dim", "shape-type",
        "offset-past-end", "bool-offset", "no-dtype", "entry-list", "metadata-value",
    ],
)  # fmt: skip
def test_tensor_table_checked_against_file(tmp_path: Path, good: bytes, mutate) -> None:
    with pytest.raises(CheckpointError, match="corrupt checkpoint"):
        load_checkpoint_bytes(tmp_path, mutate(good))


def _pre(**change: Any):
    return lambda m: {**m, "preprocessing": {**m["preprocessing"], **change}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_pre(extra=1), "unknown preprocessing key 'extra'"),
        (_pre(input_size="28"), "input_size must be an integer"),
        (_pre(input_size=28.0), "input_size must be an integer"),
        (_pre(input_size=True), "input_size must be an integer"),
        (_pre(input_size=32), "input_size 32 does not fit model 'softmax'"),
        (_pre(input_size=0), "input_size must be in 1..1024"),
        (_pre(input_size=10**9), "input_size must be in 1..1024"),
        (_pre(std=0), "std must be > 0"),
        (_pre(std=-1.5), "std must be > 0"),
        (_pre(std=math.inf), "std must be a finite number"),
        (_pre(mean=math.nan), "mean must be a finite number"),
        (_pre(mean=None), "mean must be a finite number"),
        (_pre(num_classes=11), "num_classes 11 does not match the weights"),
        (_pre(num_classes=1), "num_classes must be in 2..100000"),
        (lambda m: {**m, "preprocessing": [1, 2]}, "preprocessing must be a JSON object"),
        (lambda m: {**m, "arch_kwargs": [1]}, "arch_kwargs must be a JSON object"),
        (lambda m: {**m, "arch_kwargs": "x"}, "arch_kwargs must be a JSON object"),
        (lambda m: {**m, "recipe": [1]}, "recipe must be a JSON object"),
        (lambda m: {**m, "train_config": "fast"}, "train_config must be a JSON object"),
        (lambda m: {**m, "train_config": {"val_size": "x"}}, "train_config.val_size"),
        (lambda m: {**m, "train_config": {"seed": -1}}, "train_config.seed"),
        (lambda m: {**m, "arch_kwargs": {"bogus": 1}}, "cannot build model 'softmax'"),
        (lambda m: {**m, "arch_kwargs": {"num_classes": 11}}, "weights do not fit"),
        (lambda m: {**m, "arch_kwargs": {"num_classes": -4}}, "cannot build model 'softmax'"),
        (lambda m: {**m, "arch": ["softmax"]}, "not a digitrec checkpoint"),
        (lambda m: {**m, "format_version": True}, "format_version"),
        (lambda m: {**m, "weights_version": "1"}, "weights_version"),
        (lambda m: [m], "not a digitrec checkpoint"),
    ],
)
def test_tampered_metadata_is_a_checkpoint_error(
    tmp_path: Path, good: bytes, change, message: str
) -> None:
    """Issue 10, item 5: never TypeError/AttributeError/RuntimeError/ZeroDivisionError."""
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint_bytes(tmp_path, rewritten(good, change))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: {**m, "arch_kwargs": {"widths": []}}, "cannot build model 'fast'"),
        (lambda m: {**m, "arch_kwargs": {"widths": [-3]}}, "cannot build model 'fast'"),
        (lambda m: {**m, "arch_kwargs": {"widths": "ab"}}, "cannot build model 'fast'"),
        # A model of 10^12 parameters is never allocated: the file holds far fewer.
        (lambda m: {**m, "arch_kwargs": {"widths": [10**6, 10**6]}}, "weights do not fit"),
    ],
)
def test_arch_kwargs_that_break_the_builder(tmp_path: Path, change, message: str) -> None:
    raw = small_checkpoint(tmp_path / "fast.safetensors", arch="fast").read_bytes()
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint_bytes(tmp_path, rewritten(raw, change))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: {**m, "step": "5"}, "step must be an integer"),
        (lambda m: {**m, "steps_per_epoch": 0}, "steps_per_epoch must be an integer >= 1"),
        (lambda m: {k: v for k, v in m.items() if k != "step"}, "step must be an integer"),
        (lambda m: {**m, "best_score": "high"}, "best_score must be a finite number"),
    ],
)
def test_resume_fields_checked(tmp_path: Path, change, message: str) -> None:
    raw = small_checkpoint(
        tmp_path / "r.safetensors", step=10, steps_per_epoch=5, best_score=0.5
    ).read_bytes()
    load_checkpoint_bytes(tmp_path, raw, with_train_state=True)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint_bytes(tmp_path, rewritten(raw, change), with_train_state=True)
    load_checkpoint_bytes(tmp_path, rewritten(raw, change))  # evaluation does not need them


def test_valid_preprocessing_round_trips() -> None:
    pre = Preprocessing(input_size=28, mean=0.5, std=2, num_classes=11)
    got = preprocessing_from_meta({"input_size": 28, "mean": 0.5, "std": 2, "num_classes": 11}, "x")
    assert got == pre and isinstance(got.std, float)
    assert preprocessing_from_meta({}, "x") == Preprocessing()


def test_splitter_checkpoint_loads(tmp_path: Path) -> None:
    ckpt = load_checkpoint(small_checkpoint(tmp_path / "s.safetensors", arch="splitter"))
    assert ckpt.preprocessing.num_classes == 11


@pytest.mark.timeout(30)
def test_fifo_is_not_opened(tmp_path: Path) -> None:
    """A named pipe would block ``open`` forever."""
    import os

    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    os.mkfifo(tmp_path / "pipe.safetensors")
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(tmp_path / "pipe.safetensors")


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    from digitrec.inference.onnx import export_onnx

    folder = tmp_path_factory.mktemp("onnx")
    return export_onnx(small_checkpoint(folder / "m.safetensors"), folder / "m.onnx")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: {**m, "preprocessing": {**m["preprocessing"], "std": 0}}, "std must be > 0"),
        (lambda m: {**m, "preprocessing": {**m["preprocessing"], "x": 1}}, "unknown preproc"),
        (lambda m: {**m, "preprocessing": "none"}, "must be a JSON object"),
        (lambda m: {**m, "preprocessing": {"input_size": 32}}, "input_size 32 does not fit"),
        (lambda m: {**m, "preprocessing": {"num_classes": 11}}, "num_classes 11 does not match"),
        (lambda m: [m], "corrupt digitrec metadata"),
    ],
)
def test_onnx_metadata_validated_like_checkpoints(
    tmp_path: Path, onnx_export: Path, change, message: str
) -> None:
    import onnx

    from digitrec.inference.onnx import META_KEY, load_onnx

    graph = onnx.load(str(onnx_export))
    entry = next(e for e in graph.metadata_props if e.key == META_KEY)
    entry.value = json.dumps(change(json.loads(entry.value)))
    onnx.save(graph, str(tmp_path / "t.onnx"))
    with pytest.raises(CheckpointError, match=message):
        load_onnx(tmp_path / "t.onnx")


def test_onnx_export_loads(onnx_export: Path) -> None:
    from digitrec.inference.onnx import load_onnx

    module, meta, pre = load_onnx(onnx_export)
    assert pre == Preprocessing() and meta["arch"] == "softmax"
    assert tuple(module(torch.zeros(2, 1, 28, 28)).shape) == (2, 10)
