"""Real training runs on small MNIST slices: learning, exact resume, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from digitrec.errors import CheckpointError, DigitrecError
from digitrec.inference.checkpoint import load_checkpoint
from digitrec.inference.predictor import Predictor
from digitrec.training import TrainConfig, read_run_config, train


def _cfg(tmp_path: Path, **kw) -> TrainConfig:
    base = dict(
        model="lenet5",
        train_limit=2000,
        val_size=1000,
        device="cpu",
        threads=1,
        out=str(tmp_path / "run"),
    )
    base.update(kw)
    return TrainConfig(**base)


def test_tiny_run_learns(tmp_path: Path, mnist_test) -> None:
    # 2,000 images, 320 steps of batch 64: far above chance (0.10), well short of convergence.
    result = train(_cfg(tmp_path, epochs=10, batch_size=64, lr=0.05))
    assert result.metrics["val_acc"] > 0.85 and not result.interrupted
    run = tmp_path / "run"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 10 and json.loads(lines[-1])["epoch"] == 10
    assert json.loads((run / "config.json").read_text())["resolved_recipe"]["lr"] == 0.05
    predictor = Predictor.from_checkpoint(run)
    images, labels = mnist_test
    acc = (predictor.predict(images[:1000]) == labels[:1000]).mean()
    assert acc > 0.85


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if not k.startswith("train.rng")}


@pytest.mark.parametrize("stop_after", [8, 5])  # at an epoch boundary, and mid-epoch
def test_resume_is_bit_identical(tmp_path: Path, stop_after: int) -> None:
    # pytorch-example has dropout, so this also checks the RNG stream continues exactly.
    kw = dict(
        model="pytorch-example",
        train_limit=512,
        val_size=100,
        epochs=2,
        batch_size=64,
        deterministic=True,
    )
    train(_cfg(tmp_path / "a", **kw))
    partial = train(_cfg(tmp_path / "b", max_steps=stop_after, **kw))
    assert partial.step == stop_after
    cfg = read_run_config(tmp_path / "b" / "run")
    cfg.max_steps = None
    train(cfg, resume=tmp_path / "b" / "run")
    a = _weights(tmp_path / "a" / "run" / "last.safetensors")
    b = _weights(tmp_path / "b" / "run" / "last.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_checkpoint_describes_itself(tmp_path: Path) -> None:
    train(_cfg(tmp_path, max_steps=3))
    ckpt = load_checkpoint(tmp_path / "run" / "last.safetensors")
    meta = ckpt.meta
    assert meta["arch"] == "lenet5" and meta["preprocessing"]["mean"] == pytest.approx(0.1307)
    assert meta["train_config"]["seed"] == 0 and meta["recipe"]["optimizer"] == "sgd"
    assert meta["torch_version"] == torch.__version__ and "digitrec_version" in meta
    assert "train_loss" in meta["metrics"]


def test_bad_checkpoints_are_refused(tmp_path: Path) -> None:
    train(_cfg(tmp_path, max_steps=2))
    good = (tmp_path / "run" / "best.safetensors").read_bytes()
    cases = {
        "corrupt.safetensors": good[: len(good) // 2],
        "garbage.safetensors": b"hello world, not a checkpoint",
        "model.pt": b"PK\x03\x04" + b"\x00" * 64,  # what torch.save writes (a zip of pickles)
        "legacy.pth": b"\x80\x02}q\x00.",  # a raw pickle stream
    }
    messages = {
        "corrupt.safetensors": "corrupt checkpoint",
        "garbage.safetensors": "not a safetensors checkpoint",
        "model.pt": "pickle",
        "legacy.pth": "pickle",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=messages[name]):
            load_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")


def _rewrite(src: Path, dst: Path, change) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), "pt") as fh:
        meta = json.loads(fh.metadata()["digitrec"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    meta, tensors = change(meta, tensors)
    save_file(tensors, str(dst), metadata={"digitrec": json.dumps(meta)})


def test_unknown_arch_and_shape_mismatch(tmp_path: Path) -> None:
    train(_cfg(tmp_path, max_steps=2))
    best = tmp_path / "run" / "best.safetensors"
    _rewrite(best, tmp_path / "arch.safetensors", lambda m, t: ({**m, "arch": "resnet9000"}, t))
    with pytest.raises(CheckpointError, match="unknown model 'resnet9000'; choose from"):
        load_checkpoint(tmp_path / "arch.safetensors")
    _rewrite(best, tmp_path / "shape.safetensors", lambda m, t: ({**m, "arch": "softmax"}, t))
    with pytest.raises(CheckpointError, match="weights do not fit model 'softmax'"):
        load_checkpoint(tmp_path / "shape.safetensors")


def test_format_1_checkpoints_are_upgraded(tmp_path: Path) -> None:
    """Format 1 flattened StridedNet features (C, H, W); loading reorders the head's input."""
    train(_cfg(tmp_path, model="accurate", max_steps=2))
    last = tmp_path / "run" / "last.safetensors"
    new = load_checkpoint(last).model

    def to_v1(meta, tensors):
        w = tensors["model.head.0.weight"]  # (128, 4*4*64), columns in (H, W, C) order
        chw = w.reshape(128, 4, 4, 64).permute(0, 3, 1, 2).reshape(128, -1).contiguous()
        old_meta = {k: v for k, v in meta.items() if k != "weights_version"}
        return {**old_meta, "format_version": 1}, {**tensors, "model.head.0.weight": chw}

    _rewrite(last, tmp_path / "v1.safetensors", to_v1)
    old = load_checkpoint(tmp_path / "v1.safetensors").model
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(old(x), new(x))
    with pytest.raises(CheckpointError, match=r"older layout .* not resumed"):
        load_checkpoint(tmp_path / "v1.safetensors", with_train_state=True)
    # The same weights in today's file format, marked with the architecture's own version 1.
    _rewrite(
        tmp_path / "v1.safetensors",
        tmp_path / "w1.safetensors",
        lambda m, t: ({**m, "format_version": 3, "weights_version": 1}, t),
    )
    with torch.no_grad():
        torch.testing.assert_close(load_checkpoint(tmp_path / "w1.safetensors").model(x), new(x))
    _rewrite(last, tmp_path / "w9.safetensors", lambda m, t: ({**m, "weights_version": 9}, t))
    with pytest.raises(CheckpointError, match="weights version 9 is newer"):
        load_checkpoint(tmp_path / "w9.safetensors")
    _rewrite(last, tmp_path / "v9.safetensors", lambda m, t: ({**m, "format_version": 9}, t))
    with pytest.raises(CheckpointError, match="newer digitrec"):
        load_checkpoint(tmp_path / "v9.safetensors")


