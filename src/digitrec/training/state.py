"""What an exact resume needs beyond the inference weights, and putting it back.

``last.safetensors`` stores, under ``train.*`` (see :mod:`digitrec.inference.checkpoint`):

- ``rng`` (and ``rng_cuda`` on CUDA): the generators' states, for a resume mid-epoch;
- ``raw.*``: the trained weights, when the checkpoint's own weights are the EMA copy;
- ``optim.<param index>.<name>``: the optimizer's per-parameter state (momentum, Adam moments).

The learning rate is a function of the step and each epoch re-seeds its shuffle, so nothing else
is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from digitrec.errors import CheckpointError
from digitrec.inference.checkpoint import load_checkpoint
from digitrec.training.optim import EMA

RNG_KEYS = ("rng", "rng_cuda")


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The global generators' states: the CPU's, and the device's on CUDA."""
    out = {"rng": torch.get_rng_state()}
    if device.type == "cuda":
        out["rng_cuda"] = torch.cuda.get_rng_state(device)
    return out


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Put back what :func:`rng_state` returned (the CUDA part only on CUDA)."""
    torch.set_rng_state(state["rng"])
    if device.type == "cuda" and "rng_cuda" in state:
        torch.cuda.set_rng_state(state["rng_cuda"], device)


def inference_weights(model: nn.Module, ema: EMA | None) -> dict[str, torch.Tensor]:
    """The weights a checkpoint holds for inference: the EMA copy when the recipe keeps one.

    No model is built here, so saving mid-epoch draws nothing from the random stream.
    """
    return dict(ema.shadow) if ema is not None else model.state_dict()


def train_tensors(
    model: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA | None, device: torch.device
) -> dict[str, torch.Tensor]:
    """Everything beyond the inference weights that an exact resume needs."""
    out = rng_state(device)
    if ema is not None:  # the checkpoint's model.* are EMA weights; keep the raw ones too
        out.update({f"raw.{k}": v for k, v in model.state_dict().items()})
    for pid, pstate in optimizer.state_dict()["state"].items():
        for key, value in pstate.items():
            out[f"optim.{pid}.{key}"] = torch.as_tensor(value)
    return out


@dataclass
class Resumed:
    """Where a resumed run continues: its step, best score, and RNG state if mid-epoch."""

    step: int
    best_score: float
    rng: dict[str, torch.Tensor] | None


def restore(
    run_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: EMA | None,
    device: torch.device,
) -> Resumed:
    """Load ``last.safetensors`` of a run into the live model, optimizer and EMA."""
    if not (run_dir / "last.safetensors").is_file():
        raise CheckpointError(
            f"{run_dir}: no last.safetensors to resume from (the run stopped before its first "
            "save); start it again with --force"
        )
    ckpt = load_checkpoint(run_dir / "last.safetensors", device=device, with_train_state=True)
    tensors, meta = ckpt.train_tensors, ckpt.meta
    if "rng" not in tensors or not isinstance(meta.get("steps_per_epoch"), int):
        raise CheckpointError(f"{ckpt.path}: holds no training state to resume from")
    if ema is not None:
        ema.shadow = _like(ema.shadow, ckpt.model.state_dict())
        model.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("raw.")})
    else:
        model.load_state_dict(ckpt.model.state_dict())
    opt_state = optimizer.state_dict()
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            opt_state["state"].setdefault(int(pid), {})[name] = value.to(device)
    optimizer.load_state_dict(opt_state)
    _match_layouts(optimizer)
    step = int(meta["step"])
    rng = {k: tensors[k] for k in RNG_KEYS if k in tensors}
    mid_epoch = step % meta["steps_per_epoch"] != 0  # an epoch start re-seeds instead
    return Resumed(step, float(meta.get("best_score", -1.0)), rng if mid_epoch else None)


def _like(live: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``saved`` values in the memory layout (and device) of the ``live`` tensors."""
    return {k: torch.empty_like(live[k]).copy_(v) for k, v in saved.items()}


def _match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each restored state tensor its parameter's strides.

    A checkpoint stores tensors contiguous, so a channels-last parameter's momentum comes back in
    the standard layout; fused optimizers walk parameter and state memory in step, so a mismatch
    would apply the momentum to the wrong elements.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for name, value in state.items():
                if (
                    torch.is_tensor(value)
                    and value.shape == param.shape
                    and value.stride() != param.stride()
                ):
                    state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)
