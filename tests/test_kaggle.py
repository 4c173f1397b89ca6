"""Kaggle CSV reading (strict, with line numbers) and writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
    with pytest.raises(DataError, match="ImageId must run"):
        read_submission(tmp_path / "dup.csv")
