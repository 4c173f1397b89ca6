"""Whole numbers read right by ``digitrec read`` (the segmenter), per set and page condition.

Rows: numbers built from MNIST digits (the README's benchmark of ``read``), and numbers written
in handwriting fonts, both as phone photos, clean and under each page condition of
``digitrec.data.pages`` (one seeded set of numbers per row). Each row is read with page cleanup
off ("before") and on ("after"); the reading itself is ``read``'s: cuts scored by the packaged
splitter, each digit the model's most likely 0-9. Beside it, with cleanup on: the sequence
reader (``seq``, the packaged CRNN) and ``auto`` (:func:`digitrec.inference.reading.combine`
of the two). Also: how often the low-confidence flag marks a wrong number and a right one
(segmenter), the time per number of ``read_number`` for each method (6-digit numbers
separately), and, for choosing ``auto``'s margin (on ``--set dev`` only), whole-number accuracy
over all rows for a range of margins.

Two sets, never mixed (as in ``bench/photos.py``):

- ``--set bench`` (default): MNIST test digits (``make_numbers`` seed 0 is today's benchmark)
  and the "bench" font families;
- ``--set dev``: validation digits (``train_val_split(60000, 5000, seed 0)``) and the "dev"
  font families.

    python bench/read.py [--set bench|dev] [--n 200] [--n-conditions 100]
                         [--conditions ruled,frame] [--checkpoint FILE] [--json FILE]
    python bench/read.py --timing-only 100 [--json FILE]  # only the time per number of each method

"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
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
from digitrec.inference.reading import (
    AUTO_MARGIN,
    METHODS,
    combine,
    default_splitter,
    lowest_prob,
    read_number,
)
from digitrec.inference.sequence import READER, default_reader
from digitrec.io import atomic_write

WEIGHTS = Path(__file__).resolve().parent.parent / "src/digitrec/weights/digits.safetensors"
# Margins tried for ``auto`` (seq wins a disagreement when its lowest digit probability beats
# the segmenter's by more than this); -1 and 1: seq or the segmenter always wins.
MARGINS = (-1.0, -0.3, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# Thresholds tried for skipping the segmenter when seq is sure of every digit.
SURE = (0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.01)
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


def as_reading(text: str, probs: list[float]) -> dict:
    """A minimal ``read_number`` answer, as :func:`combine` takes it."""
    digits = [{"digit": int(c), "prob": p} for c, p in zip(text, probs, strict=True)]
    return {"number": text, "digits": digits}


def read_seq(numbers: list) -> list[dict]:
    """The sequence reader's answer for each number (an empty one when it fails)."""
    reader = default_reader()
    out = []
    for data, _ in numbers:
        try:
            got = reader.read_gray(load_image(data))
            out.append(as_reading(got["number"], [d["prob"] for d in got["digits"]]))
        except DigitrecError:
            out.append(as_reading("", []))
    return out


def read_all(predictor: Predictor, numbers: list, clean_page: bool) -> tuple:
    """What ``read`` answers for each number: (texts, lowest digit probability per number,
    minimal readings)."""
    splitter = default_splitter()

    def score(crops: np.ndarray) -> np.ndarray:
        return splitter.predict_proba(crops)[:, :10].max(1)

    texts, lowest, readings = [], [], []
    for data, _ in numbers:
        try:
            pieces, _ = segment_report(
                load_image(data), score=score, straight_cuts=True, clean_page=clean_page
            )
        except DigitrecError:
            texts.append("")
            lowest.append(0.0)
            readings.append(as_reading("", []))
            continue
        probs = digit_proba(predictor, np.stack([crop for _, crop in pieces]))
        texts.append("".join(str(int(d)) for d in probs.argmax(1)))
        lowest.append(float(probs.max(1).min()))
        readings.append(as_reading(texts[-1], [float(p) for p in probs.max(1)]))
    return texts, np.array(lowest), readings


def timing(predictor: Predictor, numbers: list, method: str) -> tuple[float, float]:
    """Mean ms per number of ``read_number`` (all numbers, and the 6-digit ones)."""
    times, six = [], []
    for data, text in numbers:
        t0 = time.perf_counter()
        with contextlib.suppress(DigitrecError):
            read_number(predictor, data, method=method)
        ms = 1e3 * (time.perf_counter() - t0)
        times.append(ms)
        if len(text) == 6:
            six.append(ms)
    return float(np.mean(times)), float(np.mean(six)) if six else float("nan")


def sweep(pairs: list[tuple[dict, dict, str]]) -> dict[str, float]:
    """Whole-number accuracy of ``auto`` per margin over (seq, segment, truth) triples."""
    return {
        f"{m:+.2f}": float(np.mean([combine(q, g, m)["number"] == t for q, g, t in pairs]))
        for m in MARGINS
    }


