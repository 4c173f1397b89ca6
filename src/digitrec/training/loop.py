"""Training: ``train(TrainConfig) -> TrainResult``. No globals, so torchrun can wrap it.

The whole training set lives on the device as one normalised tensor; each step slices a batch
with a seeded permutation, so there is no per-sample Python work in the hot loop. Every epoch
re-seeds the shuffle and the global RNG from ``(seed, epoch)``, and the learning rate is a pure
function of the step: a resumed run therefore continues exactly where it stopped.

The loop reads as :func:`_setup`, then epochs (:func:`_run_epoch`) of steps (:func:`_step`), each
epoch closed by :func:`_end_epoch` (validate, log, save), then :func:`_finish`. All file output
goes through a :class:`~digitrec.training.run_writer.RunWriter`, and a stop function is asked
before every step (see :mod:`digitrec.training.stop`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.inference.device import pick_device
from digitrec.inference.metrics import evaluate_tensors
from digitrec.models import create_model
from digitrec.training.augment import augment_batch
from digitrec.training.config import TrainConfig, check_config
from digitrec.training.data import load_run_data, load_training_data
from digitrec.training.distributed import Dist, epoch_order, shard
from digitrec.training.optim import EMA, build_optimizer, lr_at, optimizer_step
from digitrec.training.progress import Reporter
from digitrec.training.result import (
    EpochStats,
    Run,
    TrainResult,
    check_weights,
    diverged,
    epoch_record,
)
from digitrec.training.run_writer import RunWriter
from digitrec.training.state import inference_weights, restore, set_rng_state, train_tensors
from digitrec.training.stop import SignalStop, StopFn

__all__ = ["TrainResult", "load_training_data", "train", "train_model"]


def train(
    cfg: TrainConfig,
    reporter: Reporter | None = None,
    resume: str | Path | None = None,
    *,
    force: bool = False,
    should_stop: StopFn | None = None,
    writer: RunWriter | None = None,
    dist: Dist | None = None,
) -> TrainResult:
    """Train a model; return what happened (see metrics.jsonl for per-epoch records).

    Args:
        cfg: The run's configuration. When resuming, pass the config read from the run.
        reporter: Receives progress events; None is silent.
        resume: A run directory whose ``last.safetensors`` holds a resumable state.
        force: Replace a run already in ``cfg.out`` (without it, that is an error).
        should_stop: Asked once before every step; True saves ``last`` and returns. Default:
            a SIGINT/SIGTERM flag (:class:`SignalStop`). A function given here replaces it, and
            no signal handler is installed: a distributed run all-reduces its own flag.
        writer: Where files go; default ``RunWriter(cfg.out)`` (on rank 0 only).
            ``enabled=False`` writes none.
        dist: This process's rank in a distributed run (see :mod:`digitrec.training.distributed`);
            default: the initialised process group's, else a single process.

    Raises:
        DigitrecError: a bad config or output directory (before any data loads), or a loss
            that is not finite (``last.safetensors`` then keeps the last finite state).
    """
    result, _model = train_model(
        cfg, reporter, resume, force=force, should_stop=should_stop, writer=writer, dist=dist
    )
    return result


def train_model(
    cfg: TrainConfig,
    reporter: Reporter | None = None,
    resume: str | Path | None = None,
    *,
    force: bool = False,
    should_stop: StopFn | None = None,
    writer: RunWriter | None = None,
    dist: Dist | None = None,
) -> tuple[TrainResult, nn.Module]:
    """:func:`train`, also returning the model to evaluate (the EMA copy when kept)."""
    dist = dist or Dist.current()
    # Before torch's settings change (also done again in _setup); the batch is the global one.
    dist.per_rank_batch(check_config(cfg).batch_size)
    device = dist.train_device(pick_device(cfg.device))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    prev_det = torch.are_deterministic_algorithms_enabled()
    if cfg.deterministic != prev_det:  # the setter imports torch._inductor (~1 s cold)
        torch.use_deterministic_algorithms(cfg.deterministic)
    rep = reporter or Reporter()
    try:
        with contextlib.ExitStack() as stack:
            if should_stop is None:  # else the caller handles signals (see digitrec.training.stop)
                should_stop = stack.enter_context(SignalStop()).requested
            run = _setup(
                cfg,
                device,
                rep,
                Path(resume) if resume is not None else None,
                force,
                should_stop,
                writer or RunWriter(cfg.out, enabled=dist.rank == 0),
                dist,
            )
            while run.step < run.stop_at and not run.stopping:
                _run_epoch(run)
            return _finish(run)
    finally:
        rep.close()
        if cfg.deterministic != prev_det:
            torch.use_deterministic_algorithms(prev_det)


def _setup(
    cfg: TrainConfig,
    device: torch.device,
    rep: Reporter,
    resume: Path | None,
    force: bool,
    should_stop: StopFn,
    writer: RunWriter,
    dist: Dist,
) -> Run:
    """Check the output, build model, optimizer and data, and restore a resumed run."""
    recipe = check_config(cfg)
    here = resume is not None and writer.path is not None and _same(resume, writer.path)
    writer.prepare(resume=here, force=force)
    try:
        # Data first: the dataset decides num_classes and the normalisation (no torch RNG used).
        data, pre, dataset = load_run_data(cfg, device, recipe.nondigits, recipe.nondigit_source)
        arch_kwargs = {**cfg.model_kwargs, "num_classes": pre.num_classes}
        torch.manual_seed(cfg.seed)
        model = dist.prepare(create_model(cfg.model, **arch_kwargs).to(device))
        if recipe.channels_last:
            model = model.to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
        optimizer = build_optimizer(recipe, model)
        ema = EMA(model, recipe.ema) if recipe.ema > 0 else None
        steps_per_epoch = math.ceil(len(data["y"]) / recipe.batch_size)
        total_steps = recipe.steps or recipe.epochs * steps_per_epoch
        run = Run(
            cfg, recipe, pre, device, model, optimizer, ema, data, writer, rep, should_stop,
            steps_per_epoch=steps_per_epoch,
            total_steps=total_steps,
            stop_at=min(total_steps, cfg.max_steps or total_steps),
            arch_kwargs=arch_kwargs,
            dataset=dataset,
            dist=dist,
        )  # fmt: skip
        if resume is not None:
            resumed = restore(resume, model, optimizer, ema, device)
            run.step, run.best, run.rng = resumed.step, resumed.best_score, resumed.rng
            run.saved_step = resumed.step if here else None
            rep.message(f"resumed {resume} at step {run.step}/{total_steps}")
        run.net = dist.wrap(model)  # DDP, after a resume: it broadcasts rank 0's weights
    except BaseException:
        writer.abandon()
        raise
    config = {**dataclasses.asdict(cfg), "resolved_recipe": dataclasses.asdict(recipe)}
    writer.start(config, resume=here, force=force)
    run.last_save = time.perf_counter()
    return run


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _stop_requested(run: Run, stats: EpochStats | None = None) -> bool:
    """Ask the stop function (once per step, the same number of times on every rank).

    Distributed, one all-reduce agrees on the stop flag and on the first non-finite loss in
    ``stats``, so that every rank stops after the same step, or raises the same error.
    """
    if run.stopping:
        return True
    stop = bool(run.should_stop())
    if run.dist.active:
        stop, bad = run.dist.agree(stop, stats.first_bad_step() if stats is not None else None)
        if bad is not None:
            raise diverged(run, f"the loss is not finite at step {bad + 1}", bad)
    run.stopping = stop
    return stop


def _run_epoch(run: Run) -> None:
    """The steps of one epoch from ``run.step`` (mid-epoch after a resume), then its end."""
    epoch, first = divmod(run.step, run.steps_per_epoch)
    if _stop_requested(run):
        return
    order = epoch_order(len(run.data["y"]), run.cfg.seed, epoch)  # the same on every rank
    perm = shard(order, run.dist.rank, run.dist.world).to(run.device)  # this rank's part
    torch.manual_seed(run.dist.augment_seed(run.cfg.seed, epoch))
    if run.rng is not None:  # mid-epoch resume: continue the exact random stream
        set_rng_state(run.rng, run.device)
        run.rng = None
        if run.dist.rank > 0:  # the checkpoint holds rank 0's stream
            torch.manual_seed(run.dist.augment_seed(run.cfg.seed, epoch, run.step))
    run.rep.epoch_start(epoch + 1, run.epochs, run.steps_per_epoch)
    _net(run).train()
    stats = EpochStats(run.device, eager=run.check_every == 1)
    bsz, t0 = run.dist.per_rank_batch(run.recipe.batch_size), time.perf_counter()
    for i in range(first, run.steps_per_epoch):
        checked = stats if i % run.check_every == 0 else None  # distributed: agreed here
        if i > first and (run.step >= run.stop_at or _stop_requested(run, checked)):
            break
        _step(run, perm[i * bsz : (i + 1) * bsz], stats)
        done = i + 1
        if done % run.check_every == 0 and not run.dist.active:
            _check_loss(run, stats)
        if done % 50 == 0 or done == run.steps_per_epoch:
            loss, acc = stats.means()
            run.rep.step(done, loss, acc, stats.seen / (time.perf_counter() - t0))
        if _periodic_save_due(run, done):  # so that kill -9 loses at most save_every_s
            if not run.dist.active:  # (distributed, rank 0 alone is here: no collective)
                _check_loss(run, stats)
            if not run.dist.active or _weights_finite(run):  # else the next check raises
                _save_last(run, epoch, epoch_record(run, epoch, stats, time.perf_counter() - t0))
    _end_epoch(run, epoch, stats, time.perf_counter() - t0)


def _periodic_save_due(run: Run, done: int) -> bool:
    """Time for a mid-epoch save of ``last`` (the end of an epoch or run saves anyway)?"""
    elapsed = time.perf_counter() - run.last_save
    ends = done == run.steps_per_epoch or run.step >= run.stop_at
    return run.writer.enabled and not ends and elapsed >= run.cfg.save_every_s


def _step(run: Run, idx: torch.Tensor, stats: EpochStats) -> None:
    """One optimizer step on the training images ``idx``."""
    recipe = run.recipe
    xb = augment_batch(run.data["x"][idx], recipe.augment, run.background)
    if recipe.channels_last:
        xb = xb.contiguous(memory_format=torch.channels_last)
    yb = run.data["y"][idx]
    lr = lr_at(recipe, run.step, run.total_steps, run.steps_per_epoch)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    logits = _net(run)(xb)
    loss = F.cross_entropy(logits, yb, label_smoothing=recipe.label_smoothing)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer_step(run.optimizer)
    if run.ema is not None:
        run.ema.update(run.model)
    stats.add(run.step, loss.detach(), logits.detach(), yb)
    run.step += 1


def _end_epoch(run: Run, epoch: int, stats: EpochStats, seconds: float) -> None:
    """Close an epoch (or the part of one before a stop): validate, log and save."""
    run.train_time += seconds
    _check_loss(run, stats)
    if run.dist.active:  # the record counts every rank's images (one all-reduce)
        loss, correct, seen = run.dist.sum([stats.loss.item(), stats.correct.item(), stats.seen])
        stats.loss.fill_(loss)
        stats.correct.fill_(round(correct))
        stats.seen = round(seen)
    record = epoch_record(run, epoch, stats, seconds)
    resume_state = train_tensors(run.model, run.optimizer, run.ema, run.device)
    full = (run.step % run.steps_per_epoch == 0 or run.step >= run.stop_at) and not run.stopping
    if full or run.dist.active:  # distributed: agreed before rank 0's save checks again
        _check_weights(run)
    if full:
        if "val_x" in run.data and run.dist.rank == 0:  # only rank 0 reports and saves
            val = evaluate_tensors(_eval_model(run), run.data["val_x"], run.data["val_y"])
            record.update(val_loss=val["loss"], val_acc=val["accuracy"])
        run.rep.epoch_end(record)
        run.writer.append_metrics(record)
    run.record = record
    score = record.get("val_acc", record["train_acc"])
    if full and score > run.best:
        run.best = score
        weights = inference_weights(run.model, run.ema)
        run.writer.save("best", weights, run.meta(record, epoch))
    _save_last(run, epoch, record, resume_state)


def _check_loss(run: Run, stats: EpochStats) -> None:
    """Stop at a non-finite loss, naming the first step that had one (on any rank)."""
    bad = stats.first_bad_step()
    if run.dist.active:  # a collective: every rank calls this at the same points
        _, bad = run.dist.agree(False, bad)
    if bad is not None:
        raise diverged(run, f"the loss is not finite at step {bad + 1}", bad)


def _check_weights(run: Run) -> None:
    """:func:`check_weights`; distributed, agreed: every rank raises if any rank's fail."""
    if not run.dist.active:
        check_weights(run)
        return
    if not _weights_finite(run):
        run.dist.agree(False, run.step - 1)
        check_weights(run)  # raises
    _, bad = run.dist.agree(False, None)
    if bad is not None:
        raise diverged(run, f"another rank's weights are not finite after step {run.step}", bad)


