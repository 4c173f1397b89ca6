"""The training and validation tensors of a run, normalised and on the training device."""

from __future__ import annotations

import numpy as np
import torch

from digitrec.data import DatasetSpec, get_dataset, load_split, train_val_split
from digitrec.errors import DigitrecError
from digitrec.models import UNIT_RANGE, Preprocessing, get_spec, to_input
from digitrec.training.config import TrainConfig

# The zoo's architectures are built for 28x28 inputs (their fully connected layers' sizes).
INPUT_SIZE = 28
# The class label of synthetic "not one digit" images: one past the dataset's own classes.
NONDIGIT = "not one digit"


def load_training_data(
    cfg: TrainConfig, device: torch.device, pre: Preprocessing, nondigits: float = 0.0
) -> dict[str, torch.Tensor]:
    """Train/val tensors on the device: normalised float images and int64 labels.

    Keys ``x`` (N, 1, H, W) and ``y`` (N,), plus ``val_x`` and ``val_y`` when ``val_size`` > 0.
    With ``nondigits`` > 0, that fraction of synthetic "not one digit" images, made from the
    training part only, joins the training tensors as one extra class.
    """
    spec, images, labels = _train_split(cfg)
    return _tensors(cfg, spec, images, labels, device, pre, nondigits)


def prepare_dataset(
    cfg: TrainConfig, nondigits: float = 0.0
) -> tuple[DatasetSpec, Preprocessing, np.ndarray, np.ndarray]:
    """The run's dataset: its fitted spec, the model's preprocessing for it, images and labels.

    The preprocessing standardises with the dataset's own mean and std, unless the model feeds
    ``x / 255`` as its source did (``UNIT_RANGE``); ``num_classes`` counts the extra
    "not one digit" class when the recipe adds one.
    """
    spec, images, labels = _train_split(cfg)
    model_pre = get_spec(cfg.model).preprocessing
    unit = (model_pre.mean, model_pre.std) == (UNIT_RANGE.mean, UNIT_RANGE.std)
    assert spec.num_classes is not None and spec.mean is not None and spec.std is not None
    pre = Preprocessing(
        input_size=INPUT_SIZE,
        mean=0.0 if unit else round(spec.mean, 4),
        std=1.0 if unit else round(spec.std, 4),
        num_classes=spec.num_classes + (1 if nondigits > 0 else 0),
    )
    return spec, pre, images, labels


def _train_split(cfg: TrainConfig) -> tuple[DatasetSpec, np.ndarray, np.ndarray]:
    spec = get_dataset(cfg.dataset)
    images, labels = load_split(spec, "train", cfg.data_dir)
    spec = spec.fit(images, labels)
    if images.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        h, w = images.shape[1:]
        raise DigitrecError(
            f"{spec.name}: images are {h}x{w}; the models here take "
            f"{INPUT_SIZE}x{INPUT_SIZE} (resize the data first)"
        )
    return spec, images, labels


def _tensors(
    cfg: TrainConfig,
    spec: DatasetSpec,
    images: np.ndarray,
    labels: np.ndarray,
    device: torch.device,
    pre: Preprocessing,
    nondigits: float,
    nondigit_source: str = "",
) -> dict[str, torch.Tensor]:
    train_idx, val_idx = train_val_split(len(images), cfg.val_size, cfg.seed)
    if cfg.train_limit is not None:
        train_idx = train_idx[: cfg.train_limit]
    x, y = images[train_idx], labels[train_idx]
    if nondigits > 0:
        extra = _make_nondigits(x, round(nondigits * len(x)), cfg.seed, nondigit_source)
        assert spec.num_classes is not None
        x = np.concatenate([x, extra])
        y = np.concatenate([y, np.full(len(extra), spec.num_classes, dtype=y.dtype)])
    out = {"x": to_input(x, pre, device), "y": torch.as_tensor(y).to(device)}
    if len(val_idx):
        out["val_x"] = to_input(images[val_idx], pre, device)
        out["val_y"] = torch.as_tensor(labels[val_idx]).to(device)
    return out


def _make_nondigits(x: np.ndarray, n: int, seed: int, source: str) -> np.ndarray:
    """``n`` non-digits: the splitter's pieces, or the kinds named by ``source``."""
    if not source or source == "pieces":
        from digitrec.data.synth import make_nondigits

        return make_nondigits(x, n, seed=seed)
    from digitrec.data.nondigits import make_mixed, parse_source

    return make_mixed(n, x, seed, parse_source(source))


def load_run_data(
    cfg: TrainConfig, device: torch.device, nondigits: float = 0.0, nondigit_source: str = ""
) -> tuple[dict[str, torch.Tensor], Preprocessing, dict[str, object]]:
    """Tensors, preprocessing and the dataset's checkpoint record (``meta["dataset"]``)."""
    spec, pre, images, labels = prepare_dataset(cfg, nondigits)
    data = _tensors(cfg, spec, images, labels, device, pre, nondigits, nondigit_source)
    record = spec.to_meta()
    if nondigits > 0:
        record["class_names"] = [*record["class_names"], NONDIGIT]
    return data, pre, record
