"""``digitrec ensemble``: several saved models as one ensemble file (``-c ens.json`` anywhere)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from digitrec.cli import options
from digitrec.errors import DigitrecError


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec ensemble``."""
    p = sub.add_parser(
        "ensemble",
        help="combine saved models into one ensemble file (the mean of their probabilities)",
        description="Write an ensemble file that every command taking -c/--checkpoint accepts "
        "(evaluate, predict, read, submit, serve). It records each member's path (relative to "
        "the file) and sha256: a member that later changes is refused when the ensemble loads.",
        parents=[
            options.COMMON,
            options.DATASET,
            options.DATA_DIR,
            options.DEVICE,
            options.THREADS,
        ],
    )
    p.add_argument(
        "members",
        nargs="+",
        metavar="CKPT_OR_RUN",
        help="checkpoints, run directories (their best, else last) or .onnx exports",
    )
    p.add_argument("--out", required=True, help="the ensemble file to write (.json)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="then print the ensemble's test accuracy (and record it in the file)",
    )
    p.set_defaults(func=ensemble)


def _member_accuracy(file: Path) -> str:
    """The test accuracy `digitrec train` left beside a member, if any."""
    try:
        accuracy = json.loads((file.parent / "test_metrics.json").read_text())["accuracy"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return f"  test {accuracy:.4f}" if isinstance(accuracy, int | float) else ""


def ensemble(args: argparse.Namespace) -> int:
    from digitrec.cli.common import apply_threads, check_device, note_checkpoint
    from digitrec.inference.ensemble import SUFFIX, build_ensemble, write_ensemble
    from digitrec.io import check_output_path

    out = Path(args.out)
    if out.suffix.lower() != SUFFIX:
        raise DigitrecError(f"--out {out}: an ensemble file's name must end in {SUFFIX}")
    check_output_path(out)
    if out.exists() and not args.force:
        raise DigitrecError(f"{out} exists; pass --force to replace it")
    check_device(args.device)
    apply_threads(args.threads)
    for member in args.members:
        note_checkpoint(member)
    doc = build_ensemble(args.members, out, args.device)
    n = len(doc["members"])
    print(f"wrote {out}: {n} member{'s' if n > 1 else ''}, mean of probabilities")
    folder = out.absolute().parent
    for i, m in enumerate(doc["members"], 1):
        acc = _member_accuracy(folder / m["path"])
        print(f"  {i}. {m['path']}  {m['arch']}  sha256 {m['sha256'][:12]}{acc}")
    if args.evaluate:
        from digitrec.inference.evaluate import evaluate_checkpoint

        report = evaluate_checkpoint(
            out, "test", args.data_dir, args.device, dataset=args.dataset
        ).report
        print(
            f"ensemble test accuracy on {report['dataset']}: {report['accuracy']:.4f}  "
            f"({report['errors']} errors of {report['n']})"
        )
        keys = ("accuracy", "loss", "errors", "n", "dataset", "split")
        write_ensemble(out, {**doc, "test_metrics": {k: report[k] for k in keys}})
    return 0
