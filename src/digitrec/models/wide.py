"""Wider and deeper BatchNorm CNNs for the ``best`` recipe (issue 17).

A VGG-style family: stages of 3x3 conv + BatchNorm + ReLU at one resolution, each closed by a
2x2 max pool (28 -> 14 -> 7 -> 3), then dropout and one linear layer over the flattened map.
The first conv may be 5x5. Sizes are kept CPU-trainable: see ``bench/best.py`` for the cost.
"""

from __future__ import annotations

import torch
from torch import nn

from digitrec.models.registry import register_model


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    # No conv bias: BatchNorm's shift makes it redundant.
    return [
        nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class WideNet(nn.Module):
    """Stages of ``depths[i]`` convs of ``widths[i]`` channels, a max pool after each.

    Input ``(B, 1, 28, 28)``; after three stages the map is ``(B, widths[-1], 3, 3)``.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128),
        depths: tuple[int, ...] = (2, 2, 2),
        first_kernel: int = 3,
        dropout: float = 0.25,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if not widths or len(widths) != len(depths) or min(depths) < 1:
            raise ValueError("WideNet needs one depth >= 1 per stage width")
        layers: list[nn.Module] = []
        cin, size = 1, 28
        for i, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            for j in range(depth):
                kernel = first_kernel if i == j == 0 else 3
                layers += _conv_bn_relu(cin, width, kernel)
                cin = width
            layers.append(nn.MaxPool2d(2))
            size //= 2
        self.features = nn.Sequential(*layers)  # (B, widths[-1], size, size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Flatten in (H, W, C) order: a free view of a channels-last activation (see StridedNet).
        return self.head(self.dropout(self.features(x).permute(0, 2, 3, 1).flatten(1)))


def wide_net(
    widths: tuple[int, ...] = (32, 64, 128),
    depths: tuple[int, ...] = (2, 2, 2),
    first_kernel: int = 3,
    dropout: float = 0.25,
    num_classes: int = 10,
) -> nn.Module:
    """32-64-128, two convs a stage: 298,410 parameters, 29 M multiply-adds per image."""
    return WideNet(tuple(widths), tuple(depths), first_kernel, dropout, num_classes)


def best_net(
    widths: tuple[int, ...] = (24, 48, 96),
    depths: tuple[int, ...] = (1, 2, 2),
    first_kernel: int = 3,
    dropout: float = 0.25,
    num_classes: int = 10,
) -> nn.Module:
    """The ``best`` recipe's network: 24-48-96, one conv then two then two.

    165,010 parameters (0.66 MB), 12.4 M multiply-adds per image: the net of the best
    validation candidate in ``bench/best.py`` (the larger 32-64-128 nets were only tried with
    the ``elastic`` augmentation, which scored lower).
    """
    return WideNet(tuple(widths), tuple(depths), first_kernel, dropout, num_classes)


register_model(
    "wide",
    description="VGG-style BN CNN 32-64-128, 2 convs a stage, max pools, dropout + linear",
)(wide_net)
register_model(
    "best",
    description="the `best` recipe's BN CNN (wide family, chosen on validation)",
)(best_net)
