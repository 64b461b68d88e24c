"""Importing run histories from OpenML into a knowledge base.

For each task: the task and its dataset's qualities (OpenML's own
meta-features, stored under the version ``openml-qualities``), and the
evaluations of its runs with their setups (hyperparameters). A run whose flow
is a scikit-learn learner we also search (random forests, extra trees, SVMs,
k-NN, logistic/ridge, HistGradientBoosting, LightGBM) is mapped onto our
configuration — only when every hyperparameter we do not model is at its
default and every one we do is inside our space, so a mapped run means exactly
what it says. Other runs are kept as foreign runs (learner
``openml-flow:<id>`` with OpenML's raw parameters). With ``datasets``, the data
is downloaded and our own meta-features are computed too.

Everything goes through the ``openml`` package, so the tests replay recorded
server responses through the same code path.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from metaknowledge.features import EXTRACTOR_VERSION, extract
from metaknowledge.store import KnowledgeBase, Run
from searchspaces import Config, get_learner

log = logging.getLogger(__name__)

SOURCE = "openml"
QUALITIES_VERSION = "openml-qualities"
METRICS = {
    "area_under_roc_curve": "roc_auc",
    "predictive_accuracy": "accuracy",
    "root_mean_squared_error": "rmse",
    "mean_absolute_error": "mae",
}
SETUP_BATCH = 100


@dataclass
class ImportReport:
    tasks: list[str] = field(default_factory=list)
    mapped_runs: int = 0
    foreign_runs: int = 0
    described_datasets: list[int] = field(default_factory=list)


def _openml():
    try:
        import openml
    except ImportError:
        raise ImportError("importing from OpenML needs the openml package: "
                          "pip install 'automl-engine[openml]'") from None
    return openml


def task_name(task_id: int) -> str:
    return f"openml-task/{task_id}"


def _value(text: Any) -> Any:
    """OpenML stores parameter values JSON-encoded ("100", "\\"sqrt\\"", "true", "null")."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _class_name(flow_name: str) -> str:
    return re.split(r"[(]", flow_name)[0].rsplit(".", 1)[-1]


# -- mapping scikit-learn flows onto our learners ----------------------------

def _forest(params: dict[str, Any], kind: str, n_features: int) -> dict[str, Any]:
    max_features = params.get("max_features", "sqrt" if kind == "classification" else 1.0)
    if max_features == "auto":
        max_features = "sqrt" if kind == "classification" else 1.0
    if max_features is None:
        max_features = 1.0
    mapped = {
        "n_estimators": params.get("n_estimators", 100),
        "max_features": max_features,
        "min_samples_leaf": params.get("min_samples_leaf", 1),
        "bootstrap": params.get("bootstrap"),
    }
    if kind == "classification":
        mapped["criterion"] = params.get("criterion", "gini")
    return mapped


def _svm(params: dict[str, Any], kind: str, n_features: int) -> dict[str, Any]:
    if params.get("kernel", "rbf") != "rbf":
        raise ValueError("only RBF kernels map onto our svm")
    gamma = params.get("gamma", "scale")
    if gamma in ("scale", "auto", "auto_deprecated"):
        scale = 1.0
    else:
        scale = float(gamma) * max(1, n_features)  # our gamma is relative to 1 / n_features
    mapped = {"C": float(params.get("C", 1.0)), "gamma_scale": scale}
    if kind == "regression":
        mapped["epsilon"] = float(params.get("epsilon", 0.1))
    return mapped


def _knn(params: dict[str, Any], kind: str, n_features: int) -> dict[str, Any]:
    return {"n_neighbors": params.get("n_neighbors", 5), "weights": params.get("weights", "uniform"),
            "p": params.get("p", 2)}


def _linear(params: dict[str, Any], kind: str, n_features: int) -> dict[str, Any]:
    if kind == "regression":
        return {"alpha": float(params.get("alpha", 1.0))}
    if params.get("penalty", "l2") != "l2":
        raise ValueError("only L2 logistic regression maps onto our linear learner")
    return {"C": float(params.get("C", 1.0)), "class_weight": params.get("class_weight")}


def _hgb(params: dict[str, Any], kind: str, n_features: int) -> dict[str, Any]:
    return {
        "learning_rate": float(params.get("learning_rate", 0.1)),
        "max_iter": params.get("max_iter", 100),
        "max_leaf_nodes": params.get("max_leaf_nodes", 31),
        "min_samples_leaf": params.get("min_samples_leaf", 20),
        "l2_regularization": max(float(params.get("l2_regularization", 0.0)), 1e-8),
        "max_features": float(params.get("max_features", 1.0)),
    }


