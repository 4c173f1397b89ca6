"""Shared by ``bench/load.py`` and ``bench/soak.py``: a ``digitrec serve`` subprocess on
127.0.0.1, a minimal HTTP/1.1 keep-alive client on asyncio streams, and /proc readings.

The client is deliberately small: on a 2-core machine the load generator shares the CPU with the
server, and a full-featured client (httpx: ~0.3-0.5 ms of CPU a request) would measure itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(args: list[str], log: Path, timeout: float = 180) -> Iterator[tuple[str, int, int]]:
    """``python -m digitrec serve ARGS`` on a free port; yields ``(host, port, pid)``."""
    port = free_port()
    cmd = [sys.executable, "-m", "digitrec", "serve", *args, "--host", HOST, "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()}")
            url = f"http://{HOST}:{port}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not healthy after {timeout} s:\n{log.read_text()}")
            time.sleep(0.2)
        yield HOST, port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, MB (from /proc)."""
    total = 0.0
    for p in [pid, *children(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """Direct child processes (``--workers``: the worker processes)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int(_stat(int(entry.name))[1]) == pid:
                    kids.append(int(entry.name))
    return kids


def cpu_s(pid: int) -> float:
    """User + system CPU seconds so far of a process and its live children."""
    total = 0.0
    for p in [pid, *children(pid)]:
        with contextlib.suppress(OSError, IndexError):
            fields = _stat(p)
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine() -> dict[str, object]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_before": os.getloadavg(),
    }


def request_bytes(method: str, path: str, body: bytes = b"", kind: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    if kind:
        head += f"Content-Type: {kind}\r\n"
    if body or method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """``(status, body, server_closes)`` of one response (Content-Length or close-delimited)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    closes = headers.get("connection", "").lower() == "close"
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
        closes = True
    return status, body, closes


class Conn:
    """One keep-alive connection; reconnects after the server closes it, or after an idle spell
    that the server's keep-alive timeout (uvicorn: 5 s) may have ended, as HTTP clients do."""

    IDLE_S = 4.0

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def request(self, payload: bytes) -> tuple[int, bytes]:
        if self.writer is not None and time.monotonic() - self.used > self.IDLE_S:
            await self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(payload)
            await self.writer.drain()
            status, body, closes = await read_response(self.reader)
        except BaseException:
            await self.close()
            raise
        self.used = time.monotonic()
        if closes:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


@functools.cache
def mnist_pixel_bodies(n: int) -> list[tuple[bytes, int]]:
    """``n`` JSON bodies ``{"pixels": ...}`` of MNIST test digits, with their labels."""
    from digitrec.data import load_mnist

    images, labels = load_mnist("test", os.environ.get("DIGITREC_DATA"))
    return [(json.dumps({"pixels": images[i].tolist()}).encode(), int(labels[i])) for i in range(n)]
