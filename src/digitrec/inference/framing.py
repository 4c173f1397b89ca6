"""The safetensors framing, checked before anything else in a checkpoint is trusted.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON (an object; it may
be padded with spaces), then the tensor data, which the JSON's table must tile exactly.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from digitrec.errors import CheckpointError

# safetensors dtypes and their sizes in bytes (the ones torch reads).
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
# safetensors' own limit on the JSON header.
MAX_HEADER_BYTES = 100_000_000
PICKLE_MESSAGE = (
    "this is a pickle (torch.save) file; digitrec never unpickles files, since that can run "
    "arbitrary code. Use a .safetensors checkpoint"
)


def show(value: object, cap: int = 40) -> str:
    """``repr`` of a value from a file, cut to ``cap`` characters (never dumps a whole blob)."""
    text = repr(value)
    return text if len(text) <= cap else text[: cap - 3] + "..."


def _looks_pickled(first: bytes) -> bool:
    """A pickle (protocol 2+ opens with byte 0x80 and the protocol) or a zip (torch.save)."""
    proto = first[:1] == b"\x80" and first[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    return proto or first[:4] == b"PK\x03\x04"


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, after checking its framing against the file size.

    Only the framing decides: an 8-byte little-endian header length, a JSON object of that
    length, and a tensor table that tiles the rest of the file exactly. Byte 0 is the low byte of
    the header length, so it may be 0x80 or ``P``: the pickle / zip message is given only to
    files that fail the framing.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            first = fh.read(9)
            header_len = int.from_bytes(first[:8], "little") if len(first) == 9 else -1
            header = None
            if 2 <= header_len <= min(size - 8, MAX_HEADER_BYTES) and first[8:9] == b"{":
                fh.seek(8)
                header = _json_object(fh.read(header_len))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CheckpointError(f"{path}: cannot read: {reason[:1].lower()}{reason[1:]}") from None
    if header is None:
        if first[8:9] == b"{":
            what = "truncated header" if header_len > size - 8 else "unreadable header"
            raise CheckpointError(f"{path}: corrupt checkpoint ({what})")
        if _looks_pickled(first):
            raise CheckpointError(f"{path}: {PICKLE_MESSAGE}")
        raise CheckpointError(f"{path}: not a safetensors checkpoint")
    problem = _table_problem(header, size - 8 - header_len)
    if problem:
        raise CheckpointError(f"{path}: corrupt checkpoint ({problem})")
    return header


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _table_problem(header: dict[str, Any], data_len: int) -> str | None:
    """What is wrong with the tensor table, given a data section of ``data_len`` bytes."""
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                return "__metadata__ must map names to strings"
            continue
        if not isinstance(entry, dict):
            return f"tensor {show(name)}: not a JSON object"
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _DTYPE_BYTES:
            return f"tensor {show(name)}: unknown dtype {show(dtype)}"
        if not isinstance(shape, list) or not all(is_int(d) and d >= 0 for d in shape):
            return f"tensor {show(name)}: bad shape {show(shape)}"
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len
        ):
            return f"tensor {show(name)}: data offsets {show(offsets)} outside the file"
        if offsets[1] - offsets[0] != math.prod(shape) * _DTYPE_BYTES[dtype]:
            return f"tensor {show(name)}: {dtype} {shape} does not fill offsets {offsets}"
        spans.append((offsets[0], offsets[1]))
    end = 0
    for begin, stop in sorted(spans):
        if begin != end:
            return "tensor data overlaps or has gaps"
        end = stop
    if end != data_len:
        return f"tensor data is {end} bytes but the file holds {data_len} after the header"
    return None
