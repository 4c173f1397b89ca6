"""Ensembles as one model: a JSON file that names saved models and averages their probabilities.

An ensemble file (``digitrec ensemble ... --out ens.json``) looks like::

    {"format": "digitrec-ensemble", "format_version": 1, "combine": "mean-probability",
     "members": [{"path": "fast-seed0/best.safetensors", "sha256": "...", "arch": "fast",
                  "num_classes": 10}, ...]}

Member paths are relative to the JSON file's folder (absolute only where no relative path
exists). Loading checks every member's sha256, so a retrained or replaced member is an error,
not a silent change of model. Members are checkpoints, run directories (resolved to their
``best``, else ``last``, when the file is made) or ONNX exports (CPU only); never ensembles.

The combination is the mean of the members' softmax probabilities. Members must agree on the
input size and the number of classes; a different ``mean``/``std`` normalisation is undone per
member, so a ``softmax`` (inputs in 0..1) and a ``fast`` (MNIST-standardised) can be mixed.

"Not a digit" (:mod:`digitrec.inference.reject`): when *every* member has a calibrated
threshold, the ensemble rejects with the same score (``1 - max`` of its mean digit
probabilities) above the *mean of the members' thresholds*. It is not recalibrated: averaging
makes the probabilities less extreme, so the ensemble's real accept rate on digits can differ
from the members' (recorded as ``"calibrated_on"``). Where some member has no threshold, the
ensemble has none and never rejects.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitrec import __version__
from digitrec.errors import CheckpointError
from digitrec.io import atomic_write
from digitrec.models import Preprocessing

FORMAT = "digitrec-ensemble"
FORMAT_VERSION = 1
COMBINE = "mean-probability"
SUFFIX = ".json"
MAX_FILE_BYTES = 1 << 20  # an ensemble file is a few hundred bytes per member


def is_ensemble_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an ensemble file (by its ``.json`` suffix)."""
    return Path(path).suffix.lower() == SUFFIX


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class EnsembleModule(nn.Module):
    """Members behind one ``nn.Module``: returns ``log(mean_i softmax(member_i(x_i)))``, (N, C).

    ``x`` is normalised with ``pre`` (the first member's); member ``i`` gets ``x`` re-normalised
    to its own ``mean``/``std``. The softmax of the output is the mean probability exactly, so
    ``Predictor`` and TTA (which average softmaxes) need nothing ensemble-specific.
    """

    def __init__(
        self, members: list[nn.Module], pres: list[Preprocessing], pre: Preprocessing
    ) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        # x_i = x * scale + shift: pixels u = x * std + mean, then (u - mean_i) / std_i.
        self.affine = [(pre.std / p.std, (pre.mean - p.mean) / p.std) for p in pres]
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor | None = None
        for member, (scale, shift) in zip(self.members, self.affine, strict=True):
            xi = x if (scale, shift) == (1.0, 0.0) else x * scale + shift
            probs = torch.softmax(member(xi).float(), 1).to(x.device)
            total = probs if total is None else total + probs
        assert total is not None  # an ensemble has at least one member
        mean = total / len(self.members)
        return torch.log(mean.clamp_min(torch.finfo(mean.dtype).tiny))  # no -inf for 0


def _relative(member: Path, folder: Path) -> str:
    """``member`` relative to ``folder`` (POSIX separators), else absolute (another drive)."""
    try:
        return Path(os.path.relpath(member, folder)).as_posix()
    except ValueError:
        return member.as_posix()


def _member_file(given: str | os.PathLike) -> Path:
    """The file a member argument names: a checkpoint, a run directory's best/last, an .onnx."""
    from digitrec.inference.checkpoint import resolve_checkpoint_path

    if is_ensemble_path(given):
        raise CheckpointError(f"{given}: an ensemble cannot be a member; give its members")
    path = Path(given)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise CheckpointError(f"{path}: no such file")
        return path.resolve()
    return resolve_checkpoint_path(path).resolve()


