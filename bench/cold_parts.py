"""What the cold-start fixes in `digitrec train` save, each in fresh processes, interleaved.

- ``optim``: import torch, build the ``fast`` net and its SGD, take 3 steps, exit; torch's
  ``optimizer.step()`` (imports torch._dynamo) against ``digitrec.training.optim.optimizer_step``.
- ``exit``: import torch and digitrec.training, load MNIST, exit; with and without
  ``gc.freeze()`` before the interpreter's last collection (what the console entry point does).

    python bench/cold_parts.py [--rounds 5] [--json bench/results/cold_parts.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

OPTIM = """
import torch, torch.nn.functional as F
from digitrec.models import create_model
from digitrec.training.optim import build_optimizer, optimizer_step
from digitrec.training.recipes import recipe_for
torch.set_num_threads(1)
net = create_model("fast")
opt = build_optimizer(recipe_for("fast"), net)
x, y = torch.randn(96, 1, 28, 28), torch.randint(0, 10, (96,))
for _ in range(3):
    F.cross_entropy(net(x), y).backward()
    {step}
    opt.zero_grad()
"""
EXIT = """
import gc, digitrec.training
from digitrec.data import load_mnist
load_mnist("train", None)
{freeze}
"""
VARIANTS = {
    "optim: torch step": OPTIM.format(step="opt.step()"),
    "optim: optimizer_step": OPTIM.format(step="optimizer_step(opt)"),
    "exit: plain": EXIT.format(freeze=""),
    "exit: gc.freeze()": EXIT.format(freeze="gc.freeze()"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default="bench/results/cold_parts.json")
    args = ap.parse_args()
    env = {**os.environ}
    env.setdefault("DIGITREC_DATA", "/work/shared/data/mnist")
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for name, code in VARIANTS.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            times[name].append(time.perf_counter() - t0)
    result = {
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "process_s": {
            name: {"median": statistics.median(t), "min": min(t), "runs": t}
            for name, t in times.items()
        },
    }
    for name, t in times.items():
        print(f"{name:24s} median {statistics.median(t):.2f} s, min {min(t):.2f} s")
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