def _weights_finite(run: Run) -> bool:
    try:
        check_weights(run)
    except DigitrecError:
        return False
    return True


def _save_last(
    run: Run,
    epoch: int,
    record: dict[str, Any],
    resume_state: dict[str, torch.Tensor] | None = None,
) -> None:
    """Save the resumable ``last`` checkpoint (refusing weights that are not finite)."""
    run.last_save = time.perf_counter()
    if not run.writer.enabled:
        return
    check_weights(run)
    state = resume_state or train_tensors(run.model, run.optimizer, run.ema, run.device)
    weights = inference_weights(run.model, run.ema)
    run.writer.save("last", weights, run.meta(record, epoch), state)
    run.saved_step = run.step
    run.last_save = time.perf_counter()


def _finish(run: Run) -> tuple[TrainResult, nn.Module]:
    """Say how to resume an interrupted run; the result and the model to evaluate."""
    path = run.writer.path
    if run.stopping and run.writer.enabled:
        if run.saved_step is None:
            run.rep.message("interrupted before the first step; nothing was saved")
        else:
            run.rep.message(
                f"interrupted at step {run.step}; resume with: digitrec train --resume {path}"
            )
    result = TrainResult(
        model=run.cfg.model,
        metrics=run.record,
        step=run.step,
        total_steps=run.total_steps,
        train_time_s=run.train_time,
        best_score=run.best if run.writer.enabled else None,
        interrupted=run.stopping,
        run_dir=str(path) if run.writer.enabled else None,
    )
    return result, _eval_model(run)


def _net(run: Run) -> nn.Module:
    """The module the steps call: the DDP wrapper of ``run.model`` in a distributed run."""
    return run.net if run.net is not None else run.model


def _eval_model(run: Run) -> nn.Module:
    """The weights to evaluate: the EMA copy when the recipe keeps one."""
    if run.ema is None:
        return run.model
    shadow = create_model(run.cfg.model, **run.arch_kwargs).to(run.device)
    shadow.load_state_dict(run.ema.shadow)
    return shadow.eval()
