"""Command handlers for your own images and Kaggle files: predict, read, submit, score."""

from __future__ import annotations

import argparse
import sys

from digitrec.errors import DigitrecError


def predict(args: argparse.Namespace) -> int:
    import json

    from digitrec.predict import ImageResult, Predictor, expand_sources, predict_files, top_k

    if args.top < 1:
        raise DigitrecError("--top must be at least 1")
    predictor = Predictor.from_checkpoint(args.checkpoint, tta=args.tta)
    if args.split:
        from digitrec.data import load_mnist

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
        from digitrec.plots import save_predictions

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

    from digitrec.predict import Predictor, read_number

    predictor = Predictor.from_checkpoint(args.checkpoint, tta=args.tta)
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
        from digitrec.plots import save_reading

        save_reading(reading, args.show)
    return 0


def submit(args: argparse.Namespace) -> int:
    from digitrec.kaggle import read_kaggle_csv, write_submission
    from digitrec.predict import Predictor, ensemble_proba

    predictors = [Predictor.from_checkpoint(p, tta=args.tta) for p in args.checkpoints]
    images, _ = read_kaggle_csv(args.test)
    preds = ensemble_proba(predictors, images).argmax(1)
    write_submission(args.out, preds)
    what = f"an ensemble of {len(predictors)}" if len(predictors) > 1 else "1 model"
    print(f"wrote {args.out}: {len(preds)} rows from {what}")
    return 0


def score(args: argparse.Namespace) -> int:
    from digitrec.kaggle import read_submission

    preds, truth = read_submission(args.submission), read_submission(args.labels)
    if len(preds) != len(truth):
        raise DigitrecError(
            f"{args.submission} has {len(preds)} rows but {args.labels} has {len(truth)}"
        )
    correct = int((preds == truth).sum())
    print(f"accuracy: {correct / len(truth):.5f} ({correct}/{len(truth)})")
    return 0
