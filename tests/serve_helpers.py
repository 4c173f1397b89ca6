"""Real servers for the API and browser tests: `digitrec serve` in a subprocess, or uvicorn in a
thread around an app built with non-default limits. Both listen on 127.0.0.1 on a free port."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(
    base: str, proc: subprocess.Popen | None, log: Path | None, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            text = log.read_text() if log else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{text}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server at {base} did not become healthy in {timeout} s")


@contextlib.contextmanager
def cli_server(*args: str, log: Path, timeout: float = 180) -> Iterator[str]:
    """``python -m digitrec serve ARGS --port P``; yields the base URL; stops it (SIGTERM)."""
    port = free_port()
    cmd = [sys.executable, "-m", "digitrec", "serve", *args, "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, log, timeout)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def thread_server(app: Any) -> Iterator[str]:
    """uvicorn in a thread around ``app``; yields the base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, None, None, 60)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def png_bytes(image: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    return buf.getvalue()


def as_photo(digit: np.ndarray, scale: int = 8) -> np.ndarray:
    """An MNIST digit as a drawing: dark ink on white paper, ``scale`` times larger."""
    return 255 - np.kron(digit, np.ones((scale, scale), dtype=np.uint8))
