"""One inference path for the CLI, the server and the tests: ``Predictor``."""

from __future__ import annotations

import functools
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from digitrec.checkpoint import load_checkpoint
from digitrec.errors import DigitrecError
from digitrec.evaluate import predict_logits
from digitrec.models import Preprocessing, to_input


@dataclass
class Predictor:
    """A model in eval mode plus the preprocessing it was trained with."""

    model: nn.Module
    preprocessing: Preprocessing
    device: torch.device
    meta: dict
    tta: bool = False  # average over 1-pixel shifted views (5x the compute)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str = "cpu", tta: bool = False
    ) -> Predictor:
        """Load a checkpoint file, run directory or ONNX export; each describes itself.

        An ``.onnx`` file (from :func:`digitrec.export.export_onnx`) runs on ONNX Runtime (CPU).
        """
        if Path(path).suffix.lower() == ".onnx":
            from digitrec.export import load_onnx

            if device != "cpu":
                raise DigitrecError(f"{path}: ONNX models run on the CPU here (not {device})")
            module, meta, pre = load_onnx(path)
            return cls(module, pre, torch.device("cpu"), meta, tta)
        ckpt = load_checkpoint(path, device=device)
        model = fold_batchnorm(ckpt.model)
        if ckpt.meta.get("recipe", {}).get("channels_last"):
            # Trained channels-last: its strided convs also infer ~2x faster in NHWC on CPU.
            model = model.to(memory_format=torch.channels_last)
        return cls(model, ckpt.preprocessing, torch.device(device), ckpt.meta, tta)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``float32 (N, C)`` for MNIST-style ``uint8 (N, 28, 28)``.

        C is the checkpoint's ``num_classes``: 10, or 11 for the ``splitter``.
        """
        images = np.asarray(images, dtype=np.uint8).reshape(-1, 28, 28)
        if len(images) == 0:
            return np.zeros((0, self.preprocessing.num_classes), dtype=np.float32)
        x = to_input(images, self.preprocessing, self.device)
        logits = predict_logits(self.model, x, tta=self.tta).float()
        return torch.softmax(logits, 1).cpu().numpy()

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted digits ``int64 (N,)``."""
        return self.predict_proba(images).argmax(1)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm2d that directly follows a Conv2d into the conv's weights.

    Inference then skips one pass over every activation map; outputs match to float rounding.
    Only ``nn.Sequential`` neighbours are folded, where the order is certain.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in list(model.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for a, b in itertools.pairwise(names):
            conv, bn = module._modules[a], module._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module._modules[a] = fuse_conv_bn_eval(conv.eval(), bn.eval())
                module._modules[b] = nn.Identity()
    return model


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class ImageResult:
    """One file's outcome: a prediction, or the one-line reason it failed."""

    source: str
    digit: int | None = None
    prob: float | None = None
    top: list[tuple[int, float]] | None = None
    probs: np.ndarray | None = None  # float32 (10,)
    image: np.ndarray | None = None  # uint8 (28, 28): what the model saw
    original: np.ndarray | None = None  # uint8 (H, W) grey, as loaded
    error: str | None = None

    def as_dict(self) -> dict:
        out = {"source": self.source, "digit": self.digit, "prob": self.prob}
        out["top"] = [{"digit": d, "prob": p} for d, p in self.top or []]
        if self.error:
            out["error"] = self.error
        return out


def expand_sources(paths: list[str]) -> list[str]:
    """Files as given, plus image files found by walking any directories (sorted)."""
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            out.extend(str(f) for f in found if f.is_file())
        else:
            out.append(str(p))
    return out


def top_k(probs: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` most likely digits with their probabilities, most likely first."""
    order = np.argsort(-probs)[:k]
    return [(int(d), float(probs[d])) for d in order]


def predict_files(predictor: Predictor, sources: list[str], k: int = 3) -> list[ImageResult]:
    """Preprocess every file MNIST-style and classify the good ones in one batch.

    A file that cannot be read, or holds no digit, gets an ``error`` and does not stop the rest.
    """
    from digitrec.preprocess import load_image, to_mnist

    results = []
    for src in sources:
        try:
            original = load_image(src)
            results.append(ImageResult(src, image=to_mnist(original), original=original))
        except DigitrecError as exc:
            msg = str(exc)
            results.append(ImageResult(src, error=msg if src in msg else f"{src}: {msg}"))
    good = [r for r in results if r.error is None]
    if good:
        probs = predictor.predict_proba(np.stack([r.image for r in good]))
        for r, p in zip(good, probs, strict=True):
            r.probs, r.top = p, top_k(p, k)
            r.digit, r.prob = r.top[0]
    return results


SPLITTER = Path(__file__).parent / "weights" / "splitter.safetensors"


@functools.cache
def default_splitter() -> Predictor:
    """The packaged ``splitter`` model (trained as the README says), loaded once."""
    return Predictor.from_checkpoint(SPLITTER)


def read_number(
    predictor: Predictor, source: str | os.PathLike | bytes, splitter: Predictor | None = None
) -> dict:
    """Segment a photo of a multi-digit number and read it left to right.

    Args:
        predictor: Reads each digit.
        source: Image path or bytes.
        splitter: Scores candidate cuts: the packaged ``splitter`` model by default, which has a
            "not one digit" class; pass ``predictor`` itself to score cuts by its own
            confidence.

    Returns:
        ``{"number": "2026", "digits": [{"digit", "prob", "box"}...], "crops": uint8 (K,28,28)}``
    """
    from digitrec.preprocess import load_image
    from digitrec.segment import segment_digits

    splitter = splitter or default_splitter()
    knows_nondigits = splitter.preprocessing.num_classes > 10

    def score(crops: np.ndarray) -> np.ndarray:
        return splitter.predict_proba(crops)[:, :10].max(1)  # P(the most likely single digit)

    gray = load_image(source)
    pieces = segment_digits(gray, score=score, straight_cuts=knows_nondigits)
    crops = np.stack([crop for _, crop in pieces])
    probs = predictor.predict_proba(crops)
    digits = [
        {"digit": int(p.argmax()), "prob": float(p.max()), "box": list(box)}
        for (box, _), p in zip(pieces, probs, strict=True)
    ]
    return {
        "number": "".join(str(d["digit"]) for d in digits),
        "digits": digits,
        "crops": crops,
        "gray": gray,
    }


def ensemble_proba(predictors: list[Predictor], images: np.ndarray) -> np.ndarray:
    """Average the class probabilities of several models (an ensemble)."""
    return np.mean([p.predict_proba(images) for p in predictors], axis=0)
