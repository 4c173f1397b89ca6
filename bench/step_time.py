"""Where does a training step's time go? Interleaved step timings and a profile by op kind.

Builds each registered model with its recipe's optimizer, memory format and label smoothing,
runs training steps on one fixed random batch (no data loading), and times them in interleaved
rounds so that the machine's minute-to-minute drift hits every model alike.

    python bench/step_time.py [--models fast,accurate] [--batch-size 96] [--threads 2] [--profile]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from digitrec.models import create_model
from digitrec.training.optim import build_optimizer
from digitrec.training.recipes import recipe_for

KINDS = (  # (op-name fragment, category); the first match wins
    ("convolution_backward", "conv backward"),
    ("mkldnn_convolution", "conv forward"),
    ("batch_norm", "batchnorm"),
    ("threshold", "relu"),
    ("relu", "relu"),
    ("clamp_min", "relu"),
    ("addmm", "fc"),
    ("aten::mm", "fc"),
    ("sgd", "optimizer"),
    ("adam", "optimizer"),
)


def make_step(name: str, batch_size: int) -> Callable[[], None]:
    """One optimizer step of ``name`` under its recipe, on a fixed batch."""
    recipe = recipe_for(name)
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.randn(batch_size, 1, 28, 28)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,))
    optimizer = build_optimizer(recipe, model)

    def step() -> None:
        loss = F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def profile_kinds(step: Callable[[], None], steps: int = 50) -> dict[str, float]:
    """Share of self CPU time per op category over ``steps`` steps."""
    from torch.profiler import profile

    with profile() as prof:
        for _ in range(steps):
            step()
    shares: dict[str, float] = {}
    for event in prof.key_averages():
        kind = next((k for frag, k in KINDS if frag in event.key.lower()), "other")
        shares[kind] = shares.get(kind, 0.0) + event.self_cpu_time_total
    total = sum(shares.values())
    return {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="fast,accurate", help="comma-separated names")
    parser.add_argument("--batch-size", type=int, default=96, help="(default: 96)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--rounds", type=int, default=12, help="timing rounds (default: 12)")
    parser.add_argument("--profile", action="store_true", help="also print a profile by op kind")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    names = args.models.split(",")
    steps = {name: make_step(name, args.batch_size) for name in names}
    for step in steps.values():
        for _ in range(20):  # warm-up: oneDNN builds its kernels on first use
            step()
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(25):
                step()
            times[name].append((time.perf_counter() - t0) / 25 * 1000)
    for name in names:
        print(
            f"{name}: {statistics.median(times[name]):.2f} ms/step median "
            f"(min {min(times[name]):.2f}), batch {args.batch_size}, {args.threads} threads"
        )
        if args.profile:
            shares = profile_kinds(steps[name])
            print("  " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in shares.items()))


if __name__ == "__main__":
    main()
