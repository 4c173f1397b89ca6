"""Process-level launching for ``digitrec train``: ``--nproc N`` (torchrun) and ``--seeds K``.

- ``train --nproc N`` runs torchrun's own launcher (``torch.distributed.run``, standalone on this
  machine) on ``python -m digitrec train <the same flags less --nproc>``: N ranks of one model.
- ``train --seeds K [--nproc N]`` trains K independent members, seeds S..S+K-1, as K
  ``python -m digitrec train`` processes, N at a time. Each member writes its own complete run
  directory and its output to ``train.log`` there; a member that fails loses no other.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from digitrec.errors import DigitrecError

if TYPE_CHECKING:
    from digitrec.training import TrainConfig

INTERRUPTED = 130


def child_argv(
    args: argparse.Namespace, actions: Sequence[argparse.Action], drop: set[str]
) -> list[str]:
    """The command line that gives ``args`` again (flags left at their defaults omitted).

    ``drop``: destinations to leave out (the caller adds its own values for them).
    """
    out: list[str] = []
    for action in actions:
        if not action.option_strings or action.dest in drop or action.dest == "help":
            continue
        value = getattr(args, action.dest, action.default)
        if value is None or value is argparse.SUPPRESS or value == action.default:
            continue
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        flag = flag or action.option_strings[0]
        if isinstance(action, argparse._StoreTrueAction):
            if value is True:
                out.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                out += [flag, str(item)]
        else:
            out += [flag, str(value)]
    return out


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    """Environment variables set for the ``with`` block (the workers inherit them)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def launch_ranks(nproc: int, train_argv: list[str], threads: int) -> int:
    """``torchrun --standalone --nproc-per-node N -m digitrec train ...``, in this process.

    Returns the exit code: 0, or 130 when the ranks were interrupted; a failed rank is one line.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    flags = ["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0"]
    targs = parse_args([*flags, "-m", "digitrec", "train", *train_argv])
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("torch.distributed") and isinstance(logger, logging.Logger):
            logger.setLevel(logging.CRITICAL)  # the agent's notes: the ranks and we say it all
    try:
        with _env(OMP_NUM_THREADS=str(threads)):
            run(targs)
    except SignalException:  # SIGTERM/SIGINT: the workers got it too, saved and stopped
        return INTERRUPTED
    except ChildFailedError as exc:
        codes = {rank: failure.exitcode for rank, failure in exc.failures.items()}
        if all(code in (INTERRUPTED, -signal.SIGTERM, -signal.SIGINT) for code in codes.values()):
            return INTERRUPTED
        what = ", ".join(f"rank {r} {_describe(c)}" for r, c in sorted(codes.items()))
        raise DigitrecError(f"distributed training failed: {what}; see the errors above") from None
    except (RuntimeError, OSError) as exc:  # the rendezvous itself (a port, the store)
        raise DigitrecError(f"torchrun could not start the ranks: {exc}") from None
    return 0


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@dataclass
class Member:
    """One ensemble member's process."""

    seed: int
    out: Path
    proc: subprocess.Popen | None = None
    code: int | None = None

    @property
    def log(self) -> Path:
        return self.out / "train.log"


