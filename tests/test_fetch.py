"""Mirror fallback against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from digitrec.data.fetch import fetch_mnist
from digitrec.data.specs import MNIST_MD5, load_mnist, md5_status
from digitrec.errors import DataError


class _CorruptHandler(http.server.BaseHTTPRequestHandler):
    """Serves every file with the right length but flipped bytes, so only md5 can tell."""

    source: Path

    def do_GET(self) -> None:
        data = bytearray((self.source / Path(self.path).name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(bytes(data))

    def log_message(self, *args) -> None:
        pass


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _serve(handler) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/mnist/"


def _dead_url() -> str:
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture
def mirrors(mnist_dir: Path) -> Iterator[list[str]]:
    corrupt = type("Corrupt", (_CorruptHandler,), {"source": mnist_dir})
    good = functools.partial(_QuietFiles, directory=str(mnist_dir.parent))
    servers = [_serve(corrupt), _serve(good)]
    # The good server exposes the real MNIST folder under /<folder name>/.
    good_url = servers[1][1].replace("/mnist/", f"/{mnist_dir.name}/")
    yield [_dead_url(), servers[0][1], good_url]
    for server, _ in servers:
        server.shutdown()
        server.server_close()


def test_falls_back_past_dead_and_corrupt_mirrors(tmp_path: Path, mirrors: list[str]) -> None:
    messages: list[str] = []
    folder = fetch_mnist(
        tmp_path / "data", mirrors=mirrors, use_pip=False, timeout=5, log=messages.append
    )
    assert md5_status(folder) == {name: "ok" for name in MNIST_MD5}
    assert sorted(p.name for p in folder.iterdir()) == sorted(MNIST_MD5)  # no partial files
    assert any("md5 mismatch" in m for m in messages)
    assert any("Connection refused" in m or "refused" in m.lower() for m in messages)
    assert load_mnist("test", folder)[0].shape == (10_000, 28, 28)


def test_all_mirrors_fail_lists_attempts(tmp_path: Path, mirrors: list[str]) -> None:
    with pytest.raises(DataError) as info:
        fetch_mnist(tmp_path, mirrors=mirrors[:2], use_pip=False, timeout=5)
    text = str(info.value)
    assert "md5 mismatch" in text and "--data-dir" in text and mirrors[0] in text
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_existing_good_files_are_kept(tmp_path: Path, mnist_dir: Path) -> None:
    for name in MNIST_MD5:
        (tmp_path / name).write_bytes((mnist_dir / name).read_bytes())
    # No mirror at all: succeeds only because every file is already present and verified.
    assert fetch_mnist(tmp_path, mirrors=[], use_pip=False) == tmp_path
