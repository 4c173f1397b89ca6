"""LeNet-5, AlexNet and VGG-16 as their papers describe them, beside our zoo's computed facts.

The historical numbers are published facts, quoted with their source; every number for our own
models is computed from the registry (:func:`digitrec.report.inside.zoo_facts`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassicNet:
    """A landmark network as published."""

    name: str
    year: int
    input: str
    layers: str
    params: str
    nonlinearity: str
    downsampling: str
    citation: str
    where: str  # where in the paper the numbers are stated


CLASSICS = (
    ClassicNet(
        name="LeNet-5",
        year=1998,
        input="32×32 grey",
        layers="7: conv C1, C3, C5; subsampling S2, S4; fully connected F6; RBF output",
        params="about 60 thousand",
        nonlinearity="scaled tanh (a sigmoid-shaped squashing function)",
        downsampling="2×2 average (subsampling, trainable scale and bias)",
        citation="Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, “Gradient-based learning "
        "applied to document recognition”, Proceedings of the IEEE 86(11), 2278–2324, 1998",
        where="section II.B",
    ),
    ClassicNet(
        name="AlexNet",
        year=2012,
        input="224×224 colour",
        layers="8 weight layers: 5 conv + 3 fully connected",
        params="60 million",
        nonlinearity="ReLU",
        downsampling="3×3 max, stride 2 (overlapping)",
        citation="A. Krizhevsky, I. Sutskever and G. E. Hinton, “ImageNet classification with "
        "deep convolutional neural networks”, NeurIPS 25, 2012",
        where="abstract; sections 3.1, 3.4 and 3.5",
    ),
    ClassicNet(
        name="VGG-16",
        year=2014,
        input="224×224 colour",
        layers="16 weight layers: 13 conv (all 3×3) + 3 fully connected",
        params="138 million",
        nonlinearity="ReLU",
        downsampling="2×2 max, stride 2",
        citation="K. Simonyan and A. Zisserman, “Very deep convolutional networks for "
        "large-scale image recognition”, ICLR 2015, arXiv:1409.1556",
        where="configuration D, tables 1 and 2",
    ),
)
