"""Kaggle ``digit-recognizer`` CSV files: strict reading, fast writing, submissions.

``train.csv`` is ``label,pixel0..pixel783``; ``test.csv`` is ``pixel0..pixel783``; a submission
is ``ImageId,Label`` with ImageId counting from 1.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from digitrec.errors import DataError
from digitrec.io import atomic_write

PIXEL_COLUMNS = [f"pixel{i}" for i in range(784)]
# A submission row: two integers (18 digits at most, so no huge-int parsing), spaces allowed.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|inf|nan)", re.IGNORECASE)
_ROW = re.compile(r"\s*([+-]?\d{1,18})\s*,\s*([+-]?\d{1,18})\s*")


# Leading bytes of files that are not CSV text, and what to call them.
_NOT_TEXT = {
    b"\x1f\x8b": "is gzip-compressed, not a CSV text file; decompress it first (gunzip)",
    b"PK\x03\x04": "is a zip archive, not a CSV text file; extract the CSV from it first",
    b"PK\x05\x06": "is an empty zip archive, not a CSV text file",
    b"BZh": "is bzip2-compressed, not a CSV text file; decompress it first (bunzip2)",
    b"\xfd7zXZ\x00": "is xz-compressed, not a CSV text file; decompress it first (unxz)",
    b"\xff\xfe": "is UTF-16 text; save it as UTF-8",
    b"\xfe\xff": "is UTF-16 text; save it as UTF-8",
}
SNIFF_BYTES = 64 * 1024  # a Kaggle header line is about 8.5 KB


def _show(value: object, cap: int = 40) -> str:
    """A cell or line from the file for a message: ``repr`` (escapes control bytes), capped."""
    text = repr(value)
    return text if len(text) <= cap else text[: cap - 3] + "..."


def _cell(value: object) -> str:
    """A cell for a message: ``12.5``, ``256``, ``inf`` (never ``np.float64(12.5)``), or the
    ``repr`` of text, capped."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return value.strip()
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        return _show(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    number = float(value)  # type: ignore[arg-type]
    return str(int(number)) if math.isfinite(number) and number == int(number) else repr(number)


def _reason(exc: OSError) -> str:
    """``permission denied``: the OS's words without the path or errno noise."""
    text = exc.strerror or type(exc).__name__
    return text[:1].lower() + text[1:]


def _sniff(path: Path) -> bytes:
    """The file's first bytes, after refusing what is not a readable CSV text file."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a CSV file")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():  # a FIFO would block
        raise DataError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {_reason(exc)}") from None
    for magic, what in _NOT_TEXT.items():
        if head.startswith(magic):
            raise DataError(f"{path}: {what}")
    if b"\x00" in head:
        raise DataError(f"{path}: is a binary file, not a CSV text file")
    return head


def _first_line(head: bytes) -> str:
    line = re.split(rb"\r\n|\r|\n", head, maxsplit=1)[0]
    return line.decode("utf-8", errors="replace").removeprefix("\ufeff").strip()


def _data_lines(path: Path) -> list[int]:
    """1-based file line numbers of the data rows as pandas counts them: it skips lines that
    are empty or hold only spaces and tabs. Computed only to report an error."""
    numbers = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        next(fh, None)  # the header
        for number, line in enumerate(fh, start=2):
            if line.strip(" \t\r\n"):
                numbers.append(number)
    return numbers


def _ragged(path: Path, width: int) -> str:
    """``line N: ragged row: ...`` for the first data row without ``width`` fields."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        next(fh, None)
        for number, line in enumerate(fh, start=2):
            count = len(line.rstrip("\r\n").split(","))
            if line.strip(" \t\r\n") and count != width:
                return f"line {number}: ragged row: expected {width} fields, saw {count}"
    return "ragged row"


def _read_frame(path: Path, width: int):
    """pandas' C parser over the file (42,000 x 785 cells in about a second)."""
    import pandas as pd

    try:
        with warnings.catch_warnings():
            # ParserWarning: more fields than the header in every row (pandas would drop some).
            warnings.simplefilter("error", pd.errors.ParserWarning)
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            return pd.read_csv(
                path, engine="c", index_col=False, skip_blank_lines=True, encoding="utf-8"
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        message = _ragged(path, width)
        if message == "ragged row":
            message += f": {_show(str(exc).strip(), 80)}"
        raise DataError(f"{path}: {message}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {_reason(exc)}") from None
    except ValueError as exc:
        raise DataError(f"{path}: cannot parse CSV: {_show(str(exc).strip(), 80)}") from None


def read_kaggle_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a Kaggle ``train.csv`` or ``test.csv`` (UTF-8, with or without a BOM).

    Returns:
        ``(images uint8 (N, 28, 28), labels int64 (N,))``; labels are None for ``test.csv``.

    Raises:
        DataError: naming the file and its line for a bad header, a ragged row, a missing or
            non-integer cell, or a value outside 0..255; a compressed or binary file, a
            directory, an unreadable file, or one without rows.
    """
    import pandas as pd

    path = Path(path)
    header = _first_line(_sniff(path)).split(",")
    has_label = header[:1] == ["label"]
    want = (["label"] if has_label else []) + PIXEL_COLUMNS
    if header != want:
        raise DataError(
            f"{path}: line 1: bad header; expected 'label,pixel0,...,pixel783' (train) or "
            f"'pixel0,...,pixel783' (test), got {len(header)} columns starting "
            f"{_show(','.join(header[:3]))}"
        )
    frame = _read_frame(path, len(want))
    if len(frame) == 0:
        raise DataError(f"{path}: no rows (the file holds only a header)")
    values = frame.to_numpy()
    if not np.issubdtype(values.dtype, np.integer):  # text, floats, blanks or huge numbers
        numeric = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        missing = frame.isna().to_numpy()
        bad = ~missing & (np.isnan(numeric) | (numeric != np.round(numeric)))
        # np.asarray: numpy's stubs type a reduction over an axis as a scalar.
        rows_missing, rows_bad = np.asarray(missing.any(axis=1)), np.asarray(bad.any(axis=1))
        if rows_missing.any() or rows_bad.any():
            row = int(np.argmax(rows_missing | rows_bad))
            line = _data_lines(path)[row]
            if rows_missing[row]:
                raise DataError(f"{path}: line {line}: missing value (short row?)")
            col = int(np.flatnonzero(bad[row])[0])
            raise DataError(
                f"{path}: line {line}: column {want[col]}: {_cell(frame.iat[row, col])} "
                "is not an integer"
            )
        values = numeric
    pixels = values[:, 1:] if has_label else values
    out_of_range = (pixels < 0) | (pixels > 255)
    if out_of_range.any():
        row = int(np.flatnonzero(out_of_range.any(axis=1))[0])
        col = int(np.flatnonzero(out_of_range[row])[0])
        raise DataError(
            f"{path}: line {_data_lines(path)[row]}: "
            f"pixel{col}={_cell(frame.iat[row, col + has_label])} "
            "is outside 0..255"
        )
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    if not has_label:
        return images, None
    bad_label = (values[:, 0] < 0) | (values[:, 0] > 9)
    if bad_label.any():
        row = int(np.flatnonzero(bad_label)[0])
        raise DataError(
            f"{path}: line {_data_lines(path)[row]}: label {_cell(frame.iat[row, 0])} "
            "is outside 0..9"
        )
    return images, values[:, 0].astype(np.int64)


def _csv_lines(columns: np.ndarray, chunk: int = 8192) -> bytes:
    """Format a non-negative integer matrix (N, C) as CSV lines without a Python loop per cell.

    Each value becomes a fixed 8-byte slot (digits, then ',' or newline, then NUL padding); the
    NULs are then dropped with a boolean mask. Rows are processed in chunks to bound memory.
    """
    if columns.size and (columns.min() < 0 or columns.max() >= 10**7):
        raise ValueError("values must be in 0..9,999,999")
    width = 8
    top = int(columns.max(initial=0)) + 1
    text = [str(v).encode() for v in range(top)]
    lut = np.zeros((2, top, width), dtype=np.uint8)  # [is_last_column, value, byte]
    for v, digits in enumerate(text):
        for last, end in ((0, b","), (1, b"\n")):
            cell = np.frombuffer(digits + end, dtype=np.uint8)
            lut[last, v, : len(cell)] = cell
    last_col = np.zeros(columns.shape[1], dtype=np.int64)
    last_col[-1] = 1
    parts = []
    for start in range(0, len(columns), chunk):
        slots = lut[last_col, columns[start : start + chunk]]  # (n, C, width)
        flat = slots.reshape(-1)
        parts.append(flat[flat != 0].tobytes())
    return b"".join(parts)


def write_kaggle_csv(
    path: str | os.PathLike, images: np.ndarray, labels: np.ndarray | None = None
) -> None:
    """Write images (and labels, for a train file) in Kaggle's CSV layout, atomically."""
    flat = images.reshape(len(images), -1).astype(np.int64)
    header = ",".join((["label"] if labels is not None else []) + PIXEL_COLUMNS) + "\n"
    if labels is not None:
        flat = np.concatenate([labels.reshape(-1, 1).astype(np.int64), flat], axis=1)
    atomic_write(path, header.encode() + _csv_lines(flat))


def write_submission(path: str | os.PathLike, predictions: np.ndarray) -> None:
    """Write ``ImageId,Label`` rows (ImageId from 1), atomically."""
    ids = np.arange(1, len(predictions) + 1)
    body = _csv_lines(np.stack([ids, predictions.astype(np.int64)], axis=1))
    atomic_write(path, b"ImageId,Label\n" + body)


def read_submission(path: str | os.PathLike) -> np.ndarray:
    """Read an ``ImageId,Label`` file; return labels ordered by ImageId (1..N).

    Raises:
        DataError: naming the line for a bad header or row, a label outside 0..9, or a
            duplicated ImageId; naming the first missing ImageId; as ``read_kaggle_csv`` for a
            compressed, binary, unreadable or empty file.
    """
    path = Path(path)
    _sniff(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {_reason(exc)}") from None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}: line {line}: not UTF-8 text") from None
    lines = re.split(r"\r\n|\r|\n", text)
    if lines[0].strip() != "ImageId,Label":
        raise DataError(
            f"{path}: line 1: expected header 'ImageId,Label', got {_show(lines[0].strip())}"
        )
    first_line: dict[int, int] = {}  # ImageId -> line
    labels: dict[int, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip(" \t"):
            continue
        match = _ROW.fullmatch(line)
        if match is None:
            raise DataError(
                f"{path}: line {number}: expected two integers ImageId,Label, got {_show(line)}"
            )
        image_id, label = int(match[1]), int(match[2])
        if not 0 <= label <= 9:
            raise DataError(f"{path}: line {number}: label {label} is outside 0..9")
        if image_id in first_line:
            raise DataError(
                f"{path}: line {number}: ImageId {image_id} is duplicated "
                f"(first on line {first_line[image_id]})"
            )
        first_line[image_id], labels[image_id] = number, label
    count = len(labels)
    if count == 0:
        raise DataError(f"{path}: no rows (the file holds only a header)")
    stray = next((i for i in first_line if not 1 <= i <= count), None)
    if stray is not None:
        missing = min(set(range(1, count + 1)) - labels.keys())
        raise DataError(
            f"{path}: ImageId {missing} is missing (ImageIds must run 1..{count}; "
            f"line {first_line[stray]} has ImageId {stray})"
        )
    return np.array([labels[i] for i in range(1, count + 1)], dtype=np.int64)
