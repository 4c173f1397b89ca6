"""Tests for digitrec.images: decoding user images and MNIST-style normalisation."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from conftest import corr
from digitrec.data.synth import photoize
from digitrec.errors import DigitrecError, NoDigitError
from digitrec.images import MAX_PIXELS, load_image, preprocess_file, to_mnist


def _com(img: np.ndarray) -> tuple[float, float]:
    w = img.astype(float)
    r = np.arange(img.shape[0])
    return float(w.sum(1) @ r / w.sum()), float(w.sum(0) @ r / w.sum())


def _page(digit: np.ndarray, scale: int = 4, shape=(150, 200), at=(20, 60)) -> np.ndarray:
    """Dark-ink-on-paper page (uint8) with ``digit`` upscaled ``scale`` times at ``at``."""
    big = np.kron(digit.astype(float), np.ones((scale, scale)))
    page = np.zeros(shape)
    page[at[0] : at[0] + big.shape[0], at[1] : at[1] + big.shape[1]] = big
    return (230 - page * 200 / 255).astype(np.uint8)


def _bar_image(mode: str = "L") -> Image.Image:
    """64x48 white image with a dark vertical bar at columns 20..27."""
    arr = np.full((48, 64), 240, np.uint8)
    arr[8:40, 20:28] = 10
    return Image.fromarray(arr).convert(mode)


FORMATS = ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_decodes(tmp_path: Path, fmt: str) -> None:
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    path = tmp_path / f"bar.{fmt.lower()}"
    _bar_image("RGB").save(path, format=fmt)
    gray = load_image(path)
    assert gray.dtype == np.uint8 and gray.shape == (48, 64)
    assert gray[20, 23] < 60 and gray[20, 50] > 200
    # Bytes work as well as paths.
    assert np.array_equal(load_image(path.read_bytes()), gray)


def test_rgba_transparency_composited(tmp_path: Path) -> None:
    rgba = np.zeros((40, 40, 4), np.uint8)  # fully transparent canvas
    rgba[5:35, 18:22] = (0, 0, 0, 255)  # opaque black stroke
    Image.fromarray(rgba, "RGBA").save(tmp_path / "dark.png")
    gray = load_image(tmp_path / "dark.png")
    assert gray[20, 20] < 10 and gray[20, 5] > 245  # transparent -> white paper
    rgba[5:35, 18:22] = (255, 255, 255, 255)  # light ink on transparent: paper becomes black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "light.png")
    gray = load_image(tmp_path / "light.png")
    assert gray[20, 20] > 245 and gray[20, 5] < 10


def test_exif_orientation_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, display rotated 90 degrees clockwise
    _bar_image("RGB").save(tmp_path / "rot.jpg", exif=exif)
    gray = load_image(tmp_path / "rot.jpg")
    assert gray.shape == (64, 48)
    assert gray[23, 20] < 60  # the vertical bar is now horizontal


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello, not a picture")
    with pytest.raises(DigitrecError, match=r"notes\.png"):
        load_image(path)


def test_zero_byte_and_missing(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DigitrecError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    with pytest.raises(DigitrecError, match="no such file"):
        load_image(tmp_path / "missing.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated(tmp_path: Path, fmt: str) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (120, 160), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format=fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(DigitrecError, match=rf"cut\.{fmt.lower()}"):
        load_image(path)


def _png_with_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header then claims ``width`` x ``height`` (never decoded)."""
    buf = io.BytesIO()
    Image.new("1", (8, 8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    # IHDR payload starts at byte 16: width, height (big-endian u32); its CRC covers 12..29.
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize("side", [7_000, 20_000])  # above our cap / above Pillow's bomb limit
def test_decompression_bomb(tmp_path: Path, side: int) -> None:
    assert side * side > MAX_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_with_size(side, side))
    with pytest.raises(DigitrecError, match="image too large"):
        load_image(path)


def test_one_pixel_and_blank(tmp_path: Path) -> None:
    Image.new("L", (1, 1), 255).save(tmp_path / "dot.png")
    with pytest.raises(NoDigitError):
        preprocess_file(tmp_path / "dot.png")
    with pytest.raises(NoDigitError):
        to_mnist(np.full((240, 320), 200, np.uint8))
    paper = 200 + np.random.default_rng(1).normal(0, 4, (240, 320))
    with pytest.raises(NoDigitError, match="no digit"):
        to_mnist(np.clip(paper, 0, 255).astype(np.uint8))


def test_mnist_passes_through(mnist) -> None:
    images, _ = mnist
    out = np.stack([to_mnist(d) for d in images])
    assert out.shape == images.shape and out.dtype == np.uint8
    assert np.abs(out.astype(float) - images).mean() < 2.0
    corrs = np.array([corr(a, b) for a, b in zip(out, images, strict=True)])
    assert np.median(corrs) > 0.99 and (corrs > 0.9).mean() > 0.98


def test_polarity_and_geometry(mnist) -> None:
    images, _ = mnist
    for digit in images[:20]:
        dark_on_light = _page(digit)
        a = to_mnist(dark_on_light)
        b = to_mnist(255 - dark_on_light)
        assert corr(a, b) > 0.98 and np.abs(a.astype(float) - b).mean() < 3
        assert corr(a, digit) > 0.85
        cy, cx = _com(a)
        assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
        rows, cols = np.nonzero(a)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 20


def test_gradient_specks_and_rgb(mnist) -> None:
    images, _ = mnist
    digit = images[3]
    clean = to_mnist(_page(digit))
    page = _page(digit).astype(float) * np.linspace(0.7, 1.1, 200)[None, :]  # uneven light
    page[130:133, 10:13] = 0  # a speck far from the digit
    page = np.clip(page, 0, 255).astype(np.uint8)
    out = to_mnist(np.repeat(page[..., None], 3, axis=2))  # RGB input
    assert corr(out, clean) > 0.95


def test_photoized_digits_normalised(mnist) -> None:
    images, _ = mnist
    photos = photoize(images[:20], seed=0)
    assert photos == photoize(images[:20], seed=0)  # reproducible
    corrs = []
    for data, digit in zip(photos, images[:20], strict=True):
        gray = load_image(data)
        assert gray.shape == (240, 320)
        out = to_mnist(gray)
        cy, cx = _com(out)
        assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
        rows, cols = np.nonzero(out)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 20
        corrs.append(corr(out, digit))
    assert np.median(corrs) > 0.8  # up to 10 degrees of rotation remain


def test_ink_with_a_single_grey_level_is_not_a_crash() -> None:
    """The ink threshold once raised "All-NaN slice" when every ink value fell in one bin."""
    speck = np.zeros((28, 28), np.uint8)
    speck[0, 0] = 9
    with pytest.raises(NoDigitError):
        to_mnist(speck)
    two_tone = np.full((44, 44), 255, np.uint8)  # a clean black-on-white drawing, no grey
    two_tone[8:36, 20:24] = 0
    out = to_mnist(two_tone)
    assert out.max() == 255 and out.dtype == np.uint8