def build_ensemble(
    members: list[str | os.PathLike], out: str | os.PathLike, device: str = "cpu"
) -> dict[str, Any]:
    """Check that ``members`` load and agree, then write the ensemble file ``out`` atomically.

    Returns the document written. Raises CheckpointError for no members, a member given twice,
    a member that does not load, or members that disagree on classes or input size.
    """
    from digitrec.inference.device import pick_device
    from digitrec.inference.predictor import load_model

    if not members:
        raise CheckpointError("an ensemble needs at least one member")
    files = [_member_file(m) for m in members]
    seen: dict[Path, str | os.PathLike] = {}
    for given, file in zip(members, files, strict=True):
        if file in seen:
            raise CheckpointError(f"{given}: given twice (as {seen[file]} too)")
        seen[file] = given
    dev = pick_device(device)
    loaded = [load_model(f, dev, allow_ensemble=False) for f in files]
    _check_agree(str(out), [str(f) for f in files], [pre for _, pre, _ in loaded])
    folder = Path(out).absolute().parent.resolve()
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "combine": COMBINE,
        "members": [
            {
                "path": _relative(f, folder),
                "sha256": sha256_file(f),
                "arch": str(meta.get("arch", "?")),
                "num_classes": pre.num_classes,
            }
            for f, (_, pre, meta) in zip(files, loaded, strict=True)
        ],
        "digitrec_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_ensemble(out, doc)
    return doc


def write_ensemble(out: str | os.PathLike, doc: dict[str, Any]) -> None:
    """Write an ensemble document (as from :func:`build_ensemble`) atomically."""
    atomic_write(out, json.dumps(doc, indent=2) + "\n")


