"""Parameter counts and a Keras-style layer table."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (elements, not tensors)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def summary(model: nn.Module, input_size: int = 28) -> str:
    """A Keras-style table: layer, output shape and parameter count, then the totals."""
    rows: list[tuple[str, str, int]] = []
    hooks = []
    for name, module in model.named_modules():
        if name and not list(module.children()):  # leaf layers only

            def hook(mod: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
                shape = "(None, " + ", ".join(str(d) for d in out.shape[1:]) + ")"
                own = sum(p.numel() for p in mod.parameters(recurse=False))
                rows.append((f"{name} ({type(mod).__name__})", shape, own))

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    width = max([len(r[0]) for r in rows] + [24]) + 2
    rule = "=" * (width + 36)
    lines = [f"{'Layer (type)':<{width}}{'Output Shape':<24}{'Param #':>12}", rule]
    lines += [f"{n:<{width}}{s:<24}{p:>12,}" for n, s, p in rows]
    total, trainable = count_parameters(model), count_parameters(model, trainable_only=True)
    lines += [
        rule,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
    ]
    return "\n".join(lines)
