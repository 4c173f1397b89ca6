"""``create_app(predictor)``: the FastAPI app behind ``digitrec serve``.

Nothing is loaded at import time: the caller loads the model once and hands it in. Routes:
``POST /api/predict``, ``POST /api/predict/batch``, ``POST /api/read``, ``GET /api/model``,
``GET /healthz``, the OpenAPI page ``/docs`` and the draw-a-digit page ``/``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from digitrec import __version__
from digitrec.errors import DigitrecError
from digitrec.inference.predictor import Predictor
from digitrec.serve import inputs, inside, pages
from digitrec.serve.inputs import JSON, MULTIPART, ApiError
from digitrec.serve.limits import BodyLimit, BodyTimeout, BodyTooLarge, Limits
from digitrec.serve.runner import Runner, prediction, read_digit
from digitrec.serve.schemas import (
    BatchInput,
    BatchResult,
    ErrorBody,
    Health,
    ImageInput,
    ModelInfo,
    Prediction,
    Reading,
    ReadMethod,
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        413: "body or image over the limits (see GET /api/model)",
        415: "Content-Type is neither application/json nor multipart/form-data",
        422: "malformed JSON or base64, not an image, wrong pixel shape or range, "
        "or no digit found",
    }.items()
}


def _body(single: str, json_schema: str, many: bool = False) -> dict[str, Any]:
    """OpenAPI request body: JSON (a schema) or a multipart upload (one or several files)."""
    file = {"type": "string", "format": "binary"}
    field = {"type": "array", "items": file} if many else file
    multipart = {"type": "object", "properties": {single: field}, "required": [single]}
    return {
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": {"$ref": f"#/components/schemas/{json_schema}"}},
                MULTIPART: {"schema": multipart},
            },
        }
    }


def model_info(predictor: Predictor, limits: Limits, extra: dict[str, Any]) -> dict[str, Any]:
    """``GET /api/model``: what the checkpoint's metadata says, plus the limits."""
    from digitrec.models import create_model
    from digitrec.models.summary import count_parameters

    meta = predictor.meta
    arch = str(meta.get("arch", "?"))
    try:  # the architecture's own count: the same for torch and ONNX (BatchNorm not folded)
        params = count_parameters(create_model(arch, **(meta.get("arch_kwargs") or {})))
    except Exception:
        params = sum(int(p.numel()) for p in predictor.model.parameters())
    test = meta.get("test_metrics") or {}
    backend = "torch" if any(True for _ in predictor.model.parameters()) else "onnxruntime"
    info = {
        "name": str(meta.get("name") or arch),
        "arch": arch,
        "backend": backend,
        "parameters": params,
        "test_accuracy": test.get("accuracy"),
        "num_classes": predictor.preprocessing.num_classes,
        "tta": predictor.tta,
        "input_size": predictor.preprocessing.input_size,
        "digitrec_version": __version__,
        "limits": {
            "max_body_bytes": limits.max_body_bytes,
            "max_image_pixels": limits.max_image_pixels,
            "max_batch": limits.max_batch,
        },
    }
    info.update(extra)
    return info


