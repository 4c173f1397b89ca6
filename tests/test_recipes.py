"""Building blocks of the speed recipes: schedules, augmentation, EMA, and the bench plumbing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from digitrec.cli import main
from digitrec.models import create_model
from digitrec.training.augment import augment_batch, random_affine, random_shift
from digitrec.training.optim import EMA, lr_at
from digitrec.training.recipes import Recipe


def _curve(schedule: str, total: int = 100, **kw) -> np.ndarray:
    recipe = Recipe("sgd", lr=1.0, batch_size=1, schedule=schedule, **kw)
    return np.array([lr_at(recipe, s, total, steps_per_epoch=10) for s in range(total)])


def test_linear_schedule_rises_then_falls_to_zero() -> None:
    lr = _curve("linear", warmup=0.2)
    peak = int(np.argmax(lr))
    assert lr[0] == pytest.approx(0.05) and lr[peak] == pytest.approx(1.0) and peak == 19
    assert np.all(np.diff(lr[: peak + 1]) > 0) and np.all(np.diff(lr[peak + 1 :]) < 0)
    assert lr[-1] == pytest.approx(1 / 80)


def test_onecycle_schedule_shape() -> None:
    lr = _curve("onecycle", warmup=0.3)
    assert lr[0] == pytest.approx(1 / 25) and lr.max() == pytest.approx(1.0, abs=1e-3)
    assert lr[-1] < 1e-4 and abs(int(np.argmax(lr)) - 30) <= 1


def test_step_and_constant_schedules() -> None:
    lr = _curve("step", gamma=0.5)
    assert lr[0] == lr[9] == 1.0 and lr[10] == 0.5 and lr[25] == 0.25
    assert set(_curve("constant")) == {1.0}


def test_shift_keeps_shape_and_moves_content() -> None:
    torch.manual_seed(0)
    bg = -0.4242
    x = torch.full((64, 1, 28, 28), bg)
    x[:, :, 10:18, 10:18] = 2.0
    out = random_shift(x, 2, bg)
    assert out.shape == x.shape and out.dtype == x.dtype
    # Every image keeps its whole 8x8 blob (shift 2 never pushes it off the canvas) ...
    assert torch.all((out > 1).sum((1, 2, 3)) == 64)
    # ... but not all in the same place.
    centres = (out > 1).float().nonzero()[:, 2].reshape(64, -1).float().mean(1)
    assert centres.std() > 0.5
    assert torch.equal(augment_batch(x, "none", bg), x)


def test_affine_keeps_shape_and_background() -> None:
    torch.manual_seed(0)
    bg = -0.4242
    x = torch.full((16, 1, 28, 28), bg)
    out = random_affine(x, bg)
    assert out.shape == x.shape
    assert torch.allclose(out, torch.full_like(out, bg), atol=1e-5)  # blank stays blank
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment_batch(x, "mixup", bg)


def test_ema_tracks_weights() -> None:
    model = create_model("fast")
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    name, param = next(iter(model.named_parameters()))
    assert torch.allclose(ema.shadow[name], param - 0.5)


@pytest.mark.slow  # about 20 s: trains four models for a few steps each
def test_bench_speed_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Plumbing only: a few steps each, no timing assertions."""
    out = tmp_path / "speed.json"
    args = [
        "bench",
        "speed",
        "--smoke",
        "--models",
        "fast:2,accurate:1",
        "--tta",
        "accurate",
        "--threads",
        "1",
        "--json",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "ratio peer/ours" in text and "LOWER BOUND" in text  # 5 peer steps never reach 99%
    result = json.loads(out.read_text())
    assert len(result["ours"]["fast"]["runs"]) == 2 and result["machine"]["cores"] >= 1
    assert len(result["ours"]["accurate"]["runs"]) == 1 and result["ours"]["accurate"]["tta"]
    assert "without TTA" in text
    assert main(["bench", "speed", "--models", "fast:x"]) == 1
    assert main(["bench", "speed", "--models", "nope"]) == 1
    assert result["peer"]["runs"][0]["reached_99"] is False


def test_bench_infer_smoke(
    tmp_path: Path, fast_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "infer.json"
    assert main(["bench", "infer", f"fast={fast_run}", "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fast (eager)" in text and "fast (onnx)" in text
    result = json.loads(out.read_text())["models"]["fast"]
    assert result["onnx_latency_p50_ms"] > 0 and result["eager_images_per_s"] > 0


def test_step_time_bench_smoke() -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "bench" / "step_time.py"
    args = ["--models", "fast,lenet5", "--batch-size", "8", "--rounds", "1", "--threads", "1"]
    done = subprocess.run(
        [sys.executable, str(script), *args, "--profile"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("fast: ") and "ms/step" in lines[0]
    assert "conv backward" in lines[1] and "batchnorm" in lines[1]
    assert lines[2].startswith("lenet5: ")


def test_tta_returns_averaged_log_probabilities(fast_run: Path) -> None:
    from digitrec.inference.checkpoint import load_checkpoint
    from digitrec.inference.logits import predict_logits

    model = load_checkpoint(fast_run).model
    x = torch.randn(8, 1, 28, 28)
    out = predict_logits(model, x, tta=True)
    assert out.shape == (8, 10)
    assert torch.allclose(out.exp().sum(1), torch.ones(8), atol=1e-5)
    assert not torch.allclose(out, torch.log_softmax(predict_logits(model, x), 1))


def test_batchnorm_folding_keeps_outputs(fast_run: Path) -> None:
    from digitrec.inference.checkpoint import load_checkpoint
    from digitrec.models import fold_batchnorm

    model = load_checkpoint(fast_run).model
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        before = model(x)
        folded = fold_batchnorm(model)
        after = folded(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert torch.allclose(before, after, atol=1e-4)


@pytest.mark.parametrize("model", ["best", "wide"])
def test_best_recipe_smoke(model: str, tmp_path: Path, mnist_dir: Path) -> None:
    """`digitrec train --model best` at a few steps: a complete run directory, a sane model."""
    from digitrec.inference.checkpoint import load_checkpoint
    from digitrec.training.recipes import recipe_for

    recipe = recipe_for(model)
    assert recipe.augment == "strong" and ("validation" in recipe.source or model == "wide")
    out = tmp_path / "run"
    args = ["train", "--model", model, "--max-steps", "3",
            "--val-size", "200", "--threads", "1", "--device", "cpu", "--no-eval",
            "--no-report", "--data-dir", str(mnist_dir), "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 3
    model_ = load_checkpoint(out / "last.safetensors").model
    assert model_(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_best_bench_smoke(tmp_path: Path, mnist_dir: Path) -> None:
    """bench/best.py's search worker at 2 steps: it reports validation accuracy only."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "best.py"
    spec = importlib.util.spec_from_file_location("best_bench", path)
    assert spec and spec.loader
    best = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(best)
    run = {"name": "t", "model": "best", "kwargs": {"widths": [8, 8, 8], "depths": [1, 1, 1]},
           "overrides": {"batch_size": 16}, "seed": 0, "device": "cpu",
           "data_dir": str(mnist_dir), "max_steps": 2, "train_limit": 64}  # fmt: skip
    out = best.run_one(run)
    assert 0 <= out["val_acc"] <= 1 and 0 <= out["val_acc_tta"] <= 1
    assert not any("test" in key for key in out)
    assert {name for name, *_ in best.CANDIDATES} >= {"small-elastic-20"}
