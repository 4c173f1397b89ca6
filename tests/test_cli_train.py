"""train / evaluate / summary / models through the CLI, in-process and as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digitrec.cli import main
from digitrec.inference.checkpoint import load_checkpoint


def test_models_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    assert "pytorch-example" in capsys.readouterr().out
    assert main(["summary", "--model", "kaggle-cnn"]) == 0
    assert "Total params: 3,304,426" in capsys.readouterr().out
    assert main(["summary", "--model", "nope"]) == 1
    assert "choose from" in capsys.readouterr().err


def test_train_then_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    args = [
        "train",
        "--model",
        "lenet5",
        "--max-steps",
        "30",
        "--val-size",
        "500",
        "--threads",
        "1",
        "--out",
        str(run),
    ]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "test accuracy:" in out.out and "Epoch 1/20" in out.err
    assert main(["evaluate", "-c", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 10_000 and len(report["per_class"]) == 10
    assert sum(map(sum, report["confusion"])) == 10_000
    assert main(["evaluate", "-c", str(run / "last.safetensors"), "--split", "val"]) == 0
    text = capsys.readouterr().out
    assert "confusion matrix" in text and "(" in text and "/500)" in text


def test_train_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model", "nope", "--out", str(tmp_path / "r")]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert (
        main(["train", "--model", "lenet5", "--val-size", "60000", "--out", str(tmp_path / "r")])
        == 1
    )
    assert "--val-size must be in" in capsys.readouterr().err
    assert main(["evaluate", "-c", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert "no such checkpoint" in err and err.count("\n") == 1
    assert main(["train", "--resume", str(tmp_path)]) == 1
    assert "not a run directory" in capsys.readouterr().err


def test_set_overrides_recipe_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    base = ["train", "--model", "lenet5", "--max-steps", "2", "--threads", "1", "--no-eval"]
    sets = ["--set", "augment=affine", "--set", "ema=0.99", "--set", "nesterov=yes"]
    assert main([*base, *sets, "--set", "steps=none", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["recipe_overrides"] == {
        "augment": "affine",
        "ema": 0.99,
        "nesterov": True,
        "steps": None,
    }
    assert config["resolved_recipe"]["augment"] == "affine"
    capsys.readouterr()
    bad = {
        "nope=1": "unknown recipe field; choose from optimizer",
        "lr=abc": "expected a value of type float",
        "lr=inf": "expected a value of type float",
        "augment=wobble": "unknown augment 'wobble'; choose from none, shift, affine",
        "ema=1.5": "recipe ema=1.5 is out of range",
        "steps": "expected FIELD=VALUE",
    }
    for item, message in bad.items():
        assert main([*base, "--set", item, "--out", str(tmp_path / "bad")]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()  # refused before anything is written
    assert main(["train", "--resume", str(run), "--set", "ema=0.5"]) == 1
    assert "cannot change a resumed run" in capsys.readouterr().err


def test_sigterm_saves_resumable_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "digitrec",
        "train",
        "--model",
        "lenet5",
        "--threads",
        "1",
        "--val-size",
        "500",
        "--out",
        str(run),
        "--no-eval",
    ]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        # config.json is written just before the first step.
        while not (run / "config.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "resume with: digitrec train --resume" in rest and "Traceback" not in rest
    step = load_checkpoint(run / "last.safetensors").meta["step"]
    assert step > 0
    assert main(["train", "--resume", str(run), "--max-steps", str(step + 5), "--no-eval"]) == 0
    assert load_checkpoint(run / "last.safetensors").meta["step"] == step + 5
