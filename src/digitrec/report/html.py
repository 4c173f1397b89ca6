"""HTML from the Jinja2 templates shipped in ``report/templates``, with autoescape always on.

Every page is self-contained: figures are embedded as ``data:image/png;base64`` URIs and the
style sheet is inline, so a report opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import os
from functools import cache
from pathlib import Path
from typing import Any

from digitrec.errors import DigitrecError
from digitrec.io import atomic_write

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment():  # -> jinja2.Environment
    """The template environment; a clear error, early, where Jinja2 is not installed."""
    try:
        import jinja2
    except ImportError:
        raise DigitrecError("HTML reports need Jinja2: pip install 'digitrec[report]'") from None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every template, whatever its extension: names and configs are escaped
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["pct"] = lambda x, digits=2: "—" if x is None else f"{100 * x:.{digits}f}%"
    return env


def _num(value: Any, digits: int = 4) -> str:
    """Numbers for humans: thousands separators for ints, ``digits`` significant for floats."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def png_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render(template: str, **context: Any) -> str:
    """Render one template to a string."""
    return environment().get_template(template).render(**context)


def write_page(path: str | os.PathLike, template: str, **context: Any) -> Path:
    """Render a template and write it atomically; returns the path."""
    html = render(template, **context)
    atomic_write(path, html)
    return Path(path)
