"""``digitrec bench speed|infer``: benchmarks against the peer, in the same run."""

from __future__ import annotations

import argparse
from pathlib import Path

from digitrec.cli import options
from digitrec.cli.common import say
from digitrec.errors import DigitrecError


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec bench speed|infer``."""
    bsub = options.command_group(
        sub, "bench", "speed and inference benchmarks against the peer", metavar="WHAT"
    )
    p = bsub.add_parser(
        "speed",
        help="time-to-accuracy of our recipes vs pytorch/examples mnist",
        parents=[options.COMMON, options.DATA_DIR, options.THREADS],
    )
    p.add_argument(
        "--seeds",
        type=options.positive_int,
        default=5,
        help="seeds per recipe of ours (default: 5)",
    )
    p.add_argument(
        "--models", default="fast", help="comma-separated NAME or NAME:SEEDS (default: fast)"
    )
    p.add_argument("--peer-seeds", type=options.positive_int, default=1, help="(default: 1)")
    p.add_argument(
        "--peer-epochs",
        type=options.positive_int,
        default=4,
        help="cap on the peer's epochs; beyond it time-to-99%% is a lower bound (default: 4)",
    )
    p.add_argument("--device", default="cpu", help="cpu | cuda | mps (default: cpu)")
    p.add_argument("--json", metavar="FILE", help="also write the full results to this JSON file")
    p.add_argument(
        "--tta",
        default="",
        help="comma-separated recipes evaluated with "
        "test-time augmentation, its time counted in eval (default: none)",
    )
    p.add_argument("--smoke", action="store_true", help="a few steps only: checks the plumbing")
    p.set_defaults(func=bench_speed)
    p = bsub.add_parser(
        "infer",
        help="batch throughput and single-image latency",
        parents=[options.COMMON, options.DATA_DIR, options.THREADS],
    )
    p.add_argument(
        "checkpoints", nargs="+", help="NAME=PATH or PATH (checkpoint, run dir or .onnx)"
    )
    p.add_argument("--no-onnx", action="store_true", help="PyTorch eager only")
    p.add_argument("--json", metavar="FILE", help="also write the results to this JSON file")
    p.set_defaults(func=bench_infer)


def bench_speed(args: argparse.Namespace) -> int:
    import json

    from digitrec.benchmarks.speed import bench_speed as run
    from digitrec.benchmarks.speed import format_speed
    from digitrec.cli.common import apply_threads, check_device
    from digitrec.io import atomic_write, check_output_path
    from digitrec.models import get_spec

    apply_threads(args.threads, auto=False)  # keeps the peer comparison as it was measured
    models: dict[str, int] = {}
    for item in filter(None, (m.strip() for m in args.models.split(","))):
        name, _, seeds = item.partition(":")
        if seeds and not seeds.isdigit():
            raise DigitrecError(f"--models: bad seed count in {item!r}; use NAME or NAME:SEEDS")
        models[name] = int(seeds) if seeds else args.seeds
    if not models or min([*models.values(), args.peer_seeds]) < 1:
        raise DigitrecError("every recipe and the peer need at least 1 seed")
    for name in models:
        get_spec(name)  # fail on an unknown name before minutes of training
    check_device(args.device)
    if args.json:
        check_output_path(args.json)
    tta = tuple(m.strip() for m in args.tta.split(",") if m.strip())
    result = run(
        models,
        args.device,
        args.peer_seeds,
        args.peer_epochs,
        args.data_dir,
        smoke=args.smoke,
        tta=tta,
        log=say,
    )
    print(format_speed(result))
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=2) + "\n")
    return 0


def bench_infer(args: argparse.Namespace) -> int:
    import json

    from digitrec.benchmarks.infer import bench_infer as run
    from digitrec.cli.common import apply_threads, note_checkpoint
    from digitrec.io import atomic_write, check_output_path

    if args.json:
        check_output_path(args.json)
    apply_threads(args.threads)
    from digitrec.inference.checkpoint import resolve_checkpoint_path

    named = {}
    for item in args.checkpoints:
        name, _, path = item.rpartition("=")
        resolve_checkpoint_path(path)  # every path checked before the first model is timed
        note_checkpoint(path)
        named[name or Path(path).name] = path
    result = run(named, args.data_dir, onnx=not args.no_onnx, log=say)
    for name, r in result["models"].items():
        for backend in ("eager", "onnx"):
            if f"{backend}_images_per_s" in r:
                print(
                    f"{name} ({backend}): {r[f'{backend}_images_per_s']:,.0f} img/s batched; "
                    f"single image p50 {r[f'{backend}_latency_p50_ms']:.3f} ms, "
                    f"p99 {r[f'{backend}_latency_p99_ms']:.3f} ms"
                )
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=2) + "\n")
    return 0
