"""Training the sequence reader (:class:`digitrec.models.sequence.CRNN`) with CTC loss.

Strips are batched by similar width (less padding), padded on the right with background, and
lightly augmented (width stretch 0.85-1.15x, +-1 px vertical shift). Seeded: the same strips,
config and device give the same weights up to the nondeterminism of the device's kernels.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from digitrec import __version__
from digitrec.data.strips import HEIGHT
from digitrec.inference.sequence import FORMAT, FORMAT_VERSION, decode_batch
from digitrec.io import atomic_path
from digitrec.models.sequence import BLANK, CRNN, out_lengths


@dataclass
class ReaderConfig:
    """Hyperparameters of :func:`train_reader`."""

    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 32  # CRNN conv width
    hidden: int = 64  # LSTM units per direction
    seed: int = 0
    max_steps: int | None = None
    max_seconds: float | None = None  # stop (and keep the weights) after this long


def _stretch(strip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random width stretch and vertical shift of a uint8 (HEIGHT, W) strip."""
    h, w = strip.shape
    new_w = max(4, round(w * rng.uniform(0.85, 1.15)))
    out = np.asarray(Image.fromarray(strip).resize((new_w, h), Image.Resampling.BILINEAR))
    return np.roll(out, int(rng.integers(-1, 2)), axis=0)


def make_batch(
    strips: list[np.ndarray], texts: list[str], rng: np.random.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images float (N, 1, 32, W), widths (N,), targets (sum of lengths,), lengths (N,))."""
    if rng is not None:
        strips = [_stretch(s, rng) for s in strips]
    width = max(s.shape[1] for s in strips)
    x = np.zeros((len(strips), 1, HEIGHT, width), np.float32)
    for i, s in enumerate(strips):
        x[i, 0, :, : s.shape[1]] = s / 255.0
    targets = [int(c) + 1 for t in texts for c in t]
    return (
        torch.from_numpy(x),
        torch.tensor([s.shape[1] for s in strips]),
        torch.tensor(targets, dtype=torch.long),
        torch.tensor([len(t) for t in texts]),
    )


def _batches(widths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices in batches of similar width, the batches in random order."""
    order = np.argsort(widths + rng.uniform(0, 8, size=len(widths)), kind="stable")
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@torch.no_grad()
def evaluate(model: CRNN, strips: list[np.ndarray], texts: list[str], device: str = "cpu") -> float:
    """Fraction of strips whose whole number is read right (greedy CTC decoding)."""
    model.eval()
    right = 0
    order = np.argsort([s.shape[1] for s in strips])
    for i in range(0, len(order), 128):
        idx = order[i : i + 128]
        x, widths, _, _ = make_batch([strips[j] for j in idx], [texts[j] for j in idx])
        logp = model(x.to(device)).float().cpu()
        for j, (text, _, _) in zip(idx, decode_batch(logp, out_lengths(widths)), strict=True):
            right += text == texts[j]
    return right / max(len(strips), 1)


def train_reader(
    strips: list[np.ndarray],
    texts: list[str],
    dev_strips: list[np.ndarray],
    dev_texts: list[str],
    config: ReaderConfig,
    device: str = "cpu",
) -> tuple[CRNN, dict[str, Any]]:
    """Train a CRNN on uint8 (32, W) strips and their texts; score it on the dev strips.

    Returns:
        The model (eval mode, on the CPU) and a report: config, dev accuracy per epoch, steps.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = CRNN(config.width, config.hidden).to(device)
    widths = np.array([s.shape[1] for s in strips])
    steps_per_epoch = math.ceil(len(strips) / config.batch_size)
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ctc = torch.nn.CTCLoss(blank=BLANK, zero_infinity=True)
    history: list[dict[str, float]] = []
    step, t0 = 0, time.perf_counter()

    def progress() -> float:
        """Share of the run done: by steps, or by time when ``max_seconds`` binds first."""
        done = step / total
        if config.max_seconds:
            done = max(done, (time.perf_counter() - t0) / config.max_seconds)
        return min(done, 1.0)

    for epoch in range(config.epochs):
        model.train()
        losses = []
        for idx in _batches(widths, config.batch_size, rng):
            p = progress()
            # 10 % linear warm-up, then a cosine down to zero (by steps or by the clock).
            scale = p / 0.1 if p < 0.1 else 0.5 * (1 + math.cos(math.pi * (p - 0.1) / 0.9))
            for group in opt.param_groups:
                group["lr"] = config.lr * max(scale, 0.01)
            x, w, targets, lengths = make_batch(
                [strips[i] for i in idx], [texts[i] for i in idx], rng
            )
            logp = model(x.to(device))  # (T, N, 11)
            loss = ctc(logp.float(), targets.to(device), out_lengths(w), lengths)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            losses.append(loss.item())
            step += 1
            if progress() >= 1.0:
                break
        acc = evaluate(model, dev_strips, dev_texts, device)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "dev_acc": acc})
        print(
            f"epoch {epoch + 1}: loss {history[-1]['loss']:.4f}, dev {acc:.2%}, "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        if progress() >= 1.0:
            break
    model = model.cpu().eval()
    report = {
        "config": dataclasses.asdict(config),
        "device": device,
        "steps": step,
        "dev_acc": history[-1]["dev_acc"] if history else None,
        "dev_strips": len(dev_strips),
        "history": history,
    }
    return model, report


def save_reader(model: CRNN, path: str | os.PathLike, report: dict[str, Any]) -> None:
    """Write the reader's weights and JSON metadata (no pickle), atomically."""
    from safetensors.torch import save_file

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": "crnn",
        "arch_kwargs": {"width": model.width, "hidden": model.hidden},
        "height": HEIGHT,
        "classes": "blank,0,1,2,3,4,5,6,7,8,9",
        "torch_version": torch.__version__,
        "digitrec_version": __version__,
        **report,
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"digitrec": json.dumps(meta)})
