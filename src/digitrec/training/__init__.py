"""Training: recipes, the config, the loop, optimizers and schedules, augmentation, progress."""

from digitrec.training.config import TrainConfig, read_run_config
from digitrec.training.loop import train, train_model
from digitrec.training.recipes import RECIPES, Recipe, check_recipe, recipe_for
from digitrec.training.result import TrainResult
from digitrec.training.run_writer import RunWriter

__all__ = [
    "RECIPES",
    "Recipe",
    "RunWriter",
    "TrainConfig",
    "TrainResult",
    "check_recipe",
    "read_run_config",
    "recipe_for",
    "train",
    "train_model",
]
