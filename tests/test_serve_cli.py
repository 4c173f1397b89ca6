"""`digitrec serve` on the command line, the ONNX Runtime back end, and the benchmarks' smoke
runs (bench/load.py, bench/soak.py: their figures are in the README; no timing asserted here)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from serve_helpers import cli_server

pytest.importorskip("fastapi", reason="the serve extra is not installed")

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_onnx_backend(tmp_path: Path, mnist_test) -> None:
    pytest.importorskip("onnxruntime")
    from digitrec.inference.checkpoint import default_checkpoint
    from digitrec.inference.onnx import export_onnx

    onnx = export_onnx(default_checkpoint(), tmp_path / "digits.onnx")
    images, labels = mnist_test
    with cli_server(str(onnx), "--threads", "1", log=tmp_path / "log") as base:
        assert httpx.get(f"{base}/api/model").json()["backend"] == "onnxruntime"
        r = httpx.post(f"{base}/api/predict", json={"pixels": images[0].tolist()})
        assert r.json()["digit"] == labels[0]


def test_cli_binds_localhost_and_warns_otherwise(monkeypatch, capsys) -> None:
    import digitrec.cli.serve
    from digitrec.cli import main

    bound: list[tuple] = []
    monkeypatch.setattr(
        digitrec.cli.serve,
        "run_uvicorn",
        lambda app, sock, args: bound.append(sock.getsockname()) or True,
    )
    assert main(["serve", "--port", "0", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    host, port = bound[-1]
    assert host == "127.0.0.1" and f"http://127.0.0.1:{port}/" in err
    assert "warning" not in err
    assert main(["serve", "--host", "0.0.0.0", "--port", "0", "--threads", "1"]) == 0
    assert bound[-1][0] == "0.0.0.0"
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    from digitrec.cli import main

    assert main(["serve", str(tmp_path / "missing.safetensors"), "--port", "0"]) == 1
    assert main(["serve", "a.onnx", "-c", "b.onnx", "--port", "0"]) == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["serve", "--port", str(busy.getsockname()[1])]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("digitrec: error: ") for line in lines)
    assert "in use" in lines[2]


@pytest.mark.slow
def test_load_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    args = ["--requests", "40", "--warmup", "8", "--backends", "torch", "--workers", "1"]
    args += ["--repeat", "1"]
    run = subprocess.run(
        [sys.executable, "bench/load.py", *args, "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode in (0, 1), run.stderr  # 1: targets missed, e.g. on a busy machine
    (row,) = json.loads(out.read_text())["results"]
    assert row["paced"]["errors"] == 0 and row["max"]["errors"] == 0


@pytest.mark.slow
def test_soak_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, "bench/soak.py", "--duration", "2", "--clients", "4", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["machine"]["server_alive"] and not result["health_failures"]
    assert not any(s.startswith("5") for kind in result["kinds"].values() for s in kind)
