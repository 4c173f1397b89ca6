"""Page cleanup (digitrec.images.page): what is page, not writing, is dropped before the digits."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import corr
from digitrec.data.fonts import FONT_SPLITS, font_digits
from digitrec.data.pages import CONDITIONS
from digitrec.data.synth import compose_number, photoize
from digitrec.errors import DataError
from digitrec.images import load_image, segment_digits, to_mnist
from digitrec.images.normalise import ink_map, to_mnist_report
from digitrec.images.page import PageReport
from digitrec.inference.confidence import LOW_CONFIDENCE, low_confidence
from digitrec.inference.reading import SPLITTER

SPLITTER_DIR = SPLITTER.parent  # the packaged weights


@cache
def _model():
    from digitrec.inference.predictor import Predictor

    return Predictor.from_checkpoint(SPLITTER_DIR / "digits.safetensors")


def _read(image: np.ndarray) -> tuple[int, float]:
    """The packaged model's digit (0-9) and its probability for one 28x28 image."""
    p = _model().predict_proba(image[None])[0, :10]
    return int(p.argmax()), float(p.max())


# One fixed photo per condition (test digit index = seed): ruined without cleanup, right with it.
FIXED = [
    ("table", 17),  # the grained desk beyond the paper's edge (15 is read right even uncleaned)
    ("shadow", 9),
    ("strip", 3),
    ("ruled", 35),
    ("squared", 50),
    ("glare", 27),
    ("frame", 3),
]


@pytest.mark.parametrize(("condition", "index"), FIXED)
def test_each_condition_is_cleaned(mnist, condition: str, index: int) -> None:
    images, labels = mnist
    gray = load_image(photoize(images[index : index + 1], seed=index, condition=condition)[0])
    before = to_mnist(gray, clean_page=False)
    after = to_mnist(gray)
    assert corr(before, images[index]) < 0.6 and _read(before)[0] != labels[index]
    assert corr(after, images[index]) > 0.75
    digit, prob = _read(after)
    assert digit == labels[index] and prob >= LOW_CONFIDENCE


def _page(strip: np.ndarray, scale: int = 5, shape=(240, 320), at=(40, 90)) -> np.ndarray:
    """float (H, W) ink alpha of ``strip`` (0..1) upscaled at ``at`` on an empty page."""
    big = np.kron(strip, np.ones((scale, scale)))
    page = np.zeros(shape)
    page[at[0] : at[0] + big.shape[0], at[1] : at[1] + big.shape[1]] = big
    return page


