"""Fault injection for training: stops, kills, read-only output and divergence.

Stops are injected in-process through the loop's stop function (what SIGTERM sets); real
signals and ``kill -9`` go to subprocesses.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from digitrec.cli import main
from digitrec.errors import CheckpointError, DigitrecError
from digitrec.inference.checkpoint import load_checkpoint
from digitrec.training import RunWriter, TrainConfig, read_run_config, train
from digitrec.training import loop as loop_module
from digitrec.training.result import Run

# 640 or 960 images: 10 steps per epoch for every model below (batch 64, 96 or 128 * 7.5).
MODELS = {
    "fast": dict(model="fast", train_limit=960),  # channels-last, fused SGD with momentum
    "accurate": dict(model="accurate", train_limit=1280),  # channels-last + random shifts
    "fast-ema": dict(model="fast", train_limit=960, recipe_overrides={"ema": 0.9}),
    "lenet5": dict(model="lenet5", train_limit=640),  # plain layout, SGD momentum
}
STEPS = 25  # 3 epochs: 10, 10 and 5 steps


def _cfg(out: Path, name: str, **kw) -> TrainConfig:
    base = dict(
        val_size=100, device="cpu", threads=1, deterministic=True, steps=STEPS, out=str(out)
    )
    return TrainConfig(**{**base, **MODELS[name], **kw})


def stop_after(steps: int) -> Callable[[], bool]:
    """A stop function that says stop before step ``steps + 1`` (it is asked once per step)."""
    calls = iter(range(10**9))
    return lambda: next(calls) >= steps


def _weights(run: Path) -> dict[str, torch.Tensor]:
    """Every tensor of last.safetensors but the RNG state (model, raw weights, optimizer)."""
    return {k: v for k, v in load_file(str(run / "last.safetensors")).items() if "rng" not in k}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} of {len(a)} tensors differ: {differ[:4]}"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """One uninterrupted deterministic run per model, trained on first use."""
    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            runs[name] = tmp_path_factory.mktemp(name) / "run"
            train(_cfg(runs[name], name))
        return runs[name]

    return get


@pytest.mark.parametrize(
    ("name", "stops"),
    [
        ("fast", (13,)),  # mid-epoch
        ("fast", (10,)),  # at an epoch boundary
        ("accurate", (7, 20)),  # mid-epoch, then at a boundary after the first resume
        ("fast-ema", (13,)),
        ("lenet5", (13,)),
        ("lenet5", (10, 17)),
    ],
)
def test_stop_and_resume_is_bit_identical(
    tmp_path: Path, uninterrupted: Callable[[str], Path], name: str, stops: tuple[int, ...]
) -> None:
    run = tmp_path / "run"
    result = train(_cfg(run, name), should_stop=stop_after(stops[0]))
    assert result.interrupted and result.step == stops[0]
    for done, stop in zip(stops, [*stops[1:], None], strict=True):
        assert load_checkpoint(run / "last.safetensors").meta["step"] == done
        more = stop_after(stop - done) if stop is not None else None
        result = train(read_run_config(run), resume=run, should_stop=more)
    assert not result.interrupted and result.step == STEPS
    _assert_same(_weights(uninterrupted(name)), _weights(run))


def test_a_stop_before_the_first_step_leaves_nothing_to_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(_cfg(run, "lenet5"), should_stop=stop_after(0))
    assert result.interrupted and result.step == 0 and not (run / "last.safetensors").exists()
    with pytest.raises(CheckpointError, match=r"no last\.safetensors to resume from .* --force"):
        train(read_run_config(run), resume=run)


def test_restored_momentum_keeps_the_parameters_memory_format(tmp_path: Path) -> None:
    from digitrec.models import create_model
    from digitrec.training.optim import build_optimizer
    from digitrec.training.state import restore

    cfg = _cfg(tmp_path / "run", "fast", max_steps=2)
    train(cfg)
    model = create_model("fast").to(memory_format=torch.channels_last)  # pyright: ignore
    optimizer = build_optimizer(cfg.recipe(), model)
    restore(tmp_path / "run", model, optimizer, None, torch.device("cpu"))
    conv = [p for p in model.parameters() if p.ndim == 4]
    assert conv and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv)
    for p in conv:
        assert optimizer.state[p]["momentum_buffer"].stride() == p.stride()


def test_stop_function_is_asked_once_per_step(tmp_path: Path) -> None:
    """The contract a distributed stop (an all-reduce per call) relies on."""
    calls = []
    result = train(_cfg(tmp_path / "run", "lenet5"), should_stop=lambda: calls.append(1) or False)
    assert len(calls) == result.step == STEPS


class _NanAt:
    """``F`` for the loop whose cross-entropy turns non-finite at call ``at`` (1-based)."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    def cross_entropy(self, *args, **kwargs) -> torch.Tensor:
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(*args, **kwargs)
        return loss * float("nan") if self.calls >= self.at else loss


