"""Batch augmentation (issue 17): exact identity, a known rotation, labels untouched."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from digitrec.training import loop
from digitrec.training.augment import (
    AUGMENTS,
    affine_matrices,
    augment_batch,
    random_strong,
    warp,
)
from digitrec.training.config import TrainConfig
from digitrec.training.data import load_training_data, prepare_dataset

BG = -0.4242  # a blank pixel after normalisation


def _blob(b: int = 4) -> torch.Tensor:
    """A 4x4 bright square up and to the right of the centre, on a blank canvas."""
    x = torch.full((b, 1, 28, 28), BG)
    x[:, :, 5:9, 18:22] = 2.0
    return x


def _centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    """``(B, 2)`` ink centre (column, row) in pixels."""
    ink = (x - BG).clamp(min=0)[:, 0]
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    total = ink.sum((1, 2))
    return torch.stack([(ink * cols).sum((1, 2)) / total, (ink * rows).sum((1, 2)) / total], 1)


def _theta(angle: float = 0.0, scale: float = 1.0, shear: float = 0.0, b: int = 4):
    return affine_matrices(
        torch.full((b,), angle), torch.full((b,), scale), torch.full((b,), shear), torch.zeros(b, 2)
    )


def test_identity_transform_leaves_images_unchanged() -> None:
    x = _blob()
    assert torch.allclose(warp(x, _theta(), BG), x, atol=1e-5)
    zero_field = torch.zeros(4, 28, 28, 2)
    assert torch.allclose(warp(x, _theta(), BG, zero_field), x, atol=1e-5)
    torch.manual_seed(0)  # no rotation, zoom, shear, shift or distortion: the image itself
    same = random_strong(x, BG, degrees=0.0, scale=(1.0, 1.0), translate=0.0, shear=0.0)
    assert torch.allclose(same, x, atol=1e-5)


def test_quarter_turn_moves_the_centre_of_mass_as_expected() -> None:
    x = _blob()
    before = _centre_of_mass(x)[0]  # (19.5, 6.5): 6 px right of and 7 px above the centre
    assert torch.allclose(before, torch.tensor([19.5, 6.5]))
    after = _centre_of_mass(warp(x, _theta(angle=math.pi / 2), BG))
    # Clockwise on screen (rows grow downwards): (dx, dy) = (6, -7) -> (7, 6) about 13.5.
    assert torch.allclose(after, torch.tensor([[20.5, 19.5]] * 4), atol=1e-3)
    small = _centre_of_mass(warp(x, _theta(angle=math.radians(10)), BG))[0] - 13.5
    turned = math.atan2(small[1], small[0]) - math.atan2(-7, 6)
    assert turned == pytest.approx(math.radians(10), abs=1e-3)
    zoomed = _centre_of_mass(warp(x, _theta(scale=1.2), BG))[0] - 13.5
    assert torch.allclose(zoomed, torch.tensor([6.0, -7.0]) * 1.2, atol=0.05)  # bilinear edges


@pytest.mark.parametrize("kind", AUGMENTS)
def test_every_augmentation_keeps_shape_and_blank_background(kind: str) -> None:
    torch.manual_seed(0)
    blank = torch.full((8, 1, 28, 28), BG)
    out = augment_batch(blank, kind, BG)
    assert out.shape == blank.shape and out.dtype == blank.dtype
    assert torch.allclose(out, blank, atol=1e-5)


def test_strong_and_elastic_change_images_differently() -> None:
    x = _blob(16)
    torch.manual_seed(0)
    strong = augment_batch(x, "strong", BG)
    torch.manual_seed(0)
    elastic = augment_batch(x, "elastic", BG)
    assert not torch.allclose(strong, x, atol=1e-2)
    assert not torch.allclose(strong, elastic, atol=1e-2)  # the displacement field adds warp
    moved = (strong - x).abs().amax((1, 2, 3)) > 0.1
    assert bool(moved.all())  # every image of the batch gets its own random warp


@pytest.mark.parametrize("kind", AUGMENTS)
def test_each_image_stays_at_its_place_in_the_batch(kind: str) -> None:
    """Image i comes back at index i (so it keeps label i): each is tagged by its ink level."""
    torch.manual_seed(0)
    levels = torch.linspace(0.5, 3.0, 32)
    x = torch.full((32, 1, 28, 28), BG)
    x[:, :, 9:19, 9:19] = levels[:, None, None, None]  # a 10x10 square: its core survives warps
    out = augment_batch(x, kind, BG)
    assert torch.allclose(out.amax((1, 2, 3)), levels, atol=1e-3)


def test_labels_never_change_through_the_training_data_path(
    monkeypatch: pytest.MonkeyPatch, mnist_dir: Path
) -> None:
    """Each image the loop augments is trained with its own label, whatever the warp."""
    seen: list[tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]] = []
    originals: list[tuple[torch.Tensor, torch.Tensor]] = []
    real_augment, real_loss = loop.augment_batch, loop.F.cross_entropy

    def augment(x: torch.Tensor, kind: str, background: float) -> torch.Tensor:
        assert kind == "elastic"
        out = real_augment(x, kind, background)
        originals.append((x.clone(), out.detach().clone()))
        return out

    def loss(logits: torch.Tensor, target: torch.Tensor, **kw: object) -> torch.Tensor:
        if originals:  # a training step (the validation loss has no augmented batch)
            seen.append((originals.pop(), target.clone()))
        return real_loss(logits, target, **kw)  # pyright: ignore[reportArgumentType]

    monkeypatch.setattr(loop, "augment_batch", augment)
    monkeypatch.setattr(loop.F, "cross_entropy", loss)
    cfg = TrainConfig(
        model="best",
        recipe_overrides={"augment": "elastic", "batch_size": 32},
        data_dir=str(mnist_dir),
        train_limit=96,
        val_size=100,
        max_steps=3,
        device="cpu",
        threads=1,
    )
    loop.train(cfg)
    data = load_training_data(cfg, torch.device("cpu"), prepare_dataset(cfg)[1])
    pairs = zip(data["x"], data["y"], strict=True)
    label_of = {bytes(img.numpy().tobytes()): int(y) for img, y in pairs}
    assert len(seen) == 3
    for (images, warped), targets in seen:
        expected = [label_of[bytes(img.numpy().tobytes())] for img in images]
        assert targets.tolist() == expected and warped.shape == images.shape
