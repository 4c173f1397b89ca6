"""The architectures: the tutorials' models and this project's own, each registered by name.

All models take ``(B, 1, 28, 28)`` float input (already normalised by their preprocessing) and
return ``(B, num_classes)`` logits; softmax lives in the loss, as in the PyTorch example's
log_softmax. Every builder takes ``num_classes``. Their training recipes live in
:mod:`digitrec.training.recipes`.
"""

from __future__ import annotations

import torch
from torch import nn

from digitrec.models.preprocessing import UNIT_RANGE, Preprocessing
from digitrec.models.registry import register_model


@register_model(
    "softmax",
    preprocessing=UNIT_RANGE,
    description="softmax regression, 784 -> 10",
)
def softmax(num_classes: int = 10) -> nn.Module:
    """Multinomial logistic regression with zero-initialised weights, as in the tutorial."""
    linear = nn.Linear(784, num_classes)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return nn.Sequential(nn.Flatten(), linear)


def _tf_init(module: nn.Module) -> None:
    """TensorFlow tutorial init: weights ~ truncated normal(0.1), biases 0.1."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.1, a=-0.2, b=0.2)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.1)


@register_model(
    "tf-deep",
    preprocessing=UNIT_RANGE,
    description="TensorFlow deep MNIST CNN: 5x5x32, pool, 5x5x64, pool, fc 1024, dropout",
)
def tf_deep(dropout: float = 0.5, num_classes: int = 10) -> nn.Module:
    net = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),    # (B, 32, 14, 14)
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),   # (B, 64, 7, 7)
        nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(1024, num_classes),
    )  # fmt: skip
    _tf_init(net)
    return net


@register_model(
    "kaggle-cnn",
    preprocessing=UNIT_RANGE,
    description="Kaggle Keras CNN: 2x conv5x5x32, pool, 2x conv3x3x64, pool, fc 1024",
)
def kaggle_cnn(num_classes: int = 10) -> nn.Module:
    """3,304,426 parameters, as in the Keras model.summary()."""
    net = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(),
        nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25),                              # (B, 32, 14, 14)
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25),                              # (B, 64, 7, 7)
        nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(1024, num_classes),
    )  # fmt: skip
    # Keras defaults: Glorot-uniform kernels and zero biases.
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


@register_model(
    "lenet5",
    description="LeCun 1998 LeNet-5: tanh, average pooling, C1-S2-C3-S4-C5-F6",
)
def lenet5(num_classes: int = 10) -> nn.Module:
    """About 61.7k parameters. The 28x28 input is padded to LeNet's 32x32 field."""
    return nn.Sequential(
        nn.ZeroPad2d(2),                                                # (B, 1, 32, 32)
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),                 # (B, 6, 14, 14)
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),                # (B, 16, 5, 5)
        nn.Conv2d(16, 120, 5), nn.Tanh(),                               # (B, 120, 1, 1)
        nn.Flatten(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, num_classes),
    )  # fmt: skip


class PyTorchExampleNet(nn.Module):
    """The pytorch/examples mnist ``Net``: 1,199,882 parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(12 * 12 * 64, 128)  # 9216 inputs after two valid convs and a pool
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))  # (B, 32, 26, 26)
        x = torch.relu(self.conv2(x))  # (B, 64, 24, 24)
        x = self.dropout1(torch.max_pool2d(x, 2))  # (B, 64, 12, 12)
        x = self.dropout2(torch.relu(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


@register_model(
    "pytorch-example",
    description="PyTorch examples/mnist CNN (our speed and accuracy peer)",
)
def pytorch_example(num_classes: int = 10) -> nn.Module:
    return PyTorchExampleNet(num_classes)


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int) -> list[nn.Module]:
    # No conv bias: BatchNorm's shift makes it redundant.
    return [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class StridedNet(nn.Module):
    """A small all-strided CNN built for CPU speed, then a small MLP head.

    Each stage is a stride-2 conv + BatchNorm + ReLU, so the map shrinks 28 -> 14 -> 7 -> 4.
    Striding from the first layer (instead of pooling after full-resolution convs) keeps the
    forward cost at 0.5 M (two stages) to 0.73 M (three) multiply-adds per image.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (16, 32, 64),
        first_kernel: int = 5,
        hidden: int = 128,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if not widths:
            raise ValueError("StridedNet needs at least one stage width")
        layers, cin, size = [], 1, 28
        for i, width in enumerate(widths):
            layers += _conv_bn_relu(cin, width, first_kernel if i == 0 else 3, 2)
            cin, size = width, (size + 1) // 2  # odd kernel, 'same' padding, stride 2
        self.features = nn.Sequential(*layers)  # (B, widths[-1], size, size)
        self._side = size
        self.head = nn.Sequential(
            nn.Linear(cin * size * size, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Flatten in (H, W, C) order: for a channels-last activation that is a free view, and
        # the gradient flowing back stays channels-last. Flattening (C, H, W) would copy, and
        # hand the ReLU and BatchNorm backward a gradient in the other layout (a slow path).
        return self.head(self.features(x).permute(0, 2, 3, 1).flatten(1))

    def upgrade_state_dict(self, state: dict[str, torch.Tensor], version: int) -> bool:
        """Checkpoint format 1 flattened in (C, H, W) order: reorder the head's input columns.

        Edits ``state`` in place and returns whether it changed anything; weights that do not
        fit are left for ``load_state_dict`` to report.
        """
        weight = state.get("head.0.weight")
        linear = self.head[0]
        assert isinstance(linear, nn.Linear)
        channels = linear.in_features // self._side**2
        if version >= 2 or weight is None or weight.shape != linear.weight.shape:
            return False
        grid = weight.reshape(weight.shape[0], channels, self._side, self._side)
        state["head.0.weight"] = grid.permute(0, 2, 3, 1).reshape(weight.shape[0], -1).contiguous()
        return True


def strided_net(
    widths: tuple[int, ...] = (16, 32, 64),
    first_kernel: int = 5,
    hidden: int = 128,
    num_classes: int = 10,
) -> nn.Module:
    """Three stages, 16-32-64 (``accurate``): 156,154 parameters."""
    return StridedNet(tuple(widths), first_kernel, hidden, num_classes)


def fast_net(
    widths: tuple[int, ...] = (16, 32),
    first_kernel: int = 5,
    hidden: int = 128,
    num_classes: int = 10,
) -> nn.Module:
    """Two stages, 16-32 (``fast``): 207,226 parameters, mostly in the head's first layer.

    No third stage: its strided backward convolutions cost more than the wider fully connected
    layer they save (README, Benchmarks).
    """
    return StridedNet(tuple(widths), first_kernel, hidden, num_classes)


def splitter_net(num_classes: int = 11) -> nn.Module:
    """The three-stage network with an 11th output: "not one digit"."""
    return StridedNet(num_classes=num_classes)


register_model(
    "fast",
    description="strided BN CNN 16-32 + fc128, 0.5 MMAC/img: 99% in seconds on CPU",
    weights_version=2,
)(fast_net)
register_model(
    "accurate",
    description="strided BN CNN 16-32-64 + fc128, 8 epochs with shift augmentation: 99.5% on CPU",
    weights_version=2,
)(strided_net)
register_model(
    "splitter",
    preprocessing=Preprocessing(num_classes=11),
    description="scores cuts for `read`: 10 digits + 'not one digit' (touching pairs, parts)",
    weights_version=2,
)(splitter_net)