def _lightgbm(params: dict[str, Any], kind: str, n_features: int) -> dict[str, Any]:
    return {
        "n_estimators": params.get("n_estimators", 100),
        "num_leaves": params.get("num_leaves", 31),
        "min_child_samples": params.get("min_child_samples", 20),
        "learning_rate": float(params.get("learning_rate", 0.1)),
        "colsample_bytree": float(params.get("colsample_bytree", 1.0)),
        "reg_alpha": max(float(params.get("reg_alpha", 0.0)), 1e-8),
        "reg_lambda": max(float(params.get("reg_lambda", 0.0)), 1e-8),
    }


Mapper = Callable[[dict[str, Any], str, int], dict[str, Any]]
# class name -> (our learner, mapper, the hyperparameters the mapping accounts for)
FLOW_MAPPINGS: dict[str, tuple[str, Mapper, set[str]]] = {}
for _names, _learner, _mapper, _modelled in (
    (("RandomForestClassifier", "RandomForestRegressor"), "random_forest", _forest,
     {"n_estimators", "max_features", "min_samples_leaf", "bootstrap", "criterion"}),
    (("ExtraTreesClassifier", "ExtraTreesRegressor"), "extra_trees", _forest,
     {"n_estimators", "max_features", "min_samples_leaf", "bootstrap", "criterion"}),
    (("SVC", "SVR"), "svm", _svm, {"C", "gamma", "kernel", "epsilon", "probability"}),
    (("KNeighborsClassifier", "KNeighborsRegressor"), "knn", _knn, {"n_neighbors", "weights", "p"}),
    (("LogisticRegression", "Ridge"), "linear", _linear,
     {"C", "alpha", "penalty", "class_weight", "max_iter", "solver"}),
    (("HistGradientBoostingClassifier", "HistGradientBoostingRegressor"), "hgb", _hgb,
     {"learning_rate", "max_iter", "max_leaf_nodes", "min_samples_leaf", "l2_regularization", "max_features"}),
    (("LGBMClassifier", "LGBMRegressor"), "lightgbm", _lightgbm,
     {"n_estimators", "num_leaves", "min_child_samples", "learning_rate", "colsample_bytree", "reg_alpha",
      "reg_lambda"}),
):
    for _name in _names:
        FLOW_MAPPINGS[_name] = (_learner, _mapper, _modelled)

# Hyperparameters that change nothing about the model learned.
HARMLESS = {"n_jobs", "verbose", "random_state", "warm_start", "copy_X", "cache_size", "memory", "oob_score"}


def map_setup(parameters: Iterable[Any], kind: str, n_features: int) -> Config | None:
    """Our configuration equivalent to an OpenML setup, or None when there is none."""
    parameters = list(parameters)
    estimators = {_class_name(p.flow_name) for p in parameters} & set(FLOW_MAPPINGS)
    if len(estimators) != 1:
        return None
    class_name = estimators.pop()
    learner_name, mapper, modelled = FLOW_MAPPINGS[class_name]
    own = [p for p in parameters if _class_name(p.flow_name) == class_name]
    values = {p.parameter_name: _value(p.value) for p in own}
    for p in own:
        if (p.parameter_name not in modelled and p.parameter_name not in HARMLESS
                and _value(p.value) != _value(p.default_value)):
            return None  # a setting we cannot represent: keep the run as foreign
    try:
        params = {k: v for k, v in mapper(values, kind, n_features).items() if v is not None}
        learner = get_learner(learner_name, kind)
    except (KeyError, ValueError, TypeError):
        return None
    defaults = learner.space.default()
    params = {name: params.get(name, defaults.get(name)) for name in learner.space.names
              if name in params or name in defaults}
    config = Config(learner_name, params)
    return config if not learner.space.problems(dict(config.params)) else None


def _foreign(flow_id: int, parameters: Iterable[Any]) -> Config:
    return Config(f"openml-flow:{flow_id}", {p.full_name: _value(p.value) for p in parameters})


# -- the import ---------------------------------------------------------------

def _timestamp(text: str) -> float:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return time.time()


