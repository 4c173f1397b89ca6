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


def _tiny(out: Path, *extra: str) -> list[str]:
    """A 2-step lenet5 run into ``out``."""
    base = ["train", "--model", "lenet5", "--max-steps", "2", "--threads", "1", "--no-eval"]
    return [*base, *extra, "--out", str(out)]


def test_a_run_directory_is_never_replaced_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(_tiny(run, "--val-size", "500")) == 0
    (run / "best.onnx").write_bytes(b"an export of the first run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(_tiny(run, "--val-size", "600")) == 1
    err = capsys.readouterr().err
    assert err == (
        f"digitrec: error: {run} already holds a run; pass --force to replace it, or --out NEW\n"
    )
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # --force replaces the run: nothing of the first one is left, metrics.jsonl starts afresh.
    assert main(["train", "--model", "lenet5", "--max-steps", "3", "--threads", "1", "--force",
                 "--no-eval", "--val-size", "600", "--out", str(run)]) == 0  # fmt: skip
    assert not (run / "best.onnx").exists()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [3]
    assert json.loads((run / "config.json").read_text())["val_size"] == 600
    assert load_checkpoint(run / "best.safetensors").meta["train_config"]["val_size"] == 600


def test_resume_refuses_flags_that_would_change_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(_tiny(run, "--val-size", "500")) == 0
    capsys.readouterr()
    refused = [
        ["--lr", "0.1"],
        ["--model", "fast", "--seed", "3"],
        ["--out", str(tmp_path / "other")],
        ["--steps", "5", "--batch-size", "8", "--val-size", "10"],
        ["--set", "ema=0.5", "--deterministic", "--force"],
    ]
    for flags in refused:
        assert main(["train", "--resume", str(run), *flags]) == 1
        err = capsys.readouterr().err
        named = [f for f in flags if f.startswith("--")]
        assert f"{', '.join(named)} cannot change a resumed run" in err, err
        assert len(err.strip().splitlines()) == 1
    assert load_checkpoint(run / "last.safetensors").meta["step"] == 2  # untouched
    ok = ["--max-steps", "4", "--threads", "1", "--device", "cpu", "--save-every", "30"]
    assert main(["train", "--resume", str(run), *ok, "--no-eval"]) == 0
    assert load_checkpoint(run / "last.safetensors").meta["step"] == 4


def test_bad_numbers_are_refused_before_data_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "no-data"  # loading data would fail: these errors must come first
    empty.mkdir()
    base = ["train", "--model", "lenet5", "--data-dir", str(empty), "--out", str(tmp_path / "r")]
    usage = {  # argparse: exit 2, "argument --x: ..."
        ("--seed", "-1"): "must be in 0..4294967295, got -1",
        ("--seed", str(2**70)): "must be in 0..4294967295",
        ("--seed", "1.5"): "expected a whole number",
        ("--max-steps", "0"): "must be at least 1, got 0",
        ("--threads", "0"): "must be at least 1, got 0",
        ("--threads", "-1"): "must be at least 1, got -1",
        ("--val-size", "-1"): "must be at least 0, got -1",
        ("--save-every", "0"): "must be a positive number",
        ("--save-every", "nan"): "must be a positive number",
        ("--epochs", "0"): "must be at least 1, got 0",
    }
    for flags, message in usage.items():
        assert main([*base, *flags]) == 2, flags
        err = capsys.readouterr().err
        assert f"argument {flags[0]}: {message}" in err and "Traceback" not in err, err
    errors = {
        ("--lr", "inf"): "recipe lr=inf is out of range",
        ("--lr", "nan"): "recipe lr=nan is out of range",
        ("--lr", "-1"): "recipe lr=-1.0 is out of range",
        ("--set", "momentum=-5"): "recipe momentum=-5.0 is out of range",
        ("--val-size", "60000"): "--val-size must be in 0..59999, got 60000",
    }
    for flags, message in errors.items():
        assert main([*base, *flags]) == 1, flags
        assert capsys.readouterr().err == f"digitrec: error: {message}\n"
    assert not (tmp_path / "r").exists()


def test_default_threads_leave_busy_cores_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from digitrec.training.config import auto_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for load, threads in ((0.0, 2), (0.4, 2), (0.9, 1), (1.2, 1), (7.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert auto_threads() == (threads, 2), load
    # The banner says what was chosen (an unknown --data-dir stops the run right after it).
    args = ["--data-dir", str(tmp_path / "no-data"), "--out", str(tmp_path / "run")]
    assert main(["train", "--model", "lenet5", *args]) == 1
    assert "threads 1 (auto: 2 cores" in capsys.readouterr().err
