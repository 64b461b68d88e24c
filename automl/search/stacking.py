"""A stacking layer: a linear model over the members' predictions, kept only where it measures better.

Ensemble selection weighs its members with one weight each. A second layer
(as AutoGluon's stack) can do more: trust a member on one class and not
another, or correct a shared bias. It is a linear model fitted on the
members' out-of-fold predictions (multinomial logistic regression on their
log-probabilities; non-negative least squares on their values, as in
Breiman's stacked regressions), and it replaces the weighted average only
where its 5-fold cross-validated score on those rows (at most ``STACK_ROWS``
of them) beats the average's score there by ``STACK_MARGIN`` (the average's weights were chosen on the same
rows, so the comparison leans towards keeping the average).

>>> stacker = fit_stacker(chosen, y, metric)    # doctest: +SKIP (None where it does not pay)
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold

from automl.search.evaluation import TrialResult
from automl.search.metrics import Metric

STACK_MARGIN = 0.005  # the relative improvement in loss the stacker must show over the weighted average
STACK_FOLDS = 5
FEATURE_FLOOR = 1e-4  # probabilities below this read as this in the stacker's log-probability features
STACK_ROWS = 1_000  # the layer is judged and fitted on at most this many of the out-of-fold rows (it has few weights)


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
        shape = (len(predictions[0]),) if self.regression else predictions[0].shape
        return self.predict_features(self.features(predictions), shape)

    def predict_features(self, features: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if self.regression:
            return self.model.predict(features)
        proba = np.zeros((len(features), shape[1]))
        proba[:, self.model.classes_.astype(int)] = self.model.predict_proba(features)
        return proba


def stack_features(predictions: list[np.ndarray], regression: bool) -> np.ndarray:
    """Values side by side, or each member's log-probabilities (the positive class's log-odds, for two classes)."""
    if regression:
        return np.column_stack([np.asarray(p, dtype=float).ravel() for p in predictions])
    columns = []
    for proba in predictions:
        clipped = np.clip(np.asarray(proba, dtype=float), FEATURE_FLOOR, 1.0)
        columns.append(np.log(clipped[:, 1:2] / clipped[:, 0:1]) if clipped.shape[1] == 2 else np.log(clipped))
    return np.hstack(columns)


def fit_stacker(chosen: list[tuple[TrialResult, float]], y: np.ndarray, metric: Metric, seed: int = 0,
                seconds: float = float("inf")) -> Stacker | None:
    """A stacker over the ``chosen`` members (at least two, each with out-of-fold predictions), or None where its
    cross-validated score does not beat their weighted average (see the module docstring), or where fitting it
    would take more than ``seconds`` (judged after its first fold)."""
    if len(chosen) < 2 or any(result.predictions is None for result, _ in chosen):
        return None
    started = time.monotonic()
    regression = metric.kind == "regression"
    predictions = [np.asarray(r.predictions, dtype=float)[:, 0] if regression else np.asarray(r.predictions, float)
                   for r, _ in chosen]
    if len(y) > STACK_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(y), STACK_ROWS, replace=False))
        predictions, y = [p[rows] for p in predictions], y[rows]
    weights = np.array([weight for _, weight in chosen])
    averaged = np.tensordot(weights / weights.sum(), np.stack(predictions), axes=1)
    features = stack_features(predictions, regression)
    if regression:
        splitter: Any = KFold(STACK_FOLDS, shuffle=True, random_state=seed)
    else:
        counts = np.bincount(y.astype(int))
        if counts[counts > 0].min() < STACK_FOLDS:
            return None  # too few rows of some class to cross-validate the stacker
        splitter = StratifiedKFold(STACK_FOLDS, shuffle=True, random_state=seed)
    checked = np.zeros_like(averaged)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fold, (train, valid) in enumerate(splitter.split(features, y)):
            model = _linear(regression).fit(features[train], y[train])
            checked[valid] = Stacker([], model, regression).predict_features(features[valid], averaged.shape)
            if fold == 0 and (time.monotonic() - started) * (STACK_FOLDS + 1) > seconds:
                return None  # the layer would not be fitted in time
        stacked_loss = metric.loss(metric(y, checked))
        average_loss = metric.loss(metric(y, averaged))
        if not np.isfinite(stacked_loss) or stacked_loss > average_loss - STACK_MARGIN * abs(average_loss):
            return None
        return Stacker([r.config.key() for r, _ in chosen], _linear(regression).fit(features, y), regression)


def _linear(regression: bool) -> Any:
    return LinearRegression(positive=True) if regression else LogisticRegression(C=0.1, max_iter=100, tol=1e-3)