def read_ensemble(path: str | os.PathLike) -> tuple[dict[str, Any], list[Path]]:
    """The ensemble document and its members' absolute paths, checked for shape (not hashes).

    Raises:
        CheckpointError: a missing file, or a file that is not a digitrec ensemble.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such ensemble file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise CheckpointError(f"{path}: not a digitrec ensemble file (over 1 MiB)")
    try:
        doc = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:  # a truncated or empty file, say
        where = f"line {exc.lineno} column {exc.colno}"
        raise CheckpointError(f"{path}: not valid JSON ({exc.msg}, {where})") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except RecursionError:
        raise CheckpointError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f'{path}: not a digitrec ensemble file (no "format": "{FORMAT}")')
    version = doc.get("format_version")
    if not (isinstance(version, int) and version >= 1):
        raise CheckpointError(f"{path}: format_version must be an integer >= 1")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer digitrec (format {version}); upgrade")
    if doc.get("combine") != COMBINE:
        raise CheckpointError(f"{path}: unknown combination {doc.get('combine')!r}")
    members = doc.get("members")
    if not isinstance(members, list):
        raise CheckpointError(f'{path}: "members" must be a list, not {type(members).__name__}')
    if not members:
        raise CheckpointError(f"{path}: the ensemble lists no members")
    folder = path.resolve().parent
    paths = []
    for i, m in enumerate(members, 1):
        if not (
            isinstance(m, dict)
            and isinstance(m.get("path"), str)
            and m["path"]
            and isinstance(m.get("sha256"), str)
        ):
            raise CheckpointError(f"{path}: member {i} needs a path and a sha256")
        paths.append(folder / m["path"])  # an absolute path replaces the folder
    return doc, paths


def _check_agree(where: str, names: list[str], pres: list[Preprocessing]) -> None:
    """One line naming the first member that differs from member 1 in classes or input size."""
    first = pres[0]
    for name, pre in zip(names[1:], pres[1:], strict=True):
        for key, what in (("num_classes", "classes"), ("input_size", "input size")):
            if getattr(pre, key) != getattr(first, key):
                raise CheckpointError(
                    f"{where}: members disagree on {what}: {getattr(first, key)} in {names[0]}, "
                    f"{getattr(pre, key)} in {name}"
                )


def load_ensemble(
    path: str | os.PathLike, device: torch.device
) -> tuple[EnsembleModule, Preprocessing, dict[str, Any]]:
    """An ensemble file as ``(module, preprocessing, meta)``, for ``Predictor``.

    Raises:
        CheckpointError: a malformed file, a missing or changed member (sha256), a member that
            does not load or is not the arch/classes recorded, or members that disagree.
    """
    from digitrec.inference.predictor import load_model

    doc, files = read_ensemble(path)
    for i, (file, m) in enumerate(zip(files, doc["members"], strict=True), 1):
        if not file.is_file():
            raise CheckpointError(f"{path}: member {i} ({m['path']}) is missing")
        if sha256_file(file) != m["sha256"]:
            raise CheckpointError(
                f"{path}: member {i} ({m['path']}) changed since the ensemble was made "
                "(sha256 differs); rebuild it with digitrec ensemble"
            )
    loaded = [load_model(f, device, allow_ensemble=False) for f in files]
    for i, (m, (_, pre, meta)) in enumerate(zip(doc["members"], loaded, strict=True), 1):
        # The file records what each member is; a record edited by hand must not mislabel it.
        own = {"arch": str(meta.get("arch", "?")), "num_classes": pre.num_classes}
        for key, value in own.items():
            if key in m and m[key] != value:
                raise CheckpointError(
                    f"{path}: member {i} ({m['path']}) is recorded as {key} {m[key]!r} but its "
                    f"checkpoint says {value!r}; rebuild the ensemble with digitrec ensemble"
                )
    pres = [pre for _, pre, _ in loaded]
    _check_agree(str(path), [m["path"] for m in doc["members"]], pres)
    module = EnsembleModule([model for model, _, _ in loaded], pres, pres[0])
    return module, pres[0], _meta(doc, [meta for _, _, meta in loaded], pres[0])


def _common(values: list[Any]) -> Any:
    """The value all members share, else None."""
    return values[0] if all(v == values[0] for v in values) else None


def _meta(doc: dict[str, Any], metas: list[dict[str, Any]], pre: Preprocessing) -> dict[str, Any]:
    """What ``Predictor.meta`` holds for an ensemble: enough for evaluate, serve and reject."""
    from digitrec.inference.reject import SCORE, reject_info

    archs = [str(m.get("arch", "?")) for m in metas]
    kinds = sorted(set(archs), key=archs.index)
    name = ", ".join(f"{archs.count(a)} x {a}" for a in kinds)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "arch": "ensemble",
        "name": f"ensemble ({name})",
        "members": doc["members"],
        "preprocessing": dataclasses.asdict(pre),
    }
    dataset = _common([json.dumps(m.get("dataset"), sort_keys=True) for m in metas])
    if dataset is not None and metas[0].get("dataset") is not None:
        meta["dataset"] = metas[0]["dataset"]
    # `evaluate --split val|train` is honest only where every member held out the same images.
    configs = [m.get("train_config") or {} for m in metas]
    # The seed only picks the held-out images when there are some.
    split = _common(
        [(c.get("val_size"), c.get("seed") if c.get("val_size") else 0) for c in configs]
    )
    meta["same_val_split"] = split is not None and dataset is not None
    if split is not None and dataset is not None:
        meta["train_config"] = {"val_size": split[0], "seed": split[1]}
    infos = [reject_info(m) for m in metas]
    if all(info is not None for info in infos):
        thresholds = [float(info["threshold"]) for info in infos if info is not None]
        meta["reject"] = {
            "score": SCORE,
            "threshold": sum(thresholds) / len(thresholds),
            "calibrated_on": "the mean of the members' thresholds (not recalibrated)",
        }
    if isinstance(doc.get("test_metrics"), dict):
        meta["test_metrics"] = doc["test_metrics"]
    return meta
