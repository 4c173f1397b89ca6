"""Training: ``train(TrainConfig) -> metrics``. No globals, so it can run under torchrun later.

The whole training set lives on the device as one normalised tensor; each step slices a batch
with a seeded permutation, so there is no per-sample Python work in the hot loop. Every epoch
re-seeds the shuffle and the global RNG from ``(seed, epoch)``, and the learning rate is a pure
function of the step: a resumed run therefore continues exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from digitrec.data import load_mnist, train_val_split
from digitrec.inference.checkpoint import build_meta, load_checkpoint, save_checkpoint
from digitrec.inference.device import pick_device
from digitrec.inference.metrics import evaluate_tensors
from digitrec.io import atomic_write
from digitrec.models import create_model, get_spec, to_input
from digitrec.training.augment import augment_batch
from digitrec.training.config import TrainConfig
from digitrec.training.optim import EMA, build_optimizer, lr_at
from digitrec.training.progress import Reporter
from digitrec.training.recipes import Recipe


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % (2**63 - 1)


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked after each step, so the loop saves and exits."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def load_training_data(
    cfg: TrainConfig, device: torch.device, pre, nondigits: float = 0.0
) -> dict[str, torch.Tensor]:
    """Train/val tensors on the device: normalised float images and int64 labels.

    With ``nondigits`` > 0, that fraction of synthetic "not one digit" images, made from the
    training part only, joins the training tensors as class 10.
    """
    images, labels = load_mnist("train", cfg.data_dir)
    train_idx, val_idx = train_val_split(len(images), cfg.val_size, cfg.seed)
    if cfg.train_limit is not None:
        train_idx = train_idx[: cfg.train_limit]
    x, y = images[train_idx], labels[train_idx]
    if nondigits > 0:
        from digitrec.data.synth import make_nondigits

        extra = make_nondigits(x, round(nondigits * len(x)), seed=cfg.seed)
        x = np.concatenate([x, extra])
        y = np.concatenate([y, np.full(len(extra), 10, dtype=y.dtype)])
    out = {"x": to_input(x, pre, device), "y": torch.as_tensor(y).to(device)}
    if len(val_idx):
        out["val_x"] = to_input(images[val_idx], pre, device)
        out["val_y"] = torch.as_tensor(labels[val_idx]).to(device)
    return out


def train(
    cfg: TrainConfig, reporter: Reporter | None = None, resume: str | Path | None = None
) -> dict[str, Any]:
    """Train a model; return the final metrics (see metrics.jsonl for per-epoch records).

    Args:
        cfg: The run's configuration. When resuming, pass the config read from the run.
        reporter: Receives progress events; None is silent.
        resume: A run directory whose ``last.safetensors`` holds a resumable state.
    """
    rep = reporter or Reporter()
    spec = get_spec(cfg.model)
    recipe = cfg.recipe()
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(cfg.deterministic)
    try:
        with _StopFlag() as stop:
            return _run(cfg, spec, recipe, device, rep, resume, stop)
    finally:
        torch.use_deterministic_algorithms(prev_det)


def _run(cfg, spec, recipe: Recipe, device, rep: Reporter, resume, stop) -> dict[str, Any]:
    pre = spec.preprocessing
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_kwargs).to(device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(recipe, model)
    ema = EMA(model, recipe.ema) if recipe.ema > 0 else None
    data = load_training_data(cfg, device, pre, recipe.nondigits)
    n, bsz = len(data["y"]), recipe.batch_size
    steps_per_epoch = math.ceil(n / bsz)
    total_steps = recipe.steps or recipe.epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)
    stop_at = min(total_steps, cfg.max_steps) if cfg.max_steps else total_steps
    background = (0.0 - pre.mean) / pre.std  # a blank pixel after normalisation

    run_dir = Path(cfg.out) if cfg.out else None
    step, best_val, rng_state = 0, -1.0, None
    if resume is not None:
        step, best_val, rng_state = _restore(Path(resume), model, optimizer, ema, device)
        rep.message(f"resumed {resume} at step {step}/{total_steps}")
    if run_dir:
        run_dir.mkdir(parents=True, exist_ok=True)
        record = {**dataclasses.asdict(cfg), "resolved_recipe": dataclasses.asdict(recipe)}
        atomic_write(run_dir / "config.json", json.dumps(record, indent=2) + "\n")

    meta_base = {"train_config": dataclasses.asdict(cfg), "recipe": dataclasses.asdict(recipe)}
    last: dict[str, Any] = {}
    train_time = 0.0
    while step < stop_at and stop.signal is None:
        epoch = step // steps_per_epoch
        first = step - epoch * steps_per_epoch
        gen = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch))
        perm = torch.randperm(n, generator=gen).to(device)
        torch.manual_seed(_epoch_seed(cfg.seed, epoch) + 1)
        if rng_state is not None:  # mid-epoch resume: continue the exact random stream
            torch.set_rng_state(rng_state)
            rng_state = None
        rep.epoch_start(epoch + 1, epochs, steps_per_epoch)
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for i in range(first, steps_per_epoch):
            if step >= stop_at or stop.signal is not None:
                break
            idx = perm[i * bsz : (i + 1) * bsz]
            xb = augment_batch(data["x"][idx], recipe.augment, background)
            yb = data["y"][idx]
            if recipe.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            lr = lr_at(recipe, step, total_steps, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update(model)
            step += 1
            seen += len(yb)
            loss_sum += loss.detach() * len(yb)
            correct += (logits.detach().argmax(1) == yb).sum()
            if (i + 1) % 50 == 0 or i + 1 == steps_per_epoch:
                dt = time.perf_counter() - t0
                rep.step(i + 1, loss_sum.item() / seen, correct.item() / seen, seen / dt)
        epoch_time = time.perf_counter() - t0
        train_time += epoch_time
        done_epoch = step % steps_per_epoch == 0 or step >= stop_at
        eval_model = _eval_model(model, ema, cfg, device)
        record = {
            "epoch": epoch + 1,
            "epochs": epochs,
            "step": step,
            "lr": lr_at(recipe, max(step - 1, 0), total_steps, steps_per_epoch),
            "train_loss": loss_sum.item() / max(seen, 1),
            "train_acc": correct.item() / max(seen, 1),
            "epoch_time_s": epoch_time,
            "images_per_s": seen / max(epoch_time, 1e-9),
        }
        if "val_x" in data and done_epoch and stop.signal is None:
            val = evaluate_tensors(eval_model, data["val_x"], data["val_y"])
            record.update(val_loss=val["loss"], val_acc=val["accuracy"])
        if done_epoch and stop.signal is None:
            rep.epoch_end(record)
        last = record
        if run_dir is None:
            continue
        meta = build_meta(
            cfg.model,
            cfg.model_kwargs,
            pre,
            **meta_base,
            metrics=record,
            epoch=epoch + 1,
            step=step,
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
        )
        state = _train_tensors(model, optimizer, ema)
        if done_epoch and stop.signal is None:
            with (run_dir / "metrics.jsonl").open("a") as fh:
                fh.write(json.dumps(record) + "\n")
        score = record.get("val_acc", record["train_acc"])
        if done_epoch and score > best_val:
            best_val = score
            save_checkpoint(run_dir / "best.safetensors", eval_model.state_dict(), meta)
        meta["best_score"] = best_val
        save_checkpoint(run_dir / "last.safetensors", eval_model.state_dict(), meta, state)
    interrupted = stop.signal is not None
    if interrupted and run_dir and step == 0:
        rep.message("interrupted before the first step; nothing was saved")
    elif interrupted and run_dir:
        rep.message(f"interrupted at step {step}; resume with: digitrec train --resume {run_dir}")
    return {
        **last,
        "model": cfg.model,
        "total_steps": total_steps,
        "train_time_s": train_time,
        "best_score": best_val if run_dir else None,
        "interrupted": interrupted,
        "run_dir": str(run_dir) if run_dir else None,
        "final_model": _eval_model(model, ema, cfg, device),
    }


def _eval_model(model, ema: EMA | None, cfg: TrainConfig, device):
    """The weights to evaluate and save: the EMA copy when the recipe keeps one."""
    if ema is None:
        return model
    shadow = create_model(cfg.model, **cfg.model_kwargs).to(device)
    shadow.load_state_dict(ema.shadow)
    return shadow.eval()


def _train_tensors(model, optimizer, ema: EMA | None) -> dict[str, torch.Tensor]:
    """Everything beyond the inference weights that an exact resume needs."""
    out: dict[str, torch.Tensor] = {"rng": torch.get_rng_state()}
    if ema is not None:  # the checkpoint's model.* are EMA weights; keep the raw ones too
        out.update({f"raw.{k}": v for k, v in model.state_dict().items()})
    for pid, pstate in optimizer.state_dict()["state"].items():
        for key, value in pstate.items():
            out[f"optim.{pid}.{key}"] = torch.as_tensor(value)
    return out


def _restore(run_dir: Path, model, optimizer, ema: EMA | None, device):
    """Load ``last.safetensors`` from a run into the live objects; return (step, best, rng)."""
    ckpt = load_checkpoint(run_dir / "last.safetensors", device=device, with_train_state=True)
    tensors = ckpt.train_tensors
    if ema is not None:
        ema.shadow = {k: v.to(device) for k, v in ckpt.model.state_dict().items()}
        model.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("raw.")})
    else:
        model.load_state_dict(ckpt.model.state_dict())
    opt_state = optimizer.state_dict()
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            opt_state["state"].setdefault(int(pid), {})[name] = value.to(device)
    optimizer.load_state_dict(opt_state)
    meta = ckpt.meta
    mid_epoch = meta["step"] % meta["steps_per_epoch"] != 0
    return (
        int(meta["step"]),
        float(meta.get("best_score", -1.0)),
        tensors["rng"] if mid_epoch else None,
    )


