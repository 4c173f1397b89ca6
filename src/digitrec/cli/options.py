"""Option groups shared by several commands (argparse ``parents=``): one spelling, one default.

``--checkpoint`` names a saved model everywhere (a ``.safetensors`` file, a run directory or an
``.onnx`` export); ``--model`` is only ever a registered architecture name (``train``).
"""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
        help="folder with the MNIST .gz files "
        "(default: $DIGITREC_DATA, else ~/.cache/digitrec/mnist)",
    )


def _checkpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--checkpoint",
        metavar="CKPT",
        help="checkpoint file, run directory (its best, else last) or .onnx export",
    )


def _checkpoints(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--checkpoint",
        metavar="CKPT",
        dest="checkpoints",
        action="append",
        default=[],
        help="checkpoint, run directory or .onnx; repeat to average an ensemble",
    )


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", default="auto", help="auto | cpu | cuda | mps (default: auto)"
    )


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
        help="torch CPU threads (default: torch's choice)",
    )


COMMON = _group(_debug)
DATA_DIR = _group(_data_dir)
CHECKPOINT = _group(_checkpoint)
CHECKPOINTS = _group(_checkpoints)
DEVICE = _group(_device)
JSON = _group(_json)
TTA = _group(_tta)
THREADS = _group(_threads)
