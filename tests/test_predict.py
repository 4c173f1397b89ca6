"""predict / read / submit / score on real images, real checkpoints and real bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main
from digitrec.data.kaggle import write_kaggle_csv, write_submission
from digitrec.data.synth import make_numbers, photoize
from digitrec.inference.files import predict_files
from digitrec.inference.predictor import Predictor
from digitrec.inference.reading import read_number


def _save(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def photos(mnist_test) -> tuple[list[bytes], np.ndarray]:
    images, labels = mnist_test
    return photoize(images[:1000], seed=0), labels[:1000]


def test_photos_of_digits_are_read_well(fast_run: Path, photos, mnist_test) -> None:
    """The 'user photo' MNIST: dark ink on paper, off-centre, 3-7x, noise, JPEG, rotation."""
    jpegs, labels = photos
    predictor = Predictor.from_checkpoint(fast_run)
    results = predict_files(predictor, [io.BytesIO(b).getvalue() for b in jpegs])
    assert all(r.error is None for r in results)
    acc = np.mean([r.digit == y for r, y in zip(results, labels, strict=True)])
    clean = (predictor.predict(mnist_test[0][:1000]) == labels).mean()
    assert acc >= 0.97, f"photo accuracy {acc:.4f} (original digits {clean:.4f})"


def test_multi_digit_numbers(fast_run: Path, mnist_test) -> None:
    predictor = Predictor.from_checkpoint(fast_run)
    numbers = make_numbers(*mnist_test, n=100, seed=1)
    right = sum(read_number(predictor, img)["number"] == text for img, text in numbers)
    # The small CI model with the packaged splitter (94/100 when measured); the README reports
    # the best model on 200 numbers.
    assert right / len(numbers) >= 0.90


def test_read_cli(
    tmp_path: Path, fast_run: Path, mnist_test, capsys: pytest.CaptureFixture[str]
) -> None:
    predictor = Predictor.from_checkpoint(fast_run)
    numbers = make_numbers(*mnist_test, n=10, seed=1)
    data, text = next((d, t) for d, t in numbers if read_number(predictor, d)["number"] == t)
    photo, show = tmp_path / "number.jpg", tmp_path / "boxes.png"
    _save(photo, data)
    assert main(["read", "-c", str(fast_run), str(photo), "--json", "--show", str(show)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["number"] == text and len(out["digits"]) == len(text)
    assert show.is_file()
    assert main(["read", "-c", str(fast_run), str(photo), "--tta"]) == 0
    assert text in capsys.readouterr().out
    # Cuts scored by the reading model itself; another plain 10-class model is refused as a
    # splitter (tests/test_cli_safety.py).
    assert main(["read", "-c", str(fast_run), str(photo), "--splitter", "self"]) == 0
    assert capsys.readouterr().out.split("\t")[0].isdigit()
    assert main(["read", "-c", str(fast_run), str(tmp_path / "missing.jpg")]) == 1


def test_predict_cli_files_dirs_and_outputs(
    tmp_path: Path, fast_run: Path, photos, capsys: pytest.CaptureFixture[str]
) -> None:
    jpegs, labels = photos
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        _save(folder / "sub" / f"d{i}.jpg", jpegs[i])
    png = tmp_path / "one.png"
    Image.open(io.BytesIO(jpegs[3])).save(png)
    csv, show = tmp_path / "p.csv", tmp_path / "show.png"
    args = [
        "predict",
        "-c",
        str(fast_run),
        str(folder),
        str(png),
        "--top",
        "2",
        "--csv",
        str(csv),
        "--show",
        str(show),
    ]
    assert main(args) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 4 and [int(r.split("\t")[1]) for r in rows] == labels[:4].tolist()
    header = "source,digit,prob,top1,top2,rejected,low_confidence,low_confidence_reason,error"
    assert csv.read_text().splitlines()[0] == header
    with Image.open(show) as fig:
        assert fig.height > 400
    assert main(["predict", "-c", str(fast_run), str(png), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["digit"] == labels[3] and len(out[0]["top"]) == 3
    # --tta averages shifted views: same digit, other probabilities.
    assert main(["predict", "-c", str(fast_run), str(png), "--json", "--tta"]) == 0
    averaged = json.loads(capsys.readouterr().out)
    assert averaged[0]["digit"] == labels[3] and averaged[0]["prob"] != out[0]["prob"]


def test_predict_dataset_example(
    tmp_path: Path, fast_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "predict",
                "-c",
                str(fast_run),
                "--split",
                "test",
                "--index",
                "0",
                "--show",
                str(tmp_path / "x.png"),
            ]
        )
        == 0
    )
    assert "\t7\t" in capsys.readouterr().out  # the first test digit is a 7
    assert (tmp_path / "x.png").is_file()


def _bad_inputs(tmp_path: Path, good_jpeg: bytes) -> dict[str, str]:
    """File name -> expected message fragment."""
    png = io.BytesIO()
    Image.new("L", (64, 64), 255).save(png, format="PNG")
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000), 0).save(bomb, format="PNG")
    files = {
        "notes.png": (b"hello, not a picture", "not a recognised image"),
        "cut.png": (_png_bytes()[:60], "cannot read image"),
        "cut.jpg": (good_jpeg[: len(good_jpeg) // 3], "cannot read image"),
        "empty.png": (b"", "empty"),
        "bomb.png": (bomb.getvalue(), "too large"),
        "dot.png": (_png_bytes((1, 1)), "no digit"),
        "blank.png": (png.getvalue(), "no digit"),
    }
    for name, (data, _) in files.items():
        _save(tmp_path / name, data)
    return {name: msg for name, (_, msg) in files.items()}


def _png_bytes(size: tuple[int, int] = (40, 40)) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_bad_images_each_get_one_line_and_the_rest_still_run(
    tmp_path: Path, fast_run: Path, photos, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _bad_inputs(tmp_path, photos[0][0])
    good = _save(tmp_path / "good.jpg", photos[0][0])
    paths = [str(tmp_path / n) for n in expected] + [str(good)]
    assert main(["predict", "-c", str(fast_run), *paths]) == 1
    out = capsys.readouterr()
    assert out.out.count("\n") == 1 and "good.jpg" in out.out  # the good file still predicted
    errors = out.err.strip().splitlines()
    assert len(errors) == len(expected) and "Traceback" not in out.err
    for (name, fragment), line in zip(expected.items(), errors, strict=True):
        assert name in line and fragment in line.lower(), line


def test_missing_checkpoint_and_no_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", "-c", str(tmp_path / "nope.safetensors"), "x.png"]) == 1
    assert "no such checkpoint" in capsys.readouterr().err


def test_submit_and_score(
    tmp_path: Path, fast_run: Path, mnist_test, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = mnist_test
    write_kaggle_csv(tmp_path / "test.csv", images[:2000])
    write_submission(tmp_path / "labels.csv", labels[:2000])
    sub = tmp_path / "submission.csv"
    assert (
        main(
            [
                "submit",
                "-c",
                str(fast_run),
                "-c",
                str(fast_run),
                "--test",
                str(tmp_path / "test.csv"),
                "--out",
                str(sub),
            ]
        )
        == 0
    )
    assert "ensemble of 2" in capsys.readouterr().out
    lines = sub.read_text().splitlines()
    assert lines[0] == "ImageId,Label" and lines[1].startswith("1,") and len(lines) == 2001
    assert main(["score", str(sub), "--labels", str(tmp_path / "labels.csv")]) == 0
    acc = float(capsys.readouterr().out.split()[1])
    assert acc > 0.98
    # A CSV with a missing column or a bad value is one clear line, nothing written.
    bad = tmp_path / "bad.csv"
    bad.write_text("pixel0,pixel1\n1,2\n")
    assert (
        main(["submit", "-c", str(fast_run), "--test", str(bad), "--out", str(tmp_path / "o.csv")])
        == 1
    )
    assert "bad header" in capsys.readouterr().err and not (tmp_path / "o.csv").exists()
    write_kaggle_csv(bad, images[:3])
    bad.write_text(bad.read_text().replace(",0,", ",x,", 1))
    assert main(["submit", "-c", str(fast_run), "--test", str(bad)]) == 1
    assert "line 2" in capsys.readouterr().err


def _digit_pairs(images: np.ndarray) -> np.ndarray:
    """Two digits squeezed side by side into 28x28: the splitter's "not one digit" class."""
    half = images[:, :, ::2]
    return np.concatenate([half[:-1], half[1:]], axis=2)


