"""Ensemble files (``digitrec ensemble``, ``-c ens.json``): the mean of the members' probabilities,
the file's round trip and checks, and every command that takes a model."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from digitrec.cli import main
from digitrec.data.kaggle import write_kaggle_csv, write_submission
from digitrec.errors import CheckpointError
from digitrec.inference.checkpoint import SHIPPED_MODEL, build_meta, save_checkpoint
from digitrec.inference.ensemble import build_ensemble, read_ensemble
from digitrec.inference.predictor import Predictor
from digitrec.models import Preprocessing
from digitrec.models.preprocessing import UNIT_RANGE

MNIST_PRE = Preprocessing()  # mean 0.1307, std 0.3081


def _softmax_ckpt(
    path: Path,
    bias: list[float],
    weight: torch.Tensor | None = None,
    pre: Preprocessing = UNIT_RANGE,
    **meta: object,
) -> Path:
    """A ``softmax`` (784 -> C linear) checkpoint with these weights: known outputs."""
    classes = len(bias)
    state = {
        "1.weight": torch.zeros(classes, 784) if weight is None else weight,
        "1.bias": torch.tensor(bias, dtype=torch.float32),
    }
    pre = Preprocessing(pre.input_size, pre.mean, pre.std, classes)
    save_checkpoint(path, state, build_meta("softmax", {"num_classes": classes}, pre, **meta))
    return path


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    """The one stderr line of a failed command."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("digitrec: error: "), err
    return err


def test_mean_of_probabilities_on_a_constructed_case(tmp_path: Path, mnist) -> None:
    """Zero weights: each member's output is softmax(bias) for every image."""
    b1, b2 = [0.0, 1.0, 2.0, 0, 0, 0, 0, 0, 0, 3.0], [4.0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0]
    a, b = (
        _softmax_ckpt(tmp_path / "a.safetensors", b1),
        _softmax_ckpt(tmp_path / "b.safetensors", b2),
    )
    build_ensemble([a, b], tmp_path / "ens.json")
    proba = Predictor.from_checkpoint(tmp_path / "ens.json").predict_proba(mnist[0][:5])
    want = (torch.softmax(torch.tensor(b1), 0) + torch.softmax(torch.tensor(b2), 0)) / 2
    np.testing.assert_allclose(proba, np.tile(want.numpy(), (5, 1)), atol=1e-6)
    # Not the mean of logits: that would favour class 0 (mean logit 2.0) less than this does.
    assert proba[0].argmax() == 0
    # TTA averages the ensemble's probabilities over views: constant members stay constant.
    tta = Predictor.from_checkpoint(tmp_path / "ens.json", tta=True).predict_proba(mnist[0][:2])
    np.testing.assert_allclose(tta, proba[:2], atol=1e-6)


def test_members_normalised_differently_are_each_fed_their_own_input(tmp_path: Path, mnist) -> None:
    """The same linear function saved for inputs in 0..1 and for MNIST-standardised inputs."""
    gen = torch.Generator().manual_seed(0)
    w, bias = torch.randn(10, 784, generator=gen) * 0.05, torch.randn(10, generator=gen)
    a = _softmax_ckpt(tmp_path / "a.safetensors", bias.tolist(), w)
    # logits = w' (u - m) / s + b' = w u + b  with  w' = w s,  b' = b + w m (summed over pixels)
    m, s = MNIST_PRE.mean, MNIST_PRE.std
    b_std = (bias + w.sum(1) * m).tolist()
    b = _softmax_ckpt(tmp_path / "b.safetensors", b_std, w * s, MNIST_PRE)
    build_ensemble([b, a], tmp_path / "ens.json")  # the first member's normalisation is used
    images = mnist[0][:50]
    alone = Predictor.from_checkpoint(a).predict_proba(images)
    both = Predictor.from_checkpoint(tmp_path / "ens.json").predict_proba(images)
    np.testing.assert_allclose(both, alone, atol=1e-5)


