"""`digitrec report` and `compare` on a tiny real training run, and their bad input."""

from __future__ import annotations

import base64
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main
from digitrec.report.run_report import write_run_report
from digitrec.report.runs import read_run

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
PNG_PREFIX = "data:image/png;base64,"


class Page(HTMLParser):
    """Collects what the tests look at and checks that every element is closed in order."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()
        if self.stack:
            self.problems.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "img":
            self.images.append(a)
        for key in ("href", "src"):
            if key in a and tag != "img":
                self.links.append(a[key])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


class _Table(HTMLParser):
    """The cell texts of the body rows of the table with a given id."""

    def __init__(self, table_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.table_id = table_id
        self.rows: list[list[str]] = []
        self.inside = self.in_body = self.in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append([])
        elif self.in_body and tag in ("td", "th"):
            self.in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self.in_cell = False
        elif tag == "table":
            self.inside = self.in_body = False

    def handle_data(self, data: str) -> None:
        if self.in_cell:
            self.rows[-1][-1] += data.strip()


def _table(html: str, table_id: str) -> list[list[str]]:
    """The cell texts of one table's body rows."""
    parser = _Table(table_id)
    parser.feed(html)
    return parser.rows


def check_page(html: str) -> Page:
    """Well nested, self-contained, and every image an embedded PNG of real size."""
    page = Page(html)
    assert not page.problems, page.problems[:5]
    assert page.images, "no images"
    for img in page.images:
        src = img["src"]
        assert src.startswith(PNG_PREFIX), src[:60]
        data = base64.b64decode(src[len(PNG_PREFIX) :], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 150, f"{len(data)}-byte PNG"
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            assert min(im.size) >= 28, im.size
            lo, hi = im.convert("L").getextrema()
            assert hi - lo > 50, "a blank image"
        assert img.get("alt"), "an image without alt text"
    for link in page.links:
        assert link.startswith("#"), f"external reference {link!r}"
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe")]
    return page


def make_tiny_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """`fast` trained for 20 steps on 2,000 digits (seconds), evaluated like `train` does.

    Made once per test session, whichever test module asks first.
    """
    from digitrec.inference.evaluate import evaluate_checkpoint
    from digitrec.training import TrainConfig, train

    out = tmp_path_factory.getbasetemp() / "tiny-run"
    if (out / "test_metrics.json").is_file():
        return out
    cfg = TrainConfig(model="fast", max_steps=20, train_limit=2000, val_size=500, threads=1,
                      device="cpu", out=str(out), data_dir=str(data_dir))  # fmt: skip
    train(cfg)
    report = evaluate_checkpoint(out, "test", data_dir).report
    (out / "test_metrics.json").write_text(json.dumps(report))
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    return make_tiny_run(tmp_path_factory, mnist_dir)


@pytest.fixture(scope="module")
def report_html(tiny_run: Path, mnist_dir: Path) -> str:
    return write_run_report(tiny_run, data_dir=mnist_dir).read_text(encoding="utf-8")


def test_report_is_self_contained_html(report_html: str) -> None:
    page = check_page(report_html)
    # curves (4), confusion, first-layer filters, one digit, its 2 feature-map layers, gallery
    assert len(page.images) >= 9 + 1
    text = " ".join(page.text)
    for heading in ("Training curves", "confusion", "confidently wrong", "First-layer filters",
                    "Feature maps", "Config", "Machine"):  # fmt: skip
        assert heading in text


def test_confusion_counts_add_up_to_the_test_split(report_html: str, mnist_test) -> None:
    rows = _table(report_html, "confusion")
    counts = np.array([[int(v) for v in row[1:]] for row in rows])
    assert counts.shape == (10, 10)
    assert counts.sum() == len(mnist_test[1]) == 10_000
    assert (counts.sum(1) == np.bincount(mnist_test[1], minlength=10)).all()
    per_class = _table(report_html, "per-class")
    assert [int(r[-1].replace(",", "")) for r in per_class] == counts.sum(1).tolist()


def test_gallery_holds_only_misclassified_digits(report_html: str, tiny_run: Path, mnist_test):
    from digitrec.inference.predictor import Predictor

    images, labels = mnist_test
    items = [a for t, a in Page(report_html).tags if t == "li" and "data-index" in a]
    assert len(items) == 24  # the tiny model makes thousands of mistakes
    index = np.array([int(a["data-index"]) for a in items])
    true = np.array([int(a["data-true"]) for a in items])
    pred = np.array([int(a["data-pred"]) for a in items])
    probs = Predictor.from_checkpoint(tiny_run).predict_proba(images[index])
    assert (true == labels[index]).all()
    assert (pred == probs.argmax(1)).all()
    assert (pred != true).all()
    confidence = probs.max(1)
    assert (np.diff(confidence) <= 1e-6).all(), "most confident first"


def test_report_escapes_names_and_config_values(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "<b>run</b>&co"
    shutil.copytree(tiny_run, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["out"] = "<script>alert(1)</script>"
    cfg["future_field"] = {"nested": "<img src=x onerror=alert(1)>"}  # unknown fields are kept
    (run / "config.json").write_text(json.dumps(cfg))
    html = write_run_report(run).read_text()
    check_page(html)
    assert "<script>alert(1)" not in html and "<b>run</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;run&lt;/b&gt;&amp;co" in html
    assert "onerror=alert(1)>" not in html


def test_reader_tolerates_extra_fields_and_a_cut_last_line(tiny_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    lines = [
        json.dumps({**record, "epoch": 1, "grad_norm": 1.5}),
        json.dumps({**record, "epoch": 2, "val_acc": None, "machine": {"cpu": "test cpu"}}),
        '{"epoch": 3, "train_lo',  # a crash mid-write
    ]
    (run / "metrics.jsonl").write_text("\n".join(lines))
    parsed = read_run(run)
    assert [e["epoch"] for e in parsed.epochs] == [1, 2]
    assert parsed.final("val_acc") == record["val_acc"]  # skips the null
    html = write_run_report(run, out=tmp_path / "out").read_text()
    assert "test cpu" in html and "recorded by the run" in html


def test_report_without_checkpoints_still_shows_the_curves(tiny_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for name in ("best.safetensors", "last.safetensors"):
        (run / name).unlink()
    page = check_page(write_run_report(run).read_text())
    assert "left out" in " ".join(page.text)


def test_report_cli_writes_into_out_dir(tiny_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["report", str(tiny_run), "--out", str(tmp_path / "site")]) == 0
    assert (tmp_path / "site" / "report.html").is_file()
    assert "report.html" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such run directory"),
        ("empty", "no metrics.jsonl"),
        ("blank-metrics", "no epoch records"),
        ("corrupt-metrics", "metrics.jsonl:1: not a JSON record"),
    ],
)
def test_bad_run_dirs_are_one_line_errors(tmp_path: Path, capsys, setup: str, message: str):
    run = tmp_path / "run"
    if setup != "missing":
        run.mkdir()
    if setup == "blank-metrics":
        (run / "metrics.jsonl").write_text("\n")
    if setup == "corrupt-metrics":
        (run / "metrics.jsonl").write_text('{"epoch": 1,\n{"epoch": 2}\n')
    assert main(["report", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("digitrec: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (run / "report.html").exists()


def test_compare_prints_a_table_and_writes_curves(tiny_run: Path, tmp_path: Path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model": "lenet5", "seed": 1}))
    records = [{"epoch": e, "step": 100 * e, "val_acc": 0.9 + e / 100, "val_loss": 0.3 / e,
                "epoch_time_s": 2.0} for e in (1, 2, 3)]  # fmt: skip
    (other / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    plot = tmp_path / "curves.png"
    assert main(["compare", str(tiny_run), str(other), "--out", str(plot)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["run", "model", "epochs"]
    assert "207,226" in out[1] and "fast" in out[1]  # parameters from the registry
    assert "61,706" in out[2] and "0.9300" in out[2] and "6.0" in out[2]
    assert "—" in out[2]  # no test metrics for that run
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.size[0] > 600

    assert main(["compare", str(tiny_run), str(other), "--out", str(plot), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["params"] for r in rows] == [207_226, 61_706]
    assert rows[1]["wall_s"] == pytest.approx(6.0)


def test_compare_refuses_a_directory_that_is_not_a_run(tiny_run: Path, tmp_path: Path, capsys):
    assert main(["compare", str(tiny_run), str(tmp_path), "--out", str(tmp_path / "c.png")]) == 1
    assert "no metrics.jsonl" in capsys.readouterr().err


def test_count_macs_matches_the_layer_arithmetic() -> None:
    from digitrec.models import create_model
    from digitrec.models.summary import count_macs

    # fast: conv 5x5 1->16 at 14x14, conv 3x3 16->32 at 7x7, fc 1568->128, fc 128->10
    expected = 14 * 14 * 16 * 25 + 7 * 7 * 32 * 16 * 9 + 1568 * 128 + 128 * 10
    assert count_macs(create_model("fast")) == expected == 506_176
    assert count_macs(create_model("softmax")) == 784 * 10


def test_without_jinja2_reports_say_which_extra_to_install(tmp_path: Path, monkeypatch, capsys):
    import sys

    from digitrec.report import html

    html.environment.cache_clear()
    monkeypatch.setitem(sys.modules, "jinja2", None)  # import jinja2 now raises ImportError
    try:
        assert main(["report", str(tmp_path)]) == 1
        assert main(["explain", "--out", str(tmp_path / "e.html")]) == 1
    finally:
        html.environment.cache_clear()
    err = capsys.readouterr().err.splitlines()
    assert err == ["digitrec: error: HTML reports need Jinja2: pip install 'digitrec[report]'"] * 2
