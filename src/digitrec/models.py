"""Model registry: each entry is an architecture plus its preprocessing and default recipe.

``create_model(name, **kw)`` builds a network; ``get_spec(name)`` gives the preprocessing that
travels with it into checkpoints and the recipe that ``digitrec train --model NAME`` follows.
The architectures themselves live in :mod:`digitrec.zoo`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import nn

from digitrec.errors import DigitrecError


@dataclass(frozen=True)
class Preprocessing:
    """How raw ``uint8`` pixels become model input: ``(x / 255 - mean) / std``."""

    input_size: int = 28  # pixels per side
    mean: float = 0.1307  # MNIST training-set mean of x / 255
    std: float = 0.3081  # MNIST training-set std of x / 255
    num_classes: int = 10


# The TensorFlow and Keras tutorials feed x / 255 without standardising.
UNIT_RANGE = Preprocessing(mean=0.0, std=1.0)


@dataclass(frozen=True)
class Recipe:
    """A training recipe. ``steps``, when set, wins over ``epochs``."""

    optimizer: str  # "sgd" | "adam" | "adamw" | "adadelta"
    lr: float  # peak learning rate
    batch_size: int
    epochs: int = 1
    steps: int | None = None  # total optimizer steps (the TensorFlow tutorials count steps)
    schedule: str = "constant"  # "constant" | "step" (x gamma per epoch) | "onecycle" | "linear"
    gamma: float = 0.7  # "step" schedule decay per epoch
    warmup: float = 0.2  # "onecycle": fraction of steps spent rising to lr
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    augment: str = "none"  # "none" | "shift" | "affine": batch augmentation, see augment.py
    ema: float = 0.0  # decay of an exponential moving average of weights; 0 disables
    channels_last: bool = False  # NHWC memory format: 1.4-1.9x faster strided convs on CPU
    # Synthetic "not one digit" images (touching pairs, cut digits) added as class 10, as a
    # fraction of the training images; for models that score cuts in `read` (see synth.py).
    nondigits: float = 0.0
    source: str = ""  # where the recipe comes from

    def replace(self, **changes: object) -> Recipe:
        """A copy with some fields changed; unknown field names fail clearly."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise DigitrecError(f"unknown recipe field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_FALSE, _TRUE = ("0", "false", "no", "off"), ("1", "true", "yes", "on")


def parse_recipe_settings(items: Sequence[str]) -> dict[str, object]:
    """``["augment=shift", "ema=0.999"]`` -> typed overrides for :meth:`Recipe.replace`.

    Each value is converted to its field's type (``none`` clears an optional field); an unknown
    field, a missing ``=`` or a value of the wrong type fails with a one-line error.
    """
    types = {f.name: str(f.type) for f in dataclasses.fields(Recipe) if f.name != "source"}
    out: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name, raw = name.strip().replace("-", "_"), raw.strip()
        if not sep or not name:
            raise DigitrecError(f"--set {item!r}: expected FIELD=VALUE")
        if name not in types:
            fields = ", ".join(types)
            raise DigitrecError(f"--set {name}: unknown recipe field; choose from {fields}")
        kind = types[name]
        try:
            if kind.endswith("| None") and raw.lower() == "none":
                out[name] = None
            elif kind.startswith("int"):
                out[name] = int(raw)
            elif kind == "float":
                out[name] = float(raw)
                if not math.isfinite(out[name]):  # "nan" and "inf" parse, but mean nothing here
                    raise ValueError(raw)
            elif kind == "bool":
                if raw.lower() not in _FALSE + _TRUE:
                    raise ValueError(raw)
                out[name] = raw.lower() in _TRUE
            else:
                out[name] = raw
        except ValueError:
            raise DigitrecError(f"--set {name}={raw}: expected a value of type {kind}") from None
    return out


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, default recipe and preprocessing."""

    name: str
    builder: Callable[..., nn.Module]
    recipe: Recipe
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    recipe: Recipe,
    preprocessing: Preprocessing | None = None,
    description: str = "",
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a model builder under ``name``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(
            name, builder, recipe, preprocessing or Preprocessing(), description
        )
        return builder

    return decorate


def _load_zoo() -> None:
    # Importing the zoo runs its @register_model decorators; done lazily so that importing
    # this module builds nothing.
    from digitrec import zoo  # noqa: F401


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _load_zoo()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; an unknown name lists the valid ones."""
    _load_zoo()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DigitrecError(
            f"unknown model {name!r}; choose from {', '.join(sorted(_REGISTRY))}"
        ) from None


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build a fresh, randomly initialised model."""
    spec = get_spec(name)
    try:
        return spec.builder(**kwargs)
    except TypeError as exc:
        raise DigitrecError(f"bad arguments for model {name!r}: {exc}") from exc


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (elements, not tensors)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def summary(model: nn.Module, input_size: int = 28) -> str:
    """A Keras-style table: layer, output shape and parameter count, then the totals."""
    import torch

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


def to_input(images, pre: Preprocessing, device: str | object = "cpu"):
    """``uint8 (N, 28, 28)`` (numpy or tensor) -> normalised ``float32 (N, 1, 28, 28)`` on device.

    The conversion happens on the device, so a GPU receives 1 byte per pixel, not 4.
    """
    import numpy as np
    import torch

    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # torch refuses to wrap read-only memory without a warning
    x = torch.as_tensor(images).to(device)
    if x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {x.dtype}")
    # (x / 255 - mean) / std as one multiply and one subtract.
    x = x.reshape(-1, 1, pre.input_size, pre.input_size).float().mul_(1.0 / (255.0 * pre.std))
    return x.sub_(pre.mean / pre.std)
