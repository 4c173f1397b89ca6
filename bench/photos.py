"""Single digits in synthetic phone photos, one row per page condition, before and after cleanup.

Each condition of ``digitrec.data.pages`` (the table beyond the paper's edge, a hard shadow
edge, a dark strip, ruled paper with a red margin, squared paper in pencil, glare, a
perspective tilt, a frame, a decimal point, two at once) gets its own seeded photos of the same
digits, read through the ``digitrec predict`` path (decode, MNIST normalisation, the model's
most likely digit 0-9) with page cleanup off ("before") and on ("after").

Two sets, never mixed:

- ``--set bench`` (default): MNIST *test* digits and the "bench" font families;
- ``--set dev``: validation digits (``train_val_split(60000, 5000, seed 0)``) and the "dev"
  font families. Every tuning constant of page cleanup and the low-confidence threshold were
  chosen on this set only; ``--set dev`` also prints how the threshold was picked.

    python bench/photos.py [--set bench|dev] [--n 1000] [--fonts 300] [--seed 0]
                           [--conditions table,ruled] [--checkpoint FILE] [--tta] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from digitrec.benchmarks.machine import machine_info
from digitrec.data.fonts import FONT_SPLITS, font_digits
from digitrec.data.pages import CONDITIONS, DESCRIPTIONS
from digitrec.data.specs import load_mnist, train_val_split
from digitrec.data.synth import photoize
from digitrec.errors import DigitrecError
from digitrec.images import load_image
from digitrec.images.normalise import to_mnist_report
from digitrec.inference.confidence import LOW_CONFIDENCE
from digitrec.inference.files import digit_proba
from digitrec.inference.predictor import Predictor
from digitrec.io import atomic_write

WEIGHTS = Path(__file__).resolve().parent.parent / "src/digitrec/weights/digits.safetensors"
# The low-confidence threshold: the lowest under which unflagged dev answers are this right.
TARGET_UNFLAGGED = 0.995


def digits_of(which: str, n: int, fonts: int, seed: int) -> dict[str, tuple]:
    """The set's digits: ``{"mnist": (uint8 (n, 28, 28), labels), "fonts": (...)}``."""
    rng = np.random.default_rng(seed)
    if which == "dev":
        images, labels = load_mnist("train")
        pool = train_val_split(len(images), 5000, 0)[1]  # validation digits only
    else:
        images, labels = load_mnist("test")
        pool = np.arange(len(images))
    idx = np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))
    return {"mnist": (images[idx], labels[idx]), "fonts": font_digits(which, fonts, seed)}


def read(predictor: Predictor, photos: list[bytes], clean_page: bool) -> tuple:
    """Preprocess and classify: (probs float32 (N, 10), touched bool (N,), seconds per photo).

    A photo in which no digit is found gets all-zero probabilities (a wrong answer).
    """
    crops, touched = [], []
    t0 = time.perf_counter()
    for data in photos:
        try:
            crop, page = to_mnist_report(load_image(data), clean_page)
            touched.append(page.touched)
        except DigitrecError:
            crop = None
            touched.append(False)
        crops.append(crop)
    per_photo = (time.perf_counter() - t0) / len(photos)
    good = [c for c in crops if c is not None]
    probs = np.zeros((len(crops), 10), np.float32)
    if good:
        probs[[i for i, c in enumerate(crops) if c is not None]] = digit_proba(
            predictor, np.stack(good)
        )
    return probs, np.array(touched), per_photo


