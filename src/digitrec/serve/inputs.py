"""From an HTTP request to grey images: JSON or multipart bodies, base64, the pixel cap.

Every problem with the input becomes an :class:`ApiError` with a 4xx status and one readable
line; the app turns it into ``{"detail": "..."}``.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from typing import TypeVar

import numpy as np
from fastapi import Request
from PIL import Image
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from digitrec.errors import DigitrecError, NoDigitError
from digitrec.images import load_image, to_mnist
from digitrec.serve.schemas import ImageInput, describe

M = TypeVar("M", bound=BaseModel)
JSON = "application/json"
MULTIPART = "multipart/form-data"
_DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


class ApiError(Exception):
    """A client error: an HTTP status (4xx) and one line of explanation."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case ('' when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def unsupported(kind: str, field: str) -> ApiError:
    """415 for a body that is neither JSON nor multipart."""
    shown = kind or "none"
    return ApiError(
        415,
        f"unsupported Content-Type {shown!r}: send {JSON} or {MULTIPART} "
        f"(the image in the field {field!r})",
    )


async def read_json(request: Request, model: type[M]) -> M:
    """Parse and validate a JSON body (malformed JSON or a wrong shape: 422)."""
    body = await request.body()
    if not body.strip():
        raise ApiError(422, "empty request body: send a JSON object")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ApiError(422, describe(exc)) from None


async def read_uploads(request: Request, field: str, max_files: int) -> list[bytes]:
    """The files of a multipart body's ``field`` (a malformed body: 400 from Starlette)."""
    form = await request.form(max_files=max_files, max_fields=16)
    try:
        uploads = [v for v in form.getlist(field) if isinstance(v, UploadFile)]
        if not uploads:
            raise ApiError(422, f"no file in the multipart field {field!r}")
        if len(uploads) > max_files:
            raise ApiError(413, f"too many files: {len(uploads)} (max {max_files})")
        return [await upload.read() for upload in uploads]
    finally:
        await form.close()


def b64decode(text: str) -> bytes:
    """Strict base64 (standard or URL-safe alphabet; a ``data:`` URL prefix is accepted)."""
    text = _DATA_URL.sub("", text.strip(), count=1)
    text = re.sub(r"\s+", "", text)
    if not text:
        raise ApiError(422, "image: empty string")
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "image: not valid base64") from None


def check_size(data: bytes, max_pixels: int) -> None:
    """Refuse an image whose header declares more than ``max_pixels``, before decoding it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        raise ApiError(413, f"image too large (max {max_pixels:,} pixels)") from None
    except Exception:  # not an image at all: load_image says so, in its own words
        return
    if width * height > max_pixels:
        raise ApiError(
            413, f"image too large: {width} x {height} pixels (max {max_pixels:,} pixels)"
        )


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """Encoded image bytes -> uint8 (H, W) grey (422 for a non-image, 413 over the cap)."""
    check_size(data, max_pixels)
    try:
        return load_image(data)
    except DigitrecError as exc:
        detail = str(exc).replace("cannot read image image data", "cannot read the image")
        raise ApiError(413 if detail.startswith("image too large") else 422, detail) from None


def to_gray(item: ImageInput | bytes, max_pixels: int) -> np.ndarray:
    """One request image (an upload's bytes or a JSON item) as uint8 (H, W) grey."""
    if isinstance(item, bytes):
        return decode(item, max_pixels)
    if item.pixels is not None:
        return np.asarray(item.pixels, dtype=np.uint8)
    return decode(b64decode(item.image or ""), max_pixels)


def image_bytes(item: ImageInput | bytes) -> bytes:
    """The encoded image of an upload or a JSON ``image`` (``pixels`` are refused: 422)."""
    if isinstance(item, bytes):
        return item
    if item.image is None:
        raise ApiError(422, "pixels: send the number as an 'image' (base64 PNG/JPEG) or upload")
    return b64decode(item.image)


def normalise(gray: np.ndarray) -> np.ndarray:
    """MNIST-style uint8 (28, 28) of one digit (a blank image: 422 "no digit found")."""
    try:
        return to_mnist(gray)
    except NoDigitError as exc:
        raise ApiError(422, str(exc)) from None
    except DigitrecError as exc:
        raise ApiError(422, str(exc)) from None