def train_members(
    seeds: Sequence[int],
    outs: Sequence[Path],
    argv_for: Callable[[int, Path], list[str]],
    nproc: int,
) -> int:
    """Train one member per seed, ``nproc`` processes at a time; 1 if any member failed."""
    members = [Member(seed, Path(out)) for seed, out in zip(seeds, outs, strict=True)]
    pending, running = list(members), []
    print(
        f"training {len(members)} members, {nproc} at a time; "
        f"logs in each member's folder, e.g. {members[0].log}"
    )
    try:
        while pending or running:
            while pending and len(running) < nproc:
                member = pending.pop(0)
                member.out.mkdir(parents=True, exist_ok=True)
                argv = argv_for(member.seed, member.out)
                cmd = [sys.executable, "-m", "digitrec", "train", *argv]
                with member.log.open("w") as log:
                    member.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
                running.append(member)
            time.sleep(0.1)
            for member in [m for m in running if m.proc is not None and m.proc.poll() is not None]:
                running.remove(member)
                assert member.proc is not None
                member.code = member.proc.returncode
                print(_member_line(member), flush=True)
    except KeyboardInterrupt:  # stop the running members cleanly: each saves last and exits
        for member in running:
            if member.proc is not None and member.proc.poll() is None:
                member.proc.send_signal(signal.SIGTERM)
        for member in running:
            if member.proc is not None:
                member.proc.wait()
        return INTERRUPTED
    failed = [str(m.seed) for m in members if m.code != 0]
    print(f"{len(members) - len(failed)} of {len(members)} members trained")
    if failed:
        seeds_text = ", ".join(failed)
        raise DigitrecError(f"members failed: seed {seeds_text} (see each one's train.log)")
    return 0


def _member_line(member: Member) -> str:
    """``seed S: ...`` with the test accuracy, or the member's error line from its log."""
    if member.code == 0:
        acc = ""
        with contextlib.suppress(OSError, ValueError, KeyError):
            report = json.loads((member.out / "test_metrics.json").read_text())
            acc = f", test accuracy {report['accuracy']:.4f}"
        return f"seed {member.seed}: done{acc} -> {member.out}"
    lines = member.log.read_text(errors="replace").splitlines() if member.log.exists() else []
    errors = [ln for ln in lines if ln.startswith("digitrec:")] or lines[-1:] or ["no output"]
    return f"seed {member.seed}: exit {member.code}: {errors[-1].strip()} (log: {member.log})"


def ranks_from_args(args: argparse.Namespace, cfg: TrainConfig) -> int:
    """``train --nproc N``: check what one line can refuse, then start the N ranks."""
    from digitrec.training import RunWriter
    from digitrec.training.config import auto_threads, check_config
    from digitrec.training.distributed import Dist

    Dist(world=args.nproc).per_rank_batch(check_config(cfg).batch_size)
    RunWriter(cfg.out).prepare(resume=bool(args.resume), force=args.force)
    threads = args.threads or max(1, auto_threads()[0] // args.nproc)
    argv = child_argv(args, args.train_actions, {"nproc", "threads"})
    return launch_ranks(args.nproc, [*argv, "--threads", str(threads)], threads)


def members_from_args(args: argparse.Namespace, cfg: TrainConfig, seed_max: int) -> int:
    """``train --seeds K [--nproc N]``: K members from ``cfg`` (seed S, out: the default)."""
    from digitrec.training import RunWriter
    from digitrec.training.config import auto_threads, check_config

    if args.resume:
        raise DigitrecError("--seeds starts new runs; resume a member with --resume RUN_DIR")
    seeds = range(cfg.seed, cfg.seed + args.seeds)
    if seeds[-1] > seed_max:
        raise DigitrecError(f"--seed {cfg.seed} with --seeds {args.seeds} passes {seed_max}")
    check_config(cfg)  # one error before any member starts
    outs = [Path(f"{args.out}-seed{s}" if args.out else f"runs/{cfg.model}-seed{s}") for s in seeds]
    for out in outs:  # a member directory that holds a run is refused before any starts
        RunWriter(out).prepare(force=args.force)
    nproc = min(args.nproc, args.seeds)
    threads = args.threads or max(1, auto_threads()[0] // nproc)
    base = child_argv(args, args.train_actions, {"seeds", "nproc", "seed", "out", "threads"})

    def argv_for(seed: int, out: Path) -> list[str]:
        return [*base, "--seed", str(seed), "--out", str(out), "--threads", str(threads)]

    code = train_members(list(seeds), outs, argv_for, nproc)
    if code == 0:
        import shlex

        ens = f"{args.out}-ensemble.json" if args.out else f"runs/{cfg.model}-ensemble.json"
        command = ["digitrec", "ensemble", *map(str, outs), "--out", ens]
        print(f"to use them as one model: {shlex.join(command)}")
    return code
