"""Kaggle CSV reading (strict, with line numbers) and writing."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digitrec.data import kaggle
from digitrec.data.kaggle import (
    PIXEL_COLUMNS,
    read_kaggle_csv,
    read_submission,
    write_kaggle_csv,
    write_submission,
)
from digitrec.errors import DataError


def _rows(n: int, label: bool, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        pixels = [str(v) for v in rng.integers(0, 256, 784)]
        rows.append(([str(rng.integers(0, 10))] if label else []) + pixels)
    return rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return path


@pytest.mark.parametrize("label", [True, False])
def test_roundtrip(tmp_path: Path, label: bool) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7) if label else None
    write_kaggle_csv(tmp_path / "f.csv", images, labels)
    got_x, got_y = read_kaggle_csv(tmp_path / "f.csv")
    np.testing.assert_array_equal(got_x, images)
    if label:
        np.testing.assert_array_equal(got_y, labels)
    else:
        assert got_y is None


def test_matches_kaggle_layout(tmp_path: Path, mnist_test) -> None:
    images, labels = mnist_test
    write_kaggle_csv(tmp_path / "train.csv", images[:3], labels[:3])
    lines = (tmp_path / "train.csv").read_text().splitlines()
    assert lines[0] == "label," + ",".join(PIXEL_COLUMNS)
    assert lines[1].split(",")[0] == str(labels[0]) and len(lines[1].split(",")) == 785


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h, r: (["label", *h[2:]], r), "line 1: bad header"),
        (lambda h, r: (h, [*r[:2], [*r[2], "7"], *r[3:]]), "ragged row"),
        (lambda h, r: (h, [*r[:3], r[3][:-5], *r[4:]]), "line 5: missing value"),
        (lambda h, r: (h, [*r[:1], [r[1][0], "256", *r[1][2:]], *r[2:]]), "line 3: pixel0=256"),
        (
            lambda h, r: (h, [*r[:2], [r[2][0], "x7", *r[2][2:]], *r[3:]]),
            "line 4: column pixel0: 'x7' is not an integer",
        ),
        (lambda h, r: (h, [*r[:1], [r[1][0], "-1", *r[1][2:]], *r[2:]]), "line 3: pixel0=-1"),
        (lambda h, r: (h, [["12", *r[0][1:]], *r[1:]]), "line 2: label 12"),
    ],
)
def test_bad_csv_gives_line_numbers(tmp_path: Path, mutate, message: str) -> None:
    header, rows = mutate(["label", *PIXEL_COLUMNS], _rows(5, label=True))
    path = _write(tmp_path / "train.csv", header, rows)
    with pytest.raises(DataError, match=message):
        read_kaggle_csv(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_kaggle_csv(tmp_path / "nope.csv")


def test_submission_roundtrip_and_order(tmp_path: Path) -> None:
    write_submission(tmp_path / "s.csv", np.array([3, 1, 4]))
    assert (tmp_path / "s.csv").read_text() == "ImageId,Label\n1,3\n2,1\n3,4\n"
    (tmp_path / "shuffled.csv").write_text("ImageId,Label\n2,1\n1,3\n3,4\n")
    np.testing.assert_array_equal(read_submission(tmp_path / "shuffled.csv"), [3, 1, 4])
    (tmp_path / "dup.csv").write_text("ImageId,Label\n1,1\n1,3\n")
    with pytest.raises(DataError, match="line 3: ImageId 1 is duplicated"):
        read_submission(tmp_path / "dup.csv")


# --- issue 10: what a user meets with real-world files -----------------------------------------


def _train_text(rows: list[list[str]], blank_after: int | None = None) -> str:
    lines = [",".join(["label", *PIXEL_COLUMNS])] + [",".join(r) for r in rows]
    if blank_after is not None:
        lines.insert(blank_after, "")
    return "\n".join(lines) + "\n"


def test_utf8_bom_accepted(tmp_path: Path) -> None:
    rows = _rows(3, label=True)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + _train_text(rows).encode())
    images, labels = read_kaggle_csv(tmp_path / "bom.csv")
    assert images.shape == (3, 28, 28) and labels.tolist() == [int(r[0]) for r in rows]
    (tmp_path / "sub.csv").write_bytes(b"\xef\xbb\xbfImageId,Label\n1,3\n2,4\n")
    assert read_submission(tmp_path / "sub.csv").tolist() == [3, 4]


@pytest.mark.parametrize(
    ("pack", "message"),
    [
        (lambda raw: gzip.compress(raw), "is gzip-compressed, not a CSV text file"),
        (lambda raw: _zipped(raw), "is a zip archive, not a CSV text file"),
        (lambda raw: b"\x00\x01\x02\xff" * 100, "is a binary file, not a CSV text file"),
        (lambda raw: raw.decode().encode("utf-16"), "is UTF-16 text"),
    ],
    ids=["gzip", "zip", "binary", "utf16"],
)
@pytest.mark.parametrize("reader", [read_kaggle_csv, read_submission])
def test_compressed_or_binary_file_named_in_one_line(
    tmp_path: Path, pack, message: str, reader
) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(pack(_train_text(_rows(2, label=True)).encode()))
    with pytest.raises(DataError, match=message) as info:
        reader(path)
    text = str(info.value)
    assert "\n" not in text and len(text) < 200 and "\\x" not in text and "\x00" not in text


def _zipped(raw: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train.csv", raw)
    return buffer.getvalue()


def test_garbage_header_is_truncated_in_the_message(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("\x1b[31m" + "x" * 10_000 + "\n1,2\n")
    with pytest.raises(DataError, match="bad header") as info:
        read_kaggle_csv(tmp_path / "t.csv")
    assert len(str(info.value)) < 300 and "\x1b" not in str(info.value)


@pytest.mark.parametrize("label", [True, False])
def test_header_only_file_has_no_rows(tmp_path: Path, label: bool) -> None:
    header = ",".join((["label"] if label else []) + PIXEL_COLUMNS)
    (tmp_path / "test.csv").write_text(header + "\n\n")
    with pytest.raises(DataError, match="no rows"):
        read_kaggle_csv(tmp_path / "test.csv")
    (tmp_path / "sub.csv").write_text("ImageId,Label\n")
    with pytest.raises(DataError, match="no rows"):
        read_submission(tmp_path / "sub.csv")


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("x7", "line 6: column pixel0: 'x7' is not an integer"),
        ("12.5", "line 6: column pixel0: 12.5 is not an integer"),
        ("256", "line 6: pixel0=256 is outside 0..255"),
        ("inf", "line 6: pixel0=inf is outside 0..255"),
        ("-inf", "line 6: pixel0=-inf is outside 0..255"),
        ("1e20", "line 6: pixel0=100000000000000000000 is outside 0..255"),
        ("99999999999999999999", "line 6: pixel0=99999999999999999999 is outside 0..255"),
    ],
)
def test_line_numbers_count_blank_lines(tmp_path: Path, cell: str, message: str) -> None:
    """Rows 1..4 are on lines 2, 3, 5, 6: the blank line 4 still counts (issue 10)."""
    rows = _rows(4, label=True)
    rows[3][1] = cell
    path = tmp_path / "train.csv"
    path.write_text(_train_text(rows, blank_after=3).replace("\n\n", "\n \t\n"))
    with pytest.raises(DataError, match=message) as info:
        read_kaggle_csv(path)
    assert "np." not in str(info.value)


def test_label_and_missing_value_lines_count_blank_lines(tmp_path: Path) -> None:
    rows = _rows(4, label=True)
    rows[2][0] = "12"
    (tmp_path / "a.csv").write_text(_train_text(rows, blank_after=2))
    with pytest.raises(DataError, match=r"line 5: label 12 is outside 0\.\.9"):
        read_kaggle_csv(tmp_path / "a.csv")
    rows = _rows(4, label=True)
    rows[2] = rows[2][:-3]
    (tmp_path / "b.csv").write_text(_train_text(rows, blank_after=1))
    with pytest.raises(DataError, match="line 5: missing value"):
        read_kaggle_csv(tmp_path / "b.csv")


@pytest.mark.parametrize("which", ["first", "all", "middle"])
def test_extra_fields_are_a_ragged_row(tmp_path: Path, which: str) -> None:
    """pandas would silently take an extra first column as the index when every row has one."""
    rows = _rows(4, label=True)
    pick = {"first": [0], "all": [0, 1, 2, 3], "middle": [2]}[which]
    for i in pick:
        rows[i] = [*rows[i], "7"]
    (tmp_path / "t.csv").write_text(_train_text(rows, blank_after=1))
    line = {"first": 3, "all": 3, "middle": 5}[which]
    with pytest.raises(DataError, match=f"line {line}: ragged row: expected 785 fields, saw 786"):
        read_kaggle_csv(tmp_path / "t.csv")


def test_directory_and_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for reader in (read_kaggle_csv, read_submission):
        with pytest.raises(DataError, match="is a directory"):
            reader(tmp_path)
    path = _write(tmp_path / "t.csv", PIXEL_COLUMNS, _rows(2, label=False))
    (tmp_path / "s.csv").write_text("ImageId,Label\n1,2\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(kaggle, "open", refuse, raising=False)
    for reader, name in ((read_kaggle_csv, path), (read_submission, tmp_path / "s.csv")):
        with pytest.raises(DataError, match="cannot read: permission denied"):
            reader(name)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1,3\n2,42\n", "line 3: label 42 is outside 0..9"),
        ("1,3\n\n2,-3\n", "line 4: label -3 is outside 0..9"),
        ("1,3\n2,10\n", "line 3: label 10 is outside 0..9"),
        ("1,3\n3,4\n", r"ImageId 2 is missing \(ImageIds must run 1..2; line 3 has ImageId 3\)"),
        ("2,3\n\n2,4\n", "line 4: ImageId 2 is duplicated \\(first on line 2\\)"),
        ("1,3\n2,4.0\n", "line 3: expected two integers ImageId,Label, got '2,4.0'"),
        ("1,3\n2\n", "line 3: expected two integers ImageId,Label, got '2'"),
        ("1,3\n2,4,5\n", "line 3: expected two integers"),
    ],
)
def test_submission_problems_are_named(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "s.csv").write_text("ImageId,Label\n" + body)
    with pytest.raises(DataError, match=message):
        read_submission(tmp_path / "s.csv")


def test_submission_bad_header(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("Id,Label\n1,2\n")
    with pytest.raises(DataError, match="line 1: expected header 'ImageId,Label', got 'Id,Label'"):
        read_submission(tmp_path / "s.csv")
