"""The draw-a-digit page and the OpenAPI page, served from files shipped with the package.

No route takes a file name from the URL: each file has its own fixed route, so there is no path
to traverse. Nothing comes from a CDN: the page is ours, and ``/docs`` uses the Swagger UI files
of the ``swagger-ui-bundle-v2`` package when it is installed (else FastAPI's CDN default).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

# Our page loads only its own script, style and the server's data: URLs (previews).
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
_SWAGGER = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


def _swagger_dir() -> Path | None:
    try:
        import swagger_ui_bundle  # pyright: ignore[reportMissingImports]
    except ImportError:
        return None
    path = Path(swagger_ui_bundle.swagger_ui_path)
    return path if all((path / name).is_file() for name in _SWAGGER) else None


@functools.cache
def _swagger_file(name: str) -> bytes:
    """A Swagger UI asset, read once per process (~1.5 MB in all)."""
    root = _swagger_dir()
    assert root is not None
    return (root / name).read_bytes()


def _fixed(body: bytes, kind: str, headers: dict[str, str]) -> Any:
    """A route handler that always answers ``body`` (it takes no parameters at all)."""

    async def handler() -> Response:
        return Response(body, media_type=kind, headers=headers)

    return handler


def add_routes(app: FastAPI, about: dict[str, Any]) -> None:
    """``/``, ``/static/app.js``, ``/static/style.css`` and ``/docs`` (with its two assets)."""
    static = resources.files("digitrec.serve") / "static"
    index = (static / "index.html").read_text(encoding="utf-8")
    assets = {name: (static / name).read_bytes() for name in _STATIC}

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(index, headers=_PAGE_HEADERS)

    for name, kind in _STATIC.items():
        route = _fixed(assets[name], kind, _PAGE_HEADERS)
        app.add_api_route(f"/static/{name}", route, methods=["GET"], include_in_schema=False)

    local = _swagger_dir() is not None
    if local:
        cached = {"Cache-Control": "max-age=86400", "X-Content-Type-Options": "nosniff"}
        for name, kind in _SWAGGER.items():
            route = _fixed(_swagger_file(name), kind, cached)
            app.add_api_route(f"/docs/{name}", route, methods=["GET"], include_in_schema=False)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        title = f"digitrec API ({about['name']})"
        openapi = app.openapi_url or "/openapi.json"
        if not local:  # FastAPI's default: Swagger UI from a CDN
            return get_swagger_ui_html(
                openapi_url=openapi, title=title, swagger_favicon_url="data:,"
            )
        return get_swagger_ui_html(
            openapi_url=openapi,
            title=title,
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="data:,",
        )
