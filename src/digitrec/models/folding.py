"""BatchNorm folding for inference: one pass over each activation map fewer."""

from __future__ import annotations

import itertools

from torch import nn


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm2d that directly follows a Conv2d into the conv's weights.

    Inference then skips one pass over every activation map; outputs match to float rounding.
    Only ``nn.Sequential`` neighbours are folded, where the order is certain. Edits ``model``
    in place and returns it.
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