def import_openml(
    kb: KnowledgeBase,
    task_ids: Sequence[int],
    flows: Sequence[int] | None = None,
    metric: str = "area_under_roc_curve",
    datasets: Sequence[int] | None = None,
    max_runs: int = 10_000,
) -> ImportReport:
    """Import tasks, qualities and evaluated runs (see the module docstring)."""
    openml = _openml()
    report = ImportReport()
    for task_id in task_ids:
        task = openml.tasks.get_task(int(task_id), download_splits=False, download_data=False, download_qualities=True)
        dataset = openml.datasets.get_dataset(task.dataset_id, download_data=False, download_qualities=True)
        qualities = {k: float(v) for k, v in (dataset.qualities or {}).items() if v is not None}
        regression = "regression" in str(task.task_type).lower()
        kind = "regression" if regression else "classification"
        n_classes = 0 if regression else len(getattr(task, "class_labels", None) or [])
        task_type = "regression" if regression else ("binary" if n_classes == 2 else "multiclass")
        n_features = int(qualities.get("NumberOfFeatures", 1)) - 1
        name = task_name(task_id)
        kb.add_task(
            name, SOURCE, task_type, METRICS.get(metric, metric), int(qualities.get("NumberOfInstances", 0)) or None,
            n_features, n_classes, openml_task_id=int(task_id), openml_dataset_id=int(task.dataset_id),
        )
        if qualities:
            kb.set_meta_features(name, QUALITIES_VERSION, qualities, source=SOURCE)
        report.tasks.append(name)
        evaluations = openml.evaluations.list_evaluations(
            function=metric, tasks=[int(task_id)], flows=list(flows) if flows else None, size=max_runs,
            output_format="dataframe"
        )
        if len(evaluations) == 0:
            continue
        setups = _setups(openml, evaluations["setup_id"].unique().tolist())
        runs = []
        for row in evaluations.itertuples():
            parameters = list((setups[row.setup_id].parameters or {}).values()) if row.setup_id in setups else []
            config = map_setup(parameters, kind, n_features)
            if config is None:
                config = _foreign(int(row.flow_id), parameters)
                report.foreign_runs += 1
            else:
                report.mapped_runs += 1
            runs.append(
                Run(
                    config=config, metric=METRICS.get(metric, metric), score=float(row.value), status="ok",
                    origin=f"openml-run/{row.run_id}", created=_timestamp(row.upload_time), engine_version="openml",
                )
            )
        kb.add_runs(name, runs)
    for dataset_id in datasets or ():
        describe_dataset(kb, int(dataset_id))
        report.described_datasets.append(int(dataset_id))
    return report


def _setups(openml: Any, setup_ids: list[int]) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for start in range(0, len(setup_ids), SETUP_BATCH):
        batch = [int(s) for s in setup_ids[start : start + SETUP_BATCH]]
        found.update(openml.setups.list_setups(setup=batch, output_format="object"))
    return found


def describe_dataset(kb: KnowledgeBase, dataset_id: int) -> None:
    """Download an OpenML dataset and store our meta-features for every task on it."""
    openml = _openml()
    dataset = openml.datasets.get_dataset(dataset_id, download_data=True, download_qualities=False)
    target = dataset.default_target_attribute
    X, y, categorical, names = dataset.get_data(target=target)
    cats = [n for n, is_cat in zip(names, categorical) if is_cat]
    X = pd.DataFrame({c: (X[c].astype("category") if c in cats else pd.to_numeric(X[c], errors="coerce"))
                      for c in X.columns})
    if isinstance(y.dtype, pd.CategoricalDtype) or y.dtype == object or y.dtype == bool:
        labels = np.unique(y.astype(str))
        encoded, task_type = np.searchsorted(labels, y.astype(str)), "binary" if len(labels) == 2 else "multiclass"
    else:
        encoded, task_type = y.to_numpy(dtype=float), "regression"
    started = time.perf_counter()
    values = extract(X, encoded, task_type, cats)
    seconds = time.perf_counter() - started
    tasks = kb.tasks(source=SOURCE)
    names_on_dataset = tasks.loc[tasks["openml_dataset_id"] == dataset_id, "name"].tolist()
    if not names_on_dataset:
        name = f"openml-data/{dataset_id}"
        kb.add_task(name, SOURCE, task_type, None, len(X), X.shape[1], 0 if task_type == "regression" else len(labels),
                    openml_dataset_id=dataset_id)
        names_on_dataset = [name]
    for name in names_on_dataset:
        kb.set_meta_features(name, EXTRACTOR_VERSION, values, seconds=seconds)
