"""Tree ensembles as ONNX ``TreeEnsembleRegressor`` nodes, read from the fitted models themselves.

LightGBM (the members and the distilled student), XGBoost and scikit-learn's
HistGradientBoosting models are written here rather than by a converter
library, so that each tree decides as its own library does: thresholds in
float64 where the library compares in float64 (LightGBM, HistGradientBoosting)
and in float32 where it does (XGBoost), missing values sent where the library
sends them, and categorical splits (a set of levels going one way) written as
chains of equality tests, which onnxmltools does not do for XGBoost and
skl2onnx not for HistGradientBoosting. LightGBM's linear trees (a linear model
in each leaf) are written with lookup tables after a tree pass that finds each
row's leaf. Each model gives a list of :class:`Tree`; the ensemble's output is
the raw scores, one column per output, and the caller applies the link.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from automl.errors import ExportError

ML_DOMAIN = "ai.onnx.ml"


@dataclass
class Tree:
    """One tree as lists over its nodes (preorder for LightGBM, the library's numbering otherwise).

    A numeric split sends ``x[feature] <= threshold`` (``< threshold`` for
    XGBoost) to ``left``, a categorical one sends the values in
    ``categories[node]`` to ``left``; everything else goes ``right``, a
    missing value ``left`` where ``missing_left``. Leaves carry ``value`` (and
    for a linear tree ``linear[node]``: constant, features, coefficients).
    """

    target: int  # the output column the tree adds to
    feature: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    missing_left: list[bool] = field(default_factory=list)
    is_leaf: list[bool] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    categories: list[tuple[float, ...] | None] = field(default_factory=list)
    linear: list[tuple[float, list[int], list[float]] | None] = field(default_factory=list)

    def add(self, *, feature: int = 0, threshold: float = 0.0, missing_left: bool = False, leaf: bool = False,
            value: float = 0.0, categories: tuple[float, ...] | None = None,
            linear: tuple[float, list[int], list[float]] | None = None) -> int:
        """Append a node (its children set later through ``left``/``right``); its index."""
        for name, item in (("feature", feature), ("threshold", threshold), ("left", 0), ("right", 0),
                           ("missing_left", missing_left), ("is_leaf", leaf), ("value", value),
                           ("categories", categories), ("linear", linear)):
            getattr(self, name).append(item)
        return len(self.feature) - 1


def tree_ensemble(trees: list[Tree], n_targets: int, base: Any, width: int, *, strict: bool = False,
                  float32: bool = False) -> Any:
    """An ONNX model from a float64 ``input`` [N, width] to float64 ``scores`` [N, n_targets]: the trees' sums plus
    ``base`` (onnxruntime sums a tree ensemble in float32).

    ``strict``: numeric splits test ``<`` (XGBoost); ``float32``: the input is
    rounded to float32 first, as the library reads it.
    """
    from onnx import TensorProto, helper

    if any(linear is not None for tree in trees for linear in tree.linear):
        return _linear_ensemble(trees, n_targets, base, width)
    nodes = [helper.make_node("Cast", ["input"], ["input32"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["input32"], ["rounded"], to=TensorProto.DOUBLE)] if float32 else []
    nodes += [_ensemble_node(trees, n_targets, "rounded" if float32 else "input", "scores32", strict),
              helper.make_node("Cast", ["scores32"], ["sums"], to=TensorProto.DOUBLE),
              helper.make_node("Add", ["sums", "base"], ["scores"])]
    graph = helper.make_graph(
        nodes, "trees", [helper.make_tensor_value_info("input", TensorProto.DOUBLE, [None, width])],
        [helper.make_tensor_value_info("scores", TensorProto.DOUBLE, [None, n_targets])],
        [_tensor(np.asarray(base, dtype=np.float64).ravel(), "base")])
    return _model(graph)


def _ensemble_node(trees: list[Tree], n_targets: int, source: str, output: str, strict: bool,
                   leaf_ids: bool = False) -> Any:
    """The TreeEnsembleRegressor node summing ``trees``; with ``leaf_ids``, output ``t`` is tree ``t``'s leaf number."""
    from onnx import helper

    keys = ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_truenodeids",
            "nodes_falsenodeids", "nodes_missing_value_tracks_true", "target_treeids", "target_nodeids", "target_ids")
    attributes: dict[str, list] = {key: [] for key in keys}
    thresholds: list[float] = []
    weights: list[float] = []

    def emit(*items: Any, threshold: float = 0.0) -> None:  # tree, node, feature, mode, true, false, missing
        for key, item in zip(keys, items):
            attributes[key].append(item)
        thresholds.append(threshold)

    for tree_id, tree in enumerate(trees):
        extra = len(tree.feature)  # ids of the equality tests that chains of categorical splits add
        leaves = 0
        for node in range(len(tree.feature)):
            if tree.is_leaf[node]:
                emit(tree_id, node, 0, "LEAF", 0, 0, 0)
                attributes["target_treeids"].append(tree_id)
                attributes["target_nodeids"].append(node)
                attributes["target_ids"].append(tree_id if leaf_ids else tree.target)
                weights.append(float(leaves) if leaf_ids else float(tree.value[node]))
                leaves += 1
                continue
            feature, left, right, missing = (tree.feature[node], tree.left[node], tree.right[node],
                                             int(tree.missing_left[node]))
            levels = tree.categories[node]
            if levels is None:
                emit(tree_id, node, feature, "BRANCH_LT" if strict else "BRANCH_LEQ", left, right, missing,
                     threshold=tree.threshold[node])
            elif not levels:  # no level goes left: only missing values may
                emit(tree_id, node, feature, "BRANCH_LEQ", left, right, missing, threshold=-np.inf)
            else:  # x == l1 ? left : (x == l2 ? left : ... right); a missing value fails every test unless tracked
                ids = [node] + list(range(extra, extra + len(levels) - 1))
                extra += len(levels) - 1
                for position, (test, level) in enumerate(zip(ids, levels)):
                    false = ids[position + 1] if position + 1 < len(ids) else right
                    emit(tree_id, test, feature, "BRANCH_EQ", left, false, missing, threshold=float(level))
    return helper.make_node(
        "TreeEnsembleRegressor", [source], [output], domain=ML_DOMAIN, n_targets=len(trees) if leaf_ids else n_targets,
        aggregate_function="SUM", post_transform="NONE",
        nodes_values_as_tensor=_tensor(np.asarray(thresholds, dtype=np.float64)),
        target_weights_as_tensor=_tensor(np.asarray(weights, dtype=np.float64)), **attributes)


