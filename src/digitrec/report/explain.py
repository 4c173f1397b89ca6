"""``write_explain``: the learners' page, the tutorials' concepts shown on one real digit.

The convolution, edge, padding and pooling sections need no model; flattening, activations,
the occlusion map and the final probabilities use a trained one when there is one.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from digitrec import __version__
from digitrec.errors import CheckpointError, DigitrecError
from digitrec.report import explain_sections as sections
from digitrec.report.explain_figures import activation_curves, panel, probability_bars, vector_strip
from digitrec.report.figures import DIVERGING, feature_map_figure
from digitrec.report.history import CLASSICS
from digitrec.report.html import environment, png_uri, write_page
from digitrec.report.inside import (
    feature_maps,
    first_activation_input,
    nonlinearities,
    occlusion_map,
    predict_proba,
    zoo_facts,
)


@dataclass
class Digit:
    """The digit the page explains.

    Attributes:
        image: uint8 (28, 28), MNIST style (white ink on black).
        source: where it came from, e.g. ``MNIST test #7`` or the user's file name.
        label: the true label, when known.
        original: the user's photo as uint8 grey (H, W), before normalisation; None for MNIST.
    """

    image: np.ndarray
    source: str
    label: int | None = None
    original: np.ndarray | None = None


def load_digit(
    index: int | None = None,
    image: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
) -> Digit:
    """An MNIST test digit by index (default 0), or the user's image normalised to MNIST style."""
    if index is not None and image is not None:
        raise DigitrecError("give --index or --image, not both")
    if image is not None:
        from digitrec.images import load_image, to_mnist

        gray = load_image(image)
        try:
            digit = to_mnist(gray)
        except DigitrecError as exc:
            raise type(exc)(f"{image}: {exc}") from None
        return Digit(digit, Path(image).name, None, gray)
    from digitrec.data import load_mnist

    images, labels = load_mnist("test", data_dir)
    index = 0 if index is None else index
    if not 0 <= index < len(images):
        raise DigitrecError(f"--index must be in 0..{len(images) - 1}, got {index}")
    return Digit(images[index], f"MNIST test #{index}", int(labels[index]))


def load_model(checkpoint: str | os.PathLike | None):  # -> tuple[Checkpoint | None, str | None]
    """The given checkpoint (errors are the user's), else the shipped model, else None + why."""
    from digitrec.inference.checkpoint import default_checkpoint, load_checkpoint

    if checkpoint is not None:
        return load_checkpoint(checkpoint), None
    try:
        return load_checkpoint(default_checkpoint()), None
    except CheckpointError as exc:
        return None, str(exc)


def write_explain(
    out: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    index: int | None = None,
    image: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
) -> tuple[Path, str | None]:
    """Write the explain page; returns its path and, if no model was available, why not."""
    environment()  # no Jinja2: say so before the slow part
    digit = load_digit(index, image, data_dir)
    ckpt, why = load_model(checkpoint)
    context = explain_context(digit, ckpt)
    context["no_model"] = why
    return write_page(out, "explain.html", **context), why


def explain_context(digit: Digit, ckpt) -> dict[str, Any]:
    """Everything ``explain.html`` shows; ``ckpt`` (a loaded Checkpoint) may be None."""
    img = digit.image
    model = None
    if ckpt is not None:
        model = _model_sections(img, ckpt)
    activation = _activation_section(img, ckpt)
    return {
        "title": f"Inside a convolutional network: {digit.source}",
        "version": __version__,
        "generated": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "source": digit.source,
        "label": digit.label,
        "digit_png": png_uri(panel(img, "the 28×28 input", vmin=0, vmax=255)),
        "original_png": _original_png(digit.original),
        "window": sections.window_section(img),
        "edges": sections.edges_section(img),
        "padding": sections.padding_section(img),
        "pooling": sections.pooling_section(img),
        "model": model,
        "activation": activation,
        "classics": CLASSICS,
        "zoo": zoo_facts(),
    }


