"""The torch networks (MLP and CNN) as ONNX models through ``torch.onnx``, their input handling included.

Imported only when a model holds a network, so that exporting other models
does not need torch.
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import Any

import numpy as np
import torch

from automl.errors import ExportError
from automl.serving.onnx.common import OPSET, ConvertedMember, converter_reason
from searchspaces.networks import compression


class _ImagePrediction(torch.nn.Module):
    """A fitted CNN from its raw float input (missing values as 0, as it reads them) to probabilities or values."""

    def __init__(self, estimator: Any):
        super().__init__()
        self.network = estimator.network_.cpu()
        self.classification = hasattr(estimator, "classes_")
        self.mean = float(getattr(estimator, "target_mean_", 0.0))
        self.scale = float(getattr(estimator, "target_scale_", 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(torch.nan_to_num(x, nan=0.0), torch.zeros((x.shape[0], 0), dtype=torch.long))
        return torch.softmax(out, dim=1) if self.classification else out[:, 0] * self.scale + self.mean


def convert_network(estimator: Any, width: int, classification: bool) -> ConvertedMember:
    """A fitted ``TorchMLP*`` or ``TorchCNN*`` estimator (on ``width`` features) as an ONNX model reading float32."""
    import onnx

    if compression.is_quantized(estimator.network_):
        raise ExportError("an int8-quantized network quantizes each batch's activations as it predicts, which ONNX's "
                          "float operators do not reproduce; export a model fitted without quantize=True")
    estimator = copy.deepcopy(estimator)  # the export moves the network to the CPU
    module = estimator.prediction_module() if hasattr(estimator, "_mask") else _ImagePrediction(estimator)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice: it needs no onnxscript
            torch.onnx.export(module.eval(), (torch.zeros(2, width),), buffer, input_names=["input"],
                              output_names=["output"], dynamic_axes={"input": {0: "rows"}, "output": {0: "rows"}},
                              opset_version=OPSET, dynamo=False)
    except Exception as error:
        raise ExportError(f"torch.onnx cannot export this network: {converter_reason(error)}") from error
    classes = np.asarray(estimator.classes_).astype(int) if classification else None
    return ConvertedMember(onnx.load_from_string(buffer.getvalue()), "output", classes)
