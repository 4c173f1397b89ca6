"""``digitrec predict|read|submit|score``: your own images, numbers and Kaggle files."""

from __future__ import annotations

import argparse
import sys

from digitrec.cli import options
from digitrec.cli.common import (
    apply_threads,
    check_device,
    checkpoint_or_default,
    note_checkpoint,
    refuse_overwriting_input,
)
from digitrec.errors import DigitrecError
from digitrec.io import check_output_path

SPLITTER_CLASSES = 11  # --splitter CKPT: the digits 0-9 + "not one digit"
_MODEL_OPTIONS = [options.COMMON, options.CHECKPOINT, options.DEVICE, options.TTA, options.THREADS]
_DIGITS_ONLY = (
    "A model with a 'not one digit' class (the splitter) answers over the digits 0-9 only: "
    "that class is never printed or written."
)


_NO_REJECT = (
    "plain argmax: never answer 'not a digit' (default: a checkpoint with a calibrated reject "
    "threshold answers 'not a digit' for letters, doodles and noise)"
)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec predict|read|submit|score``."""
    p = sub.add_parser(
        "predict",
        help="classify your own images (files or directories)",
        description="Classify image files, a batch of 64 at a time; each batch's lines are "
        f"printed as it finishes. {_DIGITS_ONLY}",
        parents=[*_MODEL_OPTIONS, options.JSON, options.DATA_DIR],
    )
    p.add_argument("images", nargs="*", help="image files or directories (walked)")
    p.add_argument(
        "--top", type=options.positive_int, default=3, help="how many guesses to list (default: 3)"
    )
    p.add_argument("--csv", help="also write the predictions to this CSV file")
    p.add_argument("--show", help="write a figure: original, model input, probabilities")
    p.add_argument("--split", choices=["train", "test"], help="predict a dataset example instead")
    p.add_argument("--index", type=int, default=0, help="with --split (default: 0)")
    p.add_argument("--no-reject", action="store_true", help=_NO_REJECT)
    p.set_defaults(func=predict)

    p = sub.add_parser(
        "read",
        help="read a multi-digit number from a photo",
        description=f"Segment a photo of a number and read it left to right. {_DIGITS_ONLY}",
        parents=[*_MODEL_OPTIONS, options.JSON],
    )
    p.add_argument("image", help="photo or drawing of a number")
    p.add_argument("--show", help="write a figure with the boxes and predictions")
    p.add_argument(
        "--splitter",
        help="checkpoint that scores candidate cuts (default: the packaged splitter model; "
        "'self': the reading model's own confidence)",
    )
    p.add_argument("--no-reject", action="store_true", help=_NO_REJECT)
    p.add_argument(
        "--method",
        choices=["seq", "segment", "auto"],
        help="segment: cut into digits, then read each; seq: the packaged sequence reader "
        "(CRNN) reads the whole line; auto: both, combined (default: the best on the "
        "development set, see digitrec.inference.reading)",
    )
    p.set_defaults(func=read)

    p = sub.add_parser(
        "submit",
        help="write a Kaggle digit-recognizer submission",
        description="Write a Kaggle submission; several -c average their probabilities of the "
        f"10 digits. {_DIGITS_ONLY}",
        parents=[options.COMMON, options.CHECKPOINTS, options.DEVICE, options.TTA, options.THREADS],
    )
    p.add_argument("--test", required=True, help="Kaggle test.csv")
    p.add_argument(
        "--out",
        default="submission.csv",
        help="(default: submission.csv; never the --test file itself)",
    )
    p.set_defaults(func=submit)

    p = sub.add_parser(
        "score", help="accuracy of a submission against an answer key", parents=[options.COMMON]
    )
    p.add_argument("submission", help="ImageId,Label CSV")
    p.add_argument("--labels", required=True, help="answer key (e.g. test_labels.csv)")
    p.set_defaults(func=score)


def _predictor(args: argparse.Namespace):  # -> Predictor
    from digitrec.inference.predictor import Predictor

    check_device(args.device)
    apply_threads(args.threads)
    path = checkpoint_or_default(args.checkpoint)
    return Predictor.from_checkpoint(path, device=args.device, tta=args.tta)


def predict(args: argparse.Namespace) -> int:
    from digitrec.inference.files import ImageResult, expand_sources, top_k

    if args.split and args.images:
        raise DigitrecError("give image files or --split/--index, not both")
    outputs = {"--csv": args.csv, "--show": args.show}
    for out in outputs.values():
        if out:
            check_output_path(out)
    if args.split:
        from digitrec.data.specs import load_mnist

        predictor = _predictor(args)
        images, labels = load_mnist(args.split, args.data_dir)
        if not 0 <= args.index < len(images):
            raise DigitrecError(f"--index must be in 0..{len(images) - 1}, got {args.index}")
        img = images[args.index]
        use = not args.no_reject and predictor.reject_threshold is not None
        # --no-reject: the ten digits' probabilities renormalised to sum to 1.
        _, probs, rejected, score = predictor.predict_with_reject(img[None], not args.no_reject)
        top = top_k(probs[0], args.top)
        name = f"{args.split}[{args.index}] (label {labels[args.index]})"
        result = ImageResult(name, top[0][0], top[0][1], top, probs[0], img, img)
        if use:
            result.rejected, result.reject_score = bool(rejected[0]), float(score[0])
        if not result.rejected:
            from digitrec.inference.confidence import low_confidence

            result.low_confidence_reason = low_confidence(top[0][1])
            result.low_confidence = result.low_confidence_reason is not None
        results = iter([result])
    elif not args.images:
        raise DigitrecError("give image files or directories, or --split/--index")
    else:
        sources = expand_sources(args.images)
        if not sources:
            raise DigitrecError("no image files found in the given directories")
        _refuse_outputs_over_inputs(outputs, sources)
        results = _stream(_predictor(args), sources, args)
    shown, rows, failed = _report(results, args)
    if args.csv:
        _write_predictions_csv(args.csv, rows, args.top)
    if args.show:
        from digitrec.report.plots import save_predictions

        save_predictions(shown, args.show)
    return 1 if failed else 0


def _refuse_outputs_over_inputs(outputs: dict[str, str | None], inputs: list[str]) -> None:
    """One line, before any model loads, when an output file would replace an input image."""
    for option, out in outputs.items():
        if out:
            refuse_overwriting_input(out, *inputs, option=option)


def _stream(predictor, sources: list[str], args: argparse.Namespace):  # -> Iterator[ImageResult]
    from digitrec.inference.files import iter_predictions
    from digitrec.report.plots import SHOW_LIMIT

    keep = SHOW_LIMIT if args.show else 0
    return iter_predictions(
        predictor, sources, args.top, keep_originals=keep, reject=not args.no_reject
    )


def _report(results, args: argparse.Namespace) -> tuple[list, list, int]:
    """Print each result as it arrives; keep only what ``--show`` and ``--csv`` need.

    Returns the results to draw (at most the figure's limit), the CSV rows and the error count.
    """
    import json

    from digitrec.report.plots import SHOW_LIMIT

    shown: list = []
    rows: list[list] = []
    failed = 0
    first = True
    if args.json:
        print("[", flush=True)
    for r in results:
        if r.error is not None:
            failed += 1
            print(f"digitrec: error: {r.error}", file=sys.stderr, flush=True)
        if args.json:
            item = json.dumps(r.as_dict(), indent=2).replace("\n", "\n  ")
            print(("  " if first else ",\n  ") + item, end="", flush=True)
        elif r.error is None and r.rejected:
            print(f"{r.source}\tnot a digit\t{r.reject_score:.3f}", flush=True)
        elif r.error is None:
            guesses = "  ".join(f"{d}:{p:.3f}" for d, p in r.top or [])
            doubt = f"\tlow confidence: {r.low_confidence_reason}" if r.low_confidence else ""
            print(f"{r.source}\t{r.digit}\t{r.prob:.3f}\t{guesses}{doubt}", flush=True)
        first = False
        if args.csv:
            rows.append(_csv_row(r, args.top))
        if args.show and r.error is None and len(shown) < SHOW_LIMIT:
            shown.append(r)
    if args.json:
        print("\n]", flush=True)
    return shown, rows, failed


def _csv_row(r, k: int) -> list:
    """One CSV row; ``rejected`` and ``low_confidence`` are true/false, empty for a file that
    failed. A rejected image keeps its best-guess digit (as in ``--json``)."""
    tops = [f"{d}:{p:.4f}" for d, p in r.top or []]
    tops += [""] * (k - len(tops))
    prob = "" if r.prob is None else f"{r.prob:.4f}"
    digit = "" if r.digit is None else r.digit
    flags = ["", "", ""]
    if r.error is None:
        reason = r.low_confidence_reason or ""
        flags = [str(r.rejected).lower(), str(r.low_confidence).lower(), reason]
    return [r.source, digit, prob, *tops, *flags, r.error or ""]


def _write_predictions_csv(path: str, rows: list[list], k: int) -> None:
    import csv
    import io

    from digitrec.io import atomic_write

    buf = io.StringIO()
    writer = csv.writer(buf)
    tops = [f"top{i + 1}" for i in range(k)]
    flags = ["rejected", "low_confidence", "low_confidence_reason"]
    writer.writerow(["source", "digit", "prob", *tops, *flags, "error"])
    writer.writerows(rows)
    atomic_write(path, buf.getvalue())


def read(args: argparse.Namespace) -> int:
    import json

    from digitrec.inference.predictor import Predictor
    from digitrec.inference.reading import read_number

    if args.show:
        check_output_path(args.show)
        _refuse_outputs_over_inputs({"--show": args.show}, [args.image])
    predictor = _predictor(args)
    splitter = None  # the packaged splitter
    if args.splitter == "self":
        splitter = predictor
    elif args.splitter:
        note_checkpoint(args.splitter)
        splitter = Predictor.from_checkpoint(args.splitter, args.device, args.tta)
        classes = splitter.preprocessing.num_classes
        if classes != SPLITTER_CLASSES:
            raise DigitrecError(
                f"--splitter {args.splitter}: a {classes}-class model; the splitter must be a "
                f"{SPLITTER_CLASSES}-class model (10 digits + 'not one digit', e.g. "
                "train --model splitter) or 'self'"
            )
    kwargs = {"method": args.method} if args.method else {}
    reading = read_number(predictor, args.image, splitter, reject=not args.no_reject, **kwargs)
    if args.json:
        keys = ("number", "low_confidence", "low_confidence_reason", "digits", "method")
        print(json.dumps({k: reading[k] for k in keys}, indent=2))
    else:
        confs = " ".join(
            f"{'?' if d['digit'] is None else d['digit']}:{d['prob']:.3f}"
            for d in reading["digits"]
        )
        doubt = f"\tlow confidence: {reading['low_confidence_reason']}"
        print(f"{reading['number']}\t{confs}{doubt if reading['low_confidence'] else ''}")
    if args.show:
        from digitrec.report.plots import save_reading

        save_reading(reading, args.show)
    return 0


def submit(args: argparse.Namespace) -> int:
    import numpy as np

    from digitrec.data.kaggle import read_kaggle_csv, write_submission
    from digitrec.inference.files import digit_proba
    from digitrec.inference.predictor import Predictor

    check_output_path(args.out)
    refuse_overwriting_input(args.out, args.test)
    check_device(args.device)
    apply_threads(args.threads)
    paths = [checkpoint_or_default(p) for p in args.checkpoints] or [checkpoint_or_default(None)]
    predictors = [Predictor.from_checkpoint(p, args.device, args.tta) for p in paths]
    images, _ = read_kaggle_csv(args.test)
    # Digits 0-9 only: an 11-class model's "not one digit" class never becomes a label, and
    # 10- and 11-class models average over the same 10 columns.
    preds = np.mean([digit_proba(p, images) for p in predictors], axis=0).argmax(1)
    write_submission(args.out, preds)
    # An ensemble file counts its members: three -c and one 3-member ens.json say the same.
    networks = sum(
        len(p.meta["members"]) if p.meta.get("format") == "digitrec-ensemble" else 1
        for p in predictors
    )
    what = f"an ensemble of {networks}" if networks > 1 else "1 model"
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
