"""Time ``predict`` and ``read`` on phone-camera-size photos (the time budget in the README).

A seeded synthetic digit photo and number photo (``digitrec.data.synth``, MNIST test digits)
are upscaled to each size and saved as JPEG (quality 90), as a phone would. Each is run through
the same path as the CLI: decode, page cleanup, normalisation, the packaged models. Analysis
runs at most 1024 px on the long side (``images.normalise.WORK_SIDE``), so above that only
decoding and the first downscale grow with the pixel count; the 40-megapixel decode cap
(``images.decode.MAX_PIXELS``) bounds the worst case.

    python bench/bigphoto.py [--repeats 5] [--sizes 1000x750,4000x3000] [--json FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time

import torch
from PIL import Image

from digitrec.benchmarks.machine import machine_info
from digitrec.data.specs import load_mnist
from digitrec.data.synth import make_numbers, photoize
from digitrec.images import load_image
from digitrec.inference.checkpoint import SHIPPED_MODEL
from digitrec.inference.files import predict_files
from digitrec.inference.predictor import Predictor
from digitrec.inference.reading import read_number
from digitrec.io import atomic_write

SIZES = "1000x750,2000x1500,4000x3000,6000x4500,7300x5470"


def _scaled(jpeg: bytes, width: int, height: int) -> bytes:
    im = (
        Image.open(io.BytesIO(jpeg))
        .convert("RGB")
        .resize((width, height), Image.Resampling.BILINEAR)
    )
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm: models loaded, caches filled
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default=SIZES, help=f"WxH list (default: {SIZES})")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, labels = load_mnist("test")
    digit = photoize(images[:1], seed=0)[0]
    number, text = make_numbers(images, labels, n=1, seed=0)[0]
    predictor = Predictor.from_checkpoint(SHIPPED_MODEL)
    rows = []
    print("| photo | size | JPEG | decode | predict | read (segment) | read (auto) | right |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for spec in args.sizes.split(","):
        width, height = map(int, spec.split("x"))
        for kind, src in (("digit", digit), ("number", number)):
            # A number photo is a wide strip of the page: half the height.
            h = height if kind == "digit" else height // 2
            data = _scaled(src, width, h)
            row = {"photo": kind, "width": width, "height": h, "jpeg_bytes": len(data)}
            row["decode_ms"] = _median_ms(lambda d=data: load_image(d), args.repeats)
            if kind == "digit":
                row["predict_ms"] = _median_ms(
                    lambda d=data: predict_files(predictor, [d]), args.repeats
                )
                got = predict_files(predictor, [data])[0].digit
                row["right"] = bool(got == labels[0])
            else:
                for method in ("segment", "auto"):
                    row[f"read_{method}_ms"] = _median_ms(
                        lambda d=data, m=method: read_number(predictor, d, method=m), args.repeats
                    )
                row["right"] = read_number(predictor, data)["number"] == text
            rows.append(row)

            def cell(key: str, r: dict = row) -> str:
                return f"{r[key]:.0f} ms" if key in r else ""

            print(
                f"| {kind} | {width}x{h} ({width * h / 1e6:.1f} MP) | {len(data) // 1024} kB "
                f"| {cell('decode_ms')} | {cell('predict_ms')} | {cell('read_segment_ms')} "
                f"| {cell('read_auto_ms')} | {row['right']} |",
                flush=True,
            )
    out = {"machine": machine_info(torch.device("cpu")), "repeats": args.repeats, "rows": rows}
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        atomic_write(args.json, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