def _original_png(gray: np.ndarray | None) -> str | None:
    if gray is None:
        return None
    im = Image.fromarray(gray)
    im.thumbnail((320, 320))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return png_uri(buf.getvalue())


def _model_sections(img: np.ndarray, ckpt) -> dict[str, Any]:
    """Flattening into the fully connected layers, the probabilities and the occlusion map."""
    model, pre = ckpt.model, ckpt.preprocessing
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    captured: list[torch.Tensor] = []  # what the first fully connected layer receives
    handle = linears[0].register_forward_pre_hook(lambda _m, inp: captured.append(inp[0][0]))
    try:
        probs = predict_proba(model, pre, img[None])[0]
    finally:
        handle.remove()
    pred = int(probs.argmax())
    vector = captured[0].detach().float().cpu().numpy().ravel()
    maps = feature_maps(model, pre, img)
    last = maps[-1] if maps else None
    flat_from = None
    if last is not None and last.maps.size == vector.size:
        c, h, w = last.maps.shape
        flat_from = {
            "c": c,
            "h": h,
            "w": w,
            "name": last.name,
            "png": png_uri(feature_map_figure(last)),
        }
    heat = occlusion_map(model, pre, img, pred)
    return {
        "arch": ckpt.meta.get("arch"),
        "checkpoint": str(ckpt.path),
        "probs": [float(p) for p in probs],
        "pred": pred,
        "prob": float(probs[pred]),
        "probs_png": png_uri(
            probability_bars(probs, f"the model reads {pred} ({probs[pred]:.1%})")
        ),
        "vector_len": int(vector.size),
        "vector_png": png_uri(vector_strip(vector, f"the flattened vector: {vector.size} numbers")),
        "flat_from": flat_from,
        "linears": [f"{m.in_features} → {m.out_features}" for m in linears],
        "occlusion_png": png_uri(
            panel(
                img,
                f"covering a 6×6 patch: change in P({pred})",
                vmin=0,
                vmax=255,
                overlay=heat,
                colorbar="drop in probability",
            )
        ),
        "occlusion_peak": float(heat.max()),
    }


def _activation_section(img: np.ndarray, ckpt) -> dict[str, Any]:
    """ReLU against sigmoid on the values the first nonlinearity really receives.

    With a model: its first activation's input, the channel that varies most. Without one: the
    vertical-edge response scaled to about -4..4.
    """
    values = None
    uses = "first activation"
    if ckpt is not None:
        pre_act = first_activation_input(ckpt.model, ckpt.preprocessing, img)
        if pre_act is not None:
            channel = int(np.argmax(pre_act.reshape(len(pre_act), -1).std(1)))
            values = pre_act[channel]
            used = nonlinearities(ckpt.model)
            uses = f"model's first {used[0] if used else 'activation'}, channel {channel}"
    from_model = values is not None
    if values is None:
        edge = sections.edges_section(img)["vertical"]
        values = 4 * edge / (np.abs(edge).max() or 1.0)
        uses = "vertical-edge response, scaled"
    relu = np.maximum(values, 0)
    sig = 1 / (1 + np.exp(-values))
    slope = sig * (1 - sig)
    return {
        "from_model": from_model,
        "uses": uses,
        "zeroed": float((values <= 0).mean()),
        "flat": float((slope < 0.1).mean()),
        "mean_slope": float(slope.mean()),
        "pre_png": png_uri(
            panel(values, "pre-activation x", cmap=DIVERGING, symmetric=True, colorbar="x")
        ),
        "relu_png": png_uri(panel(relu, "ReLU(x)", cmap="magma", vmin=0, colorbar="output")),
        "sigmoid_png": png_uri(
            panel(sig, "sigmoid(x)", cmap="magma", vmin=0, vmax=1, colorbar="output")
        ),
        "curves_png": png_uri(activation_curves(values, uses)),
    }
