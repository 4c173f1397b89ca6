"""`digitrec explain`: the page's numbers against the formulas and direct loops, and bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main
from digitrec.report import convmath as cm
from digitrec.report.explain import Digit, explain_context, load_model, write_explain
from digitrec.report.html import write_page
from test_report import Page, _table, check_page, make_tiny_run


def direct_conv(image: np.ndarray, kernel: np.ndarray, p: int = 0, s: int = 1) -> np.ndarray:
    """Convolution (no kernel flip, as in CNNs) by explicit loops over windows and weights."""
    x = np.zeros((image.shape[0] + 2 * p, image.shape[1] + 2 * p))
    x[p : p + image.shape[0], p : p + image.shape[1]] = image
    f = kernel.shape[0]
    n_out = (x.shape[0] - f) // s + 1
    out = np.zeros((n_out, n_out))
    for i in range(n_out):
        for j in range(n_out):
            total = 0.0
            for a in range(f):
                for b in range(f):
                    total += x[i * s + a, j * s + b] * kernel[a, b]
            out[i, j] = total
    return out


def windows_using(n: int, f: int, p: int, s: int) -> np.ndarray:
    """For each input pixel, how many windows contain it, counted window by window."""
    n_out = (n + 2 * p - f) // s + 1
    counts = np.zeros((n, n), dtype=int)
    for i in range(n_out):
        for j in range(n_out):
            for r in range(i * s - p, i * s - p + f):
                for c in range(j * s - p, j * s - p + f):
                    if 0 <= r < n and 0 <= c < n:
                        counts[r, c] += 1
    return counts


@pytest.fixture(scope="module")
def digit(mnist_test) -> np.ndarray:
    return mnist_test[0][0]


@pytest.fixture(scope="module")
def page(tmp_path_factory, mnist_dir: Path) -> tuple[str, dict]:
    """explain.html for test digit 0 with the tiny trained model, and its context."""
    from digitrec.data import load_mnist
    from digitrec.inference.checkpoint import load_checkpoint

    run = make_tiny_run(tmp_path_factory, mnist_dir)
    images, labels = load_mnist("test", mnist_dir)
    context = explain_context(Digit(images[0], "MNIST test #0", int(labels[0])),
                              load_checkpoint(run))  # fmt: skip
    out = tmp_path_factory.mktemp("explain") / "explain.html"
    html = write_page(out, "explain.html", **context, no_model=None).read_text(encoding="utf-8")
    return html, context


@pytest.mark.parametrize(("p", "s"), [(0, 1), (1, 1), (1, 2), (2, 3)])
@pytest.mark.parametrize("kernel", [cm.VERTICAL_EDGE, cm.HORIZONTAL_EDGE])
def test_conv2d_matches_direct_loops(digit: np.ndarray, kernel: np.ndarray, p: int, s: int):
    got = cm.conv2d(digit, kernel, p, s)
    assert got.shape == (cm.output_size(28, 3, p, s),) * 2
    np.testing.assert_array_equal(got, direct_conv(digit, kernel, p, s))


@pytest.mark.parametrize(("n", "f", "p", "s"), [(28, 3, 0, 1), (28, 3, 1, 1), (28, 5, 2, 2),
                                                (28, 3, 0, 2), (7, 3, 1, 2)])  # fmt: skip
def test_output_size_and_coverage_follow_the_formula(n: int, f: int, p: int, s: int) -> None:
    assert cm.output_size(n, f, p, s) == int(np.floor((n + 2 * p - f) / s)) + 1
    np.testing.assert_array_equal(cm.coverage(n, f, p, s), windows_using(n, f, p, s))


def test_pooling_matches_reshaping(digit: np.ndarray) -> None:
    blocks = digit.astype(float).reshape(14, 2, 14, 2)
    np.testing.assert_array_equal(cm.pool2d(digit, 2, 2, "max"), blocks.max((1, 3)))
    np.testing.assert_allclose(cm.pool2d(digit, 2, 2, "average"), blocks.mean((1, 3)))
    assert cm.pool2d(digit, 3, 2).shape == (13, 13)  # (28 - 3) / 2 + 1 = 13.5, rounded down


def test_page_edge_maps_and_dot_product_are_the_direct_convolution(page, digit) -> None:
    html, ctx = page
    np.testing.assert_array_equal(ctx["edges"]["vertical"], direct_conv(digit, cm.VERTICAL_EDGE))
    np.testing.assert_array_equal(
        ctx["edges"]["horizontal"], direct_conv(digit, cm.HORIZONTAL_EDGE)
    )
    w = ctx["window"]
    r, c = w["row"], w["col"]
    assert w["value"] == direct_conv(digit, cm.VERTICAL_EDGE)[r, c] != 0
    assert w["window"] == digit[r : r + 3, c : c + 3].tolist()
    # The sum as written on the page: every "a×b" term, multiplied and added, gives the value.
    text = Page(html).text
    written = next(t for t in text if "×" in t and "+" in t)
    terms = re.findall(r"(-?\d+)×\(?([−-]?\d+)\)?", written)
    assert len(terms) == 9
    assert sum(int(a) * int(b.replace("−", "-")) for a, b in terms) == w["value"]
    assert re.search(rf"=\s*{w['value']}\s*$", "".join(text[text.index(written) :][:2]).strip())


def test_page_padding_and_pooling_numbers_match_the_formulas(page) -> None:
    html, ctx = page
    rows = [a for t, a in Page(html).tags if t == "tr" and "data-p" in a]
    assert len(rows) == 8
    for a in rows:
        f, p, s = int(a["data-f"]), int(a["data-p"]), int(a["data-s"])
        assert int(a["data-out"]) == (28 + 2 * p - f) // s + 1
    same = [a for a in rows if a["data-p"] != "0"]
    assert all(int(a["data-p"]) == (int(a["data-f"]) - 1) // 2 for a in same)
    pad = ctx["padding"]
    assert (pad["valid_corner"], pad["valid_edge"], pad["valid_centre"]) == (1, 3, 9)
    assert (pad["same_corner"], pad["same_edge"], pad["same_centre"]) == (4, 6, 9)
    sizes = [a for t, a in Page(html).tags if t == "tr" and "data-s" in a and "data-p" not in a]
    assert [(a["data-f"], a["data-s"], a["data-out"]) for a in sizes] == [
        ("2", "2", "14"),
        ("3", "2", "13"),
        ("3", "3", "9"),
    ]
    q = ctx["pooling"]
    patch = np.array(q["patch"])
    assert np.array(q["patch_max"]).tolist() == patch.reshape(2, 2, 2, 2).max((1, 3)).tolist()
    avg = patch.reshape(2, 2, 2, 2).mean((1, 3))
    assert [[float(v) for v in row] for row in q["patch_avg"]] == pytest.approx(avg, abs=0.005)
    assert (patch.reshape(2, 2, 2, 2).max((1, 3)) != avg).any()  # the patch shows a difference
    assert _table(html, "pool-max") == [[str(v) for v in row] for row in q["patch_max"]]


def test_page_is_self_contained_and_uses_the_model(page, tiny_probs) -> None:
    html, ctx = page
    check_page(html)
    model = ctx["model"]
    assert model is not None and sum(model["probs"]) == pytest.approx(1, abs=1e-5)
    np.testing.assert_allclose(model["probs"], tiny_probs, atol=1e-5)
    assert model["vector_len"] == 32 * 7 * 7 and model["flat_from"]["c"] == 32
    assert ctx["activation"]["from_model"]
    probs = _table(html, "probabilities")
    assert len(probs) == 10


@pytest.fixture(scope="module")
def tiny_probs(tmp_path_factory, mnist_dir: Path, digit: np.ndarray) -> np.ndarray:
    from digitrec.inference.predictor import Predictor

    run = make_tiny_run(tmp_path_factory, mnist_dir)
    return Predictor.from_checkpoint(run).predict_proba(digit[None])[0]


def test_zoo_numbers_come_from_the_registry(page) -> None:
    from digitrec.models import count_parameters, create_model, list_models

    html, _ = page
    rows = {a["data-model"]: int(a["data-params"]) for t, a in Page(html).tags if "data-model" in a}
    assert rows == {name: count_parameters(create_model(name)) for name in list_models()}
    classics = _table(html, "classics")
    assert [r[0] for r in classics] == ["LeNet-5", "AlexNet", "VGG-16"]
    assert "138 million" in classics[2]


def test_explain_a_users_image_escapes_its_name(tmp_path: Path, mnist_test, capsys) -> None:
    # A digit as a user would draw it: dark ink on white paper, larger than 28x28.
    ink = Image.fromarray(255 - mnist_test[0][1]).resize((140, 140))
    photo = tmp_path / "<b>my&digit<i>.png"
    ink.save(photo)
    out = tmp_path / "page.html"
    rc = main(["explain", "--image", str(photo), "--out", str(out), "-c", str(tmp_path / "none")])
    assert rc == 1  # a missing checkpoint the user named is an error, not a silent fallback
    assert capsys.readouterr().err.count("\n") == 1
    html_path, _ = write_explain(out, None, None, photo)
    html = html_path.read_text()
    check_page(html)
    assert "<b>my&digit" not in html and "&lt;b&gt;my&amp;digit&lt;i&gt;.png" in html


def test_explain_without_any_model_shows_the_model_free_sections(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import digitrec.inference.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "SHIPPED_MODEL", tmp_path / "absent.safetensors")
    assert load_model(None)[0] is None
    out = tmp_path / "explain.html"
    assert main(["explain", "--index", "3", "--out", str(out)]) == 0
    assert "note: no --checkpoint given" in capsys.readouterr().err
    page = check_page(out.read_text())
    ids = {a.get("id") for _, a in page.tags}
    assert {"dot", "edges", "padding", "pooling", "activations", "no-model"} <= ids
    assert "flatten" not in ids and "looks" not in ids


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "missing.safetensors"], "missing.safetensors: no such checkpoint"),
        (["--index", "10000"], "--index must be in 0..9999"),
        (["--image", "absent.png"], "absent.png"),
        (["--image", "blank.png"], "no digit"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path: Path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    Image.new("L", (60, 60), 255).save("blank.png")
    assert main(["explain", *args, "--out", "page.html"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("digitrec: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not Path("page.html").exists()


def test_index_and_image_together_is_a_usage_error(capsys) -> None:
    assert main(["explain", "--index", "1", "--image", "x.png"]) == 2
    assert "not allowed with" in capsys.readouterr().err


# ---- the server: POST /api/explain, GET /explain, GET /runs ---------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory, mnist_dir: Path):
    """The app serving the tiny model, with a runs folder holding a copy of its run."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    import shutil

    from digitrec.inference.predictor import Predictor
    from digitrec.serve import create_app
    from serve_helpers import thread_server

    run = make_tiny_run(tmp_path_factory, mnist_dir)
    runs = tmp_path_factory.mktemp("runs")
    shutil.copytree(run, runs / "tiny")
    (runs / "not-a-run").mkdir()
    app = create_app(Predictor.from_checkpoint(run), runs=str(runs))
    with thread_server(app) as base:
        yield base, runs


