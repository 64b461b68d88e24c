"""A fitted model as one ONNX graph that runs without this package, checked in onnxruntime against the model.

The graph's input ``X`` is a float64 matrix in the encoding of the model's
:class:`~automl.pipeline.row_encoder.RowEncoder`: one column per feature in training
order, numbers as they are (NaN: missing), categorical columns as level codes
(NaN: missing, -1: a level unseen in training). A JSON file beside the ``.onnx``
file lists the columns, each categorical column's level codes, the classes and
the outputs, so a server in any language can encode rows. The graph holds each
member's preprocessing (compiled by :mod:`automl.pipeline.lean` and written in
ONNX operators: imputation, scaling, ordinal and one-hot lookup tables), the
member's estimator (:mod:`automl.serving.onnx.members`) and the ensemble's weighted
mean with its class prior; it outputs ``probabilities`` (one column per class)
and ``label`` (the index of the likeliest class) for classification,
``prediction`` for regression.

The export is checked: the graph is run in onnxruntime on the training rows
and compared with the model's own predictions. Float32 trees can send a value
lying on a split threshold the other way, so at most ``MAX_SHARE_BEYOND`` of
the rows may differ by more than the tolerance (``TOLERANCE``, absolute, on
probabilities; on values, times their standard deviation); beyond that no
file is kept and :class:`~automl.errors.ExportError` names the member whose
conversion differs.

>>> report = model.export("model.onnx")  # doctest: +SKIP
>>> print(report.describe())  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.errors import ConfigError, ExportError
from automl.pipeline.lean import LeanPipeline
from automl.pipeline.row_encoder import RowEncoder
from automl.serving.onnx.members import ML_OPSET, OPSET, ConvertedMember, convert_estimator

FORMATS = ("onnx",)
TOLERANCE = 1e-4  # on probabilities; on regression values, times their standard deviation
MAX_SHARE_BEYOND = 0.001  # rows allowed beyond the tolerance (float32 thresholds)
CHECK_ROWS = 20_000  # training rows checked at most
BATCH = 512  # rows per onnxruntime call in the check (a linear-leaf student holds rows x trees x features)


@dataclass(frozen=True)
class ExportReport:
    """Where the model was written and how closely onnxruntime reproduces it on the rows checked."""

    path: Path
    metadata_path: Path
    members: int
    rows_checked: int
    max_abs_diff: float
    tolerance: float
    rows_beyond: int  # rows differing by more than the tolerance (at most MAX_SHARE_BEYOND of them)
    models: int = 0  # fitted models in the graph: more than the members where a member is bagged (its fold models)

    def describe(self) -> str:
        """One line for people: what was written and how it was checked."""
        beyond = f"; {self.rows_beyond} rows beyond it (float32 split thresholds)" if self.rows_beyond else ""
        models = f", {self.models} models" if self.models > self.members else ""
        return (f"wrote {self.path} ({self.members} member{'s' * (self.members != 1)}{models}, one graph) and "
                f"{self.metadata_path.name}; checked in onnxruntime on {self.rows_checked} training rows: "
                f"largest difference {self.max_abs_diff:.2g} (tolerance {self.tolerance:.2g}){beyond}")


@dataclass(frozen=True)
class Servable:
    """What :func:`export_onnx` needs of a model: its members (pipelines and weights), encoder and task."""

    pipelines: list[Any]  # fitted pipelines, or ConvertedMember graphs that read X directly
    weights: np.ndarray  # shares summing to 1
    names: list[str]  # each member's description, for errors
    encoder: RowEncoder
    classification: bool
    n_classes: int
    classes: list[Any]
    prior: np.ndarray | None = None
    prior_share: float = 0.0


def require_format(format: str) -> None:
    """Raise :class:`ConfigError` unless ``format`` is one this module writes."""
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; the formats are {', '.join(FORMATS)}")


def export_onnx(servable: Servable, path: str | Path, prepared: pd.DataFrame,
                reference: Callable[[pd.DataFrame], np.ndarray], format: str = "onnx") -> ExportReport:
    """Write ``servable`` as one ONNX graph to ``path`` (and ``path.json``), checked on ``prepared`` rows.

    ``prepared``: rows as :meth:`FeatureSchema.prepare` types them;
    ``reference(prepared)``: the model's own probabilities or values for them.
    """
    require_format(format)
    onnx = _require_onnx()
    path = Path(path)
    model, member_outputs = _graph(servable)
    rows = prepared.iloc[:CHECK_ROWS]
    report = _check(servable, model, member_outputs, path, rows, reference)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))
        report.metadata_path.write_text(json.dumps(_metadata(servable, report), indent=2, default=str))
    except OSError as error:
        raise ExportError(f"cannot write {path}: {error}") from error
    return report


def _require_onnx() -> Any:
    try:
        import onnx
        import onnxruntime  # noqa: F401 - the check needs it
        import skl2onnx  # noqa: F401
    except ImportError as error:
        raise ExportError(f"ONNX export needs {error.name}: pip install -e \".[export]\"") from error
    return onnx


def _graph(servable: Servable) -> tuple[Any, list[str]]:
    """The whole model as one ONNX model, and the name of each member's aligned output in it."""
    import onnx
    from onnx import TensorProto, compose, helper


    builder = _GraphBuilder()
    n_columns = len(servable.encoder.columns)
    outputs, opsets = [], {"": OPSET, "ai.onnx.ml": ML_OPSET}
    for index, (pipeline, name) in enumerate(zip(servable.pipelines, servable.names)):
        prefix = f"x{index}_"
        if isinstance(pipeline, ConvertedMember):  # already converted (a distilled student)
            converted = pipeline
            features = builder.preprocess(pipeline.reads, prefix) if pipeline.reads is not None else "X"
        else:
            lean = LeanPipeline.compile(pipeline, servable.encoder)
            if lean is None:
                text = list(getattr(servable.encoder.schema, "text", ()))
                what = (f"text features (TF-IDF components of {', '.join(map(repr, text))})" if text
                        else "a custom transformer")
                raise ExportError(f"member {index} ({name}) has preprocessing that is not exported: {what}; serve "
                                  "the model itself, or distill it and export the student, which leaves the text "
                                  "out: model.distill().export(path, X=X_train)")
            features = builder.preprocess(lean, prefix)
            width = int(lean.transform(np.zeros((1, n_columns))).shape[1])
            try:
                converted = convert_estimator(lean.model, width, servable.classification)
            except ExportError as error:
                raise ExportError(f"member {index} ({name}) cannot be exported: {error}; refit without its learner, "
                                  "or distill the model and export the student: model.distill().export(path, X=X_train)"
                                  ) from error
        member = compose.add_prefix(converted.onnx, f"m{index}_")
        for opset in member.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
        builder.nodes.append(helper.make_node("Cast", [features], [f"m{index}_input"],
                                              to=TensorProto.DOUBLE if converted.double else TensorProto.FLOAT))
        builder.nodes.extend(member.graph.node)
        builder.initializers.extend(member.graph.initializer)
        output = f"m{index}_{converted.output}"
        if servable.classification:
            outputs.append(builder.aligned(output, converted.classes, servable.n_classes, prefix))
        else:
            outputs.append(builder.values(output, converted.scale, converted.offset, prefix))
    combined = builder.weighted_sum(outputs, servable.weights)
    if servable.classification:
        if servable.prior is not None and servable.prior_share:
            combined = builder.affine(combined, 1 - servable.prior_share, servable.prior_share * servable.prior,
                                      "prior_")
        builder.nodes.append(helper.make_node("Identity", [combined], ["probabilities"]))
        builder.nodes.append(helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0))
        graph_outputs = [helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, servable.n_classes]),
                         helper.make_tensor_value_info("label", TensorProto.INT64, [None])]
    else:
        builder.nodes.append(helper.make_node("Identity", [combined], ["prediction"]))
        graph_outputs = [helper.make_tensor_value_info("prediction", TensorProto.DOUBLE, [None])]
    graph = helper.make_graph(builder.nodes, "automl", [helper.make_tensor_value_info("X", TensorProto.DOUBLE,
                                                                                      [None, n_columns])],
                              graph_outputs, builder.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                              producer_name="automl")
    model.ir_version = min(model.ir_version, 9)  # onnxruntime releases of the last two years read it
    onnx.checker.check_model(model)
    return model, outputs