def test_file_round_trip_relative_paths_and_moving_the_folder(tmp_path: Path, mnist) -> None:
    run = tmp_path / "proj" / "runs" / "m0"
    run.mkdir(parents=True)
    a = _softmax_ckpt(run / "best.safetensors", [1.0] + [0.0] * 9)
    b = _softmax_ckpt(tmp_path / "proj" / "b.safetensors", [0.0] * 9 + [1.0])
    out = tmp_path / "proj" / "ens" / "ens.json"
    doc = build_ensemble([run, b], out)  # a run directory is resolved to its best checkpoint
    assert [m["path"] for m in doc["members"]] == [
        "../runs/m0/best.safetensors",
        "../b.safetensors",
    ]
    assert [m["arch"] for m in doc["members"]] == ["softmax", "softmax"]
    assert [m["num_classes"] for m in doc["members"]] == [10, 10]
    assert json.loads(out.read_text()) == doc
    read, paths = read_ensemble(out)
    assert read == doc and [p.resolve() for p in paths] == [a.resolve(), b.resolve()]
    before = Predictor.from_checkpoint(out).predict_proba(mnist[0][:3])
    shutil.move(tmp_path / "proj", tmp_path / "moved")
    after = Predictor.from_checkpoint(tmp_path / "moved/ens/ens.json").predict_proba(mnist[0][:3])
    np.testing.assert_array_equal(before, after)


def test_reject_threshold_is_the_mean_of_the_members(tmp_path: Path) -> None:
    def reject(t: float) -> dict:
        return {"score": "1-max-digit-prob", "threshold": t, "accept_rate": 0.995}

    a = _softmax_ckpt(tmp_path / "a.safetensors", [0.0] * 11, reject=reject(0.2))
    b = _softmax_ckpt(tmp_path / "b.safetensors", [0.0] * 11, reject=reject(0.4))
    c = _softmax_ckpt(tmp_path / "c.safetensors", [0.0] * 11)
    build_ensemble([a, b], tmp_path / "ab.json")
    pred = Predictor.from_checkpoint(tmp_path / "ab.json")
    assert pred.reject_threshold == pytest.approx(0.3)
    assert "not recalibrated" in pred.meta["reject"]["calibrated_on"]
    build_ensemble([a, c], tmp_path / "ac.json")  # c has no threshold: nothing is rejected
    assert Predictor.from_checkpoint(tmp_path / "ac.json").reject_threshold is None


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _softmax_ckpt(tmp_path / "a.safetensors", [0.0] * 10)
    b = _softmax_ckpt(tmp_path / "b.safetensors", [1.0] + [0.0] * 9)
    eleven = _softmax_ckpt(tmp_path / "c.safetensors", [0.0] * 11)
    ens = tmp_path / "ens.json"
    build_ensemble([a, b], ens)
    good = ens.read_text()

    def evaluate_fails(text: str | None = None) -> str:
        if text is not None:
            ens.write_text(text)
        assert main(["evaluate", "-c", str(ens)]) == 1
        return _err(capsys)

    # A record that no longer says what the member is (edited by hand).
    err = evaluate_fails(good.replace('"arch": "softmax"', '"arch": "fast"', 1))
    assert "member 1 (a.safetensors) is recorded as arch 'fast'" in err
    assert "checkpoint says 'softmax'" in err
    err = evaluate_fails(good.replace('"num_classes": 10', '"num_classes": 11', 1))
    assert "member 1 (a.safetensors) is recorded as num_classes 11" in err
    ens.write_text(good)
    _softmax_ckpt(b, [2.0] + [0.0] * 9)  # a member retrained in place
    assert "member 2 (b.safetensors) changed" in evaluate_fails()
    b.unlink()
    assert "member 2 (b.safetensors) is missing" in evaluate_fails()
    assert "lists no members" in evaluate_fails(
        good.replace('"members": [', '"members": [], "x": [')
    )
    assert "not a digitrec ensemble" in evaluate_fails('{"format": "something else"}')
    assert "not valid JSON (Expecting" in evaluate_fails("[1, 2")
    assert "not valid JSON (Expecting value, line 1 column 1)" in evaluate_fails("")
    truncated = evaluate_fails(good[: good.index('"members"') + 20])
    assert "not valid JSON" in truncated and "not a digitrec ensemble" not in truncated
    assert "not a digitrec ensemble" in evaluate_fails('{"members": []}')
    assert '"members" must be a list, not str' in evaluate_fails(
        good.replace('"members": [', '"members": "x", "y": [')
    )
    assert "newer digitrec" in evaluate_fails(
        good.replace('"format_version": 1', '"format_version": 9')
    )
    ens.unlink()
    assert "no such ensemble file" in evaluate_fails()
    # Building: mixed classes, nothing, twice the same, an ensemble as a member.
    with pytest.raises(
        CheckpointError, match=r"disagree on classes: 10 in .*a\.safetensors, 11 in"
    ):
        build_ensemble([a, eleven], tmp_path / "x.json")
    with pytest.raises(CheckpointError, match="at least one member"):
        build_ensemble([], tmp_path / "x.json")
    assert main(["ensemble", str(a), str(tmp_path / "a.safetensors"), "--out", str(ens)]) == 1
    assert "given twice" in _err(capsys)
    assert main(["ensemble", str(a), "--out", str(ens)]) == 0
    capsys.readouterr()
    assert main(["ensemble", str(ens), str(a), "--out", str(tmp_path / "y.json")]) == 1
    assert "an ensemble cannot be a member" in _err(capsys)
    # The commands that need one network's weights say so.
    for argv in (["export"], ["explain", "--out", str(tmp_path / "e.html")]):
        assert main([*argv, "-c", str(ens)]) == 1
        assert "an ensemble file; this takes a single model" in _err(capsys)


