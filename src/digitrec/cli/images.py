"""``digitrec predict|read|submit|score``: your own images, numbers and Kaggle files."""

from __future__ import annotations

import argparse
import sys

from digitrec.cli import options
from digitrec.cli.common import apply_threads, checkpoint_or_default
from digitrec.errors import DigitrecError

_MODEL_OPTIONS = [options.COMMON, options.CHECKPOINT, options.DEVICE, options.TTA, options.THREADS]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec predict|read|submit|score``."""
    p = sub.add_parser(
        "predict",
        help="classify your own images (files or directories)",
        parents=[*_MODEL_OPTIONS, options.JSON, options.DATA_DIR],
    )
    p.add_argument("images", nargs="*", help="image files or directories (walked)")
    p.add_argument("--top", type=int, default=3, help="how many guesses to list (default: 3)")
    p.add_argument("--csv", help="also write the predictions to this CSV file")
    p.add_argument("--show", help="write a figure: original, model input, probabilities")
    p.add_argument("--split", choices=["train", "test"], help="predict a dataset example instead")
    p.add_argument("--index", type=int, default=0, help="with --split (default: 0)")
    p.set_defaults(func=predict)

    p = sub.add_parser(
        "read", help="read a multi-digit number from a photo", parents=[*_MODEL_OPTIONS, options.JSON]
    )
    p.add_argument("image", help="photo or drawing of a number")
    p.add_argument("--show", help="write a figure with the boxes and predictions")
    p.add_argument(
        "--splitter",
        help="checkpoint that scores candidate cuts (default: the packaged splitter model; "
        "'self': the reading model's own confidence)",
    )
    p.set_defaults(func=read)

    p = sub.add_parser(
        "submit",
        help="write a Kaggle digit-recognizer submission",
        parents=[options.COMMON, options.CHECKPOINTS, options.DEVICE, options.TTA, options.THREADS],
    )
    p.add_argument("--test", required=True, help="Kaggle test.csv")
    p.add_argument("--out", default="submission.csv", help="(default: submission.csv)")
    p.set_defaults(func=submit)

    p = sub.add_parser(
        "score", help="accuracy of a submission against an answer key", parents=[options.COMMON]
    )
    p.add_argument("submission", help="ImageId,Label CSV")
    p.add_argument("--labels", required=True, help="answer key (e.g. test_labels.csv)")
    p.set_defaults(func=score)


def _predictor(args: argparse.Namespace):  # -> Predictor
    from digitrec.inference.predictor import Predictor

    apply_threads(args.threads)
    path = checkpoint_or_default(args.checkpoint)
    return Predictor.from_checkpoint(path, device=args.device, tta=args.tta)


def predict(args: argparse.Namespace) -> int:
    import json

    from digitrec.inference.files import ImageResult, expand_sources, predict_files, top_k

    if args.top < 1:
        raise DigitrecError("--top must be at least 1")
    predictor = _predictor(args)
    if args.split:
        from digitrec.data.specs import load_mnist

        images, labels = load_mnist(args.split, args.data_dir)
        if not 0 <= args.index < len(images):
            raise DigitrecError(f"--index must be in 0..{len(images) - 1}, got {args.index}")
        img = images[args.index]
        probs = predictor.predict_proba(img[None])[0]
        top = top_k(probs, args.top)
        name = f"{args.split}[{args.index}] (label {labels[args.index]})"
        results = [ImageResult(name, top[0][0], top[0][1], top, probs, img, img)]
    elif not args.images:
        raise DigitrecError("give image files or directories, or --split/--index")
    else:
        sources = expand_sources(args.images)
        if not sources:
            raise DigitrecError("no image files found in the given directories")
        results = predict_files(predictor, sources, args.top)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            if r.error is None:
                guesses = "  ".join(f"{d}:{p:.3f}" for d, p in r.top)
                print(f"{r.source}\t{r.digit}\t{r.prob:.3f}\t{guesses}")
    for r in results:
        if r.error is not None:
            print(f"digitrec: error: {r.error}", file=sys.stderr)
    if args.csv:
        _write_predictions_csv(args.csv, results, args.top)
    if args.show:
        from digitrec.report.plots import save_predictions

        save_predictions(results, args.show)
    return 1 if any(r.error for r in results) else 0


def _write_predictions_csv(path: str, results: list, k: int) -> None:
    import csv
    import io

    from digitrec.io import atomic_write

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["source", "digit", "prob", *[f"top{i + 1}" for i in range(k)], "error"])
    for r in results:
        tops = [f"{d}:{p:.4f}" for d, p in r.top or []]
        tops += [""] * (k - len(tops))
        prob = "" if r.prob is None else f"{r.prob:.4f}"
        digit = "" if r.digit is None else r.digit
        writer.writerow([r.source, digit, prob, *tops, r.error or ""])
    atomic_write(path, buf.getvalue())


def read(args: argparse.Namespace) -> int:
    import json

    from digitrec.inference.predictor import Predictor
    from digitrec.inference.reading import read_number

    predictor = _predictor(args)
    splitter = None  # the packaged splitter
    if args.splitter == "self":
        splitter = predictor
    elif args.splitter:
        splitter = Predictor.from_checkpoint(args.splitter, tta=args.tta)
    reading = read_number(predictor, args.image, splitter)
    if args.json:
        print(json.dumps({"number": reading["number"], "digits": reading["digits"]}, indent=2))
    else:
        confs = " ".join(f"{d['digit']}:{d['prob']:.3f}" for d in reading["digits"])
        print(f"{reading['number']}\t{confs}")
    if args.show:
        from digitrec.report.plots import save_reading

        save_reading(reading, args.show)
    return 0


def submit(args: argparse.Namespace) -> int:
    from digitrec.data.kaggle import read_kaggle_csv, write_submission
    from digitrec.inference.predictor import Predictor, ensemble_proba

    apply_threads(args.threads)
    paths = args.checkpoints or [checkpoint_or_default(None)]
    predictors = [Predictor.from_checkpoint(p, args.device, args.tta) for p in paths]
    images, _ = read_kaggle_csv(args.test)
    preds = ensemble_proba(predictors, images).argmax(1)
    write_submission(args.out, preds)
    what = f"an ensemble of {len(predictors)}" if len(predictors) > 1 else "1 model"
    print(f"wrote {args.out}: {len(preds)} rows from {what}")
    return 0


def score(args: argparse.Namespace) -> int:
    from digitrec.data.kaggle import read_submission

    preds, truth = read_submission(args.submission), read_submission(args.labels)
    if len(preds) != len(truth):
        raise DigitrecError(
            f"{args.submission} has {len(preds)} rows but {args.labels} has {len(truth)}"
        )
    correct = int((preds == truth).sum())
    print(f"accuracy: {correct / len(truth):.5f} ({correct}/{len(truth)})")
    return 0
