"""Metrics by name, with their direction and what they need to be computed.

Classification metrics take the true labels encoded as ``0..C-1`` and a
probability matrix with one column per class; label metrics use its argmax.
Regression metrics take true and predicted values. The defaults per task are
those of the AutoML Benchmark: ROC AUC (binary), log loss (multiclass), RMSE
(regression).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from automl.errors import ConfigError

PROBABILITY_FLOOR = 1e-15


@dataclass(frozen=True)
class Metric:
    """A named score: ``metric(y_true, prediction) -> float``."""

    name: str
    greater_is_better: bool
    kind: str  # "classification" or "regression"
    function: Callable[[np.ndarray, np.ndarray], float]
    binary_only: bool = False

    def __call__(self, y_true: np.ndarray, prediction: np.ndarray) -> float:
        return float(self.function(np.asarray(y_true), np.asarray(prediction)))

    @property
    def direction(self) -> str:
        """Optuna's word for it: ``"maximize"`` or ``"minimize"``."""
        return "maximize" if self.greater_is_better else "minimize"

    def is_better(self, a: float, b: float) -> bool:
        """Whether value ``a`` beats value ``b``."""
        return a > b if self.greater_is_better else a < b

    def loss(self, value):
        """``value`` (a number or an array) turned so that lower is better: the key to sort results by."""
        return value * (-1 if self.greater_is_better else 1)

    def best(self, values):
        """The best of ``values`` (NaN ignored)."""
        values = [v for v in values if v is not None and np.isfinite(v)]
        if not values:
            return float("nan")
        return max(values) if self.greater_is_better else min(values)


def _normalised(proba: np.ndarray) -> np.ndarray:
    proba = np.clip(np.asarray(proba, dtype=float), 0.0, None)
    sums = proba.sum(axis=1, keepdims=True)
    sums[sums == 0] = 1.0
    return proba / sums


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-likelihood, probabilities clipped to [1e-15, 1]."""
    picked = _normalised(proba)[np.arange(len(y)), y.astype(int)]
    return float(-np.mean(np.log(np.clip(picked, PROBABILITY_FLOOR, 1.0))))


def binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the boolean labels ``positive`` (ties count half), NaN with one class.

    The Mann-Whitney form, from average ranks: the same value as
    scikit-learn's ``roc_auc_score`` at a hundredth of its cost, which matters
    where the engine scores many candidate ensembles.
    """
    from scipy.stats import rankdata

    n_positive = int(np.count_nonzero(positive))
    n_negative = len(positive) - n_positive
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


def roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """Binary ROC AUC, or one-vs-rest macro AUC over the classes present in ``y``."""
    y = y.astype(int)
    if proba.shape[1] == 2:
        return binary_auc(y == 1, proba[:, 1])
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    return float(np.mean([binary_auc(y == c, proba[:, c]) for c in present]))


def _labels(proba: np.ndarray) -> np.ndarray:
    return np.argmax(proba, axis=1)


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def _metrics() -> dict[str, Metric]:
    clf, reg = "classification", "regression"
    made = [
        Metric("roc_auc", True, clf, roc_auc),
        Metric("log_loss", False, clf, log_loss),
        Metric("accuracy", True, clf, lambda y, p: float(np.mean(y == _labels(p)))),
        Metric("balanced_accuracy", True, clf, lambda y, p: skm.balanced_accuracy_score(y, _labels(p))),
        Metric("f1", True, clf, lambda y, p: skm.f1_score(y, _labels(p), zero_division=0), binary_only=True),
        Metric("f1_macro", True, clf, lambda y, p: skm.f1_score(y, _labels(p), average="macro", zero_division=0)),
        Metric("average_precision", True, clf, lambda y, p: skm.average_precision_score(y, p[:, 1]), binary_only=True),
        Metric("rmse", False, reg, _rmse),
        Metric("mse", False, reg, lambda y, p: float(np.mean((y - p) ** 2))),
        Metric("mae", False, reg, lambda y, p: float(np.mean(np.abs(y - p)))),
        Metric("r2", True, reg, lambda y, p: skm.r2_score(y, p)),
    ]
    return {m.name: m for m in made}


METRICS = _metrics()
ALIASES = {
    "auc": "roc_auc",
    "logloss": "log_loss",
    "neg_log_loss": "log_loss",
    "neg_root_mean_squared_error": "rmse",
    "neg_mean_squared_error": "mse",
    "neg_mean_absolute_error": "mae",
}
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def get_metric(name: str | None, task: str) -> Metric:
    """The metric called ``name`` (default: the task's), checked against the task."""
    if name is None:
        name = DEFAULT_METRIC[task]
    key = ALIASES.get(name.lower(), name.lower())
    if key not in METRICS:
        close = difflib.get_close_matches(key, list(METRICS) + list(ALIASES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown metric {name!r}.{hint} Available: {sorted(METRICS)}")
    metric = METRICS[key]
    kind = "regression" if task == "regression" else "classification"
    if metric.kind != kind:
        fitting = sorted(m.name for m in METRICS.values() if m.kind == kind)
        raise ConfigError(f"metric {metric.name!r} is for {metric.kind}, but this is a {task} task; "
                          f"use one of {fitting}")
    if metric.binary_only and task != "binary":
        raise ConfigError(f"metric {metric.name!r} needs a binary target; this task has more classes (try 'f1_macro')")
    return metric
