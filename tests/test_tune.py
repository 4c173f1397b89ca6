"""``digitrec tune``: the search space, validation only, pruning, the best command, workers."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from digitrec.cli import build_parser, main
from digitrec.cli.train import _new_config
from digitrec.errors import DigitrecError
from digitrec.training import TrainConfig
from digitrec.training.tune import Param, best_command, parse_param, run_study


@pytest.fixture(scope="module")
def train_only(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MNIST without its test files: a trial that read the test split would fail."""
    folder = tmp_path_factory.mktemp("train-only")
    for path in mnist_dir.glob("train-*"):
        (folder / path.name).symlink_to(path)
    return folder


def test_param_grammar() -> None:
    assert parse_param("lr=log:0.01:0.5") == Param("lr", 0.01, 0.5, log=True)
    assert parse_param("label-smoothing=0:0.2") == Param("label_smoothing", 0.0, 0.2)
    assert parse_param("batch_size=32:256") == Param("batch_size", 32, 256, integer=True)
    assert parse_param("augment=none,shift").choices == ("none", "shift")
    assert parse_param("nesterov=true,false").choices == (True, False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr", "expected NAME=LOW:HIGH"),
        ("depth=1:3", "unknown recipe field"),
        ("lr=0.5:0.1", "need LOW < HIGH"),
        ("lr=log:0:1", "need 0 < LOW < HIGH"),
        ("lr=0.1:x", "expected a value of type float"),
        ("augment=none", "at least two different values"),
        ("augment=a:b", "takes values A,B"),
        ("lr=0.1:0.2:0.3", "takes two bounds"),
    ],
)
def test_bad_params_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(DigitrecError, match=message):
        parse_param(text)


def test_tune_refuses_to_run_without_a_validation_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "study.db"
    argv = ["tune", "--val-size", "0", "--param", "lr=0.01:0.1", "--storage", f"sqlite:///{db}"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "never reads the test set" in err
    assert not db.exists()  # refused before the study was opened


def test_the_best_trial_prints_as_a_train_command_that_reproduces_it() -> None:
    study = optuna.create_study(direction="maximize")
    dists = {"lr": FloatDistribution(0.01, 0.5, log=True), "augment": CategoricalDistribution(
        ["none", "shift"])}  # fmt: skip
    for value, lr in ((0.97, 0.1), (0.98, 0.0734512345678901), (0.96, 0.2)):
        params = {"lr": lr, "augment": "shift"}
        study.add_trial(create_trial(params=params, distributions=dists, value=value))
    base = TrainConfig(model="fast", seed=3, val_size=4000, recipe_overrides={"ema": 0.99})
    cmd = best_command(study, base)
    assert cmd.startswith("digitrec train --model fast ") and "--set lr=0.0734512345678901" in cmd
    cfg = _new_config(build_parser().parse_args(shlex.split(cmd)[1:]))
    want = base.recipe().replace(lr=0.0734512345678901, augment="shift")
    assert cfg.recipe() == want and cfg.seed == 3 and cfg.val_size == 4000


def _tiny(train_only: Path, **kw) -> TrainConfig:
    base = dict(model="lenet5", train_limit=256, val_size=100, batch_size=64, epochs=3)
    base.update(device="cpu", threads=1, data_dir=str(train_only))
    base.update(kw)
    return TrainConfig(**base)


def test_a_pruned_trial_stops_cleanly_after_its_epoch(train_only: Path) -> None:
    # Prunes at the first report (val_acc < 1): the run stops before epoch 2's first step.
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.0)
    )
    run_study(study, _tiny(train_only), [parse_param("lr=0.01:0.05")], trials=2)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    for trial in study.trials:
        assert list(trial.intermediate_values) == [1]  # epoch 1's validation accuracy
        assert trial.user_attrs == {"seed": 0, "step": 4}  # 256 / 64: one epoch, no more


def test_trials_complete_with_the_best_validation_accuracy(train_only: Path) -> None:
    study = optuna.create_study(direction="maximize")
    run_study(study, _tiny(train_only, epochs=2), [parse_param("lr=0.01:0.05")], trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE
    assert trial.value == max(trial.intermediate_values.values())


def test_a_diverging_trial_fails_and_the_study_goes_on(train_only: Path) -> None:
    study = optuna.create_study(direction="maximize")
    run_study(study, _tiny(train_only, model="fast"), [parse_param("lr=log:1e30:1e32")], trials=2)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2
    assert study.trials[0].user_attrs["error"].startswith("training diverged: the loss is not")


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study(tmp_path: Path, train_only: Path) -> None:
    storage = f"sqlite:///{tmp_path}/study.db"
    cmd = [sys.executable, "-m", "digitrec", "tune", "--model", "fast", "--max-steps", "5"]
    cmd += ["--val-size", "500", "--threads", "1", "--trials", "3", "--data-dir", str(train_only)]
    cmd += ["--storage", storage, "--study", "shared", "--param", "lr=log:0.01:0.5"]
    cmd += ["--param", "label_smoothing=0:0.2", "--param", "augment=none,shift", "--no-prune"]
    workers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    study = optuna.load_study(study_name="shared", storage=storage)
    assert sorted(t.number for t in study.trials) == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    draws = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(draws) == 6  # each worker samples its own parameters
    ran = [int(line.split()[1].rstrip(":")) for o in outs for line in o.splitlines()
           if line.startswith("trial ")]  # fmt: skip
    assert sorted(ran) == list(range(6))  # every trial run once, by one worker
    for out in outs:
        assert "train it with:\n  digitrec train --model fast " in out
