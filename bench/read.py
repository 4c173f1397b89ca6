"""Whole numbers read right by ``digitrec read`` (the segmenter), per set and page condition.

Rows: numbers built from MNIST digits (the README's benchmark of ``read``), and numbers written
in handwriting fonts, both as phone photos, clean and under each page condition of
``digitrec.data.pages`` (one seeded set of numbers per row). Each row is read with page cleanup
off ("before") and on ("after"); the reading itself is ``read``'s: cuts scored by the packaged
splitter, each digit the model's most likely 0-9. Also: how often the low-confidence flag
marks a wrong number and a right one, and the time per number of ``read_number`` (6-digit
numbers separately).

Two sets, never mixed (as in ``bench/photos.py``):

- ``--set bench`` (default): MNIST test digits (``make_numbers`` seed 0 is today's benchmark)
  and the "bench" font families;
- ``--set dev``: validation digits (``train_val_split(60000, 5000, seed 0)``) and the "dev"
  font families.

    python bench/read.py [--set bench|dev] [--n 200] [--n-conditions 100]
                         [--conditions ruled,frame] [--checkpoint FILE] [--json FILE]

Only the segmenter exists so far; a sequence reader (issue 15, items 1-2) would add columns.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from digitrec.benchmarks.machine import machine_info
from digitrec.data.fonts import FONT_SPLITS
from digitrec.data.pages import CONDITIONS, DESCRIPTIONS
from digitrec.data.specs import load_mnist, train_val_split
from digitrec.data.synth import make_font_numbers, make_numbers
from digitrec.errors import DigitrecError
from digitrec.images import load_image
from digitrec.images.segment import segment_report
from digitrec.inference.confidence import LOW_CONFIDENCE
from digitrec.inference.files import digit_proba
from digitrec.inference.predictor import Predictor
from digitrec.inference.reading import default_splitter, read_number
from digitrec.io import atomic_write

WEIGHTS = Path(__file__).resolve().parent.parent / "src/digitrec/weights/digits.safetensors"
# Page conditions that make sense for a number ("point" would add a dot after it).
NUMBER_CONDITIONS = [c for c in CONDITIONS if c not in ("clean", "point")]


def numbers_of(which: str, source: str, n: int, seed: int, condition: str) -> list:
    """``n`` (JPEG bytes, text) numbers of a set: MNIST digits or the set's fonts."""
    if source == "fonts":
        return make_font_numbers(which, n, seed=seed, condition=condition)
    if which == "dev":
        images, labels = load_mnist("train")
        val = train_val_split(len(images), 5000, 0)[1]
        return make_numbers(images[val], labels[val], n, seed=seed, condition=condition)
    return make_numbers(*load_mnist("test"), n=n, seed=seed, condition=condition)


def read_all(predictor: Predictor, numbers: list, clean_page: bool) -> tuple:
    """What ``read`` answers for each number: (texts, lowest digit probability per number)."""
    splitter = default_splitter()

    def score(crops: np.ndarray) -> np.ndarray:
        return splitter.predict_proba(crops)[:, :10].max(1)

    texts, lowest = [], []
    for data, _ in numbers:
        try:
            pieces, _ = segment_report(
                load_image(data), score=score, straight_cuts=True, clean_page=clean_page
            )
        except DigitrecError:
            texts.append("")
            lowest.append(0.0)
            continue
        probs = digit_proba(predictor, np.stack([crop for _, crop in pieces]))
        texts.append("".join(str(int(d)) for d in probs.argmax(1)))
        lowest.append(float(probs.max(1).min()))
    return texts, np.array(lowest)


def timing(predictor: Predictor, numbers: list) -> tuple[float, float]:
    """Mean ms per number of ``read_number`` (all numbers, and the 6-digit ones)."""
    times, six = [], []
    for data, text in numbers:
        t0 = time.perf_counter()
        with contextlib.suppress(DigitrecError):
            read_number(predictor, data)
        ms = 1e3 * (time.perf_counter() - t0)
        times.append(ms)
        if len(text) == 6:
            six.append(ms)
    return float(np.mean(times)), float(np.mean(six)) if six else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["bench", "dev"], default="bench", dest="which")
    parser.add_argument("--n", type=int, default=200, help="numbers in each clean row")
    parser.add_argument("--n-conditions", type=int, default=100, help="numbers per condition")
    parser.add_argument("--conditions", help="comma-separated page conditions (default: all)")
    parser.add_argument("--checkpoint", default=str(WEIGHTS), help="default: packaged digits")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)

    seed = 0 if args.which == "bench" else 2
    conditions = args.conditions.split(",") if args.conditions else NUMBER_CONDITIONS
    predictor = Predictor.from_checkpoint(args.checkpoint)
    sha = hashlib.sha256(Path(args.checkpoint).read_bytes()).hexdigest()[:12]
    cpu = machine_info(torch.device("cpu"))["cpu"]
    print(f"set: {args.which} (fonts: {', '.join(FONT_SPLITS[args.which])}); method: segment")
    print(f"checkpoint: {args.checkpoint} (sha256 {sha}), machine: {cpu}")
    print("| numbers | photo condition | n | before | after | flagged: wrong / right |")
    print("|" + " --- |" * 6)
    rows = []
    for source in ("mnist", "fonts"):
        for k, cond in enumerate(["clean", *conditions]):
            n = args.n if cond == "clean" else args.n_conditions
            numbers = numbers_of(args.which, source, n, seed + 100 * k, cond)
            truth = [text for _, text in numbers]
            before, _ = read_all(predictor, numbers, clean_page=False)
            after, lowest = read_all(predictor, numbers, clean_page=True)
            right_b = np.array([a == b for a, b in zip(before, truth, strict=True)])
            right = np.array([a == b for a, b in zip(after, truth, strict=True)])
            flag = lowest < LOW_CONFIDENCE
            row = {
                "numbers": source,
                "condition": cond,
                "n": n,
                "before": float(right_b.mean()),
                "after": float(right.mean()),
                "wrong_flagged": float(flag[~right].mean()) if (~right).any() else None,
                "right_flagged": float(flag[right].mean()) if right.any() else None,
            }
            if cond == "clean":
                row["ms_per_number"], row["ms_per_6_digits"] = timing(predictor, numbers)
            rows.append(row)
            caught = "-" if row["wrong_flagged"] is None else f"{row['wrong_flagged']:.0%}"
            print(
                f"| {source} | {DESCRIPTIONS[cond]} | {n} | {right_b.mean():.1%} | "
                f"{right.mean():.1%} | {caught} / {row['right_flagged'] or 0:.0%} |",
                flush=True,
            )
    for row in rows:
        if "ms_per_number" in row:
            print(
                f"{row['numbers']}: read_number {row['ms_per_number']:.0f} ms per number, "
                f"{row['ms_per_6_digits']:.0f} ms per 6-digit number"
            )
    if args.json:
        out = {
            "set": args.which,
            "fonts": list(FONT_SPLITS[args.which]),
            "method": "segment",
            "checkpoint": args.checkpoint,
            "checkpoint_sha256": sha,
            "machine": machine_info(torch.device("cpu")),
            "low_confidence": LOW_CONFIDENCE,
            "rows": rows,
        }
        atomic_write(args.json, json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
