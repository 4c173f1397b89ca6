"""Inside a network: feature maps, first-layer filters, occlusion maps and architecture facts.

Shared by the run report, the explain page and the server's "inside the network" panel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from digitrec.models import Preprocessing, count_parameters, create_model, list_models, to_input
from digitrec.models.summary import count_macs

POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
POOL_OPS = {
    "max": {"maxpool2d", "max_pool2d", "adaptivemaxpool2d", "adaptive_max_pool2d"},
    "average": {"avgpool2d", "avg_pool2d", "adaptiveavgpool2d", "adaptive_avg_pool2d"},
}
ACTIVATIONS = {
    "relu": "ReLU",
    "relu_": "ReLU",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "gelu": "GELU",
}


@dataclass
class FeatureMap:
    """One layer's output for one image.

    Attributes:
        name: the module's dotted name in the model, e.g. ``features.0``.
        kind: ``conv`` or ``pool``.
        description: e.g. ``Conv2d 1->16, 5x5, stride 2``.
        maps: float32 (C, H, W) the layer's output.
    """

    name: str
    kind: str
    description: str
    maps: np.ndarray


def describe(module: nn.Module) -> str:
    """A short human description of a conv or pooling layer."""
    if isinstance(module, nn.Conv2d):
        k, s = module.kernel_size, module.stride
        pad = module.padding if isinstance(module.padding, str) else module.padding[0]
        return (
            f"Conv2d {module.in_channels}→{module.out_channels}, {k[0]}×{k[1]}, "
            f"stride {s[0]}, padding {pad}"
        )
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "max" if isinstance(module, nn.MaxPool2d) else "average"
        return f"{kind} pool {module.kernel_size}, stride {module.stride}"
    return type(module).__name__


@torch.no_grad()
def feature_maps(model: nn.Module, pre: Preprocessing, image: np.ndarray) -> list[FeatureMap]:
    """The output of every Conv2d and pooling layer for one ``uint8 (28, 28)`` image."""
    found: list[FeatureMap] = []
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, *POOLS)):
            kind = "conv" if isinstance(module, nn.Conv2d) else "pool"

            def hook(mod, _inp, out, name=name, kind=kind) -> None:
                maps = out[0].detach().float().cpu().numpy()
                found.append(FeatureMap(name, kind, describe(mod), maps))

            hooks.append(module.register_forward_hook(hook))
    try:
        model.eval()
        model(to_input(image[None], pre, _device(model)))
    finally:
        for h in hooks:
            h.remove()
    return found


@torch.no_grad()
def first_activation_input(
    model: nn.Module, pre: Preprocessing, image: np.ndarray
) -> np.ndarray | None:
    """What the first nonlinearity receives, float32 (C, H, W); None for a linear model.

    That is the input of the first ReLU/Tanh/Sigmoid module (after any BatchNorm); for a model
    that calls ``torch.relu`` in ``forward``, the output of its first conv layer.
    """
    seen: list[np.ndarray] = []
    target = next(
        (m for m in model.modules() if isinstance(m, (nn.ReLU, nn.Tanh, nn.Sigmoid))), None
    )
    if target is not None:
        handle = target.register_forward_pre_hook(
            lambda _m, inp: seen.append(inp[0][0].detach().float().cpu().numpy().copy())
        )
    else:
        conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        if conv is None:
            return None
        handle = conv.register_forward_hook(
            lambda _m, _i, out: seen.append(out[0].detach().float().cpu().numpy())
        )
    try:
        model.eval()
        model(to_input(image[None], pre, _device(model)))
    finally:
        handle.remove()
    first = seen[0] if seen else None
    return first if first is not None and first.ndim == 3 else None


def first_layer_filters(model: nn.Module) -> tuple[str, np.ndarray] | None:
    """The first weight layer as images: ``(description, float32 (K, h, w))``.

    A Conv2d gives its K kernels (averaged over input channels); a Linear layer on the 784
    pixels gives one 28x28 template per output. None if the model has neither.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            w = module.weight.detach().float().cpu().numpy().mean(axis=1)
            return describe(module), w
        if isinstance(module, nn.Linear):
            side = round(module.in_features**0.5)
            if side * side != module.in_features:
                return None
            w = module.weight.detach().float().cpu().numpy()
            return f"Linear {module.in_features}→{module.out_features}", w.reshape(-1, side, side)
    return None


@torch.no_grad()
def predict_proba(model: nn.Module, pre: Preprocessing, images: np.ndarray) -> np.ndarray:
    """Softmax probabilities, float32 (N, C), for ``uint8 (N, 28, 28)`` images."""
    model.eval()
    logits = model(to_input(images, pre, _device(model)))
    return torch.softmax(logits.float(), 1).cpu().numpy()


