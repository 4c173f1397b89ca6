"""Fuzz targets and their hypothesis strategies, shared by ``tests/test_fuzz.py`` (CI: a few
hundred examples each) and ``bench/fuzz.py`` (10,000+ each).

Every target feeds one reader a valid file mutated in the ways real files break (cut short,
bit flips, overwritten or inserted bytes, a changed length field, edited JSON) or plain random
bytes. The invariant: the reader returns a valid result or raises ``DigitrecError``; any other
exception, or an example that runs past ``HANG_SECONDS``, is a bug.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from digitrec.errors import DigitrecError
from fuzz_mutations import JSON_VALUES, ODD_VALUES, bytes_like, hang_guard, mutated

VALID, REFUSED = "valid", "DigitrecError"


@dataclass(frozen=True)
class Target:
    """A reader under test: ``strategy()`` builds its examples, ``run`` feeds one to it."""

    name: str
    strategy: Callable[[], st.SearchStrategy[Any]]
    run: Callable[[Any, Path], str]


def run_example(target: Target, example: Any, workdir: Path) -> str:
    """VALID or REFUSED; anything else propagates (FuzzHang for a hang)."""
    with hang_guard():
        try:
            return target.run(example, workdir)
        except DigitrecError:
            return REFUSED


# --- IDX ----------------------------------------------------------------------------------------


def _idx_strategy() -> st.SearchStrategy[Any]:
    from digitrec.data.idx import IMAGES_MAGIC, LABELS_MAGIC

    rng = np.random.default_rng(0)
    images = struct.pack(">IIII", IMAGES_MAGIC, 3, 28, 28) + rng.bytes(3 * 28 * 28)
    small = struct.pack(">IIII", IMAGES_MAGIC, 2, 5, 4) + rng.bytes(40)
    labels = struct.pack(">II", LABELS_MAGIC, 5) + bytes([0, 9, 3, 200, 7])
    dims = st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 40), min_size=1, max_size=3)
    forged = st.builds(
        lambda magic, d, tail: struct.pack(f">I{len(d)}I", magic, *d) + tail,
        st.sampled_from([IMAGES_MAGIC, LABELS_MAGIC]),
        dims,
        st.binary(max_size=200),
    )
    raw = bytes_like(images) | bytes_like(small) | bytes_like(labels) | forged
    return st.tuples(st.sampled_from([IMAGES_MAGIC, LABELS_MAGIC]), raw)


def _idx_run(example: tuple[int, bytes], workdir: Path) -> str:
    from digitrec.data.idx import parse_idx

    magic, raw = example
    array = parse_idx(raw, expect_magic=magic)
    assert array.dtype == np.uint8 and array.ndim == (magic & 0xFF)
    return VALID


# --- Kaggle CSV ---------------------------------------------------------------------------------

_CELLS = st.sampled_from(
    ["0", "255", "256", "-1", "12.5", "1e2", "inf", "nan", "", " ", "x", '"', '"7"', "0x5",
     "9" * 25, ",", "\t", "\x00", "\u00e9", "\ufeff", "1,2", "\n", "\r", "NA", "#"]
)  # fmt: skip


@st.composite
def kaggle_text(draw) -> bytes:
    """A train or test CSV with edited cells, blank lines, line endings and a BOM."""
    from digitrec.data.kaggle import PIXEL_COLUMNS

    label = draw(st.booleans())
    header = (["label"] if label else []) + PIXEL_COLUMNS
    if draw(st.integers(0, 9)) == 0:
        header = header[: draw(st.integers(0, len(header)))]
    rows = [header]
    for _ in range(draw(st.integers(0, 4))):
        row = [str(v) for v in draw(st.lists(st.integers(0, 255), min_size=3, max_size=3))] * 262
        row = row[: len(header)]
        for _ in range(draw(st.integers(0, 3))):
            if row:
                row[draw(st.integers(0, len(row) - 1))] = draw(_CELLS)
        rows.append(row[: len(row) + draw(st.integers(-2, 2))] if draw(st.booleans()) else row)
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines = [",".join(r) for r in rows]
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", " ", "\t"])))
    text = ("\ufeff" if draw(st.booleans()) else "") + newline.join(lines)
    return (text + newline * draw(st.integers(0, 2))).encode()


def _kaggle_strategy() -> st.SearchStrategy[Any]:
    return kaggle_text() | kaggle_text().flatmap(lambda raw: mutated(raw, hot=8192))


def _write(workdir: Path, name: str, raw: bytes) -> Path:
    path = workdir / name
    path.write_bytes(raw)
    return path


def _kaggle_run(raw: bytes, workdir: Path) -> str:
    from digitrec.data.kaggle import read_kaggle_csv

    images, labels = read_kaggle_csv(_write(workdir, "fuzz.csv", raw))
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28) and len(images) > 0
    assert labels is None or (labels.dtype == np.int64 and labels.min() >= 0 and labels.max() <= 9)
    return VALID


@st.composite
def submission_text(draw) -> bytes:
    rows = [f"{i + 1},{i % 10}" for i in range(draw(st.integers(0, 6)))]
    text = "ImageId,Label\n" + "\n".join(rows) + "\n"
    return draw(mutated(text.encode(), hot=len(text)) | st.just(text.encode()))


def _submission_run(raw: bytes, workdir: Path) -> str:
    from digitrec.data.kaggle import read_submission

    labels = read_submission(_write(workdir, "sub.csv", raw))
    assert labels.dtype == np.int64 and len(labels) > 0 and 0 <= labels.min() <= labels.max() <= 9
    return VALID


# --- checkpoints --------------------------------------------------------------------------------


def checkpoint_seed(workdir: Path) -> bytes:
    """A small real checkpoint (softmax, seeded) with resume fields and a train tensor."""
    import torch

    from digitrec.inference.checkpoint import build_meta, save_checkpoint
    from digitrec.models import Preprocessing, create_model

    torch.manual_seed(0)
    meta = build_meta(
        "softmax", {}, Preprocessing(), step=10, steps_per_epoch=5, best_score=0.5,
        train_config={"val_size": 0, "seed": 0}, recipe={"channels_last": False},
        created="2026-01-01T00:00:00+00:00",  # the same bytes, so the same examples, every run
    )  # fmt: skip
    state = create_model("softmax").state_dict()
    path = workdir / "seed.safetensors"
    save_checkpoint(path, state, meta, {"rng": torch.zeros(16, dtype=torch.uint8)})
    return path.read_bytes()


def _split(raw: bytes) -> tuple[int, dict[str, Any], bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8 : 8 + n]), raw[8 + n :]


@st.composite
def _edited_json(draw, raw: bytes) -> bytes:
    """Replace or drop one field of the digitrec metadata (or its preprocessing), or one field
    of the tensor table; then frame it again, with a correct or a wrong length."""
    _, header, data = _split(raw)
    meta = json.loads(header["__metadata__"]["digitrec"])
    where = draw(st.sampled_from(["meta", "preprocessing", "table"]))
    if where == "table":
        tensor = draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))
        box, keys = header[tensor], ["dtype", "shape", "data_offsets"]
    else:
        box = meta if where == "meta" else meta["preprocessing"]
        keys = [*sorted(box), "extra"]
    key = draw(st.sampled_from(keys))
    if draw(st.integers(0, 4)) == 0:
        box.pop(key, None)
    else:
        box[key] = draw(ODD_VALUES | JSON_VALUES)
    header["__metadata__"]["digitrec"] = json.dumps(meta)
    body = json.dumps(header).encode() + b" " * draw(st.integers(0, 300))
    length = len(body) if draw(st.integers(0, 3)) else draw(st.integers(0, 2**64 - 1))
    return struct.pack("<Q", length) + body + data


@st.composite
def _new_length(draw, raw: bytes) -> bytes:
    n = struct.unpack("<Q", raw[:8])[0]
    length = draw(st.integers(-16, 16).map(lambda d: max(0, n + d)) | st.integers(0, 2**64 - 1))
    return struct.pack("<Q", length) + raw[8:]


def _checkpoint_strategy(workdir: Path) -> st.SearchStrategy[Any]:
    raw = checkpoint_seed(workdir)
    header_end = 8 + struct.unpack("<Q", raw[:8])[0]
    files = (
        mutated(raw, hot=header_end)
        | _edited_json(raw)
        | _new_length(raw)
        | st.binary(max_size=64)
        | st.integers(0, len(raw)).map(lambda cut: raw[:cut])
    )
    return st.tuples(files, st.booleans())


def _checkpoint_run(example: tuple[bytes, bool], workdir: Path) -> str:
    from digitrec.inference.checkpoint import load_checkpoint

    raw, resume = example
    ckpt = load_checkpoint(_write(workdir, "fuzz.safetensors", raw), with_train_state=resume)
    assert ckpt.preprocessing.std > 0 and not ckpt.model.training
    return VALID


# --- images -------------------------------------------------------------------------------------


def _fix_png_crcs(raw: bytes) -> bytes:
    """Recompute each PNG chunk's CRC, so edits reach the decoder instead of the CRC check."""
    out, pos = bytearray(raw[:8]), 8
    while pos + 8 <= len(raw):
        (length,) = struct.unpack(">I", raw[pos : pos + 4])
        body = raw[pos + 4 : pos + 8 + length]
        if len(body) != 4 + length or pos + 12 + length > len(raw):
            out += raw[pos:]
            break
        out += raw[pos : pos + 4] + body + struct.pack(">I", zlib.crc32(body))
        pos += 12 + length
    return bytes(out)


