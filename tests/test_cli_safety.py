"""CLI fixes from a new user's first session: outputs over inputs, threads, titles, bench."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main


def _digit_png(path: Path) -> Path:
    """A white 56x56 image with a black vertical stroke (a '1')."""
    img = np.full((56, 56), 255, np.uint8)
    img[10:46, 25:31] = 0
    Image.fromarray(img).save(path)
    return path


def test_outputs_never_replace_an_input_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--csv/--show naming an input image (directly, via symlink or ``..``) is one error line."""
    photo = _digit_png(tmp_path / "s7.png")
    before = photo.read_bytes()
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    dotted = tmp_path / "sub" / ".." / "s7.png"
    cases = [
        ["predict", str(photo), "--csv", str(photo)],
        ["predict", str(photo), "--show", str(link)],
        ["predict", str(tmp_path), "--csv", str(dotted)],  # a directory input, walked
        ["read", str(photo), "--show", str(photo)],
        ["read", str(link), "--show", str(dotted)],
    ]
    for argv in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("digitrec: error: --") and "is the input file" in err, argv
        assert len(err.splitlines()) == 1
        assert photo.read_bytes() == before, argv


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "IMG"],
        ["read", "IMG"],
        ["evaluate"],
        ["submit", "--test", "TEST", "--out", "OUT"],
        ["bench", "infer", "CKPT"],
    ],
)
def test_inference_commands_default_to_the_free_cores(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --threads, inference commands use train's rule (auto_threads), not torch's."""
    import torch

    import digitrec.training.config as config

    calls: list[int] = []
    monkeypatch.setattr(config, "auto_threads", lambda: (3, 8))
    monkeypatch.setattr(torch, "set_num_threads", calls.append)  # the test's torch is untouched
    missing = str(tmp_path / "missing.safetensors")
    names = {"IMG": str(_digit_png(tmp_path / "d.png")), "CKPT": missing}
    names |= {"TEST": str(tmp_path / "test.csv"), "OUT": str(tmp_path / "out.csv")}
    argv = [names.get(a, a) for a in argv]
    if argv[0] != "bench":
        argv += ["-c", missing]  # stops right after the threads are set: no model is loaded
    assert main(argv) == 1
    assert calls == [3]
    assert main([*argv, "--threads", "2"]) == 1
    assert calls == [3, 2]


def test_show_title_says_not_a_digit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rejected image's figure title matches the terminal: 'not a digit' and its score."""
    from digitrec.inference.files import ImageResult
    from digitrec.report import plots

    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    probs = np.full(10, 0.11, np.float32)
    probs[5] = 0.01
    img = np.zeros((28, 28), np.uint8)
    rejected = ImageResult("x.png", 5, 0.01, [(5, 0.01)], probs, img, img)
    rejected.rejected, rejected.reject_score = True, 0.99
    plain = ImageResult("y.png", 3, 0.9, [(3, 0.9)], probs, img, img)
    plots.save_predictions([rejected, plain], tmp_path / "fig.png")
    titles = [ax.get_title() for ax in figures[0].axes[2::3]]
    assert titles == ["not a digit (0.990)", "predicted 3 (90.0%)"]


def _fake_timing(*args: object) -> dict[str, float]:
    return {"images_per_s": 1234.0, "latency_p50_ms": 0.5, "latency_p99_ms": 0.9}


def test_bench_infer_checks_every_path_first_and_prints_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import digitrec.benchmarks.infer as infer
    from digitrec.inference.checkpoint import default_checkpoint

    timed: list[object] = []
    monkeypatch.setattr(infer, "_infer_one", lambda *a: timed.append(a) or _fake_timing())
    good, missing = default_checkpoint(), tmp_path / "missing"
    argv = ["bench", "infer", "--no-onnx", "--threads", "1", f"fast={good}"]
    assert main([*argv, f"accurate={missing}"]) == 1
    assert timed == []  # nothing measured before the bad path was found
    assert "missing" in capsys.readouterr().err
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("1,234 img/s") == 1


def test_read_splitter_must_be_an_eleven_class_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``read --splitter CKPT`` with a 10-class model is refused, as the README says."""
    import torch

    from digitrec.inference.checkpoint import build_meta, save_checkpoint
    from digitrec.models import Preprocessing, create_model

    torch.manual_seed(0)
    ten = tmp_path / "ten.safetensors"
    save_checkpoint(
        ten, create_model("softmax").state_dict(), build_meta("softmax", {}, Preprocessing())
    )
    photo = str(_digit_png(tmp_path / "n.png"))
    assert main(["read", photo, "--threads", "1", "--splitter", str(ten)]) == 1
    err = capsys.readouterr().err.strip()
    assert "10-class" in err and "11-class" in err and len(err.splitlines()) == 1
    assert main(["read", photo, "--threads", "1", "--splitter", "self"]) == 0


def test_seed_members_log_line_names_a_real_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``train --seeds K`` says where the logs are, not the placeholder RUN_DIR."""
    from digitrec.cli import launch

    class Done:
        returncode = 0

        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(launch.subprocess, "Popen", Done)
    outs = [tmp_path / "m-seed0", tmp_path / "m-seed1"]
    assert launch.train_members([0, 1], outs, lambda s, o: [], 2) == 0
    out = capsys.readouterr().out
    assert "RUN_DIR" not in out and str(outs[0] / "train.log") in out
