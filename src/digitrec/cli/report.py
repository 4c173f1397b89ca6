"""``digitrec report|explain|compare``: what a run learned, shown as HTML pages and plots."""

from __future__ import annotations

import argparse

from digitrec.cli import options
from digitrec.cli.common import apply_threads, say


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec report|explain|compare``."""
    p = sub.add_parser(
        "report",
        help="write a self-contained report.html for a training run",
        parents=[options.COMMON, options.DATA_DIR, options.DEVICE, options.THREADS],
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `train`")
    p.add_argument(
        "--out", metavar="DIR", help="folder (or .html path) for report.html (default: RUN_DIR)"
    )
    p.set_defaults(func=report)

    p = sub.add_parser(
        "explain",
        help="a page for learners: convolution, padding, pooling and more on one real digit",
        parents=[options.COMMON, options.CHECKPOINT, options.DATA_DIR, options.THREADS],
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--index", type=int, help="MNIST test digit number (default: 0)")
    which.add_argument("--image", metavar="FILE", help="your own image of one digit")
    p.add_argument("--out", default="explain.html", help="(default: explain.html)")
    p.set_defaults(func=explain)

    p = sub.add_parser(
        "compare",
        help="compare runs: final metrics, wall time, parameters and validation curves",
        parents=[options.COMMON, options.JSON],
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories")
    p.add_argument(
        "--out",
        default="compare.png",
        help="overlaid validation curves; .png, .pdf or .svg (default: compare.png)",
    )
    p.set_defaults(func=compare)


def report(args: argparse.Namespace) -> int:
    from digitrec.report.run_report import write_run_report

    apply_threads(args.threads)
    path = write_run_report(args.run_dir, args.out, args.data_dir, args.device)
    print(f"wrote {path}")
    return 0


def explain(args: argparse.Namespace) -> int:
    from digitrec.report.explain import write_explain

    apply_threads(args.threads)
    path, no_model = write_explain(args.out, args.checkpoint, args.index, args.image, args.data_dir)
    if no_model:
        say(f"digitrec: note: {no_model}; the page shows the model-free sections only")
    print(f"wrote {path}")
    return 0


def compare(args: argparse.Namespace) -> int:
    import json

    from digitrec.report.compare import compare_runs, format_table, save_validation_curves

    runs, rows = compare_runs(args.run_dirs)
    save_validation_curves(runs, args.out)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows))
    say(f"wrote {args.out}")
    return 0