@pytest.mark.parametrize("check_every", [1, 50])  # CPU checks every step; a GPU every 50
def test_non_finite_loss_stops_and_keeps_the_last_finite_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check_every: int
) -> None:
    monkeypatch.setattr(loop_module, "F", _NanAt(15))
    monkeypatch.setattr(Run, "check_every", property(lambda self: check_every))
    run = tmp_path / "run"
    with pytest.raises(DigitrecError, match=r"loss is not finite at step 15 .*keeps step 10"):
        train(_cfg(run, "lenet5"))
    last = load_checkpoint(run / "last.safetensors")
    assert last.meta["step"] == 10
    assert all(torch.isfinite(v).all() for v in last.model.state_dict().values())
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_diverging_lr_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["train", "--model", "fast", "--lr", "1e6", "--max-steps", "30", "--threads", "1"]
    assert main([*args, "--val-size", "0", "--no-eval", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("digitrec: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "training diverged: the loss is not finite at step" in errors[0]
    assert "nothing was saved" in errors[0] and not (out / "last.safetensors").exists()


@pytest.fixture
def make_read_only() -> Iterator[Callable[[Path], None]]:
    """Makes directories read-only, also for root (``chattr +i``); skips where impossible."""
    done: list[tuple[Path, str]] = []

    def make(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o555)
            done.append((path, "chmod"))
        elif shutil.which("chattr") and not subprocess.run(["chattr", "+i", str(path)]).returncode:
            done.append((path, "chattr"))
        try:
            (path / ".probe").touch()
        except OSError:
            return
        (path / ".probe").unlink()
        pytest.skip("cannot make a directory read-only here")

    yield make
    for path, how in done:
        if how == "chmod":
            path.chmod(0o755)
        else:
            subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_output_mid_run_is_one_line_and_keeps_checkpoints(
    tmp_path: Path, make_read_only: Callable[[Path], None]
) -> None:
    run, before, calls = tmp_path / "run", {}, []

    def stop() -> bool:  # before step 13, after epoch 1 was saved, the disk turns read-only
        calls.append(1)
        if len(calls) == 13:
            before.update({p.name: p.read_bytes() for p in run.iterdir()})
            make_read_only(run)
        return False

    with pytest.raises(DigitrecError, match=r"cannot write .*; files written before are unchanged"):
        train(_cfg(run, "lenet5"), should_stop=stop)
    assert {"best.safetensors", "last.safetensors", "metrics.jsonl"} <= before.keys()
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert load_checkpoint(run / "last.safetensors").meta["step"] == 10


def test_read_only_or_file_out_is_refused_before_data_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_read_only: Callable[[Path], None]
) -> None:
    empty = tmp_path / "no-data"  # data would fail to load: an --out error must come first
    empty.mkdir()
    (tmp_path / "file").write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    make_read_only(locked)
    base = ["train", "--model", "lenet5", "--data-dir", str(empty), "--no-eval", "--out"]
    cases = {
        str(tmp_path / "file"): "is a file, not a run directory",
        str(tmp_path / "file" / "sub"): "cannot write to run directory",
        str(locked): "cannot write to run directory",
        str(locked / "sub"): "cannot write to run directory",
    }
    for out, message in cases.items():
        assert main([*base, out]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (out, err)


# A process that rewrites one checkpoint through the run writer as fast as it can.
_SAVER = """
import sys, torch
from digitrec.inference.checkpoint import build_meta
from digitrec.models import create_model, get_spec
from digitrec.training import RunWriter

writer = RunWriter(sys.argv[1])
model = create_model("accurate")
extra = {"pad": torch.zeros(2_000_000)}  # 8 MB, so that a write takes a while
for i in range(10**9):
    pre = get_spec("accurate").preprocessing
    meta = build_meta("accurate", {}, pre, step=i, steps_per_epoch=469, best_score=-1.0)
    writer.save("last", model.state_dict(), meta, {**extra, "i": torch.tensor(i)})
    print(i, flush=True)
"""


@pytest.mark.slow
def test_kill_9_during_checkpoint_writes_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    rng = random.Random(0)
    steps = []
    cmd = [sys.executable, "-c", textwrap.dedent(_SAVER), str(tmp_path)]
    for _ in range(8):
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout is not None
            proc.stdout.readline()  # one save finished: from now on a file must always load
            time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGKILL)
        ckpt = load_checkpoint(tmp_path / "last.safetensors", with_train_state=True)
        steps.append(int(ckpt.train_tensors["i"]))
        assert ckpt.meta["step"] == steps[-1] and ckpt.meta["arch"] == "accurate"
    assert max(steps) > 0  # some kills came after several saves
    # Kills that hit a write left its temporary file: the next run in the directory removes it.
    assert list(tmp_path.glob(".last.safetensors.*.tmp"))
    RunWriter(tmp_path).start({}, resume=True)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.slow
def test_kill_9_after_a_periodic_save_resumes_exactly(tmp_path: Path) -> None:
    """``kill -9`` in epoch 1 leaves last.safetensors from the periodic save to resume from."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    base = ["train", "--model", "lenet5", "--threads", "1", "--val-size", "500"]
    base += ["--deterministic", "--no-eval"]
    cmd = [sys.executable, "-m", "digitrec", *base, "--save-every", "0.5", "--out", str(run)]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run / "last.safetensors").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    meta = load_checkpoint(run / "last.safetensors").meta
    step = meta["step"]
    assert 0 < step < meta["steps_per_epoch"]  # saved within epoch 1
    assert main([*base, "--max-steps", str(step + 3), "--out", str(ref)]) == 0
    assert main(["train", "--resume", str(run), "--max-steps", str(step + 3), "--no-eval"]) == 0
    _assert_same(_weights(ref), _weights(run))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_resume_state_holds_the_cuda_rng() -> None:
    from digitrec.training.state import rng_state, set_rng_state

    device = torch.device("cuda")
    state = rng_state(device)
    assert "rng_cuda" in state
    a = torch.rand(4, device=device)
    set_rng_state(state, device)
    assert torch.equal(torch.rand(4, device=device), a)
