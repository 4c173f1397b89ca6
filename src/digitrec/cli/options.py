"""Option groups shared by several commands (argparse ``parents=``): one spelling, one default.

``--checkpoint`` names a saved model everywhere (a ``.safetensors`` file, a run directory, an
``.onnx`` export or an ensemble ``.json``); ``--model`` is only ever a registered architecture
name (``train``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse type: a whole number in ``low..high`` (no upper bound when ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"in {low}..{high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


positive_int = int_in(1)
"""argparse type: an integer >= 1."""


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (seconds, rates)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def command_group(
    sub: argparse._SubParsersAction, name: str, help: str, metavar: str
) -> argparse._SubParsersAction:
    """``digitrec NAME SUBCOMMAND``: the NAME parser's subcommands (dest ``NAME_command``)."""
    group = sub.add_parser(name, help=help, parents=[COMMON])
    return group.add_subparsers(dest=f"{name}_command", metavar=metavar, required=True)


def _group(*adders: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    for add in adders:
        add(parser)  # type: ignore[operator]
    return parser


def _debug(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's --debug must not reset one given before the subcommand.
    p.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with the dataset's IDX files (default: $DIGITREC_DATA for mnist, "
        "$DIGITREC_DATA_FASHION_MNIST ..., then a system copy, else ~/.cache/digitrec/NAME)",
    )


def _dataset(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        default=None,
        metavar="NAME",
        help="mnist | fashion-mnist | idx:FOLDER | kaggle-csv:FILE "
        "(default: mnist; for a saved model, the dataset it was trained on)",
    )


def _checkpoint_flag(p: argparse.ArgumentParser, help: str, **kwargs: object) -> None:
    p.add_argument("-c", "--checkpoint", metavar="CKPT", help=help, **kwargs)  # type: ignore[arg-type]


def _checkpoint(p: argparse.ArgumentParser) -> None:
    _checkpoint_flag(
        p,
        "checkpoint file, run directory (its best, else last), .onnx export or ensemble .json",
    )


def _checkpoints(p: argparse.ArgumentParser) -> None:
    _checkpoint_flag(
        p,
        "checkpoint, run directory, .onnx or ensemble .json; repeat to average them",
        dest="checkpoints",
        action="append",
        default=[],
    )


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def _tta(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tta", action="store_true", help="test-time augmentation: 5 shifted views (5x compute)"
    )


def _threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: the cores not kept busy by other work; "
        "bench speed: torch's choice)",
    )


def _recipe_length(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=positive_int, help="override the recipe's epochs")
    p.add_argument("--steps", type=positive_int, help="override the recipe's total optimizer steps")
    p.add_argument("--batch-size", type=positive_int, help="override the recipe's batch size")


COMMON = _group(_debug)
DATA_DIR = _group(_data_dir)
DATASET = _group(_dataset)
CHECKPOINT = _group(_checkpoint)
CHECKPOINTS = _group(_checkpoints)
DEVICE = _group(_device)
JSON = _group(_json)
TTA = _group(_tta)
THREADS = _group(_threads)
RECIPE_LENGTH = _group(_recipe_length)
# What every command that trains takes: train and tune.
TRAINING = [COMMON, DATASET, DATA_DIR, DEVICE, THREADS, RECIPE_LENGTH]