def test_api_explain_returns_every_layer(served, digit: np.ndarray) -> None:
    import base64
    import io

    import httpx

    base, _ = served
    r = httpx.post(f"{base}/api/explain", json={"pixels": digit.tolist()}, timeout=60)
    assert r.status_code == 200, r.text
    layers = r.json()["layers"]
    assert [(la["name"], la["kind"], la["shape"]) for la in layers] == [
        ("features.0", "conv", [16, 14, 14]),
        ("features.3", "conv", [32, 7, 7]),
    ]
    for la in layers:
        with Image.open(io.BytesIO(base64.b64decode(la["png"]))) as im:
            assert im.format == "PNG" and im.width > im.height > 28
        assert la["channels_shown"] == 8
    blank = httpx.post(f"{base}/api/explain", json={"pixels": [[0] * 28] * 28}, timeout=60)
    assert blank.status_code == 422 and "no digit" in blank.json()["detail"]
    wrong = httpx.post(f"{base}/api/explain", content=b"x", timeout=60)
    assert wrong.status_code == 415


def test_explain_and_run_pages_are_served(served) -> None:
    import httpx

    base, runs = served
    with httpx.Client(base_url=base, timeout=120) as client:
        page = client.get("/explain", params={"index": 3})
        assert page.status_code == 200
        assert "script-src" not in page.headers["content-security-policy"]  # no script at all
        check_page(page.text)
        assert "MNIST test #3" in page.text
        assert client.get("/explain", params={"index": 10_000}).status_code == 422

        listing = client.get("/runs")
        assert listing.status_code == 200
        assert 'href="/runs/tiny"' in listing.text and "not-a-run" not in listing.text
        report = client.get("/runs/tiny")
        assert report.status_code == 200
        check_page(report.text)
        assert (runs / "tiny" / "report.html").is_file()  # written on the first view
        for name in ("not-a-run", "%2e%2e", "..%2f..%2fetc"):
            assert client.get(f"/runs/{name}").status_code == 404
