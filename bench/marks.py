"""Decimal points and separator spaces in written numbers: how the thresholds were chosen.

Development examples only: MNIST *validation* digits (``train_val_split(60000, 5000, seed 0)``)
and the "dev" font families, never MNIST test digits. Four sets of seeded photos:

- ``points``: numbers such as "3.14" and "1 250.75" (3-12 digits), the point drawn as
  ``digitrec.data.pages`` draws one (1.1-1.6 stroke widths across);
- ``specks``: the same numbers with every point replaced by a noise speck of 0.2-0.6 stroke
  widths in an ordinary gap (the reading has no point);
- ``plain``: ``make_numbers`` (2-6 validation digits, ordinary gaps, touching pairs);
- ``fonts``: ``make_font_numbers("dev")``.

For every photo it records each point candidate's diameter in stroke widths
(``find_dots(min_strokes=0)``) and each gap between neighbouring digits (in digit heights, and
as a ratio to the number's other gaps), labelled by the truth; then sweeps the thresholds and
reports how often the marks (and, with ``--read``, the whole number) come out right with the
constants of ``digitrec.images.marks``.

    python bench/marks.py [--n 150] [--seed 0] [--read] [--json bench/results/marks.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from digitrec.benchmarks.machine import machine_info
from digitrec.data.marked import make_marked_numbers
from digitrec.data.specs import load_mnist, train_val_split
from digitrec.data.synth import make_font_numbers, make_numbers
from digitrec.images import load_image
from digitrec.images import marks as M
from digitrec.images.normalise import ink_map
from digitrec.images.segment import segment_number
from digitrec.io import atomic_write


def _sets(n: int, seed: int) -> dict[str, list[tuple[bytes, str]]]:
    images, labels = load_mnist("train")
    val = train_val_split(len(images), 5000, 0)[1]
    images, labels = images[val], labels[val]
    rng = np.random.default_rng(seed)
    specks: list[tuple[bytes, str]] = []
    for k in range(n):  # a speck size per number, 0.2-0.6 stroke widths
        size = float(rng.uniform(0.2, 0.6))
        specks += make_marked_numbers(images, labels, 1, seed + 1000 + k, point_strokes=size)
    return {
        "points": make_marked_numbers(images, labels, n, seed),
        "specks": specks,
        "plain": make_numbers(images, labels, n, seed + 1),
        "fonts": make_font_numbers("dev", n, seed + 1),
    }


def _layout(text: str) -> tuple[set[int], set[int]]:
    """Digit indices that a point / a space stands before, from the expected reading."""
    points, spaces, k = set(), set(), 0
    for c in text:
        if c == ".":
            points.add(k)
        elif c == " ":
            spaces.add(k)
        else:
            k += 1
    return points, spaces


def measure(photos: list[tuple[bytes, str]], score) -> dict:
    """Candidates, gaps and the marks found, per photo of one set."""
    dots, gaps, right, digits_right, seconds = [], [], 0, 0, 0.0
    for data, text in photos:
        gray = load_image(data)
        t0 = time.perf_counter()
        seg = segment_number(gray, score, straight_cuts=True)
        seconds += time.perf_counter() - t0
        m = ink_map(gray)
        dots += [d.strokes for d in M.find_dots(m.labels, m.areas, min_strokes=0.0)]
        boxes = [b for b, _ in seg.digits]
        points, spaces = _layout(text)
        want = M.insert_marks(["d"] * sum(c.isdigit() for c in text), _marks(points, spaces))
        got = M.insert_marks(["d"] * len(boxes), seg.marks)
        right += got == want
        digits_right += len(boxes) == sum(c.isdigit() for c in text)
        if len(boxes) != sum(c.isdigit() for c in text) or len(boxes) < 2:
            continue  # gaps only make sense where the digits were found
        h = float(np.percentile([b[3] - b[1] for b in boxes], 75))
        g = {i: (boxes[i][0] - boxes[i - 1][2]) / h for i in range(1, len(boxes))}
        pointed = {i for i, c in seg.marks if c == "."}
        for i, v in g.items():
            if i in points or i in pointed:
                continue
            others = [w for j, w in g.items() if j != i and j not in points | pointed]
            typical = max(float(np.median(others)) if others else 0.0, M.SEP_FLOOR)
            gaps.append((round(v, 3), round(v / typical, 3), i in spaces))
    return {
        "n": len(photos),
        "marks_right": right / len(photos),
        "digit_count_right": digits_right / len(photos),
        "ms_per_number": 1000 * seconds / len(photos),
        "dot_candidates_strokes": sorted(round(x, 3) for x in dots),
        "gaps": gaps,
    }


def _marks(points: set[int], spaces: set[int]) -> list[tuple[int, str]]:
    return sorted([(i, ".") for i in points] + [(i, " ") for i in spaces])


def sweep(results: dict) -> dict:
    """Threshold sweeps: points kept / specks taken per DOT_MIN_STROKES; gap errors per SEP_*."""
    pts = np.array(results["points"]["dot_candidates_strokes"])
    spk = np.array(results["specks"]["dot_candidates_strokes"])
    dots = {
        f"{t:.2f}": {
            "points_found": float((pts >= t).mean()) if pts.size else None,
            "specks_taken": int((spk >= t).sum()),
        }
        for t in np.arange(0.5, 1.55, 0.1)
    }
    gaps = [g for r in results.values() for g in r["gaps"]]
    spaces = [(v, r) for v, r, s in gaps if s]
    ordinary = [(v, r) for v, r, s in gaps if not s]
    seps = {}
    for lo in (0.35, 0.4, 0.45, 0.5, 0.55, 0.6):
        for ratio in (1.5, 2.0, 2.5, 3.0):
            missed = sum(not (v >= lo and r >= ratio) for v, r in spaces)
            false = sum(v >= lo and r >= ratio for v, r in ordinary)
            seps[f"min {lo} ratio {ratio}"] = {"spaces_missed": missed, "false_spaces": false}
    return {
        "dot_min_strokes": dots,
        "points_strokes_min": float(pts.min()) if pts.size else None,
        "specks_strokes_max": float(spk.max()) if spk.size else None,
        "spaces": len(spaces),
        "ordinary_gaps": len(ordinary),
        "largest_ordinary_gap": max((v for v, _ in ordinary), default=None),
        "smallest_space": min((v for v, _ in spaces), default=None),
        "separators": seps,
    }


def read_all(photos: list[tuple[bytes, str]]) -> float:
    """Whole numbers read exactly by ``read`` (packaged digits model and splitter)."""
    from digitrec.inference.checkpoint import SHIPPED_MODEL
    from digitrec.inference.predictor import Predictor
    from digitrec.inference.reading import read_number

    predictor = Predictor.from_checkpoint(SHIPPED_MODEL)
    return float(np.mean([read_number(predictor, d)["number"] == t for d, t in photos]))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=150, help="photos per set (default: 150)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--read", action="store_true", help="also read the numbers whole")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from digitrec.inference.reading import default_splitter

    splitter = default_splitter()

    def score(crops: np.ndarray) -> np.ndarray:
        return splitter.predict_proba(crops)[:, :10].max(1)

    sets = _sets(args.n, args.seed)
    results = {name: measure(photos, score) for name, photos in sets.items()}
    out = {
        "set": "dev (validation digits, dev fonts)",
        "seed": args.seed,
        "machine": machine_info(torch.device("cpu")),
        "constants": {
            k: getattr(M, k)
            for k in ("DOT_MIN_STROKES", "DOT_MAX_SIZE", "DOT_RISE", "SEP_MIN", "SEP_RATIO")
        },
        "sweep": sweep(results),
        "sets": {k: {x: y for x, y in v.items() if x != "gaps"} for k, v in results.items()},
    }
    if args.read:
        for name, photos in sets.items():
            out["sets"][name]["read_exact"] = read_all(photos)
    print("| set | photos | marks right | digit count right | read exactly | ms per number |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in out["sets"].items():
        read = f"{r['read_exact']:.1%}" if "read_exact" in r else "-"
        print(
            f"| {name} | {r['n']} | {r['marks_right']:.1%} | {r['digit_count_right']:.1%} "
            f"| {read} | {r['ms_per_number']:.0f} |"
        )
    s = out["sweep"]
    print(
        f"point diameters >= {s['points_strokes_min']} strokes, specks <= "
        f"{s['specks_strokes_max']}; spaces >= {s['smallest_space']} digit heights, ordinary "
        f"gaps <= {s['largest_ordinary_gap']}"
    )
    print(json.dumps(s["dot_min_strokes"]))
    print(json.dumps(s["separators"]))
    if args.json:
        atomic_write(args.json, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
