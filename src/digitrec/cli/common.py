"""Small helpers that several command modules share."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from digitrec.errors import DigitrecError


def say(msg: str) -> None:
    """A status line on stderr (stdout is kept for results)."""
    print(msg, file=sys.stderr)


def apply_threads(threads: int | None, auto: bool = True) -> int | None:
    """``--threads``: set torch's intra-op thread count and return it.

    None picks the cores other work leaves free, as ``train`` does (torch's default of one
    thread per core runs many times slower on a busy machine); with ``auto=False`` None keeps
    torch's choice (and returns None).
    """
    if not threads and auto:
        from digitrec.training.config import auto_threads

        threads = auto_threads()[0]
    if threads:
        import torch

        torch.set_num_threads(threads)
    return threads or None


def check_device(name: str) -> None:
    """``--device``: fail on an unknown or absent device before any model or data is loaded."""
    from digitrec.inference.device import pick_device

    pick_device(name)


def note_checkpoint(path: str | os.PathLike) -> None:
    """Say on stderr when a run directory has no ``best`` and its ``last`` is used instead."""
    from digitrec.inference.checkpoint import SUFFIX

    folder = Path(path)
    if (
        folder.is_dir()
        and not (folder / f"best{SUFFIX}").is_file()
        and (folder / f"last{SUFFIX}").is_file()
    ):
        say(f"digitrec: note: {folder} has no best{SUFFIX}; using last{SUFFIX}")


def checkpoint_or_default(path: str | os.PathLike | None) -> str | os.PathLike:
    """``--checkpoint`` as given (with a note where a run directory falls back to ``last``),
    else the model shipped in the package."""
    if path:
        note_checkpoint(path)
        return path
    from digitrec.inference.checkpoint import default_checkpoint

    return default_checkpoint()


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name one file (also through symlinks, ``..`` or hard links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return Path(a).resolve() == Path(b).resolve()


def refuse_overwriting_input(
    out: str | os.PathLike, *inputs: str | os.PathLike, option: str = "--out"
) -> None:
    """An output (given with ``option``) that would replace one of the command's inputs is a
    user error."""
    for given in inputs:
        if same_file(out, given):
            raise DigitrecError(f"{option} {out} is the input file {given}; choose another name")