def _linear_ensemble(trees: list[Tree], n_targets: int, base: Any, width: int) -> Any:
    """Trees with a linear model in each leaf (LightGBM's ``linear_tree``): a tree pass finds each row's leaf per
    tree; tables give that leaf's constant, features and coefficients; a leaf whose features hold a missing value
    answers its plain value instead, as LightGBM does."""
    from onnx import TensorProto, helper

    n_trees, most = len(trees), max(sum(tree.is_leaf) for tree in trees)
    depth = max([len(linear[1]) for tree in trees for linear in tree.linear if linear] + [1])
    const, plain = np.zeros((n_trees, most)), np.zeros((n_trees, most))
    features, coefficients = np.zeros((n_trees, most, depth), dtype=np.int64), np.zeros((n_trees, most, depth))
    used = np.zeros((n_trees, most, depth))
    for t, tree in enumerate(trees):
        leaves = [node for node in range(len(tree.feature)) if tree.is_leaf[node]]
        for leaf, node in enumerate(leaves):
            plain[t, leaf] = const[t, leaf] = tree.value[node]
            if tree.linear[node] is not None:
                const[t, leaf], columns, coefficient = tree.linear[node]
                features[t, leaf, :len(columns)], coefficients[t, leaf, :len(columns)] = columns, coefficient
                used[t, leaf, :len(columns)] = 1.0
    placement = np.zeros((n_trees, n_targets))
    placement[np.arange(n_trees), [tree.target for tree in trees]] = 1.0
    tables = {"const": const.ravel(), "plain": plain.ravel(), "features": features.reshape(-1, depth),
              "coefficients": coefficients.reshape(-1, depth), "used": used.reshape(-1, depth),
              "offsets": np.arange(n_trees, dtype=np.int64) * most, "placement": placement, "zero": np.zeros(1),
              "flat": np.array([-1, n_trees * depth], dtype=np.int64),
              "shape": np.array([-1, n_trees, depth], dtype=np.int64),
              "base": np.asarray(base, dtype=np.float64).ravel()}
    node = helper.make_node
    nodes = [
        _ensemble_node(trees, n_targets, "input", "leaf32", False, leaf_ids=True),
        node("Cast", ["leaf32"], ["leaf"], to=TensorProto.INT64), node("Add", ["leaf", "offsets"], ["index"]),
        node("IsNaN", ["input"], ["nan"]), node("Where", ["nan", "zero", "input"], ["filled"]),
        node("Cast", ["nan"], ["nan64"], to=TensorProto.DOUBLE),
        node("Gather", ["features", "index"], ["columns"]), node("Reshape", ["columns", "flat"], ["columns_flat"]),
        node("GatherElements", ["filled", "columns_flat"], ["x_flat"], axis=1),
        node("Reshape", ["x_flat", "shape"], ["x"]),
        node("GatherElements", ["nan64", "columns_flat"], ["nan_flat"], axis=1),
        node("Reshape", ["nan_flat", "shape"], ["xnan"]),
        node("Gather", ["coefficients", "index"], ["coefficient"]), node("Mul", ["coefficient", "x"], ["terms"]),
        node("ReduceSum", ["terms", "last"], ["slope"], keepdims=0),
        node("Gather", ["const", "index"], ["intercept"]), node("Add", ["intercept", "slope"], ["fitted"]),
        node("Gather", ["used", "index"], ["uses"]), node("Mul", ["uses", "xnan"], ["missing"]),
        node("ReduceMax", ["missing"], ["any_missing"], axes=[2], keepdims=0),
        node("Greater", ["any_missing", "zero"], ["fallback"]), node("Gather", ["plain", "index"], ["plain_value"]),
        node("Where", ["fallback", "plain_value", "fitted"], ["per_tree"]),
        node("MatMul", ["per_tree", "placement"], ["sums"]), node("Add", ["sums", "base"], ["scores"]),
    ]
    initializers = ([_tensor(value, name) for name, value in tables.items()]
                    + [_tensor(np.array([2], dtype=np.int64), "last")])
    graph = helper.make_graph(nodes, "linear_trees",
                              [helper.make_tensor_value_info("input", TensorProto.DOUBLE, [None, width])],
                              [helper.make_tensor_value_info("scores", TensorProto.DOUBLE, [None, n_targets])],
                              initializers)
    return _model(graph)


