"""The ``digitrec`` command line. argparse lives only in this package; handlers call the library.

One module per command group (``data``, ``train``, ``models``, ``images``, ``bench``); shared
options are declared once in :mod:`digitrec.cli.options`.

Exit codes: 0 success, 1 a user error (one line on stderr), 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from enum import IntEnum

from digitrec import __version__
from digitrec.errors import DigitrecError


class ExitStatus(IntEnum):
    """Process exit codes."""

    OK = 0
    ERROR = 1
    USAGE = 2
    INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI grammar, assembled from the command-group modules."""
    from digitrec.cli import bench, data, ensemble, images, models, report, serve, train, tune

    parser = argparse.ArgumentParser(
        prog="digitrec",
        description="Handwritten-digit recognition with convolutional networks.",
    )
    parser.add_argument("--version", action="version", version=f"digitrec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (data, models, train, tune, ensemble, images, bench, report, serve):
        group.add_commands(sub)
    return parser


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM acts like Ctrl-C: ``finally`` blocks run, so temporary files are removed.

    Training installs its own handler while it runs (a clean stop that saves ``last``), which
    takes precedence; it restores this one afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _os_error_line(exc: OSError) -> str:
    """``<path>: <reason>`` for an OSError that escaped the library's own checks."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    reason = reason[:1].lower() + reason[1:]
    names = [os.fspath(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(map(str, names))}: {reason}" if names else reason


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting, so tests can call it in-process."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return int(exc.code or 0)
    with _sigterm_interrupts():
        code = _run(args)
    if argv is None:  # the process's own command line: it exits next
        # The interpreter's last garbage collection walks every object torch created: ~0.4 s of
        # a cold `digitrec train`. Frozen objects are skipped; atexit handlers still run.
        gc.freeze()
    return code


def _run(args: argparse.Namespace) -> int:
    func: Callable[[argparse.Namespace], int | None] = args.func
    try:
        return int(func(args) or ExitStatus.OK)
    except DigitrecError as exc:
        if args.debug:
            raise
        print(f"digitrec: error: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    except BrokenPipeError:  # e.g. `digitrec models | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.OK
    except OSError as exc:
        # A safety net: a file the library did not expect to fail (unreadable, a directory...)
        # is still one line, not a traceback.
        if args.debug:
            raise
        print(f"digitrec: error: {_os_error_line(exc)}", file=sys.stderr)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("digitrec: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
