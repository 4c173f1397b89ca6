"""Inference: checkpoints, the ``Predictor`` (PyTorch or ONNX Runtime), TTA, ensembles,
evaluation with per-image output, file prediction and number reading."""

from digitrec.inference.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from digitrec.inference.device import pick_device
from digitrec.inference.ensemble import build_ensemble
from digitrec.inference.evaluate import Evaluation, evaluate_checkpoint
from digitrec.inference.predictor import Predictor, ensemble_proba

__all__ = [
    "Checkpoint",
    "Evaluation",
    "Predictor",
    "build_ensemble",
    "ensemble_proba",
    "evaluate_checkpoint",
    "load_checkpoint",
    "pick_device",
    "save_checkpoint",
]