def test_result_is_plain_data_and_the_model_comes_separately(tmp_path: Path) -> None:
    from torch import nn

    from digitrec.training import TrainResult, train_model

    result, model = train_model(_cfg(tmp_path, max_steps=3))
    assert isinstance(result, TrainResult) and isinstance(model, nn.Module)
    record = json.loads(json.dumps(result.to_dict()))  # nothing in it but JSON data
    assert record["step"] == 3 and record["total_steps"] == 20 * 32
    assert record["run_dir"] == str(tmp_path / "run") and not record["interrupted"]
    assert record["metrics"]["step"] == 3 and "val_acc" in record["metrics"]
    assert record["best_score"] == record["metrics"]["val_acc"]


def test_config_errors_come_before_data_loads(tmp_path: Path) -> None:
    no_data = str(tmp_path / "no-data")
    bad = {
        "seed": (-1, r"--seed must be in 0\.\.4294967295, got -1"),
        "val_size": (60_000, r"--val-size must be in 0\.\.59999"),
        "max_steps": (0, "--max-steps must be at least 1"),
        "threads": (0, "--threads must be at least 1"),
        "save_every_s": (0.0, "--save-every must be a positive number"),
    }
    for name, (value, message) in bad.items():
        with pytest.raises(DigitrecError, match=message):
            train(_cfg(tmp_path, data_dir=no_data, **{name: value}))
    assert not (tmp_path / "run").exists()
    train(_cfg(tmp_path, max_steps=1))
    with pytest.raises(DigitrecError, match="already holds a run; pass --force"):
        train(_cfg(tmp_path, max_steps=1, data_dir=no_data))
    assert train(_cfg(tmp_path, max_steps=2), force=True).step == 2
