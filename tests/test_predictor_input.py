"""``Predictor.predict_proba`` refuses input it would otherwise cast silently (issue 10)."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.errors import DigitrecError
from digitrec.inference.predictor import Predictor
from test_checkpoint import small_checkpoint


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    path = small_checkpoint(tmp_path_factory.mktemp("pred") / "m.safetensors")
    return Predictor.from_checkpoint(path)


@pytest.fixture(scope="module")
def digits(mnist_test) -> np.ndarray:
    return mnist_test[0][:16]


def test_uint8_batch_and_single_image(predictor: Predictor, digits: np.ndarray) -> None:
    batch = predictor.predict_proba(digits)
    assert batch.shape == (16, 10)
    np.testing.assert_allclose(predictor.predict_proba(digits[3]), batch[3:4], rtol=1e-5)
    assert predictor.predict_proba(np.zeros((0, 28, 28), np.uint8)).shape == (0, 10)
    assert predictor.predict_proba([]).shape == (0, 10)


@pytest.mark.parametrize("dtype", [np.int64, np.int16, np.float32, np.float64])
def test_whole_numbers_in_range_are_accepted(
    predictor: Predictor, digits: np.ndarray, dtype
) -> None:
    np.testing.assert_array_equal(
        predictor.predict_proba(digits.astype(dtype)), predictor.predict_proba(digits)
    )


@pytest.mark.parametrize(
    ("convert", "message"),
    [
        (lambda x: x / 255, r"got float values in 0\.\.1: multiply by 255"),
        (lambda x: x.astype(np.float32) / 255, r"got float values in 0\.\.1: multiply by 255"),
        (lambda x: x + 0.5, r"got float values in 0\.5\.\.255\.5, not whole numbers"),
        (lambda x: x.astype(np.int64) - 1, r"got values in -1\.\.254"),
        (lambda x: x.astype(np.int64) + 1, r"got values in 1\.\.256"),
        (lambda x: np.where(x > 0, np.nan, 0.0), "NaN or infinite"),
        (lambda x: x > 0, "got bool values"),
        (lambda x: x.astype(str), "values"),
        (lambda x: x.reshape(-1, 784), r"shape \(N, 28, 28\) or \(28, 28\), got \(16, 784\)"),
        (lambda x: x[:, :27], r"got \(16, 27, 28\)"),
        (lambda x: x[:, None], r"got \(16, 1, 28, 28\)"),
        (lambda x: x[0, 0], r"got \(28,\)"),
        (lambda x: [x[0], x[1][:5]], "expected an array of images"),
    ],
)
def test_silent_casts_refused(predictor: Predictor, digits: np.ndarray, convert, message) -> None:
    with pytest.raises(DigitrecError, match=message):
        predictor.predict_proba(convert(digits))
