"""report.html and explain.html in headless Chromium: images load, no console errors, no
network requests, no horizontal scrolling at phone width. Screenshots are kept for a look.

Uses the system Chromium (/usr/bin/chromium, the Debian package) through the ``playwright``
Python package; never ``playwright install``. Screenshots go to $DIGITREC_SCREENSHOTS if set,
else the test's temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digitrec.report.explain import write_explain
from digitrec.report.run_report import write_run_report
from test_report import make_tiny_run

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = {"desktop": 1280, "phone": 375}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Chromium at /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> dict[str, Path]:
    run = make_tiny_run(tmp_path_factory, mnist_dir)
    out = tmp_path_factory.mktemp("pages")
    explain, _ = write_explain(out / "explain.html", run, 0, None, mnist_dir)
    return {"report": write_run_report(run, out, mnist_dir), "explain": explain}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("DIGITREC_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("name", ["report", "explain"])
def test_page_renders_cleanly(browser, pages, shots: Path, name: str, width: str) -> None:
    page = browser.new_page(viewport={"width": WIDTHS[width], "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: requests.append(req.url))
    page.goto(pages[name].as_uri(), wait_until="load")

    images = page.evaluate(
        """Array.from(document.images).map(i => ({
            ok: i.complete && i.naturalWidth > 0,
            right: i.getBoundingClientRect().right,
        }))"""
    )
    assert images and all(img["ok"] for img in images), "a broken image"
    assert not errors, errors
    # Self-contained: the only request is the page itself (data: URIs are not requests).
    assert requests == [pages[name].as_uri()], requests
    doc = page.evaluate(
        """({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
             font: parseFloat(getComputedStyle(document.body).fontSize)})"""
    )
    assert doc["scroll"] <= doc["inner"], f"horizontal overflow: {doc}"
    assert doc["font"] >= 14
    assert max(img["right"] for img in images) <= doc["inner"] + 1, "an image wider than the page"

    shot = shots / f"{name}-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path):
    """`digitrec serve`'s app on the tiny model, with its run under /runs."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    import shutil

    from digitrec.inference.predictor import Predictor
    from digitrec.serve import create_app
    from serve_helpers import thread_server

    run = make_tiny_run(tmp_path_factory, mnist_dir)
    runs = tmp_path_factory.mktemp("served-runs")
    shutil.copytree(run, runs / "tiny")
    app = create_app(Predictor.from_checkpoint(run), runs=str(runs))
    with thread_server(app) as base:
        yield base


def _open(browser, url: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="load")
    return page, errors


@pytest.mark.parametrize("width", list(WIDTHS))
def test_draw_page_shows_inside_the_network(browser, server: str, shots: Path, width: str):
    page, errors = _open(browser, f"{server}/", WIDTHS[width])
    assert page.locator("#inside").is_hidden()
    box = page.locator("#canvas").bounding_box()
    assert box is not None
    # A "7": a bar across the top, then a stroke down to the lower left.
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.25 * w, y + 0.2 * h)
    page.mouse.down()
    for fx, fy in ((0.5, 0.2), (0.75, 0.2), (0.6, 0.5), (0.45, 0.85)):
        page.mouse.move(x + fx * w, y + fy * h, steps=8)
    page.mouse.up()
    page.locator("#inside").wait_for(state="visible", timeout=60_000)
    figures = page.locator("#layers figure")
    assert figures.count() == 2
    assert "features.0" in figures.first.inner_text()
    ok = page.evaluate(
        "Array.from(document.querySelectorAll('#layers img'))"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert ok, "a broken feature-map image"
    doc = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert doc[0] <= doc[1], f"horizontal overflow: {doc}"
    page.screenshot(path=str(shots / f"draw-inside-{width}.png"), full_page=True)
    assert not errors, errors  # a Content-Security-Policy violation is a console error
    page.locator("#clear").click()
    assert page.locator("#inside").is_hidden()
    page.close()


@pytest.mark.parametrize("path", ["/explain?index=3", "/runs", "/runs/tiny"])
def test_served_pages_render_cleanly(browser, server: str, shots: Path, path: str) -> None:
    page, errors = _open(browser, f"{server}{path}", WIDTHS["phone"])
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length"
    )
    assert broken == 0
    doc = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert doc[0] <= doc[1], f"horizontal overflow: {doc}"
    assert not errors, errors  # the inline styles must pass the page's CSP
    name = path.strip("/").replace("/", "-").replace("?", "-").replace("=", "")
    page.screenshot(path=str(shots / f"served-{name}.png"), full_page=True)
    page.close()