def _tensor(value: np.ndarray, name: str = "") -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value), name)


def _model(graph: Any) -> Any:
    from onnx import helper

    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid(ML_DOMAIN, 3)])


def lightgbm_trees(dump: dict, n_targets: int) -> list[Tree]:
    """A LightGBM booster's trees (tree ``i`` adds to output ``i % n_targets``), from its ``dump_model()``."""
    trees = []
    for index, info in enumerate(dump["tree_info"]):
        tree = Tree(target=index % n_targets)
        _lightgbm_node(info["tree_structure"], tree)
        trees.append(tree)
    return trees


def _lightgbm_node(node: dict, tree: Tree) -> int:
    """Append ``node`` and its subtree (preorder) to ``tree``; its index."""
    if "leaf_value" in node:
        linear = None
        if "leaf_const" in node:
            linear = (float(node["leaf_const"]), [int(f) for f in node["leaf_features"]],
                      [float(c) for c in node["leaf_coeff"]])
        return tree.add(leaf=True, value=float(node["leaf_value"]), linear=linear)
    missing = node.get("missing_type", "None")
    if missing == "Zero":
        raise ExportError("the LightGBM model treats zeros as missing (zero_as_missing), which is not exported")
    feature = int(node["split_feature"])
    if node["decision_type"] == "==":  # levels in the set go left; a missing value too where it reads as level 0
        levels = tuple(sorted(float(level) for level in str(node["threshold"]).split("||")))
        index = tree.add(feature=feature, categories=levels, missing_left=missing != "NaN" and 0.0 in levels)
    elif node["decision_type"] == "<=":  # missing_type NaN: missing values follow default_left; None: they read as 0
        threshold = float(node["threshold"])
        missing_left = bool(node["default_left"]) if missing == "NaN" else 0.0 <= threshold
        index = tree.add(feature=feature, threshold=threshold, missing_left=missing_left)
    else:
        raise ExportError(f"the LightGBM model has splits of type {node['decision_type']!r}, which are not exported")
    tree.left[index] = _lightgbm_node(node["left_child"], tree)
    tree.right[index] = _lightgbm_node(node["right_child"], tree)
    return index


