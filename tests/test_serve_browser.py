"""The draw-a-digit page in headless Chromium (Debian's, driven by Python playwright).

Real mouse strokes and touch strokes on the canvas, against a real `digitrec serve`. Screenshots
go to ``test-artifacts/browser/`` (or ``$DIGITREC_TEST_ARTIFACTS/browser``).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from serve_helpers import as_photo, cli_server, png_bytes

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("DIGITREC_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is absent (apt-get install chromium)"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

Stroke = list[tuple[float, float]]
# Digits as strokes in the canvas's own pixels (the one-digit canvas is 280 x 280).
ONE: list[Stroke] = [[(150, 45), (145, 140), (140, 235)]]
ZERO: list[Stroke] = [
    [(140 + 60 * math.sin(t), 140 - 95 * math.cos(t)) for t in np.linspace(0, 2 * math.pi, 40)]
]
SEVEN: list[Stroke] = [[(75, 60), (205, 60)], [(205, 60), (165, 150), (125, 240)]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with cli_server("--threads", "1", log=log) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


def open_page(browser, server: str, request: pytest.FixtureRequest, **context) -> Iterator[object]:
    """A fresh page on the server; fails the test on any console error; saves a screenshot."""
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server)
    sync_api.expect(page.locator("#model")).to_contain_text("on the MNIST test set")
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        ctx.close()
    assert errors == [], errors


@pytest.fixture
def page(browser, server: str, request: pytest.FixtureRequest) -> Iterator[object]:
    yield from open_page(browser, server, request, viewport={"width": 1024, "height": 800})


def to_page(page, x: float, y: float) -> tuple[float, float]:
    """Canvas pixels -> page coordinates."""
    box = page.locator("#canvas").bounding_box()
    width, height = page.evaluate("[canvas.width, canvas.height]")
    border = 2  # the canvas's CSS border
    scale = (box["width"] - 2 * border) / width
    return box["x"] + border + x * scale, box["y"] + border + y * (
        box["height"] - 2 * border
    ) / height


def draw_mouse(page, strokes: list[Stroke]) -> None:
    for stroke in strokes:
        page.mouse.move(*to_page(page, *stroke[0]))
        page.mouse.down()
        for a, b in itertools.pairwise(stroke):
            # Interpolate: a real hand sends many small moves.
            for t in np.linspace(0, 1, 6)[1:]:
                page.mouse.move(*to_page(page, a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
        page.mouse.up()


def draw_touch(page, strokes: list[Stroke]) -> None:
    """Touch strokes through the DevTools protocol (they arrive as pointerType 'touch')."""
    cdp = page.context.new_cdp_session(page)
    for stroke in strokes:
        points = [to_page(page, *p) for p in stroke]
        cdp.send(
            "Input.dispatchTouchEvent",
            {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]},
        )
        for a, b in itertools.pairwise(points):
            for t in np.linspace(0, 1, 6)[1:]:
                point = {"x": a[0] + t * (b[0] - a[0]), "y": a[1] + t * (b[1] - a[1])}
                cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def ink(page) -> int:
    """Dark pixels on the canvas."""
    return page.evaluate(
        """() => {
        const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++;
        return n;
    }"""
    )


def settle(page) -> None:
    """Wait until the page has its answer to the latest drawing (no request due or in flight)."""
    sync_api.expect(page.locator("body")).to_have_attribute("data-busy", "0", timeout=15_000)


def expect_digit(page, digit: str) -> None:
    settle(page)
    sync_api.expect(page.locator("#prediction")).to_have_text(digit)
    sync_api.expect(page.locator("#preview")).to_be_visible()
    size = page.evaluate("[preview.naturalWidth, preview.naturalHeight]")
    assert size == [28, 28]  # the server's 28x28: what the network sees
    winner = page.locator("#bars li.win .name")
    assert winner.inner_text() == digit


@pytest.mark.parametrize(("strokes", "digit"), [(ONE, "1"), (ZERO, "0"), (SEVEN, "7")])
def test_draw_a_digit_with_the_mouse(page, strokes: list[Stroke], digit: str) -> None:
    draw_mouse(page, strokes)
    expect_digit(page, digit)


def test_clear_and_undo_buttons_and_keys(page) -> None:
    draw_mouse(page, SEVEN)
    expect_digit(page, "7")
    both = ink(page)
    page.click("#undo")  # the slanted stroke goes: a bar is left
    assert 0 < ink(page) < both
    settle(page)
    page.keyboard.press("Control+z")
    assert ink(page) == 0
    sync_api.expect(page.locator("#prediction")).to_have_text("–")
    draw_mouse(page, ONE)
    expect_digit(page, "1")
    page.click("#clear")
    assert ink(page) == 0
    sync_api.expect(page.locator("#prediction")).to_have_text("–")
    sync_api.expect(page.locator("#preview")).to_be_hidden()
    draw_mouse(page, ZERO)
    expect_digit(page, "0")
    page.keyboard.press("Escape")
    assert ink(page) == 0


def test_keyboard_reaches_every_control(page) -> None:
    reached = set()
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id"))
    assert {"mode-digit", "undo", "clear", "upload"} <= reached


def test_upload_a_photo(page, tmp_path: Path, mnist_test) -> None:
    images, labels = mnist_test
    photo = tmp_path / "digit.png"
    photo.write_bytes(png_bytes(as_photo(images[1])))
    page.set_input_files("#file", str(photo))
    expect_digit(page, str(labels[1]))


def test_read_a_number_on_the_wide_canvas(page) -> None:
    page.check("#mode-number")
    assert page.evaluate("canvas.width") > page.evaluate("canvas.height")
    # "1", "0" and "7" side by side, each in its own 280-pixel third of the 840-pixel canvas.
    number = [
        [(x + dx, y) for x, y in s] for dx, d in ((0, ONE), (280, ZERO), (560, SEVEN)) for s in d
    ]
    draw_mouse(page, number)
    settle(page)
    sync_api.expect(page.locator("#prediction")).to_have_text("107")
    assert page.locator("#digits li").count() == 3
    sync_api.expect(page.locator("#status")).to_contain_text("read by auto")  # which reader


def test_touch_drawing_at_phone_width(browser, server: str, request) -> None:
    phone = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}
    for page in open_page(browser, server, request, **phone):
        box = page.locator("#canvas").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # the canvas fits the screen
        assert page.evaluate("getComputedStyle(canvas).touchAction") == "none"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
        before = page.evaluate("window.scrollY")
        draw_touch(page, SEVEN)
        expect_digit(page, "7")
        assert page.evaluate("window.scrollY") == before  # drawing did not scroll the page


def test_api_docs_render_offline(browser, server: str, request) -> None:
    pytest.importorskip("swagger_ui_bundle", reason="offline Swagger UI files not installed")
    ctx = browser.new_context()
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(server) else r.abort())
    page.goto(f"{server}/docs")
    sync_api.expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=15_000)
    assert "/api/predict" in page.locator(".swagger-ui").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    ctx.close()
    assert errors == [], errors
