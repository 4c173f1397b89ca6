"""Cold-process wall time of the default ``digitrec train``, beside the peer, in one run.

Ours: ``digitrec train --model fast --out DIR --force --seed S`` (the Makefile's ``make run``
with a seed), a fresh Python process each time, timed from spawn to exit: imports, data loading,
training, the test evaluation, checkpoints and (unless ``--no-report``) report.html. Its test
accuracy is read from the run's ``test_metrics.json``.

The peer: a fresh process that imports torch, loads MNIST and runs the pytorch/examples recipe
(:func:`digitrec.benchmarks.speed.run_peer`) until its first epoch at >= 99% test accuracy, or
the epoch cap (then its time is a lower bound), timed from spawn to exit.

    python bench/cold_train.py [--seeds 5] [--peer-runs 1] [--peer-epochs 3] [--extra ARG ...]
        [--json bench/results/cold_train.json]

Timings are noisy on a shared machine: the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER = """
import json, sys, torch
from digitrec.benchmarks.speed import run_peer
torch.set_num_threads({threads})
r = run_peer(0, {epochs}, torch.device("cpu"), None, lambda m: print(m, file=sys.stderr))
print(json.dumps(r))
"""


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", default="fast")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--peer-runs", type=int, default=1, help="0: no peer")
    ap.add_argument("--peer-epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="the peer's torch threads")
    ap.add_argument("--extra", action="append", default=[], help="more `digitrec train` args")
    ap.add_argument("--json", default="bench/results/cold_train.json")
    ap.add_argument(
        "--also-no-report", action="store_true", help="also time each seed with --no-report"
    )
    args = ap.parse_args()
    env = {**os.environ}
    env.setdefault("DIGITREC_DATA", "/work/shared/data/mnist")
    digitrec = str(Path(sys.executable).with_name("digitrec"))
    load_before = os.getloadavg()
    variants = {"default": []}
    if args.also_no_report:
        variants["no-report"] = ["--no-report"]
    ours: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for name, flags in variants.items():  # interleaved: drift hits both alike
                out = Path(tmp) / f"{args.model}-{name}-{seed}"
                cmd = [digitrec, "train", "--model", args.model, "--out", str(out), "--force"]
                cmd += ["--seed", str(seed), *args.extra, *flags]
                seconds, done = _timed(cmd, env)
                lines = done.stdout.splitlines()
                trained = next((ln for ln in lines if ln.startswith("trained ")), "")
                metrics = out / "test_metrics.json"
                acc = json.loads(metrics.read_text())["accuracy"] if metrics.exists() else None
                ours[name].append(
                    {
                        "seed": seed,
                        "process_s": seconds,
                        "test_acc": acc,
                        "trained_line": trained,
                        "report": (out / "report.html").exists(),
                        "load": os.getloadavg()[0],
                    }
                )
                print(f"{name} seed {seed}: {seconds:.2f} s process, test acc {acc}, {trained}")
    peer = []
    for _ in range(args.peer_runs):
        code = PEER.format(threads=args.threads, epochs=args.peer_epochs)
        seconds, done = _timed([sys.executable, "-c", code], env)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        peer.append(
            {
                "process_s": seconds,
                "reached_99": r["reached_99"],
                "time_to_99_s": r["time_to_99_s"],
                "epochs": r["epochs"],
            }
        )
        bound = "" if r["reached_99"] else " (LOWER BOUND: 99% not reached)"
        print(f"peer: {seconds:.1f} s process{bound}")
    result = {
        "command": f"digitrec train --model {args.model} --out DIR --force --seed S "
        + " ".join(args.extra),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cores": os.cpu_count(),
        "variants": {},
        "peer": peer,
    }
    p = statistics.median(r["process_s"] for r in peer) if peer else None
    if peer:
        result["peer_process_s_median"] = p
        result["peer_lower_bound"] = not all(r["reached_99"] for r in peer)
    mark = ">= " if peer and result["peer_lower_bound"] else ""
    for name, runs in ours.items():
        accs = [r["test_acc"] for r in runs if r["test_acc"] is not None]
        v = {
            "flags": variants[name],
            "runs": runs,
            "process_s": _stats([r["process_s"] for r in runs]),
            "test_acc": _stats(accs) if accs else None,
        }
        if p is not None:
            v["ratio_peer_over_ours"] = p / v["process_s"]["median"]
        result["variants"][name] = v
        t = v["process_s"]
        acc = f", test acc {v['test_acc']['mean'] * 100:.2f}% mean" if accs else ""
        ratio = f"; peer/ours {mark}{v['ratio_peer_over_ours']:.1f}x" if p is not None else ""
        print(
            f"{name}: process {t['median']:.2f} s median (min {t['min']:.2f}, max "
            f"{t['max']:.2f}) over {len(runs)} seeds{acc}{ratio}"
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
