"""``TrainConfig``: everything one training run needs, saved as the run's ``config.json``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitrec.errors import DigitrecError
from digitrec.models import get_spec
from digitrec.training.recipes import Recipe, check_recipe, recipe_for


@dataclass
class TrainConfig:
    """Everything a run needs; saved as ``config.json`` in the run directory."""

    model: str = "fast"  # registry name, see `digitrec models`
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # builder arguments
    epochs: int | None = None  # None: the recipe's epochs (or steps)
    steps: int | None = None  # total optimizer steps; wins over epochs
    batch_size: int | None = None  # None: the recipe's
    lr: float | None = None  # peak learning rate; None: the recipe's
    recipe_overrides: dict[str, Any] = field(default_factory=dict)  # any other Recipe field
    seed: int = 0  # seeds the split, init, shuffling, dropout and augmentation
    val_size: int = 5000  # validation images carved from the 60k training set; 0: none
    device: str = "auto"  # auto | cpu | cuda | mps
    out: str | None = None  # run directory; None writes nothing
    data_dir: str | None = None  # MNIST folder; None: $DIGITREC_DATA or the cache
    deterministic: bool = False  # torch deterministic algorithms (bit-identical on CPU)
    max_steps: int | None = None  # smoke mode: stop after this many steps (schedule unchanged)
    train_limit: int | None = None  # use only the first N training images (tests, demos)
    threads: int | None = None  # torch intra-op threads; None: torch's default

    def recipe(self) -> Recipe:
        """The model's default recipe with this config's overrides applied."""
        changes = dict(self.recipe_overrides)
        for name in ("epochs", "steps", "batch_size", "lr"):
            if getattr(self, name) is not None:
                changes[name] = getattr(self, name)
        if self.epochs is not None and self.steps is None:
            changes["steps"] = None  # an explicit --epochs replaces a step-counted recipe
        get_spec(self.model)  # an unknown model name fails here, listing the valid ones
        return check_recipe(recipe_for(self.model).replace(**changes))


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The TrainConfig saved in a run directory (for ``--resume``)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise DigitrecError(f"{run_dir}: not a run directory (no config.json)")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DigitrecError(f"{path}: corrupt config ({exc})") from exc
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in raw.items() if k in fields})