def sweep_sure(pairs: list[tuple[dict, dict, str]]) -> dict[str, dict[str, float]]:
    """``auto`` at AUTO_MARGIN when a sure seq reading skips the segmenter, per threshold:
    whole-number accuracy and the share of numbers that skip it."""
    out = {}
    for sure in SURE:
        skip = np.array([bool(q["digits"]) and lowest_prob(q) >= sure for q, _, _ in pairs])
        right = [
            (q if s else combine(q, g, AUTO_MARGIN))["number"] == t
            for (q, g, t), s in zip(pairs, skip, strict=True)
        ]
        out[f"{sure:.3f}"] = {"acc": float(np.mean(right)), "skipped": float(skip.mean())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "read").splitlines()[0])
    parser.add_argument("--set", choices=["bench", "dev"], default="bench", dest="which")
    parser.add_argument("--n", type=int, default=200, help="numbers in each clean row")
    parser.add_argument("--n-conditions", type=int, default=100, help="numbers per condition")
    parser.add_argument("--conditions", help="comma-separated page conditions (default: all)")
    parser.add_argument("--checkpoint", default=str(WEIGHTS), help="default: packaged digits")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument(
        "--timing-only", type=int, metavar="N", help="only time each method on N clean numbers"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.timing_only:
        predictor = Predictor.from_checkpoint(args.checkpoint)
        numbers = numbers_of(args.which, "mnist", args.timing_only, 0, "clean")
        read_number(predictor, numbers[0][0])  # load the models first
        times = {}
        for method in METHODS:
            ms, six = timing(predictor, numbers, method)
            times[method] = {"ms": ms, "ms_6_digits": six}
            print(f"{method}: {ms:.0f} ms per number, {six:.0f} ms per 6-digit number")
        if args.json:
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            out = {"set": args.which, "n": args.timing_only, "timing": times, "load_1min": load}
            out["reader_sha256"] = hashlib.sha256(READER.read_bytes()).hexdigest()[:12]
            out["machine"] = machine_info(torch.device("cpu"))
            atomic_write(args.json, json.dumps(out, indent=2) + "\n")
        return

    seed = 0 if args.which == "bench" else 2
    conditions = args.conditions.split(",") if args.conditions else NUMBER_CONDITIONS
    predictor = Predictor.from_checkpoint(args.checkpoint)
    sha = hashlib.sha256(Path(args.checkpoint).read_bytes()).hexdigest()[:12]
    cpu = machine_info(torch.device("cpu"))["cpu"]
    print(f"set: {args.which} (fonts: {', '.join(FONT_SPLITS[args.which])})")
    print(f"checkpoint: {args.checkpoint} (sha256 {sha}), machine: {cpu}")
    print(
        "| numbers | photo condition | n | segment before | segment after | seq | auto | "
        "flagged: wrong / right |"
    )
    print("|" + " --- |" * 8)
    rows, pairs = [], []
    for source in ("mnist", "fonts"):
        for k, cond in enumerate(["clean", *conditions]):
            n = args.n if cond == "clean" else args.n_conditions
            numbers = numbers_of(args.which, source, n, seed + 100 * k, cond)
            truth = [text for _, text in numbers]
            before, _, _ = read_all(predictor, numbers, clean_page=False)
            after, lowest, seg = read_all(predictor, numbers, clean_page=True)
            seq = read_seq(numbers)
            auto = [combine(q, g)["number"] for q, g in zip(seq, seg, strict=True)]
            pairs += list(zip(seq, seg, truth, strict=True))
            right_b = np.array([a == b for a, b in zip(before, truth, strict=True)])
            right = np.array([a == b for a, b in zip(after, truth, strict=True)])
            right_q = np.array([q["number"] == t for q, t in zip(seq, truth, strict=True)])
            right_a = np.array([a == t for a, t in zip(auto, truth, strict=True)])
            flag = lowest < LOW_CONFIDENCE
            row = {
                "numbers": source,
                "condition": cond,
                "n": n,
                "before": float(right_b.mean()),
                "after": float(right.mean()),
                "seq": float(right_q.mean()),
                "auto": float(right_a.mean()),
                "wrong_flagged": float(flag[~right].mean()) if (~right).any() else None,
                "right_flagged": float(flag[right].mean()) if right.any() else None,
            }
            if cond == "clean":
                for method in METHODS:
                    row[f"ms_{method}"], row[f"ms_6_digits_{method}"] = timing(
                        predictor, numbers, method
                    )
            rows.append(row)
            caught = "-" if row["wrong_flagged"] is None else f"{row['wrong_flagged']:.0%}"
            print(
                f"| {source} | {DESCRIPTIONS[cond]} | {n} | {right_b.mean():.1%} | "
                f"{right.mean():.1%} | {right_q.mean():.1%} | {right_a.mean():.1%} | "
                f"{caught} / {row['right_flagged'] or 0:.0%} |",
                flush=True,
            )
    for row in rows:
        if "ms_seq" in row:
            print(
                f"{row['numbers']}: read_number ms per number (per 6-digit number): "
                + ", ".join(
                    f"{m} {row[f'ms_{m}']:.0f} ({row[f'ms_6_digits_{m}']:.0f})" for m in METHODS
                )
            )
    margins = sweep(pairs)
    print("auto, all rows, by margin: " + ", ".join(f"{m} {a:.2%}" for m, a in margins.items()))
    sure = sweep_sure(pairs)
    print(
        f"auto (margin {AUTO_MARGIN}), all rows, seq taken alone when sure: "
        + ", ".join(f">={k} {v['acc']:.2%} (skip {v['skipped']:.0%})" for k, v in sure.items())
    )
    if args.json:
        out = {
            "set": args.which,
            "fonts": list(FONT_SPLITS[args.which]),
            "methods": ["segment (before/after page cleanup)", "seq", "auto"],
            "checkpoint": args.checkpoint,
            "checkpoint_sha256": sha,
            "reader_sha256": hashlib.sha256(READER.read_bytes()).hexdigest()[:12],
            "machine": machine_info(torch.device("cpu")),
            "low_confidence": LOW_CONFIDENCE,
            "rows": rows,
            "auto_margin": AUTO_MARGIN,
            "auto_by_margin": margins,
            "auto_by_sure": sure,
        }
        atomic_write(args.json, json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
