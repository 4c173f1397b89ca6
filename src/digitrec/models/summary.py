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


def count_macs(model: nn.Module, input_size: int = 28) -> int:
    """Multiply-adds of one forward pass on one ``(1, 1, S, S)`` image, Conv2d and Linear only.

    Batch-norm, activations and pooling are not counted (they are a few percent at most), the
    convention of the papers and tables this number is compared with.
    """
    total = 0
    hooks = []

    def conv_hook(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(mod, nn.Conv2d)
        kh, kw = mod.kernel_size
        total += out.numel() * (mod.in_channels // mod.groups) * kh * kw  # per output value

    def linear_hook(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(mod, nn.Linear)
        total += out.numel() * mod.in_features

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total
