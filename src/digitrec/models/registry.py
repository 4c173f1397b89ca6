"""Model registry: ``@register_model`` builders, ``create_model``, ``list_models``.

Registration is eager: ``digitrec.models`` imports every architecture module, so the registry is
complete as soon as the package is imported, with no import cycle. Each entry carries the
preprocessing that travels with the model into its checkpoints. Training recipes live in
:mod:`digitrec.training.recipes`, keyed by the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from digitrec.errors import DigitrecError, lookup
from digitrec.models.preprocessing import Preprocessing


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, preprocessing and weights-layout version."""

    name: str
    builder: Callable[..., nn.Module]  # takes num_classes plus its own keyword arguments
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    description: str = ""
    # Bumped when the meaning of the saved weights changes; the architecture's
    # ``upgrade_state_dict(state, version)`` converts older ones on load.
    weights_version: int = 1


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    preprocessing: Preprocessing | None = None,
    description: str = "",
    weights_version: int = 1,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a model builder under ``name``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(
            name, builder, preprocessing or Preprocessing(), description, weights_version
        )
        return builder

    return decorate


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; an unknown name lists the valid ones."""
    return lookup(_REGISTRY, name, "model")


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build a fresh, randomly initialised model."""
    spec = get_spec(name)
    try:
        return spec.builder(**kwargs)
    except TypeError as exc:
        raise DigitrecError(f"bad arguments for model {name!r}: {exc}") from exc
