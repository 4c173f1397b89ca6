"""Training across processes: shards, torchrun + DDP runs, stops, lost ranks, parallel members."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from digitrec.cli import build_parser, main
from digitrec.cli.launch import child_argv
from digitrec.errors import DigitrecError
from digitrec.inference.checkpoint import load_checkpoint
from digitrec.inference.predictor import Predictor
from digitrec.training import TrainConfig, train
from digitrec.training.distributed import Dist, comm_error, epoch_order, shard

DIGITREC = [sys.executable, "-m", "digitrec"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]


def _env() -> dict[str, str]:
    """The tests' environment (DIGITREC_DATA set by conftest), one OpenMP thread a process."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("n", [12, 13, 15])
@pytest.mark.parametrize("world", [2, 3, 4])
def test_shards_are_disjoint_cover_the_data_and_change_with_the_epoch(n: int, world: int) -> None:
    batch = 2 * world  # global batch; each rank takes 2 images a step
    for epoch in (0, 1):
        order = epoch_order(n, seed=7, epoch=epoch)
        shards = [shard(order, r, world) for r in range(world)]
        assert len({len(s) for s in shards}) == 1  # every rank does the same number of steps
        seen = torch.cat(shards)
        assert set(seen.tolist()) == set(range(n))  # every image, every epoch
        assert len(seen) - n == -n % world  # repeats: only the padding, fewer than world
        # Step i over all ranks is step i of one process with the same global batch.
        steps = -(-n // batch)
        for i in range(steps):
            ranks = torch.cat([s[i * 2 : (i + 1) * 2] for s in shards])
            assert set(order[i * batch : (i + 1) * batch].tolist()) <= set(ranks.tolist())
    for r in range(world):
        assert not torch.equal(
            shard(epoch_order(n, 7, 0), r, world), shard(epoch_order(n, 7, 1), r, world)
        )
    assert torch.equal(shard(epoch_order(n, 7, 0), 0, 1), epoch_order(n, 7, 0))  # one process


def test_the_batch_is_global_and_must_split_evenly(capsys: pytest.CaptureFixture[str]) -> None:
    assert Dist(world=4).per_rank_batch(96) == 24
    with pytest.raises(DigitrecError, match="not divisible by 4 processes"):
        Dist(world=4).per_rank_batch(90)
    # Refused in one line before any process starts.
    assert main(["train", "--nproc", "2", "--batch-size", "97", "--out", "/nonexistent/x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batch size 97 is not divisible by 2" in err


def test_a_lost_peer_is_one_line() -> None:
    exc = RuntimeError(
        "[/__w/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by "
        "peer [127.0.0.1]:7041. This is typically caused by a remote worker crashing."
    )
    text = str(comm_error(0, exc, 120))
    assert text.startswith("rank 0: lost contact with the other ranks (connection closed by peer")
    assert "pair.cc" not in text and "\n" not in text and "120s (--dist-timeout)" in text


def test_child_argv_gives_the_same_arguments_back() -> None:
    argv = ["train", "--debug", "--model", "lenet5", "--set", "ema=0.99", "--set", "augment=shift"]
    argv += ["--lr", "0.05", "--deterministic", "--nproc", "3", "--seeds", "2", "--no-eval"]
    args = build_parser().parse_args(argv)
    again = build_parser().parse_args(["train", *child_argv(args, args.train_actions, set())])
    assert {**vars(again), "train_actions": None} == {**vars(args), "train_actions": None}
    dropped = child_argv(args, args.train_actions, {"nproc", "seeds"})
    assert "--nproc" not in dropped and "--seeds" not in dropped and "--lr" in dropped


@dataclass(frozen=True)
class _TwoRanks(Dist):
    """Rank 0 of two, without a process group: the other rank's answers are scripted."""

    other_bad: int | None = None  # the first non-finite loss the other rank reports
    calls: list[int] = field(default_factory=list)

    def wrap(self, model):  # no DDP: this rank's steps only
        return model

    def sum(self, values: list[float]) -> list[float]:
        return [2 * v for v in values]

    def agree(self, stop: bool, bad: int | None) -> tuple[bool, int | None]:
        self.calls.append(1)
        if len(self.calls) >= 4 and self.other_bad is not None:
            bad = self.other_bad if bad is None else min(bad, self.other_bad)
        return stop, bad


def test_a_divergence_on_another_rank_raises_here_too(tmp_path: Path) -> None:
    # This rank's losses stay finite; the other rank's step 3 was not: every rank must raise
    # the same error (and save nothing after it) rather than step on into an all-reduce alone.
    dist = _TwoRanks(rank=0, world=2, other_bad=2)
    cfg = TrainConfig(model="lenet5", train_limit=512, val_size=100, batch_size=64, epochs=1,
                      device="cpu", threads=1, out=str(tmp_path / "run"))  # fmt: skip
    with pytest.raises(DigitrecError, match=r"training diverged: the loss is not finite at step 3"):
        train(cfg, dist=dist)
    assert len(dist.calls) == 4  # agreed before step 4: no step ran after the bad one was known
    assert not (tmp_path / "run" / "last.safetensors").exists()


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_torchrun_two_ranks_match_one_process(tmp_path: Path, mnist_test) -> None:
    # 300 steps of `fast` (global batch 96), val 2,000: accurate enough (~97%) that 0.5 points
    # is a real bound. Per-rank BatchNorm (48 images each) is part of what this compares.
    flags = ["--model", "fast", "--steps", "300", "--val-size", "2000", "--device", "cpu"]
    two = tmp_path / "two"
    cmd = [*TORCHRUN, "--nproc-per-node", "2", "-m", "digitrec", "train", *flags]
    cmd += ["--threads", "1", "--no-eval", "--no-report", "--out", str(two)]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("training fast:") == 1  # rank 1 prints nothing
    assert sorted(p.name for p in two.iterdir()) == [
        "best.safetensors",
        "config.json",
        "last.safetensors",
        "metrics.jsonl",
    ]
    (record,) = _metrics(two)  # one writer: one line per epoch
    one = train(TrainConfig(model="fast", steps=300, val_size=2000, device="cpu", threads=1,
                            out=str(tmp_path / "one")))  # fmt: skip
    assert record["step"] == one.step == 300
    assert abs(record["val_acc"] - one.metrics["val_acc"]) <= 0.005
    assert record["val_acc"] > 0.95
    # The checkpoint holds the unwrapped module: it loads and predicts in one process.
    ckpt = load_checkpoint(two / "best.safetensors")
    assert not any(k.startswith("module.") for k in ckpt.model.state_dict())
    images, labels = mnist_test
    acc = (Predictor.from_checkpoint(two).predict(images[:1000]) == labels[:1000]).mean()
    assert acc > 0.95


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended too soon"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigterm_to_a_two_rank_run_saves_once_and_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    flags = ["--model", "lenet5", "--val-size", "500", "--threads", "1", "--no-eval"]
    flags += ["--no-report", "--device", "cpu"]
    cmd = [*DIGITREC, "train", "--nproc", "2", *flags, "--save-every", "0.3", "--out", str(run)]
    proc = subprocess.Popen(cmd, env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(run / "last.safetensors", proc)  # the ranks are mid-epoch
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert err.count("interrupted at step") == 1  # one save, by rank 0
    meta = load_checkpoint(run / "last.safetensors").meta
    step = meta["step"]
    assert 0 < step < meta["steps_per_epoch"]
    more = [*DIGITREC, "train", "--nproc", "2", "--resume", str(run), "--max-steps", str(step + 20)]
    done = subprocess.run([*more, "--no-eval", "--no-report", "--threads", "1"], env=_env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resumed {run} at step {step}/" in done.stderr
    assert load_checkpoint(run / "last.safetensors").meta["step"] == step + 20


def _start_ranks(run: Path, timeout: int) -> list[subprocess.Popen]:
    """Two ranks as torchrun would start them, without its agent (which would also stop a
    survivor): what the ranks themselves do. Each saves ``last`` every 0.3 s."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [*DIGITREC, "train", "--model", "lenet5", "--val-size", "500", "--threads", "1"]
    cmd += ["--no-eval", "--no-report", "--device", "cpu", "--save-every", "0.3"]
    cmd += ["--dist-timeout", str(timeout), "--out", str(run)]
    env = {**_env(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2"}
    env["LOCAL_WORLD_SIZE"] = "2"
    return [
        subprocess.Popen(
            cmd,
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_every_rank_after_the_same_step(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ranks = _start_ranks(run, timeout=60)
    try:
        _wait_for(run / "last.safetensors", ranks[0])  # both ranks are training
        ranks[1].send_signal(signal.SIGTERM)  # rank 1 alone: rank 0 must learn of it
        errs = [proc.communicate(timeout=120)[1] for proc in ranks]
    finally:
        for proc in ranks:
            proc.kill()
    assert [proc.returncode for proc in ranks] == [130, 130], errs[0][-2000:]
    step = load_checkpoint(run / "last.safetensors").meta["step"]
    assert f"interrupted at step {step};" in errs[0]  # rank 0 saved the step where both stopped
    assert "interrupted" not in errs[1] and "Traceback" not in errs[0] + errs[1]


@pytest.mark.slow
def test_a_killed_rank_fails_its_peer_with_one_line(tmp_path: Path) -> None:
    run, timeout = tmp_path / "run", 60
    ranks = _start_ranks(run, timeout)
    try:
        _wait_for(run / "last.safetensors", ranks[0])  # both ranks are training
        ranks[1].send_signal(signal.SIGKILL)
        start = time.monotonic()
        _, err = ranks[0].communicate(timeout=timeout + 30)
        elapsed = time.monotonic() - start
    finally:
        for proc in ranks:
            proc.kill()
            proc.communicate()
    assert ranks[0].returncode == 1 and elapsed < timeout  # the death is seen, not waited out
    last = err.strip().splitlines()[-1]
    assert last.startswith("digitrec: error: rank 0: lost contact with the other ranks")
    assert "Traceback" not in err


def _child_of(parent: int, seed: int) -> int | None:
    """The pid of the member process that ``parent`` started for ``seed``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"--seed" in args and args[args.index(b"--seed") + 1] == b"%d" % seed:
            return int(entry.name)
    return None


@pytest.mark.slow
def test_parallel_members_each_complete_and_a_failure_loses_no_other(tmp_path: Path) -> None:
    out = tmp_path / "ens"
    cmd = [*DIGITREC, "train", "--model", "lenet5", "--max-steps", "120", "--val-size", "500"]
    cmd += ["--threads", "1", "--no-report", "--device", "cpu", "--seed", "5"]
    cmd += ["--seeds", "2", "--nproc", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while (pid := _child_of(proc.pid, 6)) is None:  # member seed 6 has started
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)  # a member crashes (out of memory, a node lost...)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert stderr.strip().splitlines()[-1] == (
        "digitrec: error: members failed: seed 6 (see each one's train.log)"
    )
    assert "1 of 2 members trained" in stdout
    good = Path(f"{out}-seed5")
    names = {p.name for p in good.iterdir()}
    assert {"config.json", "metrics.jsonl", "best.safetensors", "last.safetensors"} <= names
    assert {"test_metrics.json", "train.log"} <= names
    assert load_checkpoint(good / "best.safetensors").meta["train_config"]["seed"] == 5


def test_seeds_refuses_resume(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--seeds", "2", "--resume", "x"]) == 1
    assert "--seeds starts new runs" in capsys.readouterr().err
