"""``digitrec models|summary|evaluate|export``: the zoo and saved models."""

from __future__ import annotations

import argparse

from digitrec.cli import options


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec models|summary|evaluate|export``."""
    p = sub.add_parser(
        "models", help="list the registered models and their recipes", parents=[options.COMMON]
    )
    p.set_defaults(func=models_list)

    p = sub.add_parser(
        "summary",
        help="Keras-style table of a model's layers and parameters",
        parents=[options.COMMON],
    )
    p.add_argument("--model", required=True, help="registered model name")
    p.set_defaults(func=summary)

    p = sub.add_parser(
        "evaluate",
        help="accuracy, loss, per-class metrics, confusion matrix",
        parents=[
            options.COMMON,
            options.CHECKPOINT,
            options.DATASET,
            options.DATA_DIR,
            options.DEVICE,
            options.JSON,
            options.TTA,
            options.THREADS,
        ],
    )
    p.add_argument(
        "--split",
        choices=["test", "val", "train"],
        default="test",
        help="(default: test; val is the run's own held-out split)",
    )
    p.set_defaults(func=evaluate)

    p = sub.add_parser(
        "export",
        help="export a checkpoint to ONNX (checked with ONNX Runtime)",
        parents=[options.COMMON, options.CHECKPOINT],
    )
    p.add_argument("--out", help="the .onnx file (default: beside the checkpoint)")
    p.set_defaults(func=export)


def models_list(args: argparse.Namespace) -> int:
    from digitrec.models import count_parameters, create_model, get_spec, list_models
    from digitrec.training import recipe_for

    print(f"{'model':<16} {'params':>10}  {'recipe':<44} description")
    for name in list_models():
        spec = get_spec(name)
        r = recipe_for(name)
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


def evaluate(args: argparse.Namespace) -> int:
    import json

    from digitrec.cli.common import apply_threads, checkpoint_or_default
    from digitrec.inference.evaluate import evaluate_checkpoint
    from digitrec.inference.metrics import format_report

    apply_threads(args.threads)
    path = checkpoint_or_default(args.checkpoint)
    report = evaluate_checkpoint(
        path, args.split, args.data_dir, args.device, args.tta, dataset=args.dataset
    ).report
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['arch']} on {report['dataset']} {args.split} ({report['checkpoint']})")
        print(format_report(report))
    return 0


def export(args: argparse.Namespace) -> int:
    from digitrec.cli.common import checkpoint_or_default
    from digitrec.inference.onnx import export_onnx

    path = export_onnx(checkpoint_or_default(args.checkpoint), args.out)
    size = path.stat().st_size / 1e3
    print(f"wrote {path} ({size:,.0f} kB); ONNX Runtime output matches PyTorch's")
    return 0
