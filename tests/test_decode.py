"""``load_image`` on paths that are not readable image files: one line, never an OSError."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digitrec.images import ImageReadError, decode, load_image


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.png", "no such file"),
        (lambda d: (d / "folder.png").mkdir() or d / "folder.png", "is a directory"),
        (lambda d: _link(d / "loop.png", d / "loop.png"), "symlink loop"),
        (lambda d: _link(d / "dangling.png", d / "gone.png"), "symlink to a missing file"),
    ],
    ids=["missing", "directory", "loop", "dangling"],
)
def test_path_problems_are_named(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(ImageReadError, match=f"cannot read image '.*': {message}$"):
        load_image(make(tmp_path))


def _link(path: Path, target: Path) -> Path:
    path.symlink_to(target)
    return path


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root reads any file, so the refusal is simulated where the bytes are read."""
    (tmp_path / "x.png").write_bytes(b"\x89PNG")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(decode.Path, "read_bytes", refuse)
    with pytest.raises(ImageReadError, match=r"x\.png': permission denied$"):
        load_image(tmp_path / "x.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
@pytest.mark.timeout(30)
def test_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ImageReadError, match="not a regular file"):
        load_image(tmp_path / "pipe.png")
