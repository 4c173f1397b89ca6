"""Hyperparameter studies on Optuna: recipe fields searched by validation accuracy.

A search space is a list of :class:`Param`, one per recipe field (the names of ``--set``)::

    lr=log:0.01:0.5           log-uniform between the bounds
    label_smoothing=0:0.2     uniform (a whole-number field draws integers: batch_size=32:256)
    augment=none,shift        one of the values (each read as ``--set`` reads it)

Every trial trains the base config with its draw (``--seed`` fixed: trials differ only by their
parameters, and one can be reproduced), and its objective is the best validation accuracy of
its epochs (what ``best.safetensors`` keeps). The test split is never read; a config without a
validation split is refused. After each epoch the trial reports its validation accuracy, and a
pruned trial stops cleanly at the next step (the stop function). Trials write no run directory.

Workers share a study through its storage: a SQLite file on one machine, a PostgreSQL URL across
machines. Each worker needs its own sampler seed (the default draws one), or workers would
propose the same parameters.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitrec.errors import DigitrecError
from digitrec.training.config import TrainConfig, check_config
from digitrec.training.progress import Reporter
from digitrec.training.recipes import Recipe, parse_recipe_settings

if TYPE_CHECKING:
    import optuna

NO_OPTUNA = "digitrec tune needs Optuna: pip install 'digitrec[tune]'"


@dataclass(frozen=True)
class Param:
    """One searched recipe field: a range (``low``..``high``, maybe ``log``) or ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value of this field."""
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)


def parse_param(text: str) -> Param:
    """``NAME=LOW:HIGH``, ``NAME=log:LOW:HIGH`` or ``NAME=A,B,...`` -> a :class:`Param`."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip().replace("-", "_"), spec.strip()
    if not sep or not name or not spec:
        raise DigitrecError(f"--param {text!r}: expected NAME=LOW:HIGH, log:LOW:HIGH or A,B,...")
    kinds = {f.name: str(f.type) for f in dataclasses.fields(Recipe) if f.name != "source"}
    if name not in kinds:
        raise DigitrecError(f"--param {name}: unknown recipe field; choose from {', '.join(kinds)}")
    if "," in spec or ":" not in spec:
        values = [v.strip() for v in spec.split(",") if v.strip()]
        choices = tuple(parse_recipe_settings([f"{name}={v}"])[name] for v in values)
        if len(set(choices)) < 2:
            raise DigitrecError(f"--param {name}: give at least two different values")
        return Param(name, choices=choices)
    log = spec.startswith("log:")
    parts = spec.removeprefix("log:").split(":")
    kind = kinds[name]
    integer = kind.startswith("int")
    if len(parts) != 2 or not (integer or kind == "float"):
        what = "two bounds LOW:HIGH" if len(parts) != 2 else "values A,B,... (not a range)"
        raise DigitrecError(f"--param {name}={spec}: {name} ({kind}) takes {what}")
    low, high = (parse_recipe_settings([f"{name}={p}"])[name] for p in parts)
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if not low < high or (log and low <= 0):
        need = "0 < LOW < HIGH" if log else "LOW < HIGH"
        raise DigitrecError(f"--param {name}={spec}: need {need}")
    return Param(name, float(low), float(high), log=log, integer=integer)


def check_space(base: TrainConfig, params: Sequence[Param]) -> None:
    """Refuse a search that could not run: no validation split, or values the recipe refuses."""
    if base.val_size <= 0:
        raise DigitrecError(
            "tune selects on the validation split and never reads the test set: "
            "give --val-size of at least 1 (default 5000)"
        )
    names = [p.name for p in params]
    if not params or len(set(names)) != len(names):
        raise DigitrecError("give each searched field once with --param NAME=...")
    for param in params:  # each bound and each choice must make a valid recipe on its own
        for value in param.choices or (param.low, param.high):
            if param.integer and value is not None:
                value = int(value)
            check_config(_with(base, {param.name: value}))


