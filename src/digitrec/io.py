"""Atomic file output: write to a temporary file beside the target, then rename.

A crash, Ctrl-C or SIGTERM mid-write leaves the previous file intact and no half-written one
(the CLI turns SIGTERM into ``KeyboardInterrupt`` so the cleanup below runs). Every way an
output path can be wrong (a directory, a missing or read-only parent, a full disk) is a one-line
:class:`~digitrec.errors.DigitrecError` naming the path and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from digitrec.errors import DigitrecError


def _reason(exc: OSError) -> str:
    """``strerror`` in lower case ("permission denied"), else the exception text."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def check_output_path(path: str | os.PathLike) -> Path:
    """Refuse an output path that cannot be written, before any work is done.

    Catches a directory, a parent that is a file and a parent that is not writable. The parent
    directory need not exist yet (:func:`atomic_path` creates it).
    """
    target = Path(path)
    if target.is_dir():
        raise DigitrecError(f"cannot write {target}: is a directory")
    parent = target.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DigitrecError(f"cannot write {target}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DigitrecError(f"cannot write {target}: permission denied in {parent}")
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    Missing parent directories are created. Raises :class:`DigitrecError` when the target is a
    directory or cannot be written; the temporary file is removed however the block ends.
    """
    target = check_output_path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        if isinstance(exc, FileExistsError | NotADirectoryError):
            raise DigitrecError(
                f"cannot write {target}: a parent path is a file, not a directory"
            ) from exc
        raise DigitrecError(f"cannot write {target}: {_reason(exc)}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
            # mkstemp makes 0600 files; give the result the permissions a plain open() would.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, target)
        except OSError as exc:
            # Only errors about our own files (a full disk, the target turned into a directory);
            # an OSError about some other file belongs to the caller.
            names = {os.fspath(n) for n in (exc.filename, exc.filename2) if n is not None}
            if names & {str(tmp), str(target)} or exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DigitrecError(f"cannot write {target}: {_reason(exc)}") from exc
            raise
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write bytes or text to ``path`` atomically."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
