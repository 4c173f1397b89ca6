"""Models: the registry, the architectures, preprocessing, BatchNorm folding and summaries.

Importing this package imports every architecture module, so registration is eager.
"""

from digitrec.models import architectures, wide  # noqa: F401  (run the @register_model decorators)
from digitrec.models.folding import fold_batchnorm
from digitrec.models.preprocessing import UNIT_RANGE, Preprocessing, to_input
from digitrec.models.registry import ModelSpec, create_model, get_spec, list_models, register_model
from digitrec.models.summary import count_parameters, summary

__all__ = [
    "UNIT_RANGE",
    "ModelSpec",
    "Preprocessing",
    "count_parameters",
    "create_model",
    "fold_batchnorm",
    "get_spec",
    "list_models",
    "register_model",
    "summary",
    "to_input",
]