class _GraphBuilder:
    """Nodes and constants of the graph being assembled, with the few patterns it needs."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def constant(self, value: Any, prefix: str, dtype: Any = np.float64) -> str:
        from onnx import numpy_helper

        self._count += 1
        name = f"{prefix}const{self._count}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], prefix: str, **attributes: Any) -> str:
        from onnx import helper

        self._count += 1
        name = f"{prefix}{op.lower()}{self._count}"
        self.nodes.append(helper.make_node(op, inputs, [name], **attributes))
        return name

    def preprocess(self, lean: LeanPipeline, prefix: str) -> str:
        """The member's input from ``X``: each part of :class:`LeanPipeline` in ONNX operators, concatenated."""
        blocks = []
        for part in lean.parts:
            values = self.node("Gather", ["X", self.constant(np.array(part.columns), prefix, np.int64)], prefix, axis=1)
            if part.kind == "numeric":
                if part.fill is not None:
                    values = self.node("Where", [self.node("IsNaN", [values], prefix), self.constant(part.fill, prefix),
                                                 values], prefix)
                if part.mean is not None:
                    values = self.node("Div", [self.node("Sub", [values, self.constant(part.mean, prefix)], prefix),
                                               self.constant(part.scale, prefix)], prefix)
                blocks.append(values)
                continue
            # rows of each lookup table: missing, unseen, then each level (index: code + 2, missing -> 0)
            shifted = self.node("Add", [values, self.constant(2.0, prefix)], prefix)
            index = self.node("Where", [self.node("IsNaN", [values], prefix), self.constant(0.0, prefix), shifted],
                              prefix)
            index = self.node("Cast", [index], prefix, to=7)  # int64
            for position, table in enumerate(part.tables):
                column = self.node("Gather", [index, self.constant(position, prefix, np.int64)], prefix, axis=1)
                table2d = np.asarray(table, dtype=np.float64).reshape(len(table), -1)
                blocks.append(self.node("Gather", [self.constant(table2d, prefix), column], prefix, axis=0))
        if not blocks:
            raise ExportError("a member reads no feature")
        return self.node("Concat", blocks, prefix, axis=1) if len(blocks) > 1 else blocks[0]

    def aligned(self, probabilities: str, classes: np.ndarray, n_classes: int, prefix: str) -> str:
        """A member's probabilities (columns: its classes) as one column per class of the task."""
        placement = np.zeros((len(classes), n_classes))
        placement[np.arange(len(classes)), classes] = 1.0
        as_double = self.node("Cast", [probabilities], prefix, to=11)
        return self.node("MatMul", [as_double, self.constant(placement, prefix)], prefix)

    def values(self, output: str, scale: float, offset: float, prefix: str) -> str:
        """A regressor's output as a vector of values, its target scaling undone."""
        flat = self.node("Reshape", [self.node("Cast", [output], prefix, to=11), self.constant([-1], prefix, np.int64)],
                         prefix)
        return self.affine(flat, scale, offset, prefix) if (scale, offset) != (1.0, 0.0) else flat

    def affine(self, value: str, scale: Any, offset: Any, prefix: str) -> str:
        return self.node("Add", [self.node("Mul", [value, self.constant(scale, prefix)], prefix),
                                 self.constant(offset, prefix)], prefix)

    def weighted_sum(self, outputs: list[str], weights: np.ndarray) -> str:
        terms = [self.node("Mul", [output, self.constant(float(weight), "mean_")], "mean_")
                 for output, weight in zip(outputs, weights)]
        return self.node("Sum", terms, "mean_") if len(terms) > 1 else terms[0]


