"""``TrainConfig``: everything one training run needs, saved as the run's ``config.json``."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitrec.data import get_dataset
from digitrec.errors import DigitrecError
from digitrec.models import get_spec
from digitrec.training.recipes import Recipe, check_recipe, recipe_for


@dataclass
class TrainConfig:
    """Everything a run needs; saved as ``config.json`` in the run directory."""

    model: str = "fast"  # registry name, see `digitrec models`
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # builder arguments
    # `digitrec data info` names: mnist, fashion-mnist, idx:/folder, kaggle-csv:/train.csv
    dataset: str = "mnist"
    epochs: int | None = None  # None: the recipe's epochs (or steps)
    steps: int | None = None  # total optimizer steps; wins over epochs
    batch_size: int | None = None  # None: the recipe's
    lr: float | None = None  # peak learning rate; None: the recipe's
    recipe_overrides: dict[str, Any] = field(default_factory=dict)  # any other Recipe field
    seed: int = 0  # seeds the split, init, shuffling, dropout and augmentation
    val_size: int = 5000  # validation images carved from the training split; 0: none
    device: str = "auto"  # auto | cpu | cuda | mps
    out: str | None = None  # run directory; None writes nothing
    data_dir: str | None = None  # the dataset's folder; None: its env variable or the cache
    deterministic: bool = False  # torch deterministic algorithms (bit-identical on CPU)
    max_steps: int | None = None  # smoke mode: stop after this many steps (schedule unchanged)
    train_limit: int | None = None  # use only the first N training images (tests, demos)
    threads: int | None = None  # torch intra-op threads; None: torch's default
    save_every_s: float = 60.0  # also save last.safetensors within an epoch this often (seconds)

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


# numpy's and torch's seeders both take 0..2**32-1 (torch more, numpy no negatives).
SEED_MAX = 2**32 - 1


def check_config(cfg: TrainConfig) -> Recipe:
    """Refuse impossible values before any data loads; return the resolved recipe."""
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise DigitrecError(f"--seed must be a whole number, got {cfg.seed!r}")
    if not 0 <= cfg.seed <= SEED_MAX:
        raise DigitrecError(f"--seed must be in 0..{SEED_MAX}, got {cfg.seed}")
    n = get_dataset(cfg.dataset).split_sizes.get("train")  # published size (MNIST's: 60,000)
    if cfg.val_size < 0 or (n is not None and cfg.val_size >= n):
        bounds = f"in 0..{n - 1}" if n is not None else "at least 0"
        raise DigitrecError(f"--val-size must be {bounds}, got {cfg.val_size}")
    for name in ("max_steps", "threads", "train_limit"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise DigitrecError(f"{flag} must be at least 1, got {value}")
    if not (math.isfinite(cfg.save_every_s) and cfg.save_every_s > 0):
        raise DigitrecError(f"--save-every must be a positive number, got {cfg.save_every_s}")
    return cfg.recipe()


def auto_threads() -> tuple[int, int]:
    """``(threads, cores)``: the cores this process may use, less those other work keeps busy.

    Busy cores are the 1-minute load average; two torch threads on a machine whose other core
    is taken train many times slower than one.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    idle = (os.cpu_count() or cores) - busy  # the load average counts the whole machine
    return max(1, min(cores, round(idle))), cores


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
