"""The HTTP API and the draw-a-digit page (FastAPI + uvicorn; the ``serve`` extra).

``create_app(predictor)`` builds the app around a model the caller has loaded; importing this
package loads no model. ``digitrec serve`` (:mod:`digitrec.cli.serve`) runs it.
"""

from digitrec.serve.app import create_app
from digitrec.serve.limits import Limits

__all__ = ["Limits", "create_app"]
