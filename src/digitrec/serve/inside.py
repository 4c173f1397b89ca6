""" "Inside the network": ``POST /api/explain``, the explain page at ``/explain`` and the run
reports under ``/runs``.

The feature maps come from a private copy of the served model: forward hooks on the shared model
would also fire for predictions running in other threads. Rendering a page takes seconds of CPU,
so pages are made one at a time, off the event loop, and kept (a few of them) once made. No
route joins a URL segment onto a path: ``/runs/{name}`` looks ``name`` up in the listing of the
runs folder.
"""

from __future__ import annotations

import base64
import copy
import functools
import os
import threading
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from digitrec.errors import DigitrecError
from digitrec.inference.predictor import Predictor
from digitrec.serve import inputs
from digitrec.serve.inputs import JSON, MULTIPART, ApiError
from digitrec.serve.limits import Limits
from digitrec.serve.schemas import ImageInput

# The report pages have inline styles and data: images, and no script at all.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MNIST_TEST_SIZE = 10_000
CHANNELS_SHOWN = 8  # per layer in the panel


def add_routes(
    app: FastAPI, predictor: Predictor, limits: Limits, runs: str | os.PathLike | None = None
) -> None:
    """``POST /api/explain``, ``GET /explain``, ``GET /runs`` and ``GET /runs/{name}``."""
    from torch import nn

    has_layers = any(isinstance(m, nn.Conv2d) for m in predictor.model.modules())
    model = copy.deepcopy(predictor.model) if has_layers else None
    lock = threading.Lock()  # the copy's hooks serve one request at a time
    runs_dir = Path(runs) if runs is not None else None

    def layers(digit: np.ndarray) -> dict[str, Any]:
        from digitrec.report.inside import layer_images

        assert model is not None
        with lock:
            shown = layer_images(model, predictor.preprocessing, digit, CHANNELS_SHOWN)
        return {
            "layers": [
                {
                    "name": layer.name,
                    "kind": layer.kind,
                    "description": layer.description,
                    "shape": list(layer.shape),
                    "channels_shown": layer.shown,
                    "png": base64.b64encode(layer.png).decode("ascii"),
                }
                for layer in shown
            ]
        }

    @app.post("/api/explain", summary="Feature maps of every layer for one digit")
    async def api_explain(request: Request) -> Response:
        """One digit, sent as for `POST /api/predict`. Returns, for every convolution and pooling
        layer, its name, output shape and a PNG (base64) of its first channels' feature maps.
        422 for a model without such layers (an ONNX export, softmax regression)."""
        if model is None:
            raise ApiError(422, "this model has no convolution layers to show (or is ONNX)")
        kind = inputs.media_type(request)
        if kind == JSON:
            item: ImageInput | bytes = await inputs.read_json(request, ImageInput)
        elif kind == MULTIPART:
            item = (await inputs.read_uploads(request, "file", 1))[0]
        else:
            raise inputs.unsupported(kind, "file")

        def work() -> dict[str, Any]:
            return layers(inputs.normalise(inputs.to_gray(item, limits.max_image_pixels)))

        return JSONResponse(await anyio.to_thread.run_sync(work))

    @functools.lru_cache(maxsize=8)
    def explain_page(index: int) -> str:
        from digitrec.inference.checkpoint import Checkpoint
        from digitrec.report.explain import explain_context, load_digit
        from digitrec.report.html import render

        digit = load_digit(index=index)
        ckpt = None
        if model is not None:
            arch = str(predictor.meta.get("arch", "served model"))
            ckpt = Checkpoint(model, predictor.meta, predictor.preprocessing, Path(arch))
        with lock:
            context = explain_context(digit, ckpt)
        why = None if ckpt else "the served model has no layers to look inside (ONNX)"
        return render("explain.html", **context, no_model=why)

    @app.get("/explain", include_in_schema=False)
    async def explain(index: int = 0) -> HTMLResponse:
        if not 0 <= index < MNIST_TEST_SIZE:
            raise ApiError(422, f"index must be in 0..{MNIST_TEST_SIZE - 1}, got {index}")
        try:
            html = await anyio.to_thread.run_sync(explain_page, index)
        except DigitrecError as exc:  # e.g. MNIST is not on this machine
            raise ApiError(404, str(exc)) from None
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    def listing() -> dict[str, Path]:
        """Run directories (with ``metrics.jsonl``) directly inside the runs folder, by name."""
        if runs_dir is None or not runs_dir.is_dir():
            return {}
        return {
            p.name: p
            for p in sorted(runs_dir.iterdir())
            if p.is_dir() and (p / "metrics.jsonl").is_file()
        }

    @app.get("/runs", include_in_schema=False)
    async def run_list() -> HTMLResponse:
        from digitrec.report.compare import run_row
        from digitrec.report.html import render
        from digitrec.report.runs import read_run

        rows = []
        for name, path in listing().items():
            try:
                rows.append({"name": name, "error": None, **run_row(read_run(path))})
            except DigitrecError as exc:
                rows.append({"name": name, "error": str(exc)})
        html = render(
            "runs.html",
            title="Training runs",
            folder=runs_dir.name if runs_dir else "",  # not the full path: visitors see this
            rows=rows,
            version=_version(),
            generated=_now(),
        )
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    report_lock = threading.Lock()

    def report_html(path: Path) -> str:
        from digitrec.report.run_report import write_run_report

        target = path / "report.html"
        with report_lock:
            if not target.is_file():
                write_run_report(path)
        return target.read_text(encoding="utf-8")

    @app.get("/runs/{name}", include_in_schema=False)
    async def run_report(name: str) -> HTMLResponse:
        path = listing().get(name)
        if path is None:
            raise ApiError(404, f"no run {name!r} in the runs folder")
        try:
            html = await anyio.to_thread.run_sync(report_html, path)
        except DigitrecError as exc:
            raise ApiError(404, str(exc)) from None
        return HTMLResponse(html, headers=_PAGE_HEADERS)


def _version() -> str:
    from digitrec import __version__

    return __version__


def _now() -> str:
    import datetime as dt

    return dt.datetime.now().astimezone().isoformat(timespec="seconds")