def _photo(alpha: np.ndarray, lines: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Dark ink over (optional) grey lines on noisy paper: uint8 (H, W)."""
    paper = np.full(alpha.shape, 225.0)
    if lines is not None:
        paper -= 75.0 * lines
    noise = np.random.default_rng(seed).normal(0, 3, alpha.shape)
    return np.clip(paper + alpha * (30.0 - paper) + noise, 0, 255).astype(np.uint8)


def test_clean_photo_passes_through_unchanged(mnist) -> None:
    images, _ = mnist
    same = []
    for index in range(20):
        gray = load_image(photoize(images[index : index + 1], seed=index)[0])
        out, report = to_mnist_report(gray)
        plain = to_mnist(gray, clean_page=False)
        assert report.removed == [] and not report.touched
        # The same digit; at most a 1 px shift of the centre of mass apart.
        same.append(corr(out, plain))
        assert corr(out, images[index]) > corr(plain, images[index]) - 0.1
        # MNIST-like input never reaches page cleanup.
        assert np.array_equal(to_mnist(images[index]), to_mnist(images[index], clean_page=False))
    assert np.median(same) > 0.99


def test_ruled_lines_crossing_a_digit_do_not_cut_it(mnist) -> None:
    images, labels = mnist
    four = images[int(np.nonzero(labels == 4)[0][0])] / 255.0
    alpha = _page(four)
    rows = np.nonzero(alpha.any(axis=1))[0]
    lines = np.zeros_like(alpha)
    for y in (rows[0] + 30, rows[0] + 60, 200):  # two lines through the digit, one below it
        lines[y : y + 2] = 1.0
    clean = to_mnist(_photo(alpha))
    ruled = _photo(alpha, lines)
    assert corr(to_mnist(ruled, clean_page=False), clean) < 0.6  # the lines squash the digit
    assert corr(to_mnist(ruled), clean) > 0.95
    m = ink_map(ruled)
    assert m.page.removed == ["3 long straight line(s) (ruled, squared, margin)"]
    # No line ink is left outside the digit, and the digit is still one piece.
    cols = np.nonzero(alpha.any(axis=0))[0]
    outside = np.ones(alpha.shape, bool)
    outside[:, cols[0] - 3 : cols[-1] + 4] = False
    assert not (m.labels[outside] > 0).any()
    assert (
        len(np.unique(m.labels[m.labels > 0])) == len(np.unique(ink_map(_photo(alpha)).labels)) - 1
    )


def _framed_12(mnist) -> tuple[np.ndarray, list[np.ndarray]]:
    images, labels = mnist
    sources = [images[int(np.nonzero(labels == d)[0][0])] for d in (1, 2)]
    strip = compose_number(sources, [6], np.random.default_rng(0))
    alpha = _page(strip, scale=4, at=(70, 90))
    frame = Image.new("L", (alpha.shape[1], alpha.shape[0]), 0)
    ImageDraw.Draw(frame).rectangle(
        (60, 45, 90 + 4 * strip.shape[1] + 30, 225), outline=255, width=4
    )
    alpha = np.maximum(alpha, np.asarray(frame, dtype=float) / 255.0)
    return _photo(alpha), sources


def test_frame_around_a_number_is_dropped(mnist) -> None:
    gray, sources = _framed_12(mnist)
    assert len(segment_digits(gray, clean_page=False)) != 2  # the frame's sides read as digits
    pieces = segment_digits(gray)
    assert len(pieces) == 2
    for (_, crop), source in zip(pieces, sources, strict=True):
        assert corr(crop, to_mnist(source)) > 0.8
    assert [_read(crop)[0] for _, crop in pieces] == [1, 2]


def test_low_confidence_reasons() -> None:
    assert low_confidence(0.97) is None
    assert low_confidence(LOW_CONFIDENCE) is None
    reason = low_confidence(0.31)
    assert reason is not None and "0.31" in reason
    page = PageReport(["2 long straight line(s) (ruled, squared, margin)"], touched=True)
    assert "page cleanup removed ink touching the writing (2 long" in str(low_confidence(0.4, page))
    # Page cleanup alone does not make a confident answer doubtful.
    assert low_confidence(0.9, page) is None


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_low_confidence_flag_in_predict(mnist_test) -> None:
    from digitrec.inference.files import predict_files

    images, _ = mnist_test
    # Test digit 625 is an odd 6 (the model gives it ~0.496, just above its reject cut at 0.494);
    # 0 is a clear 7.
    doubtful, clear = predict_files(_model(), [_png(images[625]), _png(images[0])])
    assert doubtful.low_confidence and not doubtful.rejected
    assert doubtful.prob is not None and doubtful.prob < LOW_CONFIDENCE
    assert "probability 0.496 is below 0.50" in str(doubtful.low_confidence_reason)
    assert doubtful.as_dict()["low_confidence"] is True
    assert not clear.low_confidence and clear.as_dict()["low_confidence"] is False
    assert "low_confidence_reason" not in clear.as_dict()


def test_page_conditions_are_seeded(mnist) -> None:
    images, _ = mnist
    assert photoize(images[:2], seed=4) == photoize(images[:2], seed=4, condition="clean")
    for condition in CONDITIONS:
        photos = photoize(images[:2], seed=4, condition=condition)
        assert photos == photoize(images[:2], seed=4, condition=condition)
        assert all(load_image(p).shape == (240, 320) for p in photos)
    with pytest.raises(ValueError, match="unknown photo condition"):
        photoize(images[:1], condition="fog")


def test_font_splits_are_disjoint() -> None:
    families = [f for split in FONT_SPLITS.values() for f in split]
    assert len(families) == len(set(families))
    try:
        digits, labels = font_digits("dev", 12, seed=1)
    except DataError:
        pytest.skip("handwriting fonts not installed (Debian fonts-* packages)")
    assert digits.shape == (12, 28, 28) and digits.dtype == np.uint8
    assert np.array_equal(digits, font_digits("dev", 12, seed=1)[0])
    assert set(labels.tolist()) <= set(range(10))
    for d in digits:  # MNIST geometry: the ink's longer side is 20 px
        rows, cols = np.nonzero(d)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 in range(19, 22)


def test_low_confidence_in_the_cli(mnist, tmp_path, capsys) -> None:
    import json

    from digitrec.cli import main
    from digitrec.data.synth import make_numbers

    weights = str(SPLITTER_DIR / "digits.safetensors")
    assert main(["predict", "-c", weights, "--split", "test", "--index", "625"]) == 0
    assert "\tlow confidence: probability 0.496" in capsys.readouterr().out
    assert main(["predict", "-c", weights, "--split", "test", "--index", "0"]) == 0
    assert "low confidence" not in capsys.readouterr().out
    photo = tmp_path / "number.jpg"
    data, text = make_numbers(*mnist, n=1, seed=4, condition="frame")[0]
    photo.write_bytes(data)
    assert main(["read", "-c", weights, str(photo), "--json"]) == 0
    reading = json.loads(capsys.readouterr().out)
    assert reading["number"] == text and reading["low_confidence"] is False
    assert all(d["low_confidence"] is False for d in reading["digits"])