def image_seeds() -> dict[str, bytes]:
    """A drawn digit as PNG (grey, RGBA, 16-bit), JPEG, GIF and BMP."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (40, 48), 235)
    ImageDraw.Draw(img).line([(8, 8), (32, 8), (16, 42)], fill=20, width=5)
    seeds = {}
    for name, im, fmt in [
        ("png", img, "PNG"),
        ("rgba", img.convert("RGBA"), "PNG"),
        ("png16", img.point(lambda v: v * 256, "I").convert("I;16"), "PNG"),
        ("jpeg", img, "JPEG"),
        ("gif", img, "GIF"),
        ("bmp", img, "BMP"),
    ]:
        buffer = io.BytesIO()
        im.save(buffer, fmt)
        seeds[name] = buffer.getvalue()
    return seeds


def _image_strategy() -> st.SearchStrategy[Any]:
    options = []
    for raw in image_seeds().values():
        edits = mutated(raw, hot=128)
        options.append(edits.map(_fix_png_crcs) if raw.startswith(b"\x89PNG") else edits)
        options.append(edits)
    return st.one_of(*options, st.binary(max_size=128))


def _image_run(raw: bytes, workdir: Path) -> str:
    from digitrec.images import load_image, to_mnist

    gray = load_image(raw)
    assert gray.dtype == np.uint8 and gray.ndim == 2
    digit = to_mnist(gray)
    assert digit.dtype == np.uint8 and digit.shape == (28, 28)
    return VALID


def targets(workdir: Path) -> list[Target]:
    """All fuzz targets; the checkpoint seed is written under ``workdir``."""
    return [
        Target("idx", _idx_strategy, _idx_run),
        Target("kaggle_csv", _kaggle_strategy, _kaggle_run),
        Target("submission", lambda: submission_text(), _submission_run),
        Target("checkpoint", lambda: _checkpoint_strategy(workdir), _checkpoint_run),
        Target("image", _image_strategy, _image_run),
    ]
