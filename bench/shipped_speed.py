"""CPU inference time of two digit checkpoints (the shipped model against an older one).

Times ``Predictor.predict_proba`` (what ``predict``, ``read`` and ``serve`` call per batch) on 1
image and on 1,000 MNIST test images, and the checkpoint load, with the two models interleaved
round by round so that the machine's load hits both alike. Median of the rounds.

    git show 45d4fe5:src/digitrec/weights/digits.safetensors > /tmp/old_digits.safetensors
    python bench/shipped_speed.py /tmp/old_digits.safetensors \
        src/digitrec/weights/digits.safetensors [--threads 1] [--rounds 7] \
        [--json bench/results/shipped_speed.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from digitrec.benchmarks.machine import machine_info
from digitrec.data import load_split
from digitrec.inference.predictor import Predictor
from digitrec.io import atomic_write


def _seconds(fn, repeat: int) -> float:
    """Mean seconds of ``fn()`` over ``repeat`` calls."""
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU inference time of digit checkpoints")
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--data-dir", default=os.environ.get("DIGITREC_DATA"))
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = load_split("mnist", "test", args.data_dir)[0][:1000]
    one = images[:1]
    models, load_s = {}, {}
    for path in args.checkpoints:
        t0 = time.perf_counter()
        models[path] = Predictor.from_checkpoint(path)
        load_s[path] = time.perf_counter() - t0
        models[path].predict_proba(images[:64])  # warm-up
    times: dict[str, dict[str, list[float]]] = {p: {"one": [], "batch": []} for p in models}
    for _ in range(args.rounds):
        for path, m in models.items():
            times[path]["one"].append(_seconds(lambda m=m: m.predict_proba(one), 50))
            times[path]["batch"].append(_seconds(lambda m=m: m.predict_proba(images), 1))
    rows = []
    for path, m in models.items():
        row = {
            "checkpoint": path,
            "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12],
            "arch": m.meta.get("arch"),
            "load_s": load_s[path],
            "ms_1_image": 1e3 * float(np.median(times[path]["one"])),
            "ms_1000_images": 1e3 * float(np.median(times[path]["batch"])),
        }
        rows.append(row)
        print(
            f"{row['arch']:>10} {row['sha256']}  1 image {row['ms_1_image']:.2f} ms  "
            f"1000 images {row['ms_1000_images']:.0f} ms  (load {row['load_s']:.2f} s)"
        )
    out = {
        "threads": args.threads,
        "rounds": args.rounds,
        "load_avg": os.getloadavg()[0],
        "machine": machine_info(torch.device("cpu")),
        "rows": rows,
    }
    print(f"load average {out['load_avg']:.1f}, {args.threads} thread(s)")
    if args.json:
        atomic_write(args.json, json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
