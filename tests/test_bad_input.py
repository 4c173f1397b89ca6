"""The bad-input matrix, in-process: every row of ``bench/bad_input_cases.py`` that needs no
training run gives the right exit code and one line naming the problem, never a traceback.

``bench/bad_input_matrix.py`` runs the same rows (and the training ones) in real processes.
Run as root, the "unreadable" and "read-only" rows cannot come from ``chmod``; there the test
makes the operating system's refusal itself (``open`` raises ``PermissionError``, ``os.access``
says no) for exactly those paths, so the code paths under test are the same.
"""

from __future__ import annotations

import argparse
import builtins
import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from digitrec.cli import build_parser, main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bad_input_cases import CASES, Case, check
from bad_input_fixtures import LOCKED, make_fixtures, unlock

IN_PROCESS = [c for c in CASES if c.inprocess]


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path, mnist_test):
    """Every bad input, and one small trained run (5 steps of ``fast``)."""
    from digitrec.training import TrainConfig, train

    base = tmp_path_factory.mktemp("bad-input")
    run = base / "run"
    cfg = TrainConfig(model="fast", max_steps=5, val_size=500, threads=1, out=str(run))
    cfg.data_dir = str(mnist_dir)
    train(cfg)
    root = base / "cases"
    root.mkdir()
    fixtures = make_fixtures(root, run, mnist_test)
    yield fixtures
    unlock(root)


def _os_refuses(monkeypatch: pytest.MonkeyPatch, fx: dict[str, str]) -> None:
    """As root, chmod does not stop reads or writes: refuse them for the locked paths."""
    if os.geteuid() != 0:
        return
    locked = {str(Path(fx["root"], name)) for name in LOCKED}
    real_open, real_access = builtins.open, os.access

    def is_locked(path: object) -> bool:
        if isinstance(path, int):
            return False
        text = os.path.abspath(os.fsdecode(path))  # type: ignore[arg-type]
        return any(text == p or text.startswith(p + os.sep) for p in locked)

    def fake_open(file, *args, **kwargs):
        if is_locked(file):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    def fake_access(path, mode, *args, **kwargs):
        return False if is_locked(path) else real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr("io.open", fake_open)
    monkeypatch.setattr(os, "access", fake_access)


@pytest.mark.parametrize("case", IN_PROCESS, ids=[c.id for c in IN_PROCESS])
def test_bad_input_row(
    case: Case,
    fx: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(fx["root"])
    _os_refuses(monkeypatch, fx)
    rc = main(case.args(fx))
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    assert rc in case.rc, f"exit {rc}: {err}"
    assert "Traceback" not in err
    assert case.says.lower() in last.lower(), last
    if rc != 0:
        assert last.startswith("digitrec"), err
    if case.check:
        assert check(case.check, fx, out, err) == ""


def _leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) for every runnable command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _leaf_parsers(sub, (*path, name))


def test_debug_is_accepted_after_every_command() -> None:
    leaves = list(_leaf_parsers(build_parser()))
    assert len(leaves) >= 12
    for words, leaf in leaves:
        # Before and after the command, --debug lands in the same place.
        option = next((a for a in leaf._actions if "--debug" in a.option_strings), None)
        assert option is not None, f"digitrec {' '.join(words)} has no --debug"
        assert option.dest == "debug" and option.default is argparse.SUPPRESS, words


def test_debug_after_the_command_shows_the_traceback(
    fx: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from digitrec.errors import CheckpointError

    with pytest.raises(CheckpointError):
        main(["evaluate", "-c", f"{fx['root']}/nope.safetensors", "--debug"])
    import digitrec.cli.models as models

    def broken(args: argparse.Namespace) -> int:
        raise IsADirectoryError(errno.EISDIR, "Is a directory", "somewhere/x.csv")

    monkeypatch.setattr(models, "models_list", broken)
    with pytest.raises(IsADirectoryError):  # the OSError safety net also steps aside
        main(["models", "--debug"])


def test_an_unexpected_os_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import digitrec.cli.models as models

    def broken(args: argparse.Namespace) -> int:
        raise IsADirectoryError(errno.EISDIR, "Is a directory", "somewhere/x.csv")

    monkeypatch.setattr(models, "models_list", broken)
    assert main(["models"]) == 1
    assert capsys.readouterr().err == "digitrec: error: somewhere/x.csv: is a directory\n"


def test_sigterm_removes_the_half_written_file(tmp_path: Path) -> None:
    """SIGTERM mid-write: exit 130, "interrupted", and no hidden .tmp file left behind."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys, time
        import digitrec.data.kaggle as kaggle
        from digitrec.cli import main
        from digitrec.io import atomic_path

        def slow_write(path, images, labels=None):
            with atomic_path(path) as tmp:
                tmp.write_text("pixel0" * 1000)
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)

        kaggle.write_kaggle_csv = slow_write
        sys.exit(main(["data", "export-kaggle", "--out", {str(tmp_path / "k")!r}]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "digitrec: interrupted"
    assert list((tmp_path / "k").iterdir()) == []


def test_training_keeps_its_own_sigterm_handling(
    fx: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """While training runs, SIGTERM is the loop's clean stop (it saves last), not an abort."""
    from digitrec.training.stop import SignalStop

    real = SignalStop.requested
    calls = []

    def requested(self: SignalStop) -> bool:
        calls.append(1)
        if len(calls) == 3:  # a SIGTERM arrives after two steps
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self)

    monkeypatch.setattr(SignalStop, "requested", requested)
    out = Path(fx["root"]) / "stopped-run"
    args = ["train", "--data-dir", fx["idx_ok"], "--val-size", "50", "--threads", "1"]
    rc = main([*args, "--no-eval", "--steps", "50", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 130 and "resume with" in err, err  # the loop's clean stop, not an abort
    assert (out / "last.safetensors").is_file()