def create_app(
    predictor: Predictor,
    splitter: Predictor | None = None,
    *,
    limits: Limits | None = None,
    mode: str = "batch",
    threads: int = 4,
    info: dict[str, Any] | None = None,
    runs: str | None = None,
) -> FastAPI:
    """The app, serving ``predictor``.

    Args:
        predictor: A loaded digit model (checkpoint or ONNX export).
        splitter: Scores cuts for ``POST /api/read``; default: the packaged splitter, loaded here.
        limits: Body, image and batch caps (defaults: :mod:`digitrec.serve.limits`).
        mode: How worker threads call the model: ``batch``, ``lock`` or ``threads``
            (see :mod:`digitrec.serve.runner`).
        threads: Worker threads for decoding and preprocessing (bounds memory under bursts).
        info: Overrides for ``GET /api/model`` (e.g. ``test_accuracy`` from the run directory).
        runs: Folder of run directories whose reports ``/runs`` serves (None: none).
    """
    if splitter is None:
        from digitrec.inference.reading import default_splitter

        splitter = default_splitter()
    limits = limits or Limits()
    runner = Runner(predictor, mode, threads, limits.max_batch)
    threshold = predictor.reject_threshold  # "not a digit" (issue 14); None: plain argmax
    about = model_info(predictor, limits, info or {})

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        runner.close()

    app = FastAPI(
        title="digitrec",
        version=__version__,
        description="Handwritten-digit recognition: draw or upload a digit, read a number.",
        docs_url=None,  # pages.py serves /docs from local files: no CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, timeout_s=limits.body_timeout_s)
    _add_error_handlers(app)
    pages.add_routes(app, about)
    inside.add_routes(app, predictor, limits, runs)  # /api/explain, /explain, /runs

    async def images_of(request: Request, many: bool) -> list[ImageInput | bytes]:
        kind = inputs.media_type(request)
        field = "files" if many else "file"
        if kind == JSON:
            if many:
                batch = await inputs.read_json(request, BatchInput)
                items: list[ImageInput | bytes] = list(batch.images)
            else:
                items = [await inputs.read_json(request, ImageInput)]
        elif kind == MULTIPART:
            items = list(await inputs.read_uploads(request, field, limits.max_batch if many else 1))
        else:
            raise inputs.unsupported(kind, field)
        if len(items) > limits.max_batch:
            raise ApiError(413, f"too many images: {len(items)} (max {limits.max_batch})")
        return items

    def predict_one(item: ImageInput | bytes) -> dict[str, Any]:
        digit = inputs.normalise(inputs.to_gray(item, limits.max_image_pixels))
        return prediction(runner.proba(digit[None])[0], digit, threshold)

    def predict_many(items: list[ImageInput | bytes]) -> dict[str, Any]:
        results: list[dict[str, Any]] = [{"index": i} for i in range(len(items))]
        ok, digits = [], []
        for i, item in enumerate(items):
            try:
                digits.append(inputs.normalise(inputs.to_gray(item, limits.max_image_pixels)))
                ok.append(i)
            except ApiError as exc:
                results[i].update(error=exc.detail, status=exc.status)
        if digits:
            stack = np.stack(digits)
            for i, probs, digit in zip(ok, runner.proba(stack), stack, strict=True):
                results[i].update(prediction(probs, digit, threshold))
        return {"results": results}

    def read(item: ImageInput | bytes, method: str | None) -> dict[str, Any]:
        from digitrec.inference.reading import DEFAULT_METHOD, read_number

        data = inputs.image_bytes(item)
        inputs.decode(data, limits.max_image_pixels)  # the caps and a clear error first
        try:
            reading = read_number(predictor, data, splitter, method=method or DEFAULT_METHOD)
        except DigitrecError as exc:  # no digit found, or an image it cannot read
            raise ApiError(422, str(exc)) from None
        probs = runner.proba(reading["crops"])
        digits = [
            read_digit(d, p, crop)
            for d, p, crop in zip(reading["digits"], probs, reading["crops"], strict=True)
        ]
        height, width = reading["gray"].shape[:2]
        return {
            "number": reading["number"],
            "method": reading["method"],
            "low_confidence": bool(reading["low_confidence"]),
            "low_confidence_reason": reading["low_confidence_reason"],
            "digits": digits,
            "width": width,
            "height": height,
        }

    @app.post(
        "/api/predict",
        response_model=Prediction,
        responses=_ERRORS,
        openapi_extra=_body("file", "ImageInput"),
        summary="Classify one digit",
    )
    async def api_predict(request: Request) -> Response:
        """One digit: a multipart upload (field `file`), or JSON `{"image": base64}` or
        `{"pixels": 28x28}`. Returns the digit, the ten probabilities and the 28x28 image the
        network saw. A blank drawing: 422 "no digit found"."""
        item = (await images_of(request, many=False))[0]
        if isinstance(item, ImageInput) and item.pixels is not None:
            # 28x28 pixels: preprocessing takes well under 3 ms, cheaper here than a thread hop.
            digit = inputs.normalise(np.asarray(item.pixels, dtype=np.uint8))
            probs = (await runner.proba_async(digit[None]))[0]
            return JSONResponse(prediction(probs, digit, threshold))
        return JSONResponse(await runner.call(predict_one, item))

    @app.post(
        "/api/predict/batch",
        response_model=BatchResult,
        responses=_ERRORS,
        openapi_extra=_body("files", "BatchInput", many=True),
        summary="Classify several digits",
    )
    async def api_predict_batch(request: Request) -> Response:
        """Up to `max_batch` images (64 by default; see GET /api/model): JSON
        `{"images": [{"image": ...} | {"pixels": ...}, ...]}` or a multipart upload with the
        files in the field `files`. One result per image, in order; an image that cannot be
        read carries `error` and `status` instead of a prediction."""
        items = await images_of(request, many=True)
        return JSONResponse(await runner.call(predict_many, items))

    @app.post(
        "/api/read",
        response_model=Reading,
        responses=_ERRORS,
        openapi_extra=_body("file", "ImageInput"),
        summary="Read a multi-digit number",
    )
    async def api_read(
        request: Request,
        method: Annotated[
            ReadMethod | None,
            Query(
                description="`segment`: cut the writing into digits and read each; `seq`: the "
                "sequence reader reads the whole line; `auto`: both, the surer answer "
                "(default: `read`'s default, auto)"
            ),
        ] = None,
    ) -> Response:
        """A number written in one image (upload, or JSON `{"image": base64}`): the digits left
        to right, each with its box in the image's pixels, and which reader gave the answer."""
        items = await images_of(request, many=False)
        return JSONResponse(await runner.call(read, items[0], method))

    @app.get("/api/model", response_model=ModelInfo, summary="The model and the limits")
    async def api_model() -> Response:
        return JSONResponse(about)

    @app.get("/healthz", response_model=Health, summary="Liveness")
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"detail": "one line"}``."""

    def error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api(_req: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.detail)

    @app.exception_handler(BodyTooLarge)
    async def _large(_req: Request, exc: BodyTooLarge) -> JSONResponse:
        return error(413, str(exc), {"connection": "close"})

    @app.exception_handler(BodyTimeout)
    async def _slow(_req: Request, exc: BodyTimeout) -> JSONResponse:
        return error(408, str(exc), {"connection": "close"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request"}
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, f"{loc}: {first['msg']}" if loc else str(first["msg"]))

    @app.exception_handler(HTTPException)
    async def _http(_req: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), exc.headers)