def _run(model: Any, encoded: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
    """``outputs`` of ``model`` on the encoded rows, computed in batches."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    parts = [session.run(outputs, {"X": encoded[start:start + BATCH]}) for start in range(0, len(encoded), BATCH)]
    return [np.concatenate([np.asarray(part[i], dtype=float) for part in parts]) for i in range(len(outputs))]


def _differences(exported: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The largest absolute difference on each row."""
    return np.abs(exported - expected).reshape(len(expected), -1).max(axis=1) if len(expected) else np.zeros(0)


def _check(servable: Servable, model: Any, member_outputs: list[str], path: Path, rows: pd.DataFrame,
           reference: Callable[[pd.DataFrame], np.ndarray]) -> ExportReport:
    """Run ``model`` in onnxruntime on ``rows`` and compare it with ``reference(rows)``; raise where it differs."""
    encoded = servable.encoder.encode_prepared(rows).astype(np.float64)
    expected = np.asarray(reference(rows), dtype=float)
    (exported,) = _run(model, encoded, [model.graph.output[0].name])
    scale = float(np.std(expected)) if len(expected) else 0.0
    tolerance = TOLERANCE if servable.classification else TOLERANCE * (scale or max(float(np.max(np.abs(expected),
                                                                                             initial=0.0)), 1.0))
    difference = _differences(exported, expected)
    beyond = int((difference > tolerance).sum())
    report = ExportReport(path, path.with_name(path.name + ".json"), len(dict.fromkeys(servable.names)), len(expected),
                          float(difference.max(initial=0.0)), tolerance, beyond, len(servable.pipelines))
    if beyond > MAX_SHARE_BEYOND * len(expected):
        raise ExportError(f"the exported graph differs from the model on {beyond} of {len(expected)} rows by more than "
                          f"{tolerance:.2g} (largest {report.max_abs_diff:.3g}), so it was not written; "
                          f"{_culprit(servable, model, member_outputs, encoded, tolerance)}")
    return report


def _culprit(servable: Servable, model: Any, member_outputs: list[str], encoded: np.ndarray, tolerance: float) -> str:
    """Which member's part of the graph differs from the member itself, for the error message."""
    from onnx import helper

    if len(member_outputs) == 1:
        return f"its converted model ({servable.names[0]}) does not reproduce it"
    diagnostic = type(model)()
    diagnostic.CopyFrom(model)
    diagnostic.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in member_outputs)
    exported = _run(diagnostic, encoded, member_outputs)
    found = []
    for index, (pipeline, name, output) in enumerate(zip(servable.pipelines, servable.names, exported)):
        lean = LeanPipeline.compile(pipeline, servable.encoder)
        own = (lean.predict_proba(encoded, servable.n_classes) if servable.classification
               else lean.predict_values(encoded))
        difference = _differences(output, own)
        if (difference > tolerance).any():
            found.append(f"member {index} ({name}) differs on {int((difference > tolerance).sum())} rows "
                         f"(largest {difference.max():.3g})")
    if not found:
        return "no single member accounts for it"
    return "; ".join(found) + ": its converter does not reproduce it (refit without its learner, or distill the model)"


def _metadata(servable: Servable, report: ExportReport) -> dict:
    """What a server needs to encode rows for the graph and read its outputs."""
    encoder = servable.encoder
    return {
        "format": "onnx",
        "input": {"name": "X", "dtype": "float64", "columns": list(encoder.columns),
                  "categorical_codes": {column: codes for column, codes in zip(encoder.columns, encoder.codes)
                                        if codes is not None},
                  "missing": "NaN", "unseen_level": -1,
                  "column_notes": [str(note) for note in getattr(encoder.schema, "notes", ())]},
        "outputs": {"probabilities": "one column per class, in the order of classes",
                    "label": "the index of the likeliest class in classes"} if servable.classification
        else {"prediction": "the predicted value"},
        "classes": [c.item() if isinstance(c, np.generic) else c for c in servable.classes]
        if servable.classification else None,
        "members": servable.names,
        "check": {"rows": report.rows_checked, "max_abs_diff": report.max_abs_diff, "tolerance": report.tolerance,
                  "rows_beyond_tolerance": report.rows_beyond},
    }