def test_eleven_class_model_answers_over_the_ten_digits(
    tmp_path: Path, fast_run: Path, mnist_test, capsys: pytest.CaptureFixture[str]
) -> None:
    """The splitter's class 10 never reaches predict's output or a Kaggle submission."""
    from digitrec.inference.reading import SPLITTER

    splitter = Predictor.from_checkpoint(SPLITTER)
    pairs = _digit_pairs(mnist_test[0][:41])
    assert (splitter.predict(pairs) == 10).mean() > 0.9  # the inputs that matter here
    for i in range(3):
        Image.fromarray(255 - np.kron(pairs[i], np.ones((4, 4), np.uint8))).save(
            tmp_path / f"pair{i}.png"
        )
    assert main(["predict", "-c", str(SPLITTER), *map(str, tmp_path.glob("pair*.png"))]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 3 and all(row.split("\t")[1] in list("0123456789") for row in rows)

    write_kaggle_csv(tmp_path / "pairs.csv", pairs)
    sub = tmp_path / "sub.csv"
    for models in ([SPLITTER], [fast_run, SPLITTER]):  # alone, and averaged with a 10-class
        args = [a for m in models for a in ("-c", str(m))]
        assert (
            main(["submit", *args, "--test", str(tmp_path / "pairs.csv"), "--out", str(sub)]) == 0
        )
        labels = np.loadtxt(sub, delimiter=",", skiprows=1, dtype=int)[:, 1]
        assert len(labels) == 40 and labels.max() <= 9

    from digitrec.inference.files import digit_proba

    probs = digit_proba(splitter, pairs)
    np.testing.assert_array_equal(probs, splitter.predict_proba(pairs)[:, :10])


def test_iter_predictions_decodes_one_batch_at_a_time(
    fast_run: Path, photos, monkeypatch: pytest.MonkeyPatch
) -> None:
    import digitrec.inference.files as files

    decoded = []
    real = files.load_image
    monkeypatch.setattr(files, "load_image", lambda src: decoded.append(src) or real(src))
    predictor = Predictor.from_checkpoint(fast_run)
    jpegs = photos[0][:7]
    results = files.iter_predictions(predictor, jpegs, batch=3, keep_originals=2)
    first = next(results)
    assert first.digit is not None and len(decoded) == 3  # the rest is not read yet
    rest = list(results)
    assert len(decoded) == 7 and len(rest) == 6
    kept = [r.original is not None for r in [first, *rest]]
    assert kept == [True, True, False, False, False, False, False]  # bounded memory


def test_predict_prints_each_batch_and_ctrl_c_keeps_it(
    tmp_path: Path,
    fast_run: Path,
    photos,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import digitrec.inference.files as files

    paths = [_save(tmp_path / f"d{i}.jpg", photos[0][i]) for i in range(4)]
    real = files.load_image

    def interrupted_at_the_third(src):
        if str(src).endswith("d2.jpg"):
            raise KeyboardInterrupt
        return real(src)

    monkeypatch.setattr(files, "BATCH", 2, raising=False)
    monkeypatch.setattr(files, "load_image", interrupted_at_the_third)
    assert main(["predict", "-c", str(fast_run), *map(str, paths)]) == 130
    out = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.out.splitlines()] == list(map(str, paths[:2]))
    assert out.err.strip().splitlines()[-1] == "digitrec: interrupted"


def _letter_png(path: Path) -> Path:
    """A clear 'X' (held-out font family), dark ink on white: the shipped model rejects it."""
    from digitrec.data.nondigits import make_letters

    img = make_letters(1, seed=ord("X"), split="bench", glyphs="X", distort=False)[0]
    Image.fromarray(255 - np.kron(img, np.ones((4, 4), np.uint8))).save(path)
    return path


def test_predict_csv_has_rejected_and_low_confidence(
    tmp_path: Path, photos, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CSV says what the terminal says: 'not a digit' and 'low confidence' (issue 15)."""
    import csv

    jpegs, _ = photos
    digit = _save(tmp_path / "digit.jpg", jpegs[0])
    letter = _letter_png(tmp_path / "letter.png")
    missing = tmp_path / "missing.png"
    out = tmp_path / "p.csv"
    # Default (shipped) model with its reject threshold; one file fails.
    assert main(["predict", str(digit), str(letter), str(missing), "--csv", str(out)]) == 1
    rows = {r["source"]: r for r in csv.DictReader(out.read_text().splitlines())}
    assert rows[str(digit)]["rejected"] == "false"
    assert rows[str(digit)]["low_confidence"] == "false"
    assert rows[str(letter)]["rejected"] == "true"
    assert rows[str(letter)]["low_confidence"] == "false"  # rejected: never also "doubtful"
    assert rows[str(missing)]["rejected"] == rows[str(missing)]["low_confidence"] == ""
    assert "no such file" in rows[str(missing)]["error"]
    # With a threshold above any probability, every digit answer is flagged, with its reason.
    monkeypatch.setattr("digitrec.inference.confidence.LOW_CONFIDENCE", 1.01)
    assert main(["predict", str(digit), "--no-reject", "--csv", str(out)]) == 0
    (row,) = csv.DictReader(out.read_text().splitlines())
    assert row["rejected"] == "false" and row["low_confidence"] == "true"
    assert row["low_confidence_reason"].startswith("probability ")
    assert "low confidence: probability" in capsys.readouterr().out


def test_no_reject_renormalises_over_the_ten_digits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--no-reject with the shipped 11-class model: the digits' probabilities sum to 1."""
    letter = _letter_png(tmp_path / "letter.png")
    assert main(["predict", str(letter), "--json", "--top", "10"]) == 0
    kept = json.loads(capsys.readouterr().out)[0]
    assert kept["rejected"] is True
    # With the reject rule the model's own share of the ten digits is shown: well under 1.
    assert sum(t["prob"] for t in kept["top"]) < 0.9
    assert main(["predict", str(letter), "--no-reject", "--json", "--top", "10"]) == 0
    plain = json.loads(capsys.readouterr().out)[0]
    assert "rejected" not in plain
    assert sum(t["prob"] for t in plain["top"]) == pytest.approx(1.0, abs=1e-5)
    assert plain["digit"] == kept["digit"]  # the same best guess, only rescaled
    assert plain["prob"] > kept["prob"]
    # The dataset-example path too.
    args = ["predict", "--split", "test", "--index", "0", "--no-reject", "--json", "--top", "10"]
    assert main(args) == 0
    example = json.loads(capsys.readouterr().out)[0]
    assert sum(t["prob"] for t in example["top"]) == pytest.approx(1.0, abs=1e-5)