def hist_gradient_boosting_trees(estimator: Any) -> list[Tree]:
    """A fitted HistGradientBoosting model's trees (per iteration, one per output), in its input's column order.

    With categorical features the model encodes its input itself (categories
    first, each value as its position among those seen in training, unseen
    ones as missing); its splits are mapped back to the input's values.
    """
    preprocessor = getattr(estimator, "_preprocessor", None)
    order = np.arange(estimator.n_features_in_)
    categories: list[np.ndarray] = []
    known: list[set[int]] = []
    if preprocessor is not None:
        mask = np.asarray(estimator.is_categorical_, dtype=bool)
        order = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])
        categories = [np.asarray(c, dtype=float) for c in preprocessor.named_transformers_["encoder"].categories_]
        known = [set(np.asarray(estimator._bin_mapper.bin_thresholds_[f]).astype(int).tolist())
                 for f in np.flatnonzero(estimator._bin_mapper.is_categorical_)]
    trees = []
    for iteration in estimator._predictors:
        for target, predictor in enumerate(iteration):
            trees.append(_hgb_tree(predictor, target, order, categories, known))
    return trees


def _hgb_tree(predictor: Any, target: int, order: np.ndarray, categories: list[np.ndarray],
              known: list[set[int]]) -> Tree:
    nodes, bitsets = predictor.nodes, predictor.raw_left_cat_bitsets
    tree = Tree(target=target)
    for node in nodes:
        if node["is_leaf"]:
            tree.add(leaf=True, value=float(node["value"]))
            continue
        feature, missing_left = int(node["feature_idx"]), bool(node["missing_go_to_left"])
        if not node["is_categorical"]:
            index = tree.add(feature=int(order[feature]), threshold=float(node["num_threshold"]),
                             missing_left=missing_left)
            tree.left[index], tree.right[index] = int(node["left"]), int(node["right"])
            continue
        bits = np.unpackbits(bitsets[node["bitset_idx"]].astype("<u4").view(np.uint8), bitorder="little")
        left = {code for code in np.flatnonzero(bits).tolist()}
        values = categories[feature]  # categorical features come first: position = feature
        if missing_left:  # unseen values go the missing way (left): test the known ones that go right
            levels = tuple(sorted(float(values[c]) for c in known[feature] - left))
            index = tree.add(feature=int(order[feature]), categories=levels, missing_left=False)
            tree.left[index], tree.right[index] = int(node["right"]), int(node["left"])
        else:
            levels = tuple(sorted(float(values[c]) for c in left))
            index = tree.add(feature=int(order[feature]), categories=levels, missing_left=False)
            tree.left[index], tree.right[index] = int(node["left"]), int(node["right"])
    return tree


def xgboost_trees(booster: Any) -> tuple[list[Tree], float, str]:
    """An XGBoost booster's trees (each adds to its class's output), its base score (a margin) and its objective."""
    learner = json.loads(booster.save_raw("json"))["learner"]
    objective = learner["objective"]["name"]
    model = learner["gradient_booster"]
    if model.get("name") != "gbtree":
        raise ExportError(f"XGBoost's {model.get('name')!r} booster is not exported (only gbtree)")
    model = model["model"]
    base = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))  # "[5E-1]" in XGBoost 3
    if objective == "binary:logistic":
        base = float(np.log(base / (1 - base)))
    elif not objective.startswith(("multi:", "reg:squarederror")):
        raise ExportError(f"XGBoost's objective {objective!r} is not exported")
    groups = model.get("tree_info") or [0] * len(model["trees"])
    return [_xgboost_tree(tree, group) for tree, group in zip(model["trees"], groups)], base, objective


def _xgboost_tree(raw: dict, group: int) -> Tree:
    tree = Tree(target=int(group))
    categorical = dict(zip(raw.get("categories_nodes", []), zip(raw.get("categories_segments", []),
                                                                raw.get("categories_sizes", []))))
    for node, (left, right) in enumerate(zip(raw["left_children"], raw["right_children"])):
        if left == -1:
            tree.add(leaf=True, value=float(raw["split_conditions"][node]))
            continue
        feature, missing_left = int(raw["split_indices"][node]), bool(raw["default_left"][node])
        if raw.get("split_type", [0] * (node + 1))[node] == 1:  # the listed levels go right, the others left
            start, size = categorical[node]
            levels = tuple(sorted(float(c) for c in raw["categories"][start:start + size]))
            index = tree.add(feature=feature, categories=levels, missing_left=not missing_left)
            tree.left[index], tree.right[index] = int(right), int(left)
        else:
            index = tree.add(feature=feature, threshold=float(np.float32(raw["split_conditions"][node])),
                             missing_left=missing_left)
            tree.left[index], tree.right[index] = int(left), int(right)
    return tree
