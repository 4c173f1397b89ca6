"""Build the sequence reader that ships with digitrec (``make reader``).

Synthetic number strips (:mod:`digitrec.data.strips`: MNIST training digits and the "train"
fonts, shot as photos, normalised like ``read`` does) are generated in seeded shards of
``--per-shard`` strips, cached under ``--data``; a small CRNN is trained on them with CTC loss
(:mod:`digitrec.training.sequence`), scored on dev strips (validation digits, "dev" fonts), and
written to ``src/digitrec/weights/reader.safetensors`` (safetensors + JSON metadata).

    python bench/make_reader.py --workers 16 --device cuda        # as the shipped reader
    python bench/make_reader.py --shards 2 --per-shard 64 --max-steps 5 --out /tmp/r.safetensors
    python bench/make_reader.py --gen-only --shards 0:8 --workers 2  # only cache shards 0-7

Shard ``i`` of the training split is seeded ``1000 + i``, dev shard ``i`` ``5000 + i``: the same
shards come out whichever machine and however many workers make them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "src/digitrec/weights/reader.safetensors"
DATA = REPO / "runs/reader-data"
SEED = 0
SHARDS = 24  # training shards of PER_SHARD strips
PER_SHARD = 2000
DEV_SHARDS = 1


def shard_path(data: Path, split: str, index: int, per_shard: int) -> Path:
    return data / f"{split}-{per_shard}-{index:03d}.npz"


def make_shard(data: Path, split: str, index: int, per_shard: int, font_dir: str | None) -> Path:
    """Generate one shard (unless cached) and return its path."""
    from digitrec.data import fonts
    from digitrec.data.strips import make_strips, pack
    from digitrec.io import atomic_path

    path = shard_path(data, split, index, per_shard)
    if path.exists():
        return path
    if font_dir:  # a machine without the Debian fonts: a copy of their folders
        fonts.FONT_DIRS = (Path(font_dir), *fonts.FONT_DIRS)
    seed = (1000 if split == "train" else 5000) + index
    images, texts = make_strips(split, per_shard, seed)
    joined, widths = pack(images)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, joined=joined, widths=widths, texts=np.array(texts))
    return path


def make_shards(
    data: Path,
    jobs: list[tuple[str, int]],
    per_shard: int,
    workers: int,
    font_dir: str | None,
) -> list[Path]:
    """Generate (or find cached) the (split, index) shards, ``workers`` processes at a time."""
    if workers <= 1:
        return [make_shard(data, split, i, per_shard, font_dir) for split, i in jobs]
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(make_shard, data, s, i, per_shard, font_dir) for s, i in jobs]
        return [f.result() for f in futures]


def load_shards(paths: list[Path]) -> tuple[list[np.ndarray], list[str]]:
    """Strips (uint8 (32, W)) and texts of cached shards, in order."""
    from digitrec.data.strips import unpack

    images: list[np.ndarray] = []
    texts: list[str] = []
    for path in paths:
        with np.load(path) as z:
            images += unpack(z["joined"], z["widths"])
            texts += [str(t) for t in z["texts"]]
    return images, texts


def parse_range(text: str) -> list[int]:
    """``"8"`` -> 0..7, ``"8:12"`` -> 8..11."""
    if ":" in text:
        a, b = text.split(":")
        return list(range(int(a), int(b)))
    return list(range(int(text)))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "make_reader").splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="shard cache folder")
    parser.add_argument("--shards", default=str(SHARDS), help="N (0..N-1) or A:B")
    parser.add_argument("--per-shard", type=int, default=PER_SHARD)
    parser.add_argument("--dev-shards", type=int, default=DEV_SHARDS)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--font-dir", help="extra folder holding the font files")
    parser.add_argument("--gen-only", action="store_true", help="make the shards, do not train")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (smoke runs)")
    parser.add_argument("--max-seconds", type=float, help="stop training after this long")
    parser.add_argument(
        "--deadline", type=float, help="whole run's seconds: training gets what is left - 30"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    data = Path(args.data)
    t0 = time.perf_counter()
    jobs = [("dev", i) for i in range(args.dev_shards)]
    jobs += [("train", i) for i in parse_range(args.shards)]
    paths = make_shards(data, jobs, args.per_shard, args.workers, args.font_dir)
    dev_paths, train_paths = paths[: args.dev_shards], paths[args.dev_shards :]
    print(f"shards ready in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.gen_only:
        return

    import torch

    from digitrec.training.sequence import ReaderConfig, save_reader, train_reader

    torch.set_num_threads(args.threads)
    images, texts = load_shards(train_paths)
    dev_images, dev_texts = load_shards(dev_paths)
    seconds = args.max_seconds
    if args.deadline:
        left = args.deadline - (time.perf_counter() - t0) - 30
        seconds = min(seconds or left, left)
    config = ReaderConfig(
        epochs=args.epochs, seed=SEED, max_steps=args.max_steps, max_seconds=seconds
    )
    model, report = train_reader(images, texts, dev_images, dev_texts, config, args.device)
    report.update(
        command=" ".join(["python", "bench/make_reader.py", *sys.argv[1:]]),
        strips=len(images),
        shards=[p.name for p in train_paths],
        dev_shards=[p.name for p in dev_paths],
        seconds=round(time.perf_counter() - t0, 1),
    )
    save_reader(model, args.out, report)
    print(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=1))


if __name__ == "__main__":
    main()
