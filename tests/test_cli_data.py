"""The CLI run in-process: exit codes, stdout and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec import __version__
from digitrec.cli import main
from digitrec.data.kaggle import read_kaggle_csv, read_submission


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "data" in capsys.readouterr().out
    assert main([]) == 2  # a subcommand is required
    assert main(["data", "show", "--index", "abc"]) == 2


def test_data_info_prints_counts_and_sha256(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert "train   60000   5923  6742  5958  6131  5842  5421  5918  6265  5851  5949" in out
    assert "test    10000    980  1135  1032  1010   982   892   958  1028   974  1009" in out
    assert out.count("sha256 ok") == 4


def test_data_show_writes_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "digit.png"
    assert main(["data", "show", "--split", "train", "--index", "0", "--out", str(out)]) == 0
    assert "label 5" in capsys.readouterr().out  # the first training digit is a 5
    with Image.open(out) as img:
        assert img.width >= 150 and img.height >= 150


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "show", "--index", "60000"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("digitrec: error: --index must be in 0..59999") and err.count("\n") == 1
    assert main(["data", "info", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not found" in err and "Traceback" not in err and err.count("\n") == 1
    assert main(["data", "show", "--out", str(tmp_path / "x.nope")]) == 1
    assert "unsupported image format" in capsys.readouterr().err


def test_debug_shows_traceback(tmp_path: Path) -> None:
    from digitrec.errors import DataError

    with pytest.raises(DataError):
        main(["--debug", "data", "info", "--data-dir", str(tmp_path)])


def test_export_kaggle(tmp_path: Path, mnist_test) -> None:
    assert main(["data", "export-kaggle", "--out", str(tmp_path)]) == 0
    test_x, none = read_kaggle_csv(tmp_path / "test.csv")
    assert none is None
    np.testing.assert_array_equal(test_x, mnist_test[0])
    np.testing.assert_array_equal(read_submission(tmp_path / "test_labels.csv"), mnist_test[1])
    with open(tmp_path / "train.csv") as fh:
        assert sum(1 for _ in fh) == 60_001


def test_atomic_path_turns_os_errors_into_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digitrec.errors import DigitrecError
    from digitrec.io import atomic_path, atomic_write

    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DigitrecError, match=r"cannot write .*dir: is a directory"):
        atomic_write(tmp_path / "dir", "data")
    with pytest.raises(DigitrecError, match="is a file, not a directory"):
        atomic_write(tmp_path / "file" / "sub" / "x.csv", "data")
    # A full disk while writing names the target, and leaves no temporary file behind.
    full = r"cannot write .*out.csv: no space left on device"
    with pytest.raises(DigitrecError, match=full), atomic_path(tmp_path / "out.csv") as tmp:
        raise OSError(28, "No space left on device", str(tmp))
    # An OSError about another file is the caller's, unchanged.
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "out.csv"):
        (tmp_path / "missing-input").read_text()
    # A read-only folder (as root, chmod does not bind: refuse like the kernel would).
    monkeypatch.setattr("os.access", lambda path, mode: False)
    with pytest.raises(DigitrecError, match="permission denied in"):
        atomic_write(tmp_path / "ro" / "x.csv", "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"]


def test_atomic_path_cleans_up_on_interrupt(tmp_path: Path) -> None:
    from digitrec.io import atomic_path

    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "x.csv") as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_output_checked_before_the_data_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`data show --out DIR` and `export-kaggle --out FILE` fail at once, not after loading."""
    import digitrec.data as data

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(data, "load_split", never)
    assert main(["data", "show", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"digitrec: error: cannot write {tmp_path}: is a directory\n"
    (tmp_path / "f").write_text("")
    assert main(["data", "export-kaggle", "--out", str(tmp_path / "f")]) == 1
    assert "is a file, not a directory" in capsys.readouterr().err