def test_ensemble_command_overwrite_and_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _softmax_ckpt(tmp_path / "a.safetensors", [0.0] * 10)
    b = _softmax_ckpt(tmp_path / "b.safetensors", [1.0] + [0.0] * 9)
    out = tmp_path / "ens.json"
    assert main(["ensemble", str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: 2 members" in printed
    assert "1. a.safetensors  softmax" in printed and "2. b.safetensors  softmax" in printed
    first = out.read_text()
    assert main(["ensemble", str(b), "--out", str(out)]) == 1
    assert "exists; pass --force" in _err(capsys) and out.read_text() == first
    assert main(["ensemble", str(b), "--out", str(out), "--force"]) == 0
    assert len(json.loads(out.read_text())["members"]) == 1
    assert main(["ensemble", str(b), "--out", str(tmp_path / "ens.txt")]) == 1
    assert "must end in .json" in _err(capsys)


def test_onnx_members(tmp_path: Path, mnist) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from digitrec.inference.onnx import export_onnx

    gen = torch.Generator().manual_seed(1)
    w = torch.randn(10, 784, generator=gen) * 0.05
    a = _softmax_ckpt(tmp_path / "a.safetensors", [0.0] * 10, w)
    onnx = export_onnx(a, tmp_path / "a.onnx")
    build_ensemble([onnx, a], tmp_path / "ens.json")
    got = Predictor.from_checkpoint(tmp_path / "ens.json").predict_proba(mnist[0][:20])
    np.testing.assert_allclose(
        got, Predictor.from_checkpoint(a).predict_proba(mnist[0][:20]), atol=1e-5
    )


@pytest.fixture
def twin(tmp_path: Path) -> Path:
    """The shipped model and a copy of it as an ensemble: it must answer exactly as the model."""
    shutil.copy(SHIPPED_MODEL, tmp_path / "copy.safetensors")
    out = tmp_path / "twin.json"
    build_ensemble([SHIPPED_MODEL, tmp_path / "copy.safetensors"], out)
    return out


def _out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def test_evaluate_takes_an_ensemble(twin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same numbers as its one model; --split val works: both members hold out one split."""
    argv = ["evaluate", "--json", "--split", "val"]
    want = json.loads(_out(capsys, [*argv, "-c", str(SHIPPED_MODEL)]))
    got = json.loads(_out(capsys, [*argv, "-c", str(twin)]))
    assert got["arch"] == "ensemble" and got["checkpoint"] == str(twin)
    for key in ("accuracy", "errors", "confusion", "n"):
        assert got[key] == want[key]


def test_predict_read_submit_take_an_ensemble(
    twin: Path, tmp_path: Path, mnist, capsys: pytest.CaptureFixture[str]
) -> None:
    """predict, read and submit answer with -c ens.json as with its (one) model."""
    from digitrec.data.synth import make_numbers

    single = str(SHIPPED_MODEL)
    argv = ["predict", "--split", "test", "--index", "7", "-c"]
    assert _out(capsys, [*argv, single]) == _out(capsys, [*argv, str(twin)])
    images, labels = mnist
    photo = tmp_path / "number.png"
    photo.write_bytes(make_numbers(images, labels, n=1, seed=3)[0][0])
    read = [_out(capsys, ["read", "--json", "-c", c, str(photo)]) for c in (single, str(twin))]
    assert json.loads(read[0])["number"] == json.loads(read[1])["number"]
    write_kaggle_csv(tmp_path / "test.csv", images[:200])
    write_submission(tmp_path / "labels.csv", labels[:200])
    for c in (single, str(twin)):
        sub = str(tmp_path / f"{Path(c).stem}.csv")
        said = _out(capsys, ["submit", "-c", c, "--test", str(tmp_path / "test.csv"), "--out", sub])
        assert said.endswith("from an ensemble of 2\n" if c == str(twin) else "from 1 model\n")
    assert (tmp_path / "twin.csv").read_text() == (
        tmp_path / f"{SHIPPED_MODEL.stem}.csv"
    ).read_text()
    scored = _out(
        capsys, ["score", str(tmp_path / "twin.csv"), "--labels", str(tmp_path / "labels.csv")]
    )
    assert float(scored.split()[1]) > 0.95


def test_serve_an_ensemble(twin: Path, mnist) -> None:
    import argparse

    import httpx

    from digitrec.cli.serve import _model_path
    from digitrec.serve.main import load_app
    from serve_helpers import thread_server

    args = argparse.Namespace(model=str(twin), checkpoint=None)
    assert _model_path(args) == str(twin.resolve())  # what `digitrec serve ens.json` loads
    app = load_app({"checkpoint": str(twin)})
    with thread_server(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        info = client.get("/api/model").json()
        assert info["arch"] == "ensemble" and info["name"].startswith("ensemble (2 x ")
        reply = client.post("/api/predict", json={"pixels": mnist[0][0].tolist()})
        assert reply.status_code == 200, reply.text
        assert reply.json()["digit"] == int(mnist[1][0])
        assert reply.json()["rejected"] is False


@pytest.mark.slow
def test_train_seeds_prints_the_ensemble_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`train --seeds 2` ends with the `digitrec ensemble` line; that line works as printed."""
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--seeds", "2", "--max-steps", "3", "--threads", "1", "--no-report"]
    assert main([*argv, "--val-size", "0", "--out", "runs/tiny"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    prefix = "to use them as one model: digitrec ensemble "
    assert line == f"{prefix}runs/tiny-seed0 runs/tiny-seed1 --out runs/tiny-ensemble.json"
    assert main(["ensemble", *shlex.split(line[len(prefix) :]), "--evaluate"]) == 0
    assert "ensemble test accuracy on mnist" in capsys.readouterr().out
    doc = json.loads(Path("runs/tiny-ensemble.json").read_text())
    assert doc["test_metrics"]["n"] == 10_000
    for seed in (0, 1):  # each member's run directory stays complete on its own
        assert (tmp_path / f"runs/tiny-seed{seed}/test_metrics.json").is_file()
