"""Build the digit model that ships with digitrec (``make weights``).

Trains the ``accurate`` net on all 60,000 MNIST training images with the recipe chosen on the
validation split (see README, "The shipped model"), evaluates it once on the test set, and writes
``src/digitrec/weights/digits.safetensors``: the final weights (inference tensors only) and the
checkpoint's metadata plus ``name`` and ``test_metrics``, which ``GET /api/model`` reports.

    python bench/make_weights.py                       # the shipped model (~3 min on 2 cores)
    python bench/make_weights.py --max-steps 3 --out /tmp/digits.safetensors   # a smoke run
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "src/digitrec/weights/digits.safetensors"
RUN_DIR = REPO / "runs/weights-accurate"
# The recipe: `accurate`, 16 epochs instead of 8, and an exponential moving average of the
# weights. Chosen on a 5,000-image validation split; see the README for the candidates.
TRAIN_ARGS = ["--model", "accurate", "--epochs", "16", "--set", "ema=0.999"]
SEED = 0


def train_command(run_dir: Path, threads: int | None, max_steps: int | None) -> list[str]:
    """The ``digitrec train`` arguments: all 60k images, seeded, deterministic."""
    args = [
        "train",
        *TRAIN_ARGS,
        "--val-size",
        "0",
        "--seed",
        str(SEED),
        "--deterministic",
        "--no-eval",
        "--out",
        str(run_dir),
    ]
    if threads:
        args += ["--threads", str(threads)]
    if max_steps:
        args += ["--max-steps", str(max_steps)]
    return args


def make_weights(
    out: Path = OUT,
    run_dir: Path = RUN_DIR,
    data_dir: str | None = None,
    threads: int | None = 1,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Train, evaluate on MNIST test once, write ``out``; return the test metrics."""
    import torch

    from digitrec.cli import main as digitrec
    from digitrec.inference.checkpoint import load_checkpoint, save_checkpoint
    from digitrec.inference.evaluate import evaluate_checkpoint

    if run_dir.exists():  # a fresh run every time: never resume or mix old epochs in
        shutil.rmtree(run_dir)
    args = train_command(run_dir, threads, max_steps)
    if data_dir:
        args += ["--data-dir", data_dir]
    if digitrec(args) != 0:
        raise SystemExit("make_weights: training failed")
    final = run_dir / "last.safetensors"  # the recipe's last epoch; no test-set selection
    report = evaluate_checkpoint(final, "test", data_dir, "cpu").report
    metrics = {k: report[k] for k in ("accuracy", "loss", "errors", "n")}
    ckpt = load_checkpoint(final)
    meta = {
        **ckpt.meta,
        "name": "digits",
        "test_metrics": metrics,
        "made_by": "make weights: digitrec " + " ".join(train_command(Path("RUN"), 1, None)),
    }
    state = {k: v.to(torch.float32) for k, v in ckpt.model.state_dict().items()}
    save_checkpoint(out, state, meta)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"(default: {OUT.relative_to(REPO)})")
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR, help="training run directory")
    parser.add_argument("--data-dir", help="MNIST folder (default: $DIGITREC_DATA or the cache)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--max-steps", type=int, help="smoke mode: stop training after N steps")
    args = parser.parse_args(argv)
    m = make_weights(args.out, args.run_dir, args.data_dir, args.threads, args.max_steps)
    size = args.out.stat().st_size
    print(
        f"wrote {args.out} ({size / 1e6:.2f} MB): MNIST test accuracy {m['accuracy']:.4f} "
        f"({m['errors']} errors of {m['n']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
