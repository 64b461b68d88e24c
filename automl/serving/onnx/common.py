"""What every ONNX converter of a member shares: the operator sets it targets, what it returns, and how it words a
converter's failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

OPSET = 15  # the default ONNX domain's version every member is converted for
ML_OPSET = 3  # ai.onnx.ml: tree ensembles with missing values and float64 thresholds


@dataclass(frozen=True)
class ConvertedMember:
    """A member's ONNX model, the name of its probabilities or values output, and its classes (codes of the task)."""

    onnx: Any  # onnx.ModelProto
    output: str
    classes: np.ndarray | None  # None for a regressor
    scale: float = 1.0  # a regressor's values are output * scale + offset (a target standardized in training)
    offset: float = 0.0
    double: bool = False  # whether its input is float64 (as the estimator reads it); else float32
    reads: Any = None  # the LeanPipeline that makes its input from the encoded rows (None: it reads them as they are)


def converter_reason(error: Exception) -> str:
    """The first line of a converter's error, which says what it lacks (the rest dumps its node's attributes)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
