"""Size and time limits enforced in front of the app, on the raw ASGI messages.

The body cap must act *before* anything buffers the request, so it is an ASGI middleware, not a
FastAPI dependency: a declared ``Content-Length`` over the cap is answered 413 at once, without
reading a byte of the body, and a body without one (chunked) is counted as it streams in and
cut off at the cap. A client that stalls mid-body gets 408 instead of holding a request open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anyio

# Request bodies: a phone photo as JPEG is 2-6 MB; base64 in JSON adds a third.
MAX_BODY_BYTES = 12 * 1024 * 1024
# Decoded images: 16 megapixels (a 4,000 x 4,000 photo) decodes to ~64 MB of RGBA; the library's
# own cap (digitrec.images.MAX_PIXELS, 40 MP) is meant for one file on the command line.
MAX_IMAGE_PIXELS = 16_000_000
# Images in one POST /api/predict/batch.
MAX_BATCH = 64
# Seconds a client may stall between two pieces of its request body.
BODY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Limits:
    """The server's limits (``GET /api/model`` reports them)."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_batch: int = MAX_BATCH
    body_timeout_s: float = BODY_TIMEOUT_S


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the cap (the app answers 413)."""


class BodyTimeout(Exception):
    """Raised from ``receive`` when the client stalls mid-body (the app answers 408)."""


async def send_json(send: Any, status: int, detail: str) -> None:
    """A complete JSON error response on the raw ASGI ``send``; the connection then closes."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: refuse oversized or stalled request bodies before they are buffered."""

    def __init__(self, app: Any, max_bytes: int, timeout_s: float = BODY_TIMEOUT_S) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = [v for k, v in scope["headers"] if k == b"content-length"]
        if lengths:
            text = lengths[0].decode("latin-1").strip()
            if len(lengths) > 1 or not text.isdigit():
                await send_json(send, 400, "invalid Content-Length header")
                return
            if int(text) > self.max_bytes:
                await send_json(send, 413, self.too_large())
                return
        seen, done = 0, False

        async def limited_receive() -> Any:
            nonlocal seen, done
            if done:  # body complete: what follows is only http.disconnect, whenever it comes
                return await receive()
            try:
                with anyio.fail_after(self.timeout_s):  # a cancel scope: no task per message
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.stalled()) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.too_large())
                done = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)

    def too_large(self) -> str:
        return f"request body too large (max {self.max_bytes:,} bytes)"

    def stalled(self) -> str:
        return f"request body not received within {self.timeout_s:g} s"
