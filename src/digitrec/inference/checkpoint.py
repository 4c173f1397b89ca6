"""Self-describing checkpoints: safetensors weights plus JSON metadata in the same file.

The safetensors header's ``__metadata__["digitrec"]`` holds JSON with the architecture and its
kwargs, the preprocessing, the training config, the metrics and the versions, so ``evaluate``,
``predict`` and ``serve`` need only the path. Tensor keys:

- ``model.*``: the weights to use for inference (the EMA weights when the recipe keeps an EMA);
- ``train.*``: what ``--resume`` needs: raw weights (when they differ), optimizer state, RNG.

Loading never unpickles: a ``.pt`` / ``.pth`` pickle is refused with a clear message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitrec import __version__
from digitrec.errors import CheckpointError, DigitrecError
from digitrec.inference.framing import is_int, read_header, show
from digitrec.io import atomic_path
from digitrec.models import Preprocessing, create_model, get_spec

FORMAT = "digitrec-checkpoint"
# The file format: 3 adds ``weights_version``. Formats 1 and 2 said nothing about the
# architecture's weights; their weights version equals their format version.
FORMAT_VERSION = 3
SUFFIX = ".safetensors"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode) and everything that describes it."""

    model: nn.Module
    meta: dict[str, Any]
    preprocessing: Preprocessing
    path: Path
    train_tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def build_meta(
    arch: str,
    arch_kwargs: dict[str, Any],
    preprocessing: Preprocessing,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON metadata every checkpoint carries."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "arch_kwargs": arch_kwargs,
        "weights_version": get_spec(arch).weights_version,
        "preprocessing": dataclasses.asdict(preprocessing),
        "torch_version": torch.__version__,
        "digitrec_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def save_checkpoint(
    path: str | os.PathLike,
    model_state: dict[str, torch.Tensor],
    meta: dict[str, Any],
    train_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write weights (and optional resume tensors) plus metadata, atomically."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()}
    for k, v in (train_tensors or {}).items():
        tensors[f"train.{k}"] = v.detach().cpu().contiguous()
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"digitrec": json.dumps(meta)})
    return path


def resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    """Accept a checkpoint file or a run directory (its ``best`` checkpoint, else ``last``)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best", "last"):
            if (path / f"{name}{SUFFIX}").is_file():
                return path / f"{name}{SUFFIX}"
        raise CheckpointError(f"{path}: run directory has no best{SUFFIX} or last{SUFFIX}")
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or run directory")
    if not path.is_file():  # a FIFO or device would block or never end
        raise CheckpointError(f"{path}: not a regular file")
    return path


def preprocessing_from_meta(raw: object, where: str) -> Preprocessing:
    """Validate a checkpoint's (or ONNX export's) ``preprocessing`` JSON; missing keys default.

    Raises:
        CheckpointError: ``where: ...`` for an unknown key, a wrong type, a non-finite number,
            ``std <= 0``, or an ``input_size`` / ``num_classes`` outside a sane range.
    """
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where}: preprocessing must be a JSON object")
    defaults = {f.name: f.default for f in dataclasses.fields(Preprocessing)}
    for key, value in raw.items():
        if key not in defaults:
            raise CheckpointError(f"{where}: unknown preprocessing key {show(key)}")
        if isinstance(defaults[key], float):
            if not (isinstance(value, int | float) and not isinstance(value, bool)) or (
                not math.isfinite(value)
            ):
                raise CheckpointError(f"{where}: preprocessing {key} must be a finite number")
        elif isinstance(defaults[key], int) and not is_int(value):
            raise CheckpointError(f"{where}: preprocessing {key} must be an integer")
    values = {**defaults, **raw}
    for key, low, high in (("input_size", 1, 1024), ("num_classes", 2, 100_000)):
        if not low <= values[key] <= high:
            raise CheckpointError(f"{where}: preprocessing {key} must be in {low}..{high}")
    if values["std"] <= 0:
        raise CheckpointError(f"{where}: preprocessing std must be > 0")
    floats = {k: float(v) for k, v in values.items() if isinstance(defaults[k], float)}
    return Preprocessing(**{**values, **floats})


def _digitrec_meta(path: Path, header: dict[str, Any], with_train_state: bool) -> dict[str, Any]:
    """The ``digitrec`` metadata, with every field that later code relies on type-checked."""
    raw = header.get("__metadata__", {}).get("digitrec")
    try:
        meta = json.loads(raw) if isinstance(raw, str) else None
    except (json.JSONDecodeError, RecursionError):
        meta = None
    if meta is None:
        raise CheckpointError(f"{path}: safetensors file without digitrec metadata")
    if (
        not isinstance(meta, dict)
        or meta.get("format") != FORMAT
        or not isinstance(meta.get("arch"), str)
    ):
        raise CheckpointError(f"{path}: not a digitrec checkpoint")
    for key in ("format_version", "weights_version"):
        if key in meta and not (is_int(meta[key]) and meta[key] >= 1):
            raise CheckpointError(f"{path}: {key} must be an integer >= 1")
    for key in ("arch_kwargs", "recipe", "train_config", "metrics"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise CheckpointError(f"{path}: {key} must be a JSON object")
    for key in ("val_size", "seed"):  # re-derive the run's validation split
        value = (meta.get("train_config") or {}).get(key)
        if value is not None and not (is_int(value) and value >= 0):
            raise CheckpointError(f"{path}: train_config.{key} must be an integer >= 0")
    if with_train_state:
        for key, low in (("step", 0), ("steps_per_epoch", 1)):
            if not (is_int(meta.get(key)) and meta[key] >= low):
                raise CheckpointError(f"{path}: {key} must be an integer >= {low}")
        best = meta.get("best_score", -1.0)
        if not (isinstance(best, int | float) and math.isfinite(best)):
            raise CheckpointError(f"{path}: best_score must be a finite number")
    return meta


def _create(path: Path, arch: str, kwargs: dict[str, Any]) -> nn.Module:
    """``create_model``, with whatever tampered kwargs make the builder raise as one line."""
    try:
        return create_model(arch, **kwargs)
    except (DigitrecError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot build model {arch!r}: {detail}") from None


def _build(path: Path, arch: str, kwargs: dict[str, Any], state: dict[str, torch.Tensor]):
    """Build ``arch`` for these weights; the shapes are compared on the meta device first, so
    tampered kwargs never allocate a model larger than the file."""
    with torch.device("meta"):
        probe = _create(path, arch, kwargs).state_dict()
    for key in sorted(probe.keys() | state.keys()):
        want = tuple(probe[key].shape) if key in probe else None
        have = tuple(state[key].shape) if key in state else None
        if want != have:
            detail = (
                f"{key!r} is missing from the file" if have is None
                else f"the file's {key!r} is not in the model" if want is None
                else f"{key!r} is {list(have)} in the file, {list(want)} in the model"
            )  # fmt: skip
            raise CheckpointError(f"{path}: weights do not fit model {arch!r}: {detail}")
    return _create(path, arch, kwargs)


def _check_fits(path: Path, model: nn.Module, arch: str, pre: Preprocessing) -> None:
    """One forward pass on a blank image: the input size and class count must fit the model."""
    x = torch.zeros(1, 1, pre.input_size, pre.input_size)
    try:
        with torch.inference_mode():
            out = model(x)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: preprocessing input_size {pre.input_size} does not fit model {arch!r}"
        ) from exc
    if tuple(out.shape) != (1, pre.num_classes):
        raise CheckpointError(
            f"{path}: preprocessing num_classes {pre.num_classes} does not match the weights "
            f"(the model has {out.shape[-1]} outputs)"
        )


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", with_train_state: bool = False
) -> Checkpoint:
    """Load a checkpoint (file or run directory) into a fresh model in eval mode.

    Raises:
        CheckpointError: for anything wrong with the file: framing, metadata or weights.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = resolve_checkpoint_path(path)
    if path.suffix.lower() == ".json":  # digitrec.inference.ensemble's files
        raise CheckpointError(
            f"{path}: an ensemble file; this takes a single model (give one of its members)"
        )
    meta = _digitrec_meta(path, read_header(path), with_train_state)
    arch, kwargs = meta["arch"], meta.get("arch_kwargs") or {}
    try:
        spec = get_spec(arch)
    except DigitrecError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    version = meta.get("format_version", 1)
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer digitrec (format {version}); upgrade")
    weights = meta.get("weights_version", version if version < 3 else 1)
    if weights > spec.weights_version:
        raise CheckpointError(
            f"{path}: {arch} weights version {weights} is newer than this digitrec's "
            f"({spec.weights_version}); upgrade"
        )
    pre = preprocessing_from_meta(meta.get("preprocessing", {}), str(path))
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint: {exc}") from exc
    state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    model = _build(path, arch, kwargs, state)
    # An architecture whose weight layout changed converts its own older weights.
    upgrade = getattr(model, "upgrade_state_dict", None)
    if (
        weights < spec.weights_version
        and upgrade is not None
        and upgrade(state, weights)
        and with_train_state
    ):
        raise CheckpointError(
            f"{path}: holds {arch} weights of an older layout (version {weights}); it can be "
            "evaluated and used for prediction, but not resumed: start a new run"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) or first[0]
        raise CheckpointError(f"{path}: weights do not fit model {arch!r}: {detail}") from None
    model.eval()
    _check_fits(path, model, arch, pre)
    model.to(device)
    train = {}
    if with_train_state:
        train = {k[6:]: v for k, v in tensors.items() if k.startswith("train.")}
    return Checkpoint(model=model, meta=meta, preprocessing=pre, path=path, train_tensors=train)


# The digit model shipped in the package (see the README's "make weights"), used when a
# command is given no --checkpoint.
SHIPPED_MODEL = Path(__file__).parent.parent / "weights" / f"digits{SUFFIX}"


def default_checkpoint() -> Path:
    """The shipped digit model; a clear error where this install has none."""
    if not SHIPPED_MODEL.is_file():
        raise CheckpointError(
            "no --checkpoint given and this install ships no default model; train one "
            "(digitrec train --model fast) and pass --checkpoint runs/fast-seed0"
        )
    return SHIPPED_MODEL
