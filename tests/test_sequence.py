"""The sequence reader (CRNN + CTC): decoding, the packaged weights, ``read --method``."""

from __future__ import annotations

import io
from itertools import pairwise

import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main
from digitrec.data import synth
from digitrec.data.nondigits import make_letters
from digitrec.data.strips import HEIGHT, normalise_strip, pack, strip_from_ink, unpack
from digitrec.errors import DigitrecError, NoDigitError
from digitrec.images import load_image
from digitrec.inference.checkpoint import SHIPPED_MODEL
from digitrec.inference.predictor import Predictor
from digitrec.inference.reading import combine, read_number
from digitrec.inference.sequence import SequenceReader, ctc_greedy, default_reader
from digitrec.models.sequence import CRNN

DIGITS = SHIPPED_MODEL


def _logits(path: list[int], sure: float = 0.9) -> np.ndarray:
    """(T, 11) log-probabilities whose best class in column t is ``path[t]``."""
    out = np.full((len(path), 11), (1 - sure) / 10)
    out[np.arange(len(path)), path] = sure
    return np.log(out)


def test_ctc_collapses_repeats_and_drops_blanks() -> None:
    # blank 3 3 blank 3 blank 8 8 -> "22" then "7" (class 1 + d is digit d).
    text, probs, cols = ctc_greedy(_logits([0, 3, 3, 0, 3, 0, 8, 8]))
    assert text == "227"
    assert cols == [1, 4, 6]
    assert probs == pytest.approx([0.9, 0.9, 0.9])


def test_ctc_repeat_without_blank_is_one_digit() -> None:
    assert ctc_greedy(_logits([2, 2, 2, 10]))[0] == "19"


def test_ctc_probability_is_the_runs_peak() -> None:
    logp = _logits([0, 5, 5, 0])
    logp[2, 5] = np.log(0.99)
    text, probs, cols = ctc_greedy(logp)
    assert (text, cols) == ("4", [2])
    assert probs[0] == pytest.approx(0.99)


def test_ctc_all_blank_is_empty() -> None:
    assert ctc_greedy(_logits([0, 0, 0])) == ("", [], [])
    assert ctc_greedy(np.zeros((0, 11))) == ("", [], [])


def test_crnn_output_shape() -> None:
    import torch

    out = CRNN()(torch.zeros(2, 1, HEIGHT, 37))
    assert out.shape == (10, 2, 11)  # ceil(37 / 4) columns
    assert torch.allclose(out.exp().sum(-1), torch.ones(10, 2))


def test_pack_round_trip() -> None:
    strips = [np.full((HEIGHT, w), w, np.uint8) for w in (3, 9, 1)]
    back = unpack(*pack(strips))
    assert [b.shape[1] for b in back] == [3, 9, 1]
    assert all((a == b).all() for a, b in zip(strips, back, strict=True))


def test_packaged_reader_loads() -> None:
    reader = default_reader()
    assert reader.meta["format"] == "digitrec-reader"
    assert sum(p.numel() for p in reader.model.parameters()) < 1_000_000


def test_reader_reads_fixed_numbers(mnist) -> None:
    images, labels = mnist
    numbers = synth.make_numbers(images, labels, n=12, seed=3)
    reader = default_reader()
    got = [reader.read_gray(load_image(data))["number"] for data, _ in numbers]
    right = sum(g == text for g, (_, text) in zip(got, numbers, strict=True))
    # The reader alone reads ~96% of such numbers (README); a broken one reads none of them.
    assert right >= 10, list(zip(got, [text for _, text in numbers], strict=True))


def _touching(mnist) -> tuple[bytes, str]:
    """A photo of 1959 whose neighbours overlap by 2 px (MNIST scale): the segmenter reads ??59."""
    images, labels = mnist
    rng = np.random.default_rng(9)
    idx = [int(i) for i in rng.choice(500, size=4, replace=False)]
    strip = synth.compose_number([images[i] for i in idx], [-2, -2, -2], rng)
    return synth._number_photo(strip, rng, "clean"), "".join(str(labels[i]) for i in idx)


def test_auto_reads_touching_digits_the_segmenter_misreads(mnist) -> None:
    data, text = _touching(mnist)
    assert text == "1959"
    predictor = Predictor.from_checkpoint(DIGITS)
    assert read_number(predictor, data, method="segment")["number"] != text
    auto = read_number(predictor, data, method="auto")
    assert auto["number"] == text
    assert auto["method"] == "auto: seq"
    assert len(auto["digits"]) == len(auto["crops"]) == 4
    boxes = [d["box"] for d in auto["digits"]]
    assert all(a[0] < b[0] for a, b in pairwise(boxes))  # left to right


