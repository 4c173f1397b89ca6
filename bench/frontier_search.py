"""Search frontier recipes on the VALIDATION split (never the test set).

Each trial trains a registered model with recipe overrides (``--set``-style) and optional
builder kwargs on 55,000 training images, and reports the mean accuracy on the 5,000-image
validation split carved from the training set, with the training time. Trials run one after
another in this process (the same machine state for all), appended to a JSONL file.

    python bench/frontier_search.py --model fast --seeds 3 \
        --trial "steps=450,batch_size=128,lr=0.2" --trial "steps=650" \
        --out bench/results/frontier_search.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from digitrec.training import TrainConfig, train_model
from digitrec.training.recipes import parse_recipe_settings


def trial(
    model: str,
    sets: list[str],
    kwargs: dict,
    seeds: list[int],
    threads: int,
    tta: bool,
    device: str = "cpu",
) -> dict:
    """Train ``model`` with overrides over ``seeds``; validation accuracy and train time."""
    from digitrec.inference.metrics import evaluate_tensors

    runs = []
    for seed in seeds:
        cfg = TrainConfig(
            model=model,
            model_kwargs=kwargs,
            seed=seed,
            val_size=5000,
            device=device,
            out=None,
            threads=threads,
            recipe_overrides=parse_recipe_settings(sets),
        )
        result, net = train_model(cfg)
        run = {"seed": seed, "val_acc": result.metrics["val_acc"], "train_s": result.train_time_s}
        if tta:
            from digitrec.training.data import load_run_data

            data, _pre, _ds = load_run_data(cfg, net_device(net), 0.0, "")
            t0 = time.perf_counter()
            run["val_acc_tta"] = evaluate_tensors(net, data["val_x"], data["val_y"], tta=True)[
                "accuracy"
            ]
            run["tta_s"] = time.perf_counter() - t0
        runs.append(run)
        print(f"  seed {seed}: val {run['val_acc']:.4f} train {run['train_s']:.2f}s", flush=True)
    accs = [r["val_acc"] for r in runs]
    out = {
        "model": model,
        "set": sets,
        "kwargs": kwargs,
        "seeds": seeds,
        "val_acc_mean": statistics.fmean(accs),
        "val_acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "train_s_median": statistics.median(r["train_s"] for r in runs),
        "runs": runs,
        "load": os.getloadavg()[0],
        "device": device,
    }
    if tta:
        out["val_acc_tta_mean"] = statistics.fmean(r["val_acc_tta"] for r in runs)
    return out


def net_device(net: torch.nn.Module) -> torch.device:
    return next(net.parameters()).device


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", default="fast")
    ap.add_argument("--kwargs", default="{}", help="builder kwargs as JSON")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tta", action="store_true", help="also validation accuracy with TTA")
    ap.add_argument("--trial", action="append", default=[], help="comma-separated FIELD=VALUE")
    ap.add_argument("--out", default="bench/results/frontier_search.jsonl")
    args = ap.parse_args()
    os.environ.setdefault("DIGITREC_DATA", "/work/shared/data/mnist")
    for t in args.trial or [""]:
        sets = [s for s in t.split(",") if s]
        print(f"{args.model} {args.kwargs} {sets}", flush=True)
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        kwargs = json.loads(args.kwargs)
        res = trial(args.model, sets, kwargs, seeds, args.threads, args.tta, args.device)
        print(
            f"=> val {res['val_acc_mean'] * 100:.2f} ± {res['val_acc_std'] * 100:.2f} "
            f"train {res['train_s_median']:.2f}s (load {res['load']:.2f})",
            flush=True,
        )
        with Path(args.out).open("a") as f:
            f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
