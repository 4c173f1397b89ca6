"""Training: recipes, the config, the loop, optimizers and schedules, augmentation, progress."""

from digitrec.training.config import TrainConfig, read_run_config
from digitrec.training.loop import train
from digitrec.training.recipes import RECIPES, Recipe, check_recipe, recipe_for

__all__ = ["RECIPES", "Recipe", "TrainConfig", "check_recipe", "read_run_config", "recipe_for", "train"]