def occlusion_map(
    model: nn.Module, pre: Preprocessing, image: np.ndarray, target: int, patch: int = 6
) -> np.ndarray:
    """How much the probability of ``target`` drops when a patch around each pixel is blanked.

    A ``patch`` x ``patch`` square of background slides over the image one pixel at a time;
    returns float32 (28, 28): for each pixel, the mean drop over the patches that cover it
    (positive: the model needed this part of the digit).
    """
    side = image.shape[0]
    base = predict_proba(model, pre, image[None])[0, target]
    corners = [(r, c) for r in range(side - patch + 1) for c in range(side - patch + 1)]
    batch = np.repeat(image[None], len(corners), axis=0)
    for i, (r, c) in enumerate(corners):
        batch[i, r : r + patch, c : c + patch] = 0  # MNIST background
    drop = base - predict_proba(model, pre, batch)[:, target]
    total = np.zeros((side, side), np.float64)
    count = np.zeros((side, side), np.float64)
    for (r, c), d in zip(corners, drop, strict=True):
        total[r : r + patch, c : c + patch] += d
        count[r : r + patch, c : c + patch] += 1
    return (total / count).astype(np.float32)


def _graph_ops(model: nn.Module) -> list[str]:
    """Lower-case names of the modules and functions a model's forward calls, in order.

    Read from the traced graph, so ``torch.relu`` or ``torch.max_pool2d`` called inside
    ``forward`` count too; a model fx cannot trace falls back to its modules.
    """
    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(model)
    except Exception:
        return [type(m).__name__.lower() for m in model.modules()]
    ops = []
    for node in graph.graph.nodes:
        if node.op == "call_module":
            ops.append(type(graph.get_submodule(str(node.target))).__name__.lower())
        elif node.op in ("call_function", "call_method"):
            ops.append(getattr(node.target, "__name__", str(node.target)).lower())
    return ops


def nonlinearities(model: nn.Module) -> list[str]:
    """The activation functions a model uses (``[]``: a linear model)."""
    names: list[str] = []
    for op in _graph_ops(model):
        label = ACTIVATIONS.get(op)
        if label and label not in names:
            names.append(label)
    return names


def architecture_facts(model: nn.Module, input_size: int = 28) -> dict[str, object]:
    """Weight layers, conv/FC split, parameters, multiply-adds and nonlinearity of a model."""
    ops = set(_graph_ops(model))
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    fcs = sum(isinstance(m, nn.Linear) for m in model.modules())
    down = [
        name
        for name, keys in (("max", POOL_OPS["max"]), ("average", POOL_OPS["average"]))
        if ops & keys
    ]
    if any(isinstance(m, nn.Conv2d) and m.stride[0] > 1 for m in model.modules()):
        down.append("strided conv")
    return {
        "weight_layers": convs + fcs,
        "conv": convs,
        "fc": fcs,
        "params": count_parameters(model),
        "macs": count_macs(model, input_size),
        "nonlinearity": ", ".join(nonlinearities(model)) or "none (linear)",
        "downsampling": ", ".join(down) or "none",
    }


def zoo_facts() -> list[dict[str, object]]:
    """``architecture_facts`` of every registered model, computed from the registry."""
    rows = []
    for name in list_models():
        torch.manual_seed(0)  # builders initialise weights randomly; the counts do not depend on it
        rows.append({"name": name, **architecture_facts(create_model(name))})
    return rows


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@dataclass
class LayerImage:
    """One layer's feature maps as a ready-to-show mosaic (the server's "inside" panel)."""

    name: str
    kind: str
    description: str
    shape: tuple[int, int, int]  # (C, H, W) of the full output
    shown: int  # channels in the mosaic
    png: bytes


def feature_mosaic(maps: np.ndarray, cols: int = 8, cell: int = 56, gap: int = 2) -> np.ndarray:
    """Channels (K, H, W) side by side in viridis, one shared scale: uint8 (rows, cols, 3).

    No matplotlib figure: a few milliseconds, fast enough to follow a drawing live.
    """
    from matplotlib import colormaps

    k, h, w = maps.shape
    scale = max(1, cell // max(h, w))
    lo, hi = float(maps.min()), float(maps.max())
    levels = np.zeros(maps.shape, np.uint8) if hi <= lo else (maps - lo) / (hi - lo) * 255
    lut = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    cols = max(1, min(cols, k))
    rows = -(-k // cols)
    ch, cw = h * scale, w * scale
    out = np.full((rows * (ch + gap) - gap, cols * (cw + gap) - gap, 3), 255, np.uint8)
    for i in range(k):
        r, c = divmod(i, cols)
        tile = np.kron(np.asarray(levels[i], np.uint8), np.ones((scale, scale), np.uint8))
        out[r * (ch + gap) : r * (ch + gap) + ch, c * (cw + gap) : c * (cw + gap) + cw] = lut[tile]
    return out


def layer_images(
    model: nn.Module, pre: Preprocessing, image: np.ndarray, limit: int = 8
) -> list[LayerImage]:
    """Every conv and pooling layer's output for one digit, first ``limit`` channels each."""
    import io

    from PIL import Image

    shown = []
    for fm in feature_maps(model, pre, image):
        mosaic = feature_mosaic(fm.maps[:limit])
        buf = io.BytesIO()
        Image.fromarray(mosaic).save(buf, format="PNG")
        c, h, w = fm.maps.shape
        shown.append(
            LayerImage(fm.name, fm.kind, fm.description, (c, h, w), min(c, limit), buf.getvalue())
        )
    return shown
