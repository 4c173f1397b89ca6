"""``digitrec tune``: an Optuna study over recipe fields, by validation accuracy only."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from digitrec.cli import options
from digitrec.errors import DigitrecError

if TYPE_CHECKING:
    import optuna

    from digitrec.training import TrainConfig

EPILOG = """\
--param NAME=SPEC searches a recipe field (the names of --set): LOW:HIGH uniform (whole numbers
for integer fields), log:LOW:HIGH log-uniform, A,B,... one of the values. Every trial trains with
the same --seed and is scored on the validation split only (--val-size; never the test set);
trials write no run directory. Workers join one study through --storage: start the same command
several times (`digitrec tune ... &`), on other machines too with a PostgreSQL URL
(postgresql://user:password@host/db; needs `pip install psycopg2-binary`). --trials counts this
worker's trials; --max-trials stops every worker once the study holds that many.
"""


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec tune``."""
    p = sub.add_parser(
        "tune",
        help="search recipe settings with Optuna (validation accuracy; any number of workers)",
        parents=options.TRAINING,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    count = options.positive_int
    p.add_argument("--model", default="fast", help="registered model (default: fast)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="a searched recipe field, repeatable: lr=log:0.01:0.5, label_smoothing=0:0.2, "
        "augment=none,shift",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a fixed recipe field for every trial, repeatable (as in train)",
    )
    p.add_argument("--max-steps", type=count, help="stop each trial after N steps (smoke tests)")
    p.add_argument("--seed", type=int, default=0, help="every trial's training seed (default: 0)")
    p.add_argument(
        "--val-size", type=int, default=5000, help="validation images: the objective (default 5000)"
    )
    p.add_argument("--trials", type=count, default=20, help="trials this worker runs (default: 20)")
    p.add_argument("--max-trials", type=count, help="stop once the study holds this many trials")
    p.add_argument("--study", help="study name (default: tune-MODEL)")
    p.add_argument(
        "--storage", help="database URL (default: sqlite:///runs/tune-MODEL.db, a local file)"
    )
    p.add_argument(
        "--sampler-seed",
        type=int,
        help="seed this worker's sampler (reproducible with one worker; give workers different "
        "seeds; default: random)",
    )
    p.add_argument("--no-prune", action="store_true", help="never stop a trial early")
    p.set_defaults(func=tune)


def _base_config(args: argparse.Namespace) -> TrainConfig:
    from digitrec.training import TrainConfig
    from digitrec.training.config import auto_threads
    from digitrec.training.recipes import parse_recipe_settings

    return TrainConfig(
        model=args.model,
        dataset=args.dataset or "mnist",
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        recipe_overrides=parse_recipe_settings(args.set),
        seed=args.seed,
        val_size=args.val_size,
        device=args.device,
        out=None,  # trials write nothing; the best one is retrained with the printed command
        data_dir=args.data_dir,
        max_steps=args.max_steps,
        threads=args.threads or auto_threads()[0],
    )


def tune(args: argparse.Namespace) -> int:
    from digitrec.training.config import check_config
    from digitrec.training.tune import (
        best_command,
        check_space,
        open_study,
        parse_param,
        run_study,
    )

    base = _base_config(args)
    params = [parse_param(text) for text in args.param]
    check_config(base)
    check_space(base, params)  # before the study is opened: nothing is created for a bad search
    name = args.study or f"tune-{base.model}"
    storage = args.storage or f"sqlite:///runs/tune-{base.model}.db"
    study = open_study(name, storage, args.sampler_seed, prune=not args.no_prune)
    print(f"study {name} in {storage}: {len(study.trials)} trials so far; this worker runs "
          f"{args.trials}, seed {base.seed}, val {base.val_size}")  # fmt: skip
    run_study(
        study,
        base,
        params,
        args.trials,
        max_trials=args.max_trials,
        prune=not args.no_prune,
        on_trial=_print_trial,
    )
    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    print(f"study {name}: {len(states)} trials ({counts})")
    if "complete" not in states:
        raise DigitrecError(f"study {name}: no trial has completed yet")
    best = study.best_trial
    print(f"best: trial {best.number}, val_acc {best.value:.4f}; train it with:")
    print(f"  {best_command(study, base)}")
    return 0


def _print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """One line per finished trial of this worker."""
    params = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    state = trial.state.name
    if state == "COMPLETE":
        best = study.best_trial
        what = f"val_acc {trial.value:.4f} (best: trial {best.number}, {best.value:.4f})"
    elif state == "PRUNED":
        what = f"pruned after epoch {trial.last_step}"
    else:
        what = f"failed: {trial.user_attrs.get('error', state.lower())}"
    print(f"trial {trial.number}: {what}  [{params}]", flush=True)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