def _with(base: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    """The base config with some recipe fields set (as ``--set`` would)."""
    return dataclasses.replace(base, recipe_overrides={**base.recipe_overrides, **values})


class _TrialReporter(Reporter):
    """Reports each epoch's validation accuracy to the trial; flags a prune."""

    def __init__(self, trial: optuna.Trial, prune: bool) -> None:
        self.trial, self.prune = trial, prune
        self.best: float | None = None
        self.pruned = False

    def epoch_end(self, record: dict[str, Any]) -> None:
        val = record.get("val_acc")
        if val is None:
            return
        self.best = val if self.best is None else max(self.best, val)
        self.trial.report(val, step=record["epoch"])
        if self.prune and self.trial.should_prune():
            self.pruned = True  # the loop asks the stop function before its next step


class _Diverged(Exception):
    """A trial's loss stopped being finite: the trial fails, the study goes on."""


def objective(base: TrainConfig, params: Sequence[Param], prune: bool) -> Callable:
    """The study's objective: train one draw, return its best validation accuracy."""
    import optuna

    from digitrec.training.loop import train
    from digitrec.training.stop import SignalStop

    def run(trial: optuna.Trial) -> float:
        cfg = _with(base, {p.name: p.suggest(trial) for p in params})
        trial.set_user_attr("seed", cfg.seed)
        rep = _TrialReporter(trial, prune)
        with SignalStop() as signals:
            try:
                result = train(cfg, rep, should_stop=lambda: signals.requested() or rep.pruned)
            except DigitrecError as exc:
                if str(exc).startswith("training diverged"):
                    trial.set_user_attr("error", str(exc))
                    raise _Diverged(str(exc)) from None
                raise
        if signals.requested():
            raise KeyboardInterrupt  # Optuna marks the trial failed; the CLI says interrupted
        trial.set_user_attr("step", result.step)
        if rep.pruned:
            raise optuna.TrialPruned(f"pruned after epoch {result.metrics.get('epoch')}")
        if rep.best is None:
            raise DigitrecError("the trial ended before its first validation")
        return rep.best

    return run


def open_study(
    name: str, storage: str, sampler_seed: int | None = None, prune: bool = True
) -> optuna.Study:
    """Create the study, or join it if another worker already did (maximising val_acc)."""
    try:
        import optuna
    except ModuleNotFoundError:
        raise DigitrecError(NO_OPTUNA) from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the CLI prints one line a trial
    for attempt in range(_ATTEMPTS):
        try:
            return optuna.create_study(
                study_name=name,
                storage=_storage(storage),
                direction="maximize",
                sampler=optuna.samplers.TPESampler(seed=sampler_seed),
                pruner=optuna.pruners.MedianPruner() if prune else optuna.pruners.NopPruner(),
                load_if_exists=True,
            )
        except (ImportError, ValueError, RuntimeError) as exc:
            raise DigitrecError(f"study storage {storage}: {exc}") from None
        except Exception as exc:  # SQLAlchemy's: a bad URL, a server that does not answer...
            if not type(exc).__module__.startswith("sqlalchemy"):
                raise
            if attempt + 1 == _ATTEMPTS or not _RACE.search(f"{type(exc).__name__} {exc}"):
                text = str(exc).splitlines()[0]
                raise DigitrecError(f"study storage {storage}: {text}") from None
            # Workers that start together on a new database race to create its tables: the
            # loser finds them made on its next try.
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


_ATTEMPTS = 5
# What two workers creating one new database's tables at once get (SQLite and PostgreSQL).
_RACE = re.compile(r"IntegrityError|already exists|UNIQUE constraint|database is locked")


def _storage(url: str) -> Any:
    """An RDB storage; a SQLite file's folder is created, and writers wait for its lock."""
    import optuna

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 60}}  # seconds: workers take turns writing
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def run_study(
    study: optuna.Study,
    base: TrainConfig,
    params: Sequence[Param],
    trials: int,
    *,
    max_trials: int | None = None,
    prune: bool = True,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> None:
    """Run ``trials`` trials in this process (``max_trials``: stop at that many in the study)."""
    from optuna.study import MaxTrialsCallback

    check_space(base, params)
    callbacks: list[Callable] = [on_trial] if on_trial else []
    if max_trials is not None:  # counts every worker's trials, running ones included
        callbacks.append(MaxTrialsCallback(max_trials, states=None))
    study.optimize(
        objective(base, params, prune),
        n_trials=trials,
        catch=(_Diverged,),
        callbacks=callbacks,
    )


def best_command(study: optuna.Study, base: TrainConfig) -> str:
    """The best trial as a ``digitrec train`` command line (its fields as ``--set``)."""
    best = study.best_trial
    settings = {**base.recipe_overrides, **best.params}
    cmd = ["digitrec", "train", "--model", base.model]
    if base.dataset != "mnist":
        cmd += ["--dataset", base.dataset]
    for flag, value in (
        ("--epochs", base.epochs),
        ("--steps", base.steps),
        ("--batch-size", base.batch_size),
        ("--lr", base.lr),
        ("--max-steps", base.max_steps),
    ):
        if value is not None:
            cmd += [flag, _text(value)]
    for name, value in settings.items():
        cmd += ["--set", f"{name}={_text(value)}"]
    cmd += ["--seed", str(base.seed), "--val-size", str(base.val_size)]
    return shlex.join(cmd)


def _text(value: Any) -> str:
    """A value as ``--set`` reads it back exactly (floats: the shortest round-trip repr)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return str(value)  # a float's str is its shortest repr that reads back the same
