"""How well do models read "user photos" of digits and multi-digit numbers?

Builds the photoized MNIST test set (dark ink on paper, off-centre, 3-7x, noise, rotation,
JPEG) with ``digitrec.synth``, runs it through the same ``predict_files`` path as
``digitrec predict``, and compares with the model's accuracy on the original digits. Then
synthesises multi-digit numbers and reads them with ``read_number`` (``digitrec read``).

    python bench/photos.py [--checkpoint RUN_OR_FILE] [--n 10000] [--numbers 200] [--tta] [--json F]

Without ``--checkpoint`` it trains the ``accurate`` recipe on all 60k training images first.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from digitrec.data.specs import load_mnist
from digitrec.data.synth import make_numbers, photoize
from digitrec.inference.files import predict_files
from digitrec.inference.predictor import Predictor
from digitrec.inference.reading import read_number
from digitrec.io import atomic_write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="checkpoint or run dir (default: train accurate)")
    parser.add_argument("--n", type=int, default=10_000, help="photoized digits (default: 10000)")
    parser.add_argument("--numbers", type=int, default=200, help="numbers to read (default: 200)")
    parser.add_argument("--seed", type=int, default=0, help="synthesis seed (default: 0)")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation (5 views)")
    args = parser.parse_args()

    path = args.checkpoint
    if path is None:
        from digitrec.training import TrainConfig, train

        path = "runs/accurate-all60k"
        train(TrainConfig(model="accurate", val_size=0, out=path), force=True)
    predictor = Predictor.from_checkpoint(path, tta=args.tta)
    images, labels = load_mnist("test")
    images, labels = images[: args.n], labels[: args.n]

    clean = float((predictor.predict(images) == labels).mean())
    t0 = time.perf_counter()
    photos = photoize(images, seed=args.seed)
    t1 = time.perf_counter()
    results = predict_files(predictor, photos)
    t2 = time.perf_counter()
    failed = sum(r.error is not None for r in results)
    photo_acc = float(np.mean([r.digit == y for r, y in zip(results, labels, strict=True)]))
    print(f"checkpoint: {path} ({predictor.meta['arch']})")
    print(f"original digits:  {clean:.4f} on {len(labels)}")
    print(
        f"photoized digits: {photo_acc:.4f} on {len(labels)} ({failed} unreadable); "
        f"synthesis {t1 - t0:.0f}s, decode+preprocess+predict {t2 - t1:.0f}s"
    )

    numbers = make_numbers(*load_mnist("test"), n=args.numbers, seed=args.seed)
    t3 = time.perf_counter()
    reads = [read_number(predictor, img)["number"] for img, _ in numbers]
    right = sum(r == text for r, (_, text) in zip(reads, numbers, strict=True))
    per_number_ms = (time.perf_counter() - t3) / len(numbers) * 1e3
    print(
        f"whole numbers read exactly: {right / len(numbers):.4f} ({right}/{len(numbers)}), "
        f"{per_number_ms:.0f} ms per number"
    )
    if args.json:
        atomic_write(
            args.json,
            json.dumps(
                {
                    "checkpoint": str(path),
                    "arch": predictor.meta["arch"],
                    "tta": args.tta,
                    "n": len(labels),
                    "original_acc": clean,
                    "photo_acc": photo_acc,
                    "photo_unreadable": failed,
                    "numbers": len(numbers),
                    "numbers_exact": right / len(numbers),
                },
                indent=2,
            )
            + "\n",
        )


if __name__ == "__main__":
    main()
