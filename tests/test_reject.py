"""The "not a digit" reject option (issue 14): the rule, its threshold, and every command path."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main
from digitrec.data.nondigits import GLYPHS, make_letters, make_mixed, make_noise, parse_source
from digitrec.errors import CheckpointError, DataError
from digitrec.inference.checkpoint import SHIPPED_MODEL
from digitrec.inference.files import digit_proba
from digitrec.inference.predictor import Predictor
from digitrec.inference.reject import (
    calibrate_reject,
    choose_threshold,
    decide,
    reject_info,
    reject_score,
)
from serve_helpers import png_bytes, thread_server


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    return Predictor.from_checkpoint(SHIPPED_MODEL)


def _letter_png(path: Path, char: str) -> Path:
    """A clear letter, dark ink on white, as a user would draw it (held-out font family)."""
    img = make_letters(1, seed=ord(char), split="bench", glyphs=char, distort=False)[0]
    big = Image.fromarray(255 - img).resize((112, 112), Image.Resampling.BILINEAR)
    big.save(path)
    return path


def test_threshold_accepts_the_stated_fraction() -> None:
    scores = np.linspace(0, 1, 1000)
    t = choose_threshold(scores, 0.995)
    assert np.mean(scores <= t) == pytest.approx(0.995, abs=1e-3)
    assert choose_threshold(scores, 1.0) == 1.0
    with pytest.raises(ValueError):
        choose_threshold(scores, 0.0)


def test_decide_uses_digits_only() -> None:
    proba = np.array([[0.9, 0.05] + [0.0] * 8 + [0.05], [0.1, 0.0] + [0.0] * 8 + [0.9]])
    digits, rejected, score = decide(proba, threshold=0.5)
    assert digits.tolist() == [0, 0]  # the "not a digit" class is never a digit
    assert rejected.tolist() == [False, True]
    assert score == pytest.approx(reject_score(proba)) and score[1] == pytest.approx(0.9)


def test_bad_reject_record_is_refused() -> None:
    assert reject_info({}) is None
    with pytest.raises(CheckpointError):
        reject_info({"reject": {"score": "energy", "threshold": 1.0}})


def test_shipped_threshold_round_trips_checkpoint_and_onnx(
    shipped: Predictor, tmp_path: Path, mnist
) -> None:
    from digitrec.inference.onnx import export_onnx

    info = reject_info(shipped.meta)
    assert info is not None and info["accept_rate"] == 0.995
    assert shipped.reject_threshold == info["threshold"]
    # Recalibrating writes a new checkpoint whose metadata carries the new threshold.
    images, _ = mnist
    out = tmp_path / "recal.safetensors"
    new = calibrate_reject(SHIPPED_MODEL, out, images[:200], accept_rate=0.9)
    again = Predictor.from_checkpoint(out)
    assert again.reject_threshold == new["threshold"] != info["threshold"]
    assert again.meta["reject"]["accept_rate"] == 0.9
    onnx = Predictor.from_checkpoint(export_onnx(out, tmp_path / "recal.onnx"))
    assert onnx.reject_threshold == new["threshold"]
    a = again.predict_with_reject(images[:64])
    b = onnx.predict_with_reject(images[:64])
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2])


def test_clear_letters_rejected_and_digits_accepted(shipped: Predictor, mnist_test) -> None:
    letters = make_letters(200, seed=11, split="bench", glyphs="XKMW", distort=False)
    _, _, rejected, _ = shipped.predict_with_reject(letters)
    assert rejected.mean() >= 0.9
    images, labels = mnist_test
    digits, _, rejected, _ = shipped.predict_with_reject(images[-2000:])
    assert rejected.mean() <= 0.01  # calibrated for 0.5% on held-out training digits
    assert (digits == labels[-2000:]).mean() >= 0.99


def test_no_reject_is_plain_argmax(shipped: Predictor, mnist) -> None:
    images, _ = mnist
    letters = make_letters(32, seed=5, split="bench", distort=False)
    both = np.concatenate([images[:32], letters])
    digits, probs, rejected, _ = shipped.predict_with_reject(both, reject=False)
    assert not rejected.any()
    assert np.array_equal(digits, digit_proba(shipped, both).argmax(1))
    # Over the ten digits only: the 11-class model's digit probabilities renormalised.
    own = digit_proba(shipped, both)
    np.testing.assert_allclose(probs, own / own.sum(axis=1, keepdims=True), rtol=1e-5)


def test_predict_cli_says_not_a_digit(tmp_path: Path, capsys) -> None:
    letter = _letter_png(tmp_path / "x.png", "X")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((100, 100), 255, np.uint8)).save(blank)
    assert main(["predict", str(letter), str(blank)]) == 1  # the blank page is an error
    out, err = capsys.readouterr()
    line = out.strip().splitlines()[0].split("\t")
    assert line[:2] == [str(letter), "not a digit"] and 0 < float(line[2]) <= 1
    assert "no digit found" in err
    assert main(["predict", "--json", str(letter)]) == 0
    answer = json.loads(capsys.readouterr().out)[0]
    assert answer["rejected"] is True and answer["reject_score"] == pytest.approx(
        float(line[2]), abs=5e-4
    )
    # --no-reject: the old answer, the most likely digit.
    assert main(["predict", "--no-reject", str(letter)]) == 0
    plain = capsys.readouterr().out.strip().split("\t")
    want = Predictor.from_checkpoint(SHIPPED_MODEL).predict_with_reject(
        np.asarray(_as_model_input(letter))[None], reject=False
    )[0][0]
    assert plain[1] == str(want)


def _as_model_input(path: Path) -> np.ndarray:
    from digitrec.images import load_image, to_mnist

    return to_mnist(load_image(str(path)))


def test_noise_is_rejected_through_predict(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (28, 28)).astype(np.uint8)).save(noise)
    code = main(["predict", str(noise)])
    out, err = capsys.readouterr()
    # Documented: noise is either "not a digit" or, where nothing ink-like is left, an error.
    assert (code == 0 and "\tnot a digit\t" in out) or (code == 1 and "no digit found" in err)


def test_read_does_not_turn_a_letter_into_a_digit(tmp_path: Path, capsys) -> None:
    letter = _letter_png(tmp_path / "k.png", "K")
    assert main(["read", str(letter)]) == 1
    assert "not a digit" in capsys.readouterr().err


def test_api_answers_rejected_and_score(mnist) -> None:
    from digitrec.serve import create_app

    app = create_app(Predictor.from_checkpoint(SHIPPED_MODEL))
    letter = make_letters(1, seed=3, split="bench", glyphs="W", distort=False)[0]
    images, labels = mnist
    with thread_server(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        r = client.post("/api/predict", json={"pixels": letter.tolist()})
        assert r.status_code == 200 and r.json()["rejected"] is True
        assert 0 < r.json()["reject_score"] <= 1
        r = client.post("/api/predict", json={"pixels": images[0].tolist()})
        assert r.json()["rejected"] is False and r.json()["digit"] == labels[0]
        blank = png_bytes(np.full((100, 100), 255, np.uint8))
        r = client.post("/api/predict", files={"file": ("b.png", blank, "image/png")})
        assert r.status_code == 422 and r.json()["detail"].startswith("no digit found")


def test_nondigits_are_seeded_mnist_style_and_leave_out_digit_like_glyphs(mnist) -> None:
    images, _ = mnist
    a = make_mixed(60, images[:100], seed=1)
    assert a.shape == (60, 28, 28) and a.dtype == np.uint8
    assert np.array_equal(a, make_mixed(60, images[:100], seed=1))
    assert not np.array_equal(a, make_mixed(60, images[:100], seed=2))
    assert not set("OoIlSZB0123456789") & set(GLYPHS)
    assert make_noise(5).shape == (5, 28, 28)
    assert parse_source("letters+noise") == ("letters", "noise")
    with pytest.raises(DataError):
        parse_source("letters+fashion")
