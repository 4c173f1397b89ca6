"""Parameter counts and a Keras-style layer table."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Hook = Callable[[nn.Module, object, torch.Tensor], None]


def _forward_with_hooks(model: nn.Module, input_size: int, hooks: dict[nn.Module, Hook]) -> None:
    """One no-grad, eval-mode pass of a ``(1, 1, S, S)`` zero image with forward hooks attached.

    The hooks are removed and the model's train/eval mode restored afterwards, even on error.
    """
    handles = [module.register_forward_hook(hook) for module, hook in hooks.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, input_size, input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (elements, not tensors)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def summary(model: nn.Module, input_size: int = 28) -> str:
    """A Keras-style table: layer, output shape and parameter count, then the totals."""
    rows: list[tuple[str, str, int]] = []
    hooks: dict[nn.Module, Hook] = {}
    for name, module in model.named_modules():
        if name and not list(module.children()):  # leaf layers only

            def hook(mod: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
                shape = "(None, " + ", ".join(str(d) for d in out.shape[1:]) + ")"
                own = sum(p.numel() for p in mod.parameters(recurse=False))
                rows.append((f"{name} ({type(mod).__name__})", shape, own))

            hooks[module] = hook
    _forward_with_hooks(model, input_size, hooks)
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
    hooks: dict[nn.Module, Hook] = {}

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
            hooks[module] = conv_hook
        elif isinstance(module, nn.Linear):
            hooks[module] = linear_hook
    _forward_with_hooks(model, input_size, hooks)
    return total
