"""Load the model and build the app from plain settings: the CLI and uvicorn's workers share it.

``uvicorn --workers N`` starts each worker process from an import string, so the settings travel
in the environment variable ``DIGITREC_SERVE`` (JSON) and :func:`app_from_env` is the factory.
"""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI

ENV = "DIGITREC_SERVE"


def load_app(settings: dict[str, Any]) -> FastAPI:
    """Load the model once and build the app.

    Settings: ``checkpoint`` (path), ``device``, ``tta``, ``threads`` (torch intra-op),
    ``mode`` (see :mod:`digitrec.serve.runner`), ``info`` (``GET /api/model`` overrides) and
    ``runs`` (the folder of run directories whose reports ``/runs`` serves).
    """
    import torch

    from digitrec.inference.predictor import Predictor
    from digitrec.serve.app import create_app

    if settings.get("threads"):
        torch.set_num_threads(int(settings["threads"]))
    predictor = Predictor.from_checkpoint(
        settings["checkpoint"], device=settings.get("device", "cpu"), tta=bool(settings.get("tta"))
    )
    return create_app(
        predictor,
        mode=settings.get("mode", "batch"),
        info=settings.get("info"),
        runs=settings.get("runs"),
    )


def app_from_env() -> FastAPI:
    """uvicorn's app factory in each worker process (settings from ``$DIGITREC_SERVE``)."""
    return load_app(json.loads(os.environ[ENV]))
