"""One fitted estimator as an ONNX model: scikit-learn's through skl2onnx, gradient-boosted trees by
:mod:`automl.serving.onnx.trees`, CatBoost by its own exporter, the torch networks through ``torch.onnx``.

Each converted model reads one input named ``input`` (the estimator's own
features, as its pipeline's preprocessing makes them: float32, or float64 where
``ConvertedMember.double``) and has one output of interest, named in
:class:`ConvertedMember`: class probabilities, one column per class the
estimator knows (``classes`` says which task class each column is), or
predicted values. :mod:`automl.serving.export` puts the members, their preprocessing
and the ensemble's weights together in one graph. What cannot be converted
raises :class:`~automl.errors.ExportError` saying why.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from automl.errors import ExportError
from automl.pipeline.lean import LeanPipeline
from automl.serving.onnx.common import ML_OPSET, OPSET, ConvertedMember, converter_reason
from automl.serving.onnx.trees import hist_gradient_boosting_trees, lightgbm_trees, tree_ensemble, xgboost_trees


def convert_estimator(estimator: Any, width: int, classification: bool) -> ConvertedMember:
    """``estimator`` (fitted on ``width`` features) as an ONNX model; raises :class:`ExportError` saying why not."""
    name = type(estimator).__name__
    if name == "ContiguousLabels":  # XGBoost on renumbered labels: its columns are the wrapper's classes
        converted = convert_estimator(estimator.estimator, width, classification)
        return ConvertedMember(converted.onnx, converted.output, np.asarray(estimator.classes_).astype(int),
                               double=converted.double)
    if name == "TransformedTargetRegressor":  # fitted on a transformed target: undo its (affine) scaling
        scaler = estimator.transformer_
        if type(scaler).__name__ != "StandardScaler":
            raise ExportError(f"a target transformed by {type(scaler).__name__} is not exported (only StandardScaler)")
        converted = convert_estimator(estimator.regressor_, width, classification)
        return ConvertedMember(converted.onnx, converted.output, None, float(np.ravel(scaler.scale_)[0]),
                               float(np.ravel(scaler.mean_)[0]), converted.double)
    if name == "IntegerCategories":
        raise ExportError("CatBoost with categorical features has no ONNX export "
                          "(CatBoost's own exporter refuses them)")
    if name.startswith("CatBoost"):
        return _catboost(estimator, classification)
    if name.startswith("LGBM"):
        return _lightgbm(estimator, classification)
    if name.startswith("HistGradientBoosting"):
        return _hist_gradient_boosting(estimator, width, classification)
    if name.startswith("XGB"):
        return _xgboost(estimator, width, classification)
    if name.startswith("Torch"):
        from automl.serving.onnx.networks import convert_network

        return convert_network(estimator, width, classification)
    return _sklearn(estimator, width, classification)


def _sklearn(estimator: Any, width: int, classification: bool) -> ConvertedMember:
    import skl2onnx
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    options = {id(estimator): {"zipmap": False}} if classification else None
    double = type(estimator).__name__.startswith("KNeighbors")  # float32 distances would reorder neighbours
    types = [("input", (DoubleTensorType if double else FloatTensorType)([None, width]))]
    try:
        model = skl2onnx.convert_sklearn(estimator, initial_types=types, options=options,
                                         target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET})
    except Exception as error:  # skl2onnx says what it lacks (an estimator, an option) in its own words
        raise ExportError(f"skl2onnx {skl2onnx.__version__} cannot convert {type(estimator).__name__}: "
                          f"{converter_reason(error)}") from error
    outputs = [output.name for output in model.graph.output]
    if not classification:
        return ConvertedMember(model, outputs[0], None, double=double)
    return ConvertedMember(model, outputs[-1], np.asarray(estimator.classes_).astype(int), double=double)


def _lightgbm(estimator: Any, classification: bool) -> ConvertedMember:
    booster = estimator.booster_
    dump = booster.dump_model()
    objective = str(dump.get("objective", "")).split()
    n_targets = int(dump.get("num_tree_per_iteration", 1))
    trees = tree_ensemble(lightgbm_trees(dump, n_targets), n_targets, np.zeros(n_targets), booster.num_feature())
    if not classification:
        if objective[:1] and objective[0] not in ("regression", "regression_l1", "huber", "fair", "quantile"):
            raise ExportError(f"LightGBM's objective {objective[0]!r} is not exported")
        return ConvertedMember(with_link(trees, "identity"), "output", None, double=True)
    if objective[:1] == ["binary"]:
        sigmoid = next((float(part.split(":")[1]) for part in objective if part.startswith("sigmoid:")), 1.0)
        model = with_link(trees, "logistic", sigmoid)
    elif objective[:1] == ["multiclass"]:
        model = with_link(trees, "softmax")
    else:
        raise ExportError(f"LightGBM's objective {' '.join(objective)!r} is not exported")
    return ConvertedMember(model, "output", np.asarray(estimator.classes_).astype(int), double=True)


def _hist_gradient_boosting(estimator: Any, width: int, classification: bool) -> ConvertedMember:
    loss = getattr(estimator, "loss", "squared_error")
    if not classification and loss != "squared_error":
        raise ExportError(f"HistGradientBoostingRegressor with loss={loss!r} is not exported (only squared_error)")
    base = np.asarray(estimator._baseline_prediction, dtype=float).ravel()
    trees = tree_ensemble(hist_gradient_boosting_trees(estimator), len(base), base, width)
    if not classification:
        return ConvertedMember(with_link(trees, "identity"), "output", None, double=True)
    link = "logistic" if len(base) == 1 else "softmax"
    return ConvertedMember(with_link(trees, link), "output", np.asarray(estimator.classes_).astype(int), double=True)


def _xgboost(estimator: Any, width: int, classification: bool) -> ConvertedMember:
    booster = estimator.get_booster()
    trees, base, objective = xgboost_trees(booster)
    n_targets = max(tree.target for tree in trees) + 1 if trees else 1
    if objective == "multi:softmax":
        raise ExportError("XGBoost's multi:softmax objective gives no probabilities; fit with multi:softprob")
    model = tree_ensemble(trees, n_targets, np.full(n_targets, base), width, strict=True, float32=True)
    if not classification:
        return ConvertedMember(with_link(model, "identity"), "output", None, double=True)
    model = with_link(model, "softmax" if objective.startswith("multi:") else "logistic")
    return ConvertedMember(model, "output", np.arange(2 if n_targets == 1 else n_targets), double=True)


def _catboost(estimator: Any, classification: bool) -> ConvertedMember:
    import onnx

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catboost.onnx"
        try:
            estimator.save_model(str(path), format="onnx")
        except Exception as error:
            raise ExportError(f"CatBoost's ONNX export refused the model: {converter_reason(error)}") from error
        model = onnx.load(str(path))
    graph = model.graph
    source = graph.input[0].name
    for node in graph.node:  # read its probabilities as a tensor, not the per-row maps of ZipMap
        node.input[:] = ["input" if name == source else name for name in node.input]
    zipmaps = [node for node in graph.node if node.op_type == "ZipMap"]
    output = zipmaps[0].input[0] if zipmaps else graph.output[-1].name
    for node in zipmaps:
        graph.node.remove(node)
    del graph.input[:], graph.output[:]
    graph.input.append(onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, None))
    graph.output.append(onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None))
    classes = np.asarray(estimator.classes_).astype(int) if classification else None
    return ConvertedMember(model, output, classes)


def student_member(model: Any, base: np.ndarray, task: str, n_classes: int) -> ConvertedMember:
    """A distilled student (:class:`~automl.serving.distill.DistilledModel`): its raw scores plus ``base``,
    through the link its task uses, reading the encoded rows as they are (a linear student: through its own
    preprocessing)."""

    link = {"binary": "logistic", "multiclass": "softmax"}.get(task, "identity")
    classes = np.arange(n_classes) if task != "regression" else None
    if isinstance(model, LeanPipeline):
        return ConvertedMember(with_link(_linear_scores(model.model), link), "output", classes, double=True,
                               reads=model)
    booster = model
    n_targets = n_classes if task == "multiclass" else 1
    trees = tree_ensemble(lightgbm_trees(booster.dump_model(), n_targets), n_targets, base, booster.num_feature())
    link = {"binary": "logistic", "multiclass": "softmax"}.get(task, "identity")
    return ConvertedMember(with_link(trees, link), "output", np.arange(n_classes) if task != "regression" else None,
                           double=True)


def _linear_scores(ridge: Any) -> Any:
    """A fitted linear regression (one or more outputs) from a float64 ``input`` to float64 ``scores``."""
    from onnx import TensorProto, helper, numpy_helper

    coef = np.atleast_2d(np.asarray(ridge.coef_, dtype=np.float64))  # outputs x features
    intercept = np.atleast_1d(np.asarray(ridge.intercept_, dtype=np.float64))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "coef"], ["product"]),
         helper.make_node("Add", ["product", "intercept"], ["scores"])],
        "linear", [helper.make_tensor_value_info("input", TensorProto.DOUBLE, [None, coef.shape[1]])],
        [helper.make_tensor_value_info("scores", TensorProto.DOUBLE, [None, coef.shape[0]])],
        [numpy_helper.from_array(coef.T.copy(), "coef"), numpy_helper.from_array(intercept, "intercept")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def with_link(model: Any, link: str, sigmoid: float = 1.0) -> Any:
    """``model`` (float64 ``scores``) with an ``output``: probabilities by the ``logistic`` link (two columns, from
    the positive class's log-odds times ``sigmoid``) or ``softmax``, or the scores as values (``identity``)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    if link == "identity":
        graph.node.append(helper.make_node("Identity", ["scores"], ["output"]))
    elif link == "softmax":
        graph.node.append(helper.make_node("Softmax", ["scores"], ["output"], axis=1))
    else:
        graph.initializer.extend([numpy_helper.from_array(np.ones(1), "one"),
                                  numpy_helper.from_array(np.array([sigmoid]), "sigmoid")])
        graph.node.extend([helper.make_node("Mul", ["scores", "sigmoid"], ["logit"]),
                           helper.make_node("Sigmoid", ["logit"], ["positive"]),
                           helper.make_node("Sub", ["one", "positive"], ["negative"]),
                           helper.make_node("Concat", ["negative", "positive"], ["output"], axis=1)])
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("output", TensorProto.DOUBLE, None))
    return model
