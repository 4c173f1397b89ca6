"""ONNX export: a real export, checked with real ONNX Runtime against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from digitrec.cli import main
from digitrec.inference.onnx import export_onnx, load_onnx
from digitrec.inference.predictor import Predictor


@pytest.fixture(scope="module")
def exported(fast_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(fast_run, tmp_path_factory.mktemp("onnx") / "fast.onnx")


def test_onnx_predictor_matches_pytorch(exported: Path, fast_run: Path, mnist_test) -> None:
    images, labels = mnist_test
    eager = Predictor.from_checkpoint(fast_run)
    ort = Predictor.from_checkpoint(exported)
    assert ort.meta["arch"] == eager.meta["arch"] == "fast"
    assert ort.preprocessing == eager.preprocessing
    p_eager, p_ort = eager.predict_proba(images[:500]), ort.predict_proba(images[:500])
    assert np.abs(p_eager - p_ort).max() < 1e-4
    assert (ort.predict(images[:500]) == labels[:500]).mean() > 0.97
    assert ort.predict_proba(images[:1]).shape == (1, 10)  # any batch size
    ort.tta = True
    assert np.abs(ort.predict_proba(images[:8]) - p_ort[:8]).max() > 1e-4


def test_export_cli_writes_beside_the_checkpoint(
    fast_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes((fast_run / "best.safetensors").read_bytes())
    assert main(["export", "-c", str(run)]) == 0
    assert "matches PyTorch" in capsys.readouterr().out
    assert (run / "best.onnx").is_file()
    assert sorted(p.name for p in run.iterdir()) == ["best.onnx", "best.safetensors"]
    # The export is a checkpoint like any other for evaluate and predict.
    assert main(["evaluate", "-c", str(run / "best.onnx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.98


def test_bad_onnx_inputs(exported: Path, fast_run: Path, tmp_path: Path, capsys) -> None:
    foreign = onnx.load(str(exported))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    for name, message in [
        ("foreign.onnx", "not a digitrec ONNX export"),
        ("junk.onnx", "not a readable ONNX model"),
        ("missing.onnx", "no such file"),
    ]:
        assert main(["predict", "-c", str(tmp_path / name), "x.png"]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert main(["export", "-c", str(fast_run), "--out", str(tmp_path / "model.bin")]) == 1
    assert "must end in .onnx" in capsys.readouterr().err
    with pytest.raises(Exception, match="not a digitrec"):
        load_onnx(tmp_path / "foreign.onnx")
