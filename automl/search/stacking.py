"""A stacking layer: a linear model over the members' predictions, kept only where it measures better.

Ensemble selection weighs its members with one weight each. A second layer
(as AutoGluon's stack) can do more: trust a member on one class and not
another, or correct a shared bias. It is a linear model fitted on the
members' out-of-fold predictions (multinomial logistic regression on their
log-probabilities; non-negative least squares on their values, as in
Breiman's stacked regressions), and it replaces the weighted average only
where its 5-fold cross-validated score on those rows beats the average's
score there by ``STACK_MARGIN`` (the average's weights were chosen on the same
rows, so the comparison leans towards keeping the average).

>>> stacker = fit_stacker(chosen, y, metric)    # doctest: +SKIP (None where it does not pay)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

from automl.search.evaluation import TrialResult
from automl.search.metrics import PROBABILITY_FLOOR, Metric

STACK_MARGIN = 0.005  # the relative improvement in loss the stacker must show over the weighted average
STACK_FOLDS = 5


@dataclass
class Stacker:
    """A fitted linear model from the members' predictions (one array per member, in ``members`` order)."""

    members: list[str]  # config keys
    model: Any
    regression: bool

    def features(self, predictions: list[np.ndarray]) -> np.ndarray:
        return stack_features(predictions, self.regression)

    def predict(self, predictions: list[np.ndarray]) -> np.ndarray:
        """The stacked prediction: values, or probabilities with one column per class of the task."""
        features = self.features(predictions)
        if self.regression:
            return self.model.predict(features)
        proba = np.zeros((len(features), predictions[0].shape[1]))
        proba[:, self.model.classes_] = self.model.predict_proba(features)
        return proba


def stack_features(predictions: list[np.ndarray], regression: bool) -> np.ndarray:
    """Values side by side, or each member's log-probabilities (the positive class's log-odds, for two classes)."""
    if regression:
        return np.column_stack([np.asarray(p, dtype=float).ravel() for p in predictions])
    columns = []
    for proba in predictions:
        clipped = np.clip(np.asarray(proba, dtype=float), PROBABILITY_FLOOR, 1.0)
        columns.append(np.log(clipped[:, 1:2] / clipped[:, 0:1]) if clipped.shape[1] == 2 else np.log(clipped))
    return np.hstack(columns)


def fit_stacker(chosen: list[tuple[TrialResult, float]], y: np.ndarray, metric: Metric,
                seed: int = 0) -> Stacker | None:
    """A stacker over the ``chosen`` members (at least two, each with out-of-fold predictions), or None where its
    cross-validated score does not beat their weighted average (see the module docstring)."""
    if len(chosen) < 2 or any(result.predictions is None for result, _ in chosen):
        return None
    regression = metric.kind == "regression"
    predictions = [np.asarray(r.predictions, dtype=float)[:, 0] if regression else np.asarray(r.predictions, float)
                   for r, _ in chosen]
    weights = np.array([weight for _, weight in chosen])
    averaged = np.tensordot(weights / weights.sum(), np.stack(predictions), axes=1)
    features = stack_features(predictions, regression)
    if regression:
        model: Any = LinearRegression(positive=True)
        splitter: Any = KFold(STACK_FOLDS, shuffle=True, random_state=seed)
    else:
        counts = np.bincount(y.astype(int))
        if counts[counts > 0].min() < STACK_FOLDS:
            return None  # too few rows of some class to cross-validate the stacker
        model = LogisticRegression(C=1.0, max_iter=1000)
        splitter = StratifiedKFold(STACK_FOLDS, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        method = "predict" if regression else "predict_proba"
        checked = cross_val_predict(model, features, y, cv=splitter, method=method)
        if not regression:  # columns for the classes present: widen to one per class of the task
            widened = np.zeros_like(averaged)
            widened[:, np.unique(y.astype(int))] = checked
            checked = widened
        stacked_loss = metric.loss(metric(y, checked))
        average_loss = metric.loss(metric(y, averaged))
        if not np.isfinite(stacked_loss) or stacked_loss > average_loss - STACK_MARGIN * abs(average_loss):
            return None
        model.fit(features, y)
    return Stacker([r.config.key() for r, _ in chosen], model, regression)