def pick_threshold(prob: np.ndarray, right: np.ndarray) -> tuple[float, list[dict]]:
    """Lowest threshold (step 0.02) under which answers left unflagged are TARGET right."""
    curve = []
    chosen = 1.0
    for t in np.round(np.arange(0.2, 0.92, 0.02), 2):
        flag = prob < t
        acc = float(right[~flag].mean()) if (~flag).any() else 1.0
        curve.append(
            {
                "threshold": float(t),
                "flagged": float(flag.mean()),
                "wrong_caught": float(flag[~right].mean()) if (~right).any() else 1.0,
                "right_flagged": float(flag[right].mean()),
                "unflagged_acc": acc,
            }
        )
        if acc >= TARGET_UNFLAGGED and chosen == 1.0:
            chosen = float(t)
    return chosen, curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["bench", "dev"], default="bench", dest="which")
    parser.add_argument("--n", type=int, default=1000, help="MNIST digits per condition")
    parser.add_argument("--fonts", type=int, default=300, help="font digits per condition")
    parser.add_argument("--seed", type=int, default=0, help="synthesis seed (default: 0)")
    parser.add_argument("--conditions", help="comma-separated subset of the conditions")
    parser.add_argument("--checkpoint", default=str(WEIGHTS), help="default: packaged digits")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation (5 views)")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)

    conditions = args.conditions.split(",") if args.conditions else list(CONDITIONS)
    predictor = Predictor.from_checkpoint(args.checkpoint, tta=args.tta)
    sets = digits_of(args.which, args.n, args.fonts, args.seed)
    sha = hashlib.sha256(Path(args.checkpoint).read_bytes()).hexdigest()[:12]
    print(f"set: {args.which} (fonts: {', '.join(FONT_SPLITS[args.which])}), seed {args.seed}")
    cpu = machine_info(torch.device("cpu"))["cpu"]
    print(f"checkpoint: {args.checkpoint} (sha256 {sha}), machine: {cpu}")
    header = "| condition | MNIST before | MNIST after | fonts before | fonts after |"
    print(header + " ms before / after | flagged: wrong / right |")
    print("|" + " --- |" * 7)
    rows, probs_after, right_after = [], [], []
    for k, cond in enumerate(conditions):
        row: dict = {"condition": cond, "description": DESCRIPTIONS[cond]}
        cells, times = [], [0.0, 0.0]
        flags = []
        for name, (images, labels) in sets.items():
            photos = photoize(images, seed=1000 * args.seed + k, condition=cond)
            for clean in (False, True):
                probs, _, sec = read(predictor, photos, clean)
                right = probs.argmax(1) == labels
                row[f"{name}_{'after' if clean else 'before'}"] = float(right.mean())
                cells.append(f"{right.mean():.1%}")
                times[clean] += sec * len(photos)
                if clean:
                    probs_after.append(probs.max(1))
                    right_after.append(right)
                    flags.append((probs.max(1) < LOW_CONFIDENCE, right))
        total = sum(len(v[1]) for v in sets.values())
        flag = np.concatenate([f for f, _ in flags])
        right = np.concatenate([r for _, r in flags])
        caught = f"{flag[~right].mean():.0%}" if (~right).any() else "-"
        row.update(
            ms_before=1e3 * times[0] / total,
            ms_after=1e3 * times[1] / total,
            wrong_flagged=None if caught == "-" else float(flag[~right].mean()),
            right_flagged=float(flag[right].mean()),
        )
        rows.append(row)
        ms = f"{row['ms_before']:.0f} / {row['ms_after']:.0f}"
        flagged = f"{caught} / {flag[right].mean():.0%}"
        print(f"| {DESCRIPTIONS[cond]} | {' | '.join(cells)} | {ms} | {flagged} |", flush=True)
    out = {
        "set": args.which,
        "fonts": list(FONT_SPLITS[args.which]),
        "seed": args.seed,
        "n_mnist": len(sets["mnist"][1]),
        "n_fonts": len(sets["fonts"][1]),
        "checkpoint": args.checkpoint,
        "checkpoint_sha256": sha,
        "tta": args.tta,
        "machine": machine_info(torch.device("cpu")),
        "low_confidence": LOW_CONFIDENCE,
        "rows": rows,
    }
    if args.which == "dev":
        chosen, curve = pick_threshold(np.concatenate(probs_after), np.concatenate(right_after))
        print(f"\nlow-confidence threshold on this set: {chosen:.2f} (shipped: {LOW_CONFIDENCE})")
        for c in curve:
            if abs(c["threshold"] - chosen) < 0.07:
                print(
                    f"  p < {c['threshold']:.2f}: flags {c['flagged']:.1%}, catches "
                    f"{c['wrong_caught']:.1%} of wrong answers, {c['right_flagged']:.1%} of "
                    f"right ones; unflagged {c['unflagged_acc']:.2%} right"
                )
        out.update(threshold_chosen=chosen, threshold_curve=curve)
    if args.json:
        atomic_write(args.json, json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
