"""Every registered model: output shape, finite loss, gradients on every parameter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from digitrec.errors import DigitrecError
from digitrec.models import count_parameters, create_model, get_spec, list_models, summary
from digitrec.training.recipes import check_recipe, recipe_for

EXPECTED_PARAMS = {
    "kaggle-cnn": 3_304_426,
    "pytorch-example": 1_199_882,
    "softmax": 7_850,
    "fast": 207_226,
    "accurate": 156_154,
}


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    model.train()
    x = torch.randn(4, 1, 28, 28)
    logits = model(x)
    assert logits.shape == (4, get_spec(name).preprocessing.num_classes)  # splitter: 11
    loss = F.cross_entropy(logits, torch.tensor([0, 1, 2, 3]))
    assert torch.isfinite(loss)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
    # Zero-initialised softmax regression has all-zero grads only by bad luck; others must move.
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_spec_is_complete(name: str) -> None:
    spec, recipe = get_spec(name), recipe_for(name)
    assert recipe is check_recipe(recipe) and recipe.batch_size > 0 and recipe.lr > 0
    assert spec.preprocessing.input_size == 28 and spec.description


@pytest.mark.parametrize(("name", "count"), EXPECTED_PARAMS.items())
def test_exact_parameter_counts(name: str, count: int) -> None:
    assert count_parameters(create_model(name)) == count


def test_lenet5_is_about_60k() -> None:
    assert 55_000 < count_parameters(create_model("lenet5")) < 65_000


def test_summary_table() -> None:
    text = summary(create_model("kaggle-cnn"))
    assert "Total params: 3,304,426" in text and "(None, 64, 7, 7)" in text


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(DigitrecError, match=r"unknown model 'nope'; choose from .*kaggle-cnn"):
        create_model("nope")
    with pytest.raises(DigitrecError, match="bad arguments for model 'softmax'"):
        create_model("softmax", width=3)


@pytest.mark.parametrize(("widths", "side"), [((8,), 14), ((16, 32), 7), ((8, 8, 8, 8), 2)])
def test_strided_net_depth(widths: tuple[int, ...], side: int) -> None:
    from digitrec.models.architectures import StridedNet

    model = StridedNet(widths, hidden=16)
    assert model.head[0].in_features == widths[-1] * side * side
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_strided_net_gradient_stays_channels_last() -> None:
    """The (H, W, C) flatten keeps the backward pass in the channels-last layout."""
    model = create_model("fast").to(memory_format=torch.channels_last)
    seen = []

    def watch(module, inputs, out) -> None:
        out.register_hook(seen.append)

    hook = model.features[-1].register_forward_hook(watch)
    x = torch.randn(4, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    model(x).sum().backward()
    hook.remove()
    assert seen and seen[0].is_contiguous(memory_format=torch.channels_last)
