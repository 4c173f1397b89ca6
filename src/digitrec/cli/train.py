"""``digitrec train``: one run of a registered model with its recipe, flags overriding it."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from digitrec.cli import options
from digitrec.errors import DigitrecError

if TYPE_CHECKING:
    from digitrec.inference.evaluate import Evaluation
    from digitrec.training import RunWriter, TrainConfig
    from digitrec.training.distributed import Dist

SEED_MAX = 2**32 - 1  # as digitrec.training.config.SEED_MAX (not imported: keeps --help fast)
DEFAULT_SEED, DEFAULT_VAL_SIZE = 0, 5000
DIST_TIMEOUT_S = 120.0  # as training.distributed.DEFAULT_TIMEOUT_S

# Flags that would change what a run computes: --resume refuses them instead of ignoring them.
# (option, dest); --epochs, --max-steps, --threads, --device, --data-dir, --save-every apply.
NEW_RUN_ONLY = (
    ("--model", "model"),
    ("--steps", "steps"),
    ("--batch-size", "batch_size"),
    ("--lr", "lr"),
    ("--set", "set"),
    ("--seed", "seed"),
    ("--val-size", "val_size"),
    ("--out", "out"),
    ("--deterministic", "deterministic"),
    ("--force", "force"),
    ("--dataset", "dataset"),
    ("--train-csv", "train_csv"),
)
RESUME_FLAGS = "--epochs, --max-steps, --threads, --device, --data-dir and --save-every"


def _seconds(text: str) -> float:
    """argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec train``."""
    p = sub.add_parser(
        "train",
        help="train a model (follows its source's recipe by default)",
        parents=options.TRAINING,
        epilog="--threads: by default train uses the cores not kept busy by other work "
        "(1-minute load average) and prints its choice. --resume continues a run as it was "
        f"configured: only {RESUME_FLAGS} apply to it; the other flags are refused.",
    )
    count = options.positive_int
    p.add_argument("--model", help="registered model (default: fast)")
    p.add_argument(
        "--train-csv",
        metavar="FILE",
        help="train on a Kaggle train.csv (the same as --dataset kaggle-csv:FILE)",
    )
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
    p.add_argument("--seed", type=options.int_in(0, SEED_MAX), help=f"0..{SEED_MAX} (default: 0)")
    p.add_argument(
        "--val-size",
        type=options.int_in(0),
        help="validation images carved from train; 0 trains on all 60k (default: 5000)",
    )
    p.add_argument(
        "--out",
        help="run directory (default: runs/MODEL-seedS); one that holds a run is refused",
    )
    p.add_argument("--force", action="store_true", help="replace the run already in --out")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help=f"continue a run exactly where it stopped (only {RESUME_FLAGS} apply)",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic algorithms: bit-identical weights on CPU",
    )
    p.add_argument(
        "--max-steps", type=count, help="stop once the run has done N steps (schedule unchanged)"
    )
    p.add_argument(
        "--save-every",
        type=_seconds,
        metavar="SECONDS",
        help="also save last.safetensors this often within an epoch (default: 60)",
    )
    p.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation at the end")
    p.add_argument("--no-report", action="store_true", help="skip writing report.html at the end")
    p.add_argument(
        "--nproc",
        type=count,
        default=1,
        help="processes: N ranks of one model (torchrun + DistributedDataParallel; "
        "--batch-size stays the global batch), or with --seeds, N members at a time",
    )
    p.add_argument(
        "--seeds",
        type=count,
        metavar="K",
        help="train K independent members, seeds S..S+K-1 (S: --seed), each in its own run "
        "directory: runs/MODEL-seedS, or OUT-seedS with --out",
    )
    p.add_argument(
        "--dist-timeout",
        type=_seconds,
        default=DIST_TIMEOUT_S,
        metavar="SECONDS",
        help=f"distributed: fail when a rank is silent this long (default: {DIST_TIMEOUT_S:g})",
    )
    p.set_defaults(func=train, train_actions=p._actions)  # launch.child_argv rebuilds argv


def _resumed_config(args: argparse.Namespace) -> TrainConfig:
    """The saved config of ``--resume DIR``, with the flags that may change it applied."""
    from digitrec.training import read_run_config

    given = [flag for flag, dest in NEW_RUN_ONLY if getattr(args, dest) not in (None, False, [])]
    if given:
        raise DigitrecError(
            f"{', '.join(given)} cannot change a resumed run; with --resume only "
            f"{RESUME_FLAGS} apply (start a new run with --out NEW to change the others)"
        )
    cfg = read_run_config(args.resume)
    cfg.out = args.resume
    cfg.max_steps = args.max_steps
    if args.epochs is not None:  # extend (or shorten) the run: the schedule follows
        cfg.epochs, cfg.steps = args.epochs, None
    if args.device != "auto":
        cfg.device = args.device
    if args.data_dir is not None:
        cfg.data_dir = args.data_dir
    if args.save_every is not None:
        cfg.save_every_s = args.save_every
    cfg.threads = args.threads
    return cfg


def _new_config(args: argparse.Namespace) -> TrainConfig:
    from digitrec.training import TrainConfig
    from digitrec.training.recipes import parse_recipe_settings

    model = args.model or "fast"
    seed = DEFAULT_SEED if args.seed is None else args.seed
    if args.train_csv and args.dataset:
        raise DigitrecError("give --dataset or --train-csv, not both")
    dataset = f"kaggle-csv:{args.train_csv}" if args.train_csv else args.dataset or "mnist"
    return TrainConfig(
        model=model,
        dataset=dataset,
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=seed,
        val_size=DEFAULT_VAL_SIZE if args.val_size is None else args.val_size,
        device=args.device,
        out=args.out or f"runs/{model}-seed{seed}",
        data_dir=args.data_dir,
        deterministic=args.deterministic,
        max_steps=args.max_steps,
        threads=args.threads,
        recipe_overrides=parse_recipe_settings(args.set),
        **({"save_every_s": args.save_every} if args.save_every is not None else {}),
    )


def train(args: argparse.Namespace) -> int:
    from digitrec.cli import launch
    from digitrec.training import distributed

    if args.seeds is not None:
        return launch.members_from_args(args, _new_config(args), SEED_MAX)
    cfg = _resumed_config(args) if args.resume else _new_config(args)
    if args.nproc > 1 and not distributed.launched():
        return launch.ranks_from_args(args, cfg)
    dist = distributed.init_from_env(cfg.device, args.dist_timeout)  # one process: Dist()
    try:
        return _train_one(args, cfg, dist)
    except DigitrecError as exc:
        if dist.rank > 0:
            raise DigitrecError(f"rank {dist.rank}: {exc}") from None
        raise
    except RuntimeError as exc:
        if dist.active and distributed.is_comm_error(exc):
            raise distributed.comm_error(dist.rank, exc, dist.timeout_s) from None
        raise
    finally:
        distributed.shutdown()


def _train_one(args: argparse.Namespace, cfg: TrainConfig, dist: Dist) -> int:
    """One run: this process alone, or one rank of a distributed run (rank 0 prints)."""
    import os

    from digitrec.training import RunWriter, distributed
    from digitrec.training import train as run_training
    from digitrec.training.config import auto_threads, check_config
    from digitrec.training.progress import Reporter, TqdmReporter

    threads = f"threads {cfg.threads}"
    if cfg.threads is None:
        idle, cores = auto_threads()
        cfg.threads = max(1, idle // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        threads = f"threads {cfg.threads} (auto: {cores} cores, less the busy ones)"
    recipe = check_config(cfg)  # model name, recipe and ranges, before any data loads
    writer = RunWriter(cfg.out, enabled=dist.rank == 0)
    writer.prepare(resume=bool(args.resume), force=args.force)  # --out, before any output
    reporter = TqdmReporter() if dist.rank == 0 else Reporter()
    length = f"{recipe.steps} steps" if recipe.steps else f"{recipe.epochs} epochs"
    ranks = f" ({dist.world} ranks of {recipe.batch_size // dist.world})" if dist.active else ""
    reporter.message(
        f"training {cfg.model}: {recipe.optimizer} lr {recipe.lr:g}, batch {recipe.batch_size}"
        f"{ranks}, {length}, schedule {recipe.schedule}, seed {cfg.seed}, val {cfg.val_size}, "
        f"{threads} -> {cfg.out}"
    )
    result = run_training(
        cfg, reporter, resume=args.resume, force=args.force, writer=writer, dist=dist
    )
    dist.barrier()  # no rank exits before rank 0's last save (torchrun would stop it)
    if result.interrupted:
        return 130
    if dist.rank > 0:
        return 0
    distributed.shutdown()  # nothing more to agree on: the others may leave
    print(f"trained {cfg.model} in {result.train_time_s:.1f}s; checkpoints in {cfg.out}")
    assert cfg.out is not None  # set above: --out, its default or --resume
    evaluation = None if args.no_eval else _evaluate_test_split(cfg, writer)
    if not args.no_report:
        from digitrec.report.run_report import write_run_report

        try:
            path = write_run_report(cfg.out, data_dir=cfg.data_dir, evaluation=evaluation)
            print(f"report: {path}")
        except DigitrecError as exc:  # the run itself succeeded; the report is a bonus
            print(f"digitrec: warning: no report: {exc}", file=sys.stderr)
    return 0


def _evaluate_test_split(cfg: TrainConfig, writer: RunWriter) -> Evaluation | None:
    """Evaluate the run's best checkpoint on its dataset's test split, if it has one.

    Returns the evaluation, for report.html to reuse; None without a test split.
    """
    from digitrec.data import get_dataset
    from digitrec.inference.evaluate import evaluate_checkpoint

    assert cfg.out is not None
    if "test" not in get_dataset(cfg.dataset).splits:
        print(f"no test split in {cfg.dataset}; skipping the test evaluation", file=sys.stderr)
        return None
    evaluation = evaluate_checkpoint(cfg.out, "test", cfg.data_dir, "cpu")
    report = evaluation.report
    print(
        f"test accuracy: {report['accuracy']:.4f}  loss: {report['loss']:.4f}"
        f"  ({report['errors']} errors of {report['n']})"
    )
    writer.write_json("test_metrics.json", report)
    return evaluation
