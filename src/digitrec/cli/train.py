"""``digitrec train``: one run of a registered model with its recipe, flags overriding it."""

from __future__ import annotations

import argparse
from pathlib import Path

from digitrec.cli import options
from digitrec.errors import DigitrecError


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec train``."""
    p = sub.add_parser(
        "train",
        help="train a model (follows its source's recipe by default)",
        parents=[options.COMMON, options.DATA_DIR, options.DEVICE, options.THREADS],
    )
    p.add_argument("--model", default="fast", help="registered model (default: fast)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--steps", type=int, help="override the recipe's total optimizer steps")
    p.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    p.add_argument("--lr", type=float, help="override the recipe's peak learning rate")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any other recipe field, repeatable: augment=shift|affine, "
        "schedule=constant|step|onecycle|linear, optimizer=..., ema=0.999, label_smoothing=0.1, "
        "weight_decay=5e-4, warmup, momentum, nesterov, gamma, channels_last (see README)",
    )
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument(
        "--val-size",
        type=int,
        default=5000,
        help="validation images carved from train; 0 trains on all 60k (default: 5000)",
    )
    p.add_argument("--out", help="run directory (default: runs/MODEL-seedS)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly where it stopped")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic algorithms: bit-identical weights on CPU",
    )
    p.add_argument("--max-steps", type=int, help="smoke mode: stop after N steps")
    p.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation at the end")
    p.set_defaults(func=train)


def train(args: argparse.Namespace) -> int:
    import json

    from digitrec.io import atomic_write
    from digitrec.training import TrainConfig, read_run_config
    from digitrec.training import train as run_training
    from digitrec.training.progress import TqdmReporter
    from digitrec.training.recipes import parse_recipe_settings

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
        from digitrec.inference.evaluate import evaluate_checkpoint

        report = evaluate_checkpoint(cfg.out, "test", args.data_dir, "cpu").report
        print(
            f"test accuracy: {report['accuracy']:.4f}  loss: {report['loss']:.4f}"
            f"  ({report['errors']} errors of {report['n']})"
        )
        atomic_write(Path(cfg.out) / "test_metrics.json", json.dumps(report, indent=2) + "\n")
    return 0
