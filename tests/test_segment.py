"""Tests for digitrec.segment: splitting a written number into MNIST-style digits."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from conftest import corr
from digitrec.data.synth import compose_number, make_nondigits, make_numbers
from digitrec.errors import NoDigitError
from digitrec.images import load_image, to_mnist
from digitrec.images.cuts import best_split
from digitrec.images.marks import find_separators, insert_marks, mark_columns, place_marks
from digitrec.images.segment import segment_digits, segment_number, segment_report


def _photo(strip: np.ndarray, scale: int = 3, seed: int = 0) -> np.ndarray:
    """Dark ink on noisy paper: ``strip`` (ink alpha 0..1) upscaled, with a margin."""
    big = np.kron(strip, np.ones((scale, scale)))
    page = np.pad(big, 30)
    noise = np.random.default_rng(seed).normal(0, 3, page.shape)
    return np.clip(220 - 180 * page + noise, 0, 255).astype(np.uint8)


def _first(labels: np.ndarray, wanted: list[int]) -> list[int]:
    return [int(np.nonzero(labels == d)[0][0]) for d in wanted]


def _assert_matches(crops: list[np.ndarray], sources: list[np.ndarray]) -> None:
    """Each crop must resemble its own source digit more than any other source digit."""
    refs = [to_mnist(s) for s in sources]
    for i, crop in enumerate(crops):
        scores = [corr(crop, ref) for ref in refs]
        assert int(np.argmax(scores)) == i and scores[i] > 0.6, scores


def test_four_digit_number_in_order(mnist) -> None:
    images, labels = mnist
    idx = _first(labels, [2, 0, 7, 5])
    rng = np.random.default_rng(0)
    gray = _photo(compose_number([images[i] for i in idx], [6, 8, 5], rng))
    result = segment_digits(gray)
    assert len(result) == 4
    boxes = [box for box, _ in result]
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= gray.shape[1] and 0 <= y0 < y1 <= gray.shape[0]
    assert all(c.shape == (28, 28) and c.dtype == np.uint8 for _, c in result)
    _assert_matches([c for _, c in result], [images[i] for i in idx])
    # Light ink on dark paper gives the same digits.
    inverted = segment_digits(255 - gray)
    assert [b for b, _ in inverted] == boxes


def _touching(images: np.ndarray, labels: np.ndarray, pair: list[int], gap: int):
    """The first two MNIST digits of classes ``pair`` whose strokes touch at ``gap``: sources
    and the dark-on-light photo of the pair, which is a single connected blob of ink."""
    firsts = [np.nonzero(labels == d)[0][:10] for d in pair]
    for i in firsts[0]:
        for j in firsts[1]:
            sources = [images[i], images[j]]
            gray = _photo(compose_number(sources, [gap], np.random.default_rng(0)))
            if ndimage.label(gray < 120, structure=np.ones((3, 3)))[1] == 1:
                return sources, gray
    raise AssertionError("no touching pair found")


def test_touching_pair_is_split(mnist) -> None:
    images, labels = mnist
    sources, gray = _touching(images, labels, [0, 2], 0)
    result = segment_digits(gray)
    assert len(result) == 2
    _assert_matches([c for _, c in result], sources)


def test_scorer_splits_narrow_touching_pair(mnist) -> None:
    images, labels = mnist
    sources, gray = _touching(images, labels, [1, 4], 0)
    refs = [to_mnist(s) for s in sources]

    def score(crops: np.ndarray) -> np.ndarray:
        # A stand-in recogniser: confidence = best correlation with a known digit.
        return np.array([max(0.0, *(corr(c, r) for r in refs)) for c in crops])

    assert len(segment_digits(gray)) == 1  # too narrow to split without a recogniser
    result = segment_digits(gray, score=score)
    assert len(result) == 2
    _assert_matches([c for _, c in result], sources)


def test_faint_digit_gets_full_strength_ink(mnist) -> None:
    images, labels = mnist
    idx = _first(labels, [3, 8])
    strip = compose_number([images[i] for i in idx], [8], np.random.default_rng(0))
    half = strip.shape[1] // 2
    strip[:, half:] *= 0.7  # the 8 written lighter than the 3
    crops = [c for _, c in segment_digits(_photo(strip))]
    assert len(crops) == 2
    # Both reach MNIST's saturated stroke cores, so the faint one is not a thin grey ghost.
    for crop in crops:
        assert np.percentile(crop[crop > 0], 90) >= 235
    assert abs(int((crops[0] > 128).sum()) - int((crops[1] > 128).sum())) < 60


def test_scorer_cannot_pick_faint_slivers(mnist) -> None:
    images, labels = mnist
    zero = np.kron(images[_first(labels, [0])[0]], np.ones((3, 3))).astype(np.float32)
    rows = np.nonzero(zero.any(axis=1))[0]
    crop = np.pad(zero[rows[0] : rows[-1] + 1], ((0, 0), (0, 12)))
    crop[:, -3] = 3.0  # faint leftovers of a neighbour along a seam, the full height
    typical = float(crop.shape[0])

    def score(crops: np.ndarray) -> np.ndarray:
        # An adversarial recogniser, sure of anything thin (as a shift-trained model is of a
        # '1' in a seam's faint leftovers) and unsure of the real digit.
        width = (crops > 0).any(axis=1).sum(axis=1)
        return np.where(width <= 4, 0.99, 0.5)

    parts = best_split(crop, typical, score)
    assert len(parts) == 1  # the sliver holds far too little ink to be a digit of its own


def test_broken_stroke_is_merged(mnist) -> None:
    images, labels = mnist
    digit = images[_first(labels, [5])[0]].copy()
    digit[12:14] = 0  # a gap across the whole digit: top and bottom become separate blobs
    gray = _photo(np.pad(digit / 255.0, ((2, 2), (2, 2))))
    assert ndimage.label(gray < 110, structure=np.ones((3, 3)))[1] >= 2
    result = segment_digits(gray)
    assert len(result) == 1
    (_, y0, _, y1), crop = result[0]
    assert y1 - y0 > 2 * 28  # the box spans both halves (3x scale)
    assert corr(crop, to_mnist(gray)) > 0.95


def test_blank_and_specks() -> None:
    with pytest.raises(NoDigitError):
        segment_digits(np.full((100, 300), 210, np.uint8))
    with pytest.raises(NoDigitError):
        segment_digits(np.zeros((1, 1), np.uint8))


def test_synthetic_numbers(mnist) -> None:
    images, labels = mnist
    numbers = make_numbers(images, labels, n=12, seed=5)
    assert numbers == make_numbers(images, labels, n=12, seed=5)
    counted = 0
    for data, text in numbers:
        assert text.isdigit() and 2 <= len(text) <= 6
        counted += len(segment_digits(load_image(data))) == len(text)
    assert counted >= 10


def test_nondigits_for_the_splitter(mnist) -> None:
    images, _ = mnist
    fakes = make_nondigits(images, 30, seed=3)
    assert fakes.shape == (30, 28, 28) and fakes.dtype == np.uint8
    assert np.array_equal(fakes, make_nondigits(images, 30, seed=3))
    assert all(f.any() for f in fakes)
    # MNIST-normalised like a real digit: the ink's longer side is 20 px.
    for f in fakes:
        rows, cols = np.nonzero(f > 0)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 in range(19, 23)


def test_splitter_training_data_adds_class_10(tmp_path) -> None:
    from digitrec.models import get_spec
    from digitrec.training import TrainConfig
    from digitrec.training.loop import load_training_data

    cfg = TrainConfig(model="splitter", val_size=100, train_limit=300, seed=1)
    data = load_training_data(cfg, torch.device("cpu"), get_spec("splitter").preprocessing, 0.5)
    assert len(data["y"]) == 450 and int((data["y"] == 10).sum()) == 150
    assert int((data["val_y"] == 10).sum()) == 0  # validation stays real digits only


def test_packaged_splitter() -> None:
    from digitrec.inference.reading import default_splitter

    splitter = default_splitter()
    assert splitter.meta["arch"] == "splitter" and splitter.preprocessing.num_classes == 11
    assert splitter.meta["recipe"]["nondigits"] == 0.5  # it describes how it was trained


# ---- decimal points and separator spaces (issue 15) -------------------------------------------


def _marked_photo(mnist, text: str, seed: int = 0, point_strokes: float | None = None):
    """A fixed photo of ``text`` ("3.14", "1 250.75") written with the fixture's MNIST digits,
    the point drawn as a pen dot (or as a speck)."""
    from digitrec.data.marked import compose_marked

    strip = compose_marked(_sources(mnist, text), text, np.random.default_rng(seed), point_strokes)
    return _photo(strip)


def _sources(mnist, text: str) -> list[np.ndarray]:
    """The fixture's digits for ``text``: a repeated digit takes the class's next example."""
    images, labels = mnist
    wanted = [int(c) for c in text if c.isdigit()]
    return [images[np.nonzero(labels == d)[0][wanted[:i].count(d)]] for i, d in enumerate(wanted)]


def _layout(seg) -> str:
    """The marks found, with 'd' for each digit: "d.dd", "d ddd.dd"."""
    return insert_marks(["d"] * len(seg.digits), seg.marks)


@pytest.mark.parametrize(("text", "layout"), [("3.14", "d.dd"), ("1 250.75", "d ddd.dd")])
def test_decimal_point_and_separator_space(mnist, text: str, layout: str) -> None:
    seg = segment_number(_marked_photo(mnist, text))
    assert _layout(seg) == layout
    # The point is a mark, not a digit or part of one: each crop is its own digit.
    _assert_matches([c for _, c in seg.digits], _sources(mnist, text))
    assert segment_report(_marked_photo(mnist, text))[0][0][0] == seg.digits[0][0]


def test_noise_speck_is_not_a_point(mnist) -> None:
    """A speck thinner than the pen (0.4 stroke widths) in an ordinary gap is neither a point
    nor a digit; the same spot drawn as a pen dot (1.3 stroke widths) is a point."""
    speck = segment_number(_marked_photo(mnist, "3.14", point_strokes=0.4))
    assert _layout(speck) == "ddd"
    dot = segment_number(_marked_photo(mnist, "3.14", point_strokes=1.3))
    assert _layout(dot) == "d.dd"


def test_twelve_digit_number_in_a_wide_photo(mnist) -> None:
    """A 12-digit grouped number photographed as a 5:1 strip: all digits, three spaces.

    Before the background grid kept >= 4 tiles across the height, this photo's noise estimate
    tripled and it was "no digit found"."""
    from digitrec.data.marked import compose_marked
    from digitrec.data.synth import _number_photo

    images, labels = mnist
    text = "837 205 916 448"
    idx = [int(np.nonzero(labels == int(c))[0][k % 3]) for k, c in enumerate(text) if c.isdigit()]
    rng = np.random.default_rng(22)
    strip = compose_marked([images[i] for i in idx], text, rng)
    gray = load_image(_number_photo(strip, rng, "clean"))
    assert gray.shape[1] > 5 * gray.shape[0]
    seg = segment_number(gray)
    assert _layout(seg) == "ddd ddd ddd ddd"


def test_separators_from_boxes_and_marks_by_column() -> None:
    def boxes(xs: list[int]) -> list[tuple[int, int, int, int]]:
        return [(x, 0, x + 14, 20) for x in xs]

    # Ordinary gaps of 4 px (0.2 digit heights) and one of 14 (0.7): a separator space.
    assert find_separators(boxes([0, 18, 36, 64, 82]), skip=set()) == [3]
    assert find_separators(boxes([0, 18, 36, 64, 82]), skip={3}) == []  # it holds a point
    assert find_separators(boxes([0, 22, 44, 66]), skip=set()) == []  # evenly wide spacing
    assert insert_marks(list("125075"), [(1, " "), (4, ".")]) == "1 250.75"
    # Marks are placed by column among another reading's boxes (the sequence reader's).
    cols = mark_columns(boxes([0, 18, 36]), [(1, ".")])
    assert cols == [(16.0, ".")]
    assert place_marks("314", boxes([1, 19, 37]), cols) == "3.14"
    assert place_marks("31", boxes([1, 19]), [(100.0, ".")]) == "31"  # never after the last
    assert place_marks("3141", boxes([1, 19, 37]), cols) == "3141"  # digits do not line up


def test_read_puts_the_marks_in_the_number(mnist) -> None:
    from digitrec.inference.checkpoint import SHIPPED_MODEL
    from digitrec.inference.predictor import Predictor
    from digitrec.inference.reading import read_number

    predictor = Predictor.from_checkpoint(SHIPPED_MODEL)
    photo = _marked_photo(mnist, "1 250.75")
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG")
    for method in ("segment", "auto"):
        assert read_number(predictor, buf.getvalue(), method=method)["number"] == "1 250.75"
