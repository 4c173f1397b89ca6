"""Does training on 2 processes (torchrun + DDP, gloo) beat 1 process on this CPU? Honestly.

Every configuration trains `fast` with the same global batch (the recipe's 96), the same steps
and the same seed, in interleaved rounds so that the machine's drift (other work) hits each alike:

- ``1 proc x 1 thread``, ``1 proc x 2 threads``: plain ``digitrec train``;
- ``2 procs x 1 thread``: ``digitrec train --nproc 2`` (48 images per rank and step).

Training time is the sum of the epochs' ``epoch_time_s`` in metrics.jsonl (rank 0's clock: the
loop's steps, the gradient all-reduces and the per-step stop agreement, not start-up or
validation); ``wall`` is the whole command. Speed-up = 1-process time / 2-process time (> 1: the
2 processes are faster). Validation accuracy shows the runs learn alike.

    python bench/ddp_speedup.py [--steps 650] [--repeats 3] [--json bench/results/ddp.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {  # name: (extra train flags, threads per process)
    "1 proc x 1 thread": ([], 1),
    "1 proc x 2 threads": ([], 2),
    "2 procs x 1 thread": (["--nproc", "2"], 1),
}


def run_once(name: str, steps: int, seed: int, out: Path) -> dict[str, float]:
    """One training command; its training seconds, wall seconds and validation accuracy."""
    flags, threads = CONFIGS[name]
    cmd = [sys.executable, "-m", "digitrec", "train", "--model", "fast", "--steps", str(steps)]
    cmd += ["--seed", str(seed), "--threads", str(threads), "--device", "cpu", "--no-eval"]
    cmd += ["--no-report", "--force", "--out", str(out), *flags]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {
        "train_s": sum(r["epoch_time_s"] for r in records),
        "wall_s": wall,
        "val_acc": records[-1]["val_acc"],
    }


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=650, help="steps per run (fast: 650)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    results: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGS}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):
            for name in CONFIGS:
                res = run_once(name, args.steps, args.seed, Path(tmp) / "run")
                results[name].append(res)
                line = f"train {res['train_s']:.2f}s, wall {res['wall_s']:.2f}s"
                print(
                    f"round {round_ + 1} {name}: {line}, val_acc {res['val_acc']:.4f}", flush=True
                )
    summary = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for name, runs in results.items()
    }
    base = summary["1 proc x 1 thread"]["train_s"]
    two = summary["2 procs x 1 thread"]["train_s"]
    print(f"\nfast, {args.steps} steps of global batch 96, median of {args.repeats}:")
    for name, s in summary.items():
        print(f"  {name:20s} train {s['train_s']:6.2f}s  wall {s['wall_s']:6.2f}s  "
              f"val_acc {s['val_acc']:.4f}  ({base / s['train_s']:.2f}x of 1x1)")  # fmt: skip
    print(f"2-process speed-up over 1 process x 1 thread: {base / two:.2f}x; over 1 process x "
          f"2 threads: {summary['1 proc x 2 threads']['train_s'] / two:.2f}x")  # fmt: skip
    info = machine()
    info["load_1min_before"] = load_before
    info["load_1min_after"] = os.getloadavg()[0]
    print(f"machine: {info}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"steps": args.steps, "machine": info, "runs": results, "median": summary}
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
