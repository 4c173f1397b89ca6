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
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitrec import __version__
from digitrec.errors import CheckpointError, DigitrecError
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
    return path


def _read_header(path: Path) -> dict[str, Any]:
    """Validate the safetensors framing and return its JSON header; refuse pickles."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
            size = path.stat().st_size
            if head[:2] == b"PK" or head[:1] == b"\x80":
                raise CheckpointError(
                    f"{path}: this is a pickle (torch.save) file; digitrec never unpickles "
                    f"files, since that can run arbitrary code. Use a .safetensors checkpoint"
                )
            if len(head) < 9 or head[8:9] != b"{":
                raise CheckpointError(f"{path}: not a safetensors checkpoint")
            (header_len,) = struct.unpack("<Q", head[:8])
            if header_len > size - 8:
                raise CheckpointError(f"{path}: corrupt checkpoint (truncated header)")
            fh.seek(8)
            header = json.loads(fh.read(header_len))
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint header") from exc
    return header


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", with_train_state: bool = False
) -> Checkpoint:
    """Load a checkpoint (file or run directory) into a fresh model in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = resolve_checkpoint_path(path)
    header = _read_header(path)
    try:
        meta = json.loads(header.get("__metadata__", {}).get("digitrec", ""))
    except (json.JSONDecodeError, TypeError, AttributeError):
        raise CheckpointError(f"{path}: safetensors file without digitrec metadata") from None
    if meta.get("format") != FORMAT or not isinstance(meta.get("arch"), str):
        raise CheckpointError(f"{path}: not a digitrec checkpoint")
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint: {exc}") from exc
    arch, kwargs = meta["arch"], meta.get("arch_kwargs") or {}
    try:
        get_spec(arch)
    except DigitrecError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    version = meta.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer digitrec (format {version}); upgrade")
    spec = get_spec(arch)
    weights = meta.get("weights_version", version if version < 3 else 1)
    if not isinstance(weights, int) or weights > spec.weights_version:
        raise CheckpointError(
            f"{path}: {arch} weights version {weights} is newer than this digitrec's "
            f"({spec.weights_version}); upgrade"
        )
    model = create_model(arch, **kwargs)
    state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
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
    model.to(device).eval()
    train = {}
    if with_train_state:
        train = {k[6:]: v for k, v in tensors.items() if k.startswith("train.")}
    pre = Preprocessing(**meta.get("preprocessing", {}))
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
