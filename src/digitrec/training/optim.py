"""Optimizers, learning-rate schedules as pure functions of the step, and a weight EMA.

Schedules are computed from the global step rather than held in a scheduler object, so a resumed
run recomputes exactly the same learning rate without saving scheduler state.
"""

from __future__ import annotations

import inspect
import math
import sys
from typing import TYPE_CHECKING

import torch
from torch import nn

from digitrec.errors import DigitrecError

if TYPE_CHECKING:
    from digitrec.training.recipes import Recipe

OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta")
SCHEDULES = ("constant", "step", "onecycle", "linear")


def build_optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer a recipe names, at its peak learning rate.

    Weight decay applies to weight matrices and kernels only, not to biases or BatchNorm
    scales, which decay would pull towards zero for no regularising benefit.
    """
    name, lr, wd = recipe.optimizer, recipe.lr, recipe.weight_decay
    _skip_dynamo_import()
    weights = [p for p in model.parameters() if p.ndim > 1]
    others = [p for p in model.parameters() if p.ndim <= 1]
    params = [{"params": weights, "weight_decay": wd}, {"params": others, "weight_decay": 0.0}]
    # One fused kernel per step instead of a chain of foreach ops: 5-10% of a small CNN's step.
    fused = True if _fusable(model) else None  # None: torch picks
    if name == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=recipe.momentum,
            nesterov=recipe.nesterov,
            weight_decay=wd,
            fused=fused,
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, fused=fused)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, fused=fused)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)
    raise DigitrecError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")


def _skip_dynamo_import() -> None:
    """Keep torch.optim from importing torch._dynamo (about as slow as importing torch itself).

    torch wraps ``Optimizer.add_param_group``, ``zero_grad``, ``state_dict`` and
    ``load_state_dict`` in ``torch._disable_dynamo``, which imports the compiler stack on the
    first call only to mark them "do not trace", caching the result as ``fn.__dynamo_disable``.
    This project never runs torch.compile, so each function stands in for its disabled version.
    Once torch._dynamo is imported anyway nothing is changed, and a torch without these private
    hooks is left alone. (``step`` imports it too: see :func:`optimizer_step`.)
    """
    if "torch._dynamo" in sys.modules:
        return
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        fn = getattr(getattr(torch.optim.Optimizer, name, None), "__wrapped__", None)
        if callable(fn) and not hasattr(fn, "__dynamo_disable"):
            fn.__dynamo_disable = fn  # pyright: ignore[reportFunctionMemberAccess]


def optimizer_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``, without importing torch._dynamo when it is not loaded yet.

    ``Optimizer.step`` is wrapped (profiler hooks, then a grad-mode guard that imports
    torch._dynamo on every call for two graph breaks, no-ops outside torch.compile). On a cold
    ``digitrec train`` that import costs ~0.7 s of 3, so the undecorated step runs under
    ``no_grad`` instead, as the guard would. Step hooks are not called: this project sets none.
    """
    if "torch._dynamo" in sys.modules or optimizer.defaults.get("differentiable"):
        optimizer.step()
        return
    with torch.no_grad():
        inspect.unwrap(type(optimizer).step)(optimizer)


def _fusable(model: nn.Module) -> bool:
    """Fused optimizer kernels exist for float parameters on CPU and CUDA."""
    return all(
        p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in model.parameters()
    )


def lr_at(recipe: Recipe, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total_steps``.

    - ``constant``: ``lr``.
    - ``step``: ``lr * gamma ** epoch`` (PyTorch's StepLR with step_size=1 epoch).
    - ``onecycle``: linear rise from ``lr/25`` to ``lr`` over the first ``warmup`` fraction,
      then cosine decay to about zero (``lr/1e4``), as torch's OneCycleLR.
    - ``linear``: linear rise over ``warmup`` (from ``lr / warm-up steps``), then linear decay
      towards zero at the end.
    """
    peak, kind = recipe.lr, recipe.schedule
    if kind == "constant":
        return peak
    if kind == "step":
        return peak * recipe.gamma ** (step // max(steps_per_epoch, 1))
    warm = max(1, int(total_steps * recipe.warmup))  # warm-up steps
    if kind == "onecycle":
        start, end = peak / 25, peak / 25 / 1e4
        if step < warm:
            return start + (peak - start) * step / warm
        t = (step - warm) / max(total_steps - 1 - warm, 1)
        return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    if kind == "linear":
        if step < warm:
            return peak * (step + 1) / warm
        return peak * max(0.0, 1 - (step - warm) / max(total_steps - warm, 1))
    raise DigitrecError(f"unknown schedule {kind!r}; choose from {', '.join(SCHEDULES)}")


class EMA:
    """Exponential moving average of a model's parameters and buffers.

    ``ema = decay * ema + (1 - decay) * weights`` after every optimizer step; integer buffers
    (BatchNorm's step counter) are copied.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v, 1 - self.decay)
            else:
                self.shadow[k].copy_(v)