def test_auto_flags_the_number_when_the_readers_disagree(mnist, tmp_path, capsys) -> None:
    data, text = _touching(mnist)
    predictor = Predictor.from_checkpoint(DIGITS)
    seg = read_number(predictor, data, method="segment")["number"]
    auto = read_number(predictor, data, method="auto")
    assert auto["method"] == "auto: seq"
    assert auto["low_confidence"] is True
    reason = f"the segmenter read {seg}, the sequence reader {text}"
    assert auto["low_confidence_reason"].startswith(reason)
    # read --json passes the number's flag through.
    photo = tmp_path / "n.png"
    photo.write_bytes(data)
    assert main(["read", str(photo), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"low_confidence": true' in out and reason in out


def test_rejected_piece_flags_the_number(mnist) -> None:
    """A letter among digits reads as ``?``: a number with a ``?`` is never a sure answer."""
    images, _ = mnist
    letter = make_letters(1, seed=11, split="bench", glyphs="X", distort=False)[0]
    rng = np.random.default_rng(1)
    strip = synth.compose_number([images[0], images[1], letter, images[2]], [8, 8, 8], rng)
    data = synth._number_photo(strip, rng, "clean")
    out = read_number(Predictor.from_checkpoint(DIGITS), data, method="segment")
    assert out["number"] == "72?1"
    assert out["low_confidence"] is True
    assert out["low_confidence_reason"].startswith("digit 3: not a digit (reject score")


def test_combine_keeps_segmenter_boxes_when_they_agree() -> None:
    seq = {"number": "12", "digits": [{"digit": 1, "prob": 0.99}, {"digit": 2, "prob": 0.6}]}
    seg = {
        "number": "12",
        "digits": [{"digit": 1, "prob": 0.9, "box": [0, 0, 5, 9]}, {"digit": 2, "prob": 0.8}],
    }
    out = combine(seq, seg)
    assert out["method"] == "auto: both agree"
    assert out["digits"][0]["box"] == [0, 0, 5, 9]
    assert [d["prob"] for d in out["digits"]] == [0.99, 0.8]


def test_combine_disagreement_goes_to_the_surer_reading() -> None:
    seq = {"number": "17", "digits": [{"digit": 1, "prob": 0.99}, {"digit": 7, "prob": 0.95}]}
    seg = {"number": "11", "digits": [{"digit": 1, "prob": 0.9}, {"digit": 1, "prob": 0.3}]}
    assert combine(seq, seg, margin=0.0)["number"] == "17"
    assert combine(seq, seg, margin=1.0)["number"] == "11"
    for margin in (0.0, 1.0):
        out = combine(seq, seg, margin=margin)
        assert out["low_confidence"] is True
        assert out["low_confidence_reason"] == "the segmenter read 11, the sequence reader 17"


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_empty_strip_reads_nothing() -> None:
    assert default_reader().read_strip(np.zeros((HEIGHT, 40), np.float32))[0] == ""
    image, box, _ = strip_from_ink(np.zeros((10, 10)))
    assert image.shape[0] == HEIGHT and box == (0, 0, 0, 0)


def test_blank_page_is_no_digit() -> None:
    blank = _png(np.full((240, 320), 230, np.uint8))
    predictor = Predictor.from_checkpoint(DIGITS)
    for method in ("seq", "auto"):
        with pytest.raises(NoDigitError):
            read_number(predictor, blank, method=method)


def test_very_wide_writing_is_a_clear_error() -> None:
    wide = np.full((60, 4000), 255, np.uint8)
    wide[28:32, 10:3990] = 0  # one long line of ink, 1000x as wide as tall
    with pytest.raises(DigitrecError, match="too wide"):
        normalise_strip(wide, clean_page=False)


def test_unknown_method_is_an_error() -> None:
    predictor = Predictor.from_checkpoint(DIGITS)
    with pytest.raises(DigitrecError, match="unknown read method"):
        read_number(predictor, _png(np.zeros((28, 28), np.uint8)), method="ocr")


def test_bad_reader_file(tmp_path) -> None:
    bad = tmp_path / "reader.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(DigitrecError, match="cannot read sequence reader"):
        SequenceReader.from_file(bad)
    with pytest.raises(DigitrecError, match="not found"):
        SequenceReader.from_file(tmp_path / "missing.safetensors")


def test_cli_read_method_seq(mnist, tmp_path, capsys) -> None:
    data, text = _touching(mnist)
    photo = tmp_path / "n.jpg"
    photo.write_bytes(data)
    assert main(["read", str(photo), "--method", "seq", "--json"]) == 0
    out = capsys.readouterr().out
    assert f'"number": "{text}"' in out and '"method": "seq"' in out
    blank = tmp_path / "blank.png"
    blank.write_bytes(_png(np.full((240, 320), 230, np.uint8)))
    assert main(["read", str(blank), "--method", "seq"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitrec: error: no digit found") and "\n" not in err
