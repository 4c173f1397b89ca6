"""The `best` recipe (issue 17): the validation search, the final seeds, and the CPU cost.

Protocol: every choice (architecture, augmentation, EMA, label smoothing, epochs, TTA) is made
on the 5,000-image validation split carved from the 60k training images (``--val-size``);
MNIST test is never looked at during the search. The finals then train the chosen
``digitrec train --model best`` recipe on all 60k (``--val-size 0``) with fixed settings, take
each run's last weights (no checkpoint selection), and evaluate the test set once per member,
plus the ensemble (mean of the members' probabilities).

    python bench/best.py search --device cuda --jobs 8          # -> bench/results/best_search.json
    python bench/best.py finals --device cuda --members 12     # -> bench/results/best.json
    python bench/best.py cputime --threads 2                  # CPU minutes per member, estimated
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench/results"
RUNS = REPO / "runs/best"

# The search: (name, model, model kwargs, recipe overrides). Each starts from the `best` recipe
# in training/recipes.py, so the chosen candidate's settings go there afterwards.
SMALL = {"widths": [24, 48, 96], "depths": [1, 2, 2]}
MID = {"widths": [32, 64, 128], "depths": [1, 2, 2]}
LARGE = {"widths": [32, 64, 128], "depths": [2, 2, 2]}
CANDIDATES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("small-elastic-20", "best", SMALL, {}),
    ("small-strong-20", "best", SMALL, {"augment": "strong"}),
    ("small-affine-20", "best", SMALL, {"augment": "affine"}),
    ("small-shift-20", "best", SMALL, {"augment": "shift"}),
    ("small-elastic-20-noema", "best", SMALL, {"ema": 0.0}),
    ("small-elastic-20-ls0", "best", SMALL, {"label_smoothing": 0.0}),
    ("small-elastic-20-lr0.2", "best", SMALL, {"lr": 0.2}),
    ("small-elastic-30", "best", SMALL, {"epochs": 30}),
    ("mid-elastic-20", "best", MID, {}),
    ("large-elastic-20", "best", LARGE, {}),
    ("small-elastic-20-drop0.4", "best", {**SMALL, "dropout": 0.4}, {}),
    ("small-elastic-20-adamw", "best", SMALL, {"optimizer": "adamw", "lr": 2e-3}),
]
VAL_SEEDS = (0, 1)  # each candidate on two different validation splits


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one candidate on 55k, score its last (EMA) weights on the 5k validation split."""
    import torch

    from digitrec.inference.logits import predict_logits
    from digitrec.training.config import TrainConfig
    from digitrec.training.data import load_training_data, prepare_dataset
    from digitrec.training.loop import train_model

    cfg = TrainConfig(
        model=spec["model"],
        model_kwargs=spec["kwargs"],
        recipe_overrides=spec["overrides"],
        seed=spec["seed"],
        val_size=5000,
        device=spec["device"],
        data_dir=spec.get("data_dir"),
        threads=1,
        max_steps=spec.get("max_steps"),  # smoke runs only
        train_limit=spec.get("train_limit"),
    )
    t0 = time.perf_counter()
    result, model = train_model(cfg)
    device = next(model.parameters()).device
    _, pre, _, _ = prepare_dataset(cfg)
    data = load_training_data(cfg, device, pre)
    out = {**spec, "train_s": round(time.perf_counter() - t0, 1)}
    for tta in (False, True):
        logits = predict_logits(model, data["val_x"], tta=tta)
        acc = float((logits.argmax(1) == data["val_y"]).float().mean())
        out["val_acc_tta" if tta else "val_acc"] = acc
    del result, torch
    return out


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """``run_one`` in its own process (parallel runs share the GPU)."""
    cmd = [sys.executable, __file__, "one", json.dumps(spec)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=False)
    if done.returncode != 0:
        return {**spec, "error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def search(args: argparse.Namespace) -> dict[str, Any]:
    """Every candidate on every validation seed, ``--jobs`` at a time; the best by mean val."""
    specs = [
        {"name": n, "model": m, "kwargs": kw, "overrides": ov, "seed": s, "device": args.device,
         "data_dir": args.data_dir}
        for s in VAL_SEEDS  # every candidate's first split first
        for n, m, kw, ov in CANDIDATES
    ]  # fmt: skip
    if args.only:
        specs = [s for s in specs if s["name"] in args.only.split(",")]
    runs = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        for r in pool.map(_child, specs):
            runs.append(r)
            with (RESULTS / "best_search_runs.jsonl").open("a") as log:  # survives a timeout
                log.write(json.dumps(r) + "\n")
            shown = {k: r.get(k) for k in ("name", "seed", "val_acc", "val_acc_tta", "train_s")}
            print(json.dumps(shown) if "error" not in r else f"{r['name']}: {r['error']}")
            sys.stdout.flush()
    return summarise(runs)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean validation accuracy per candidate; the chosen one (plain or TTA, whichever is best)."""
    table = {}
    for name, *_ in CANDIDATES:
        mine = [r for r in runs if r["name"] == name and "error" not in r]
        if mine:
            table[name] = {
                "val_acc": statistics.mean(r["val_acc"] for r in mine),
                "val_acc_tta": statistics.mean(r["val_acc_tta"] for r in mine),
                "train_s": statistics.mean(r["train_s"] for r in mine),
                "n": len(mine),
            }
    chosen = max(table, key=lambda n: max(table[n]["val_acc"], table[n]["val_acc_tta"]))
    tta = table[chosen]["val_acc_tta"] > table[chosen]["val_acc"]
    return {
        "protocol": "val_size 5000 carved from the 60k train images; test never used",
        "val_seeds": sorted({r["seed"] for r in runs}),
        "table": table,
        "chosen": chosen,
        "chosen_tta": tta,
        "runs": runs,
    }


def _train_member(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    out = RUNS / f"seed-{seed}"
    cmd = [sys.executable, "-m", "digitrec", "train", "--model", "best", "--val-size", "0",
           "--seed", str(seed), "--device", args.device, "--threads", "1", "--out", str(out),
           "--force", "--no-eval", "--no-report"]  # fmt: skip
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if args.max_steps:  # smoke runs only
        cmd += ["--max-steps", str(args.max_steps)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=False)
    (RUNS / f"seed-{seed}.log").write_text(done.stdout[-4000:] + done.stderr[-4000:])
    return {
        "seed": seed,
        "rc": done.returncode,
        "wall_s": round(time.perf_counter() - t0, 1),
        "run": str(out.relative_to(REPO)),
        "command": "digitrec " + " ".join(cmd[3:]),
    }


def finals(args: argparse.Namespace) -> dict[str, Any]:
    """Train ``--members`` seeds of `best` on all 60k; test each once, and their ensemble."""
    import torch

    from digitrec.data import load_split
    from digitrec.inference.checkpoint import load_checkpoint
    from digitrec.inference.logits import predict_logits
    from digitrec.models import to_input
    from digitrec.training.recipes import recipe_for

    RUNS.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.members))
    with ThreadPoolExecutor(args.jobs) as pool:
        members = list(pool.map(lambda s: _train_member(s, args), seeds))
    images, labels = load_split("mnist", "test", args.data_dir)
    y = torch.as_tensor(labels)
    probs: dict[bool, list[torch.Tensor]] = {False: [], True: []}
    for m in members:
        if m["rc"] != 0:
            continue
        ckpt = load_checkpoint(REPO / m["run"] / "last.safetensors", args.device)
        x = to_input(images, ckpt.preprocessing, args.device)
        for tta in (False, True):
            p = predict_logits(ckpt.model, x, tta=tta).float().softmax(1).cpu()
            probs[tta].append(p)
            m["test_acc_tta" if tta else "test_acc"] = float((p.argmax(1) == y).float().mean())
        lines = (REPO / m["run"] / "metrics.jsonl").read_text().splitlines()
        m["train_s"] = round(sum(json.loads(line)["epoch_time_s"] for line in lines), 1)
    ok = [m for m in members if m["rc"] == 0]
    out: dict[str, Any] = {"recipe": dataclasses.asdict(recipe_for("best")), "members": members}
    if args.device.startswith("cuda"):
        out["device"] = f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    out["parallel_members"] = args.jobs  # members trained at once share the device
    for tta in (False, True):
        key = "test_acc_tta" if tta else "test_acc"
        accs = [m[key] for m in ok]
        if not accs:
            continue
        ens = torch.stack(probs[tta]).mean(0)
        out["tta" if tta else "plain"] = {
            "mean": statistics.mean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "min": min(accs),
            "max": max(accs),
            "n": len(accs),
            "ensemble": float((ens.argmax(1) == y).float().mean()),
            "ensemble_first_5": float(
                (torch.stack(probs[tta][:5]).mean(0).argmax(1) == y).float().mean()
            ),
        }
    return out


def cputime(args: argparse.Namespace) -> dict[str, Any]:
    """Time a few `best` steps on this CPU; extrapolate to one member's full training."""
    import torch
    import torch.nn.functional as F

    from digitrec.models import create_model
    from digitrec.training.augment import augment_batch
    from digitrec.training.optim import build_optimizer
    from digitrec.training.recipes import recipe_for

    torch.set_num_threads(args.threads)
    recipe = recipe_for("best")
    model = create_model("best").to(memory_format=torch.channels_last)  # pyright: ignore
    opt = build_optimizer(recipe, model)
    x = torch.randn(recipe.batch_size, 1, 28, 28)
    y = torch.randint(0, 10, (recipe.batch_size,))
    times = []
    for _ in range(args.steps + 1):  # the first step warms up
        t0 = time.perf_counter()
        xb = augment_batch(x, recipe.augment, -0.42).contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(xb), y, label_smoothing=recipe.label_smoothing)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    step = statistics.median(times[1:])
    steps = recipe.epochs * -(-60_000 // recipe.batch_size)
    return {"threads": args.threads, "step_s": step, "steps": steps,
            "member_minutes": step * steps / 60, "load_avg": os.getloadavg()[0]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or " ").splitlines()[0])
    parser.add_argument("what", choices=("search", "finals", "cputime", "one"))
    parser.add_argument("spec", nargs="?", help="(one) a candidate as JSON")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--jobs", type=int, default=8, help="runs at once")
    parser.add_argument("--members", type=int, default=5, help="(finals) seeds 0..N-1")
    parser.add_argument("--max-steps", type=int, help="(finals) smoke: stop members after N steps")
    parser.add_argument("--from-log", type=Path, help="(search) summarise a search's jsonl log")
    parser.add_argument("--only", help="(search) comma-separated candidate names")
    parser.add_argument("--data-dir", help="MNIST folder (default: $DIGITREC_DATA or the cache)")
    parser.add_argument("--threads", type=int, default=2, help="(cputime) torch threads")
    parser.add_argument("--steps", type=int, default=5, help="(cputime) steps timed")
    parser.add_argument("--out", type=Path, help="JSON result (default: bench/results/...)")
    args = parser.parse_args(argv)
    if args.what == "one":
        print(json.dumps(run_one(json.loads(args.spec))))
        return 0
    if args.what == "search" and args.from_log:  # a search stopped by a time limit
        runs = [json.loads(line) for line in args.from_log.read_text().splitlines() if line]
        result = summarise([r for r in runs if "error" not in r])
        (args.out or RESULTS / "best_search.json").write_text(json.dumps(result, indent=1))
        print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
        return 0
    result = {"search": search, "finals": finals, "cputime": cputime}[args.what](args)
    name = {"search": "best_search", "finals": "best", "cputime": "best_cputime"}[args.what]
    out = args.out or RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "members")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
