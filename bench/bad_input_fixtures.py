"""Fixtures for the bad-input matrix (``bench/bad_input_cases.py``): every bad file, made fresh.

:func:`make_fixtures` writes them into a folder and returns ``{placeholder: path}``; tiny data
(200 real digits), one small trained run, and everything else derived from those.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

# Made unreadable (files) or read-only (the folder) with chmod; relative to the fixture root.
LOCKED = ("unreadable.csv", "unreadable.png", "batch/locked.png", "readonly")


def _idx(array: np.ndarray, magic: int) -> bytes:
    return (
        struct.pack(">I", magic)
        + b"".join(struct.pack(">I", d) for d in array.shape)
        + (array.astype(np.uint8).tobytes())
    )


def _idx_folder(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, (x, y) in {"train": (images, labels), "t10k": (images, labels)}.items():
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(x, 2051)))
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(y, 2049)))


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _huge_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels, with hardly any pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    idat = zlib.compress(b"\0" * 100)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _retag(src: Path, dst: Path, edit) -> None:
    """Copy a checkpoint, changing its digitrec metadata with ``edit(meta)``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), "pt") as fh:
        meta = json.loads(fh.metadata()["digitrec"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    edit(meta)
    save_file(tensors, str(dst), metadata={"digitrec": json.dumps(meta)})


def _pad_header_to_x80(src: Path, dst: Path) -> None:
    """A valid checkpoint whose header length's low byte is 0x80 (spaces pad the JSON)."""
    raw = src.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header, body = raw[8 : 8 + n], raw[8 + n :]
    pad = (0x80 - n) % 256
    dst.write_bytes(struct.pack("<Q", n + pad) + header + b" " * pad + body)


def make_fixtures(root: Path, run: Path, mnist: tuple[np.ndarray, np.ndarray]) -> dict[str, str]:
    """Write every bad input under ``root``; ``run`` is a small trained run directory.

    Args:
        root: an empty folder (the commands also run with it as the working directory).
        run: a run directory with ``best.safetensors`` and ``last.safetensors``.
        mnist: a few hundred real digits and labels, ``uint8 (N, 28, 28)`` and ``(N,)``.
    """
    from digitrec.data.kaggle import write_kaggle_csv, write_submission

    fx: dict[str, str] = {"root": str(root), "run": str(run)}
    images, labels = mnist[0][:200], mnist[1][:200]

    def put(key: str, name: str, data: bytes | str) -> Path:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        fx[key] = str(path)
        return path

    # IDX folders: one good, then one fault each in the train images.
    _idx_folder(root / "idx_ok", images, labels)
    fx["idx_ok"] = str(root / "idx_ok")
    train_images = "train-images-idx3-ubyte.gz"
    good_idx = _idx(images, 2051)
    faults = {
        "idx_truncated": gzip.compress(good_idx[:-100]),
        "idx_magic": gzip.compress(b"\x00\x00\x08\x04" + good_idx[4:]),
        "idx_dims": gzip.compress(_idx(images[:, :, :27], 2051)),
        "idx_gz": gzip.compress(good_idx)[:200],
        "idx_count": gzip.compress(_idx(images[:150], 2051)),
    }
    for key, data in faults.items():
        _idx_folder(root / key, images, labels)
        (root / key / train_images).write_bytes(data)
        fx[key] = str(root / key)
    _idx_folder(root / "idx_missing", images, labels)
    (root / "idx_missing" / train_images).unlink()
    fx["idx_missing"] = str(root / "idx_missing")

    # Kaggle CSVs.
    write_kaggle_csv(root / "test.csv", images[:20])
    fx["csv_good"] = str(root / "test.csv")
    good = (root / "test.csv").read_text()
    put("csv_copy", "test-copy.csv", good)
    os.symlink(root / "test.csv", root / "test-link.csv")
    fx["csv_link"] = str(root / "test-link.csv")
    (root / "sub").mkdir()
    lines = good.splitlines(keepends=True)
    put("csv_header", "header.csv", "pixel_0" + lines[0][len("pixel0") :] + "".join(lines[1:]))
    put("csv_ragged", "ragged.csv", lines[0] + lines[1] + lines[2].rstrip("\n") + ",7\n")
    put("csv_float", "float.csv", lines[0] + "0.5" + lines[1][1:])
    put("csv_range", "range.csv", lines[0] + "300" + lines[1][1:])
    put("csv_bom", "bom.csv", "\ufeff" + good)
    put("csv_gzip", "compressed-a.csv", gzip.compress(good.encode()))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("test.csv", good)
    put("csv_zip", "compressed-b.csv", zbuf.getvalue())
    put("csv_empty", "header-only.csv", lines[0])
    put("csv_blank", "blank-lines.csv", lines[0] + "\n" + lines[1] + "\n\n" + "".join(lines[2:]))
    put("csv_unreadable", "unreadable.csv", good)
    write_submission(root / "labels.csv", labels[:20])
    fx["labels"] = str(root / "labels.csv")
    sub_rows = [f"{i + 1},{y}" for i, y in enumerate(labels[:20])]
    put("sub_label42", "label42.csv", "ImageId,Label\n1,42\n" + "\n".join(sub_rows[1:]) + "\n")
    put("sub_missing_id", "missing-id.csv", "ImageId,Label\n" + "\n".join(sub_rows[1:]) + "\n")

    # Images.
    digit = 255 - np.kron(images[0], np.ones((3, 3), dtype=np.uint8))  # dark ink on paper
    good_png = _png(np.pad(digit, 20, constant_values=255))
    put("img_good", "good.png", good_png)
    put("img_empty", "empty.png", b"")
    put("img_truncated", "truncated.png", good_png[:60])
    put("img_text", "notes.png", "hello, not a picture\n")
    put("img_huge", "huge.png", _huge_png(100_000, 100_000))
    put("img_blank", "blank.png", _png(np.full((64, 64), 255)))
    put("img_noise", "noise.png", _png(np.random.default_rng(0).integers(0, 256, (200, 200))))
    (root / "folder.png").mkdir()
    fx["img_dir"] = str(root / "folder.png")
    os.symlink(root / "loop-b.png", root / "loop-a.png")
    os.symlink(root / "loop-a.png", root / "loop-b.png")
    fx["img_loop"] = str(root / "loop-a.png")
    os.symlink(root / "gone.png", root / "dangling.png")
    fx["img_dangling"] = str(root / "dangling.png")
    put("img_unreadable", "unreadable.png", good_png)
    put("img_folder_good", "batch/good.png", good_png)
    put("img_folder_bad", "batch/locked.png", good_png)
    fx["img_folder"] = str(root / "batch")

    # Checkpoints.
    best = run / "best.safetensors"
    put("ckpt_pickle", "model.pt", pickle.dumps({"weights": [1, 2, 3]}))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"weights": 1}))
    put("ckpt_zip", "torchsave.pt", zbuf.getvalue())
    raw = best.read_bytes()
    put("ckpt_truncated", "truncated.safetensors", raw[: len(raw) // 2])
    (n,) = struct.unpack("<Q", raw[:8])
    put("ckpt_badjson", "badjson.safetensors", raw[:9] + b"#" * (n - 1) + raw[8 + n :])
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3)}, str(root / "foreign.safetensors"))
    fx["ckpt_foreign"] = str(root / "foreign.safetensors")
    tampered = {
        "ckpt_newer": lambda m: m.update(format_version=99),
        "ckpt_arch": lambda m: m.update(arch="nope"),
        "ckpt_shape": lambda m: m.update(arch="lenet5", arch_kwargs={}, weights_version=1),
        "ckpt_prekey": lambda m: m["preprocessing"].update(colour="blue"),
        "ckpt_kwargs": lambda m: m.update(arch_kwargs="wide"),
        "ckpt_recipe": lambda m: m.update(recipe=[1, 2]),
        "ckpt_size": lambda m: m["preprocessing"].update(input_size=32),
        "ckpt_std": lambda m: m["preprocessing"].update(std=0),
    }
    for key, edit in tampered.items():
        _retag(best, root / f"{key}.safetensors", edit)
        fx[key] = str(root / f"{key}.safetensors")
    _pad_header_to_x80(best, root / "x80.safetensors")
    fx["ckpt_x80"] = str(root / "x80.safetensors")
    (root / "lastonly").mkdir()
    (root / "lastonly" / "last.safetensors").write_bytes((run / "last.safetensors").read_bytes())
    fx["run_lastonly"] = str(root / "lastonly")
    from digitrec.inference.reading import SPLITTER

    fx["splitter"] = str(SPLITTER)

    # ONNX: a real export without its metadata, and junk.
    import onnx

    from digitrec.inference.onnx import export_onnx

    exported = export_onnx(best, root / "model.onnx")
    foreign = onnx.load(str(exported))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(root / "foreign.onnx"))
    fx["onnx_foreign"] = str(root / "foreign.onnx")
    put("onnx_junk", "junk.onnx", b"not a protobuf at all")

    # Output places.
    (root / "outdir").mkdir()
    fx["outdir"] = str(root / "outdir")
    (root / "outdir.onnx").mkdir()
    fx["outdir_onnx"] = str(root / "outdir.onnx")
    (root / "readonly").mkdir()
    fx["rodir"] = str(root / "readonly")
    for name in LOCKED:
        (root / name).chmod(0o555 if name == "readonly" else 0)
    return fx


def unlock(root: Path) -> None:
    """Give back the permissions taken away, so the folder can be deleted."""
    for name in LOCKED:
        if (root / name).exists():
            (root / name).chmod(0o755)
