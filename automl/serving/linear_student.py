"""A linear student: a linear model of the teacher's outputs over the encoded rows.

A tree student steps along a teacher that is smooth or linear in its inputs
(a logistic regression over a hundred numeric columns, a kernel machine); a
linear model follows it exactly. The student reads a
:class:`~automl.pipeline.row_encoder.RowEncoder`'s matrix through a
:class:`~automl.pipeline.lean.LeanPipeline` (numeric columns: missing values
as the median, standardized; categorical columns: one-hot, missing and unseen
levels all zeros). For classification it is a logistic regression trained on
the teacher's probabilities as soft targets (each row once per class, weighted
by the teacher's probability of it: the cross-entropy against them); for
regression a ridge regression of the teacher's values. Its raw scores
(log-odds, logits, values) are what :class:`~automl.serving.distill.DistilledModel`
reads. The penalty is chosen on the rows held out of training by the same
fidelity loss the LightGBM student's search uses, and
:func:`automl.serving.distill.distill` keeps the linear student when it follows the
teacher more closely.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from automl.pipeline.lean import LeanPipeline, Part
from automl.pipeline.row_encoder import RowEncoder

ALPHAS = (1.0, 0.1, 10.0, 0.01, 100.0, 1e-3)  # penalties tried in this order, while time lasts (ridge alpha; 1 / C)


def fit_linear_student(encoder: RowEncoder, X: np.ndarray, targets: np.ndarray, X_valid: np.ndarray,
                       valid_targets: np.ndarray, task: str, loss: Callable[[np.ndarray, np.ndarray], float],
                       seconds: float) -> tuple[LeanPipeline, float, float, int] | None:
    """The linear student of the best penalty on ``(X_valid, valid_targets)`` among those tried in ``seconds`` (at
    least one): it, that penalty, its loss and how many were tried; None when the teacher never gives some class
    any probability (a linear model cannot leave it out).

    ``targets`` are the teacher's outputs (probabilities, or values as one column); ``loss(raw, valid_targets)``
    measures how far raw scores are from them.
    """
    if task != "regression" and not (targets > 0).any(axis=0).all():
        return None
    parts = _parts(encoder, X)
    features, valid_features = LeanPipeline(parts, None).transform(X), LeanPipeline(parts, None).transform(X_valid)
    deadline = time.monotonic() + seconds
    best: tuple[float, float, LeanPipeline] | None = None
    tried = 0
    for alpha in ALPHAS:
        if tried and time.monotonic() > deadline:
            break
        tried += 1
        student = LeanPipeline(parts, _fit(_model(task, alpha), features, targets, task))
        value = loss(linear_scores(student, X_valid, valid_features), valid_targets)
        if best is None or value < best[0]:
            best = (value, alpha, student)
    value, alpha, student = best
    return student, alpha, value, tried


def refit(student: LeanPipeline, alpha: float, X: np.ndarray, targets: np.ndarray, task: str) -> LeanPipeline:
    """``student``'s preprocessing with its model fitted again on ``X`` (all rows)."""
    return LeanPipeline(student.parts, _fit(_model(task, alpha), student.transform(X), targets, task))


def linear_scores(student: LeanPipeline, encoded: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
    """Raw scores (log-odds, logits or values), one column per output, for encoded rows."""
    features = student.transform(encoded) if features is None else features
    model = student.model
    scores = model.decision_function(features) if hasattr(model, "decision_function") else model.predict(features)
    return np.asarray(scores, dtype=float).reshape(len(encoded), -1)


def _model(task: str, alpha: float) -> Any:
    return Ridge(alpha=alpha) if task == "regression" else LogisticRegression(C=1.0 / alpha, max_iter=1000)


def _fit(model: Any, features: np.ndarray, targets: np.ndarray, task: str) -> Any:
    """``model`` fitted on the teacher's values, or on its probabilities as soft targets (rows repeated per class)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs may stop at max_iter on separable soft targets: still a close fit
        if task == "regression":
            return model.fit(features, targets[:, 0])
        n_rows, n_classes = targets.shape
        weights = targets.T.ravel()
        kept = weights > 0
        labels = np.repeat(np.arange(n_classes), n_rows)
        return model.fit(np.tile(features, (n_classes, 1))[kept], labels[kept], sample_weight=weights[kept])


def _parts(encoder: RowEncoder, X: np.ndarray) -> list[Part]:
    numeric = [i for i, codes in enumerate(encoder.codes) if codes is None]
    parts = []
    if numeric:
        values = X[:, numeric]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column missing on every row: its median is 0
            fill = np.nan_to_num(np.nanmedian(values, axis=0))
        filled = np.where(np.isnan(values), fill, values)
        scale = filled.std(axis=0)
        parts.append(Part("numeric", tuple(numeric), fill=fill, mean=filled.mean(axis=0),
                          scale=np.where(scale > 0, scale, 1.0)))
    categorical = encoder.categorical_indices
    if categorical:
        # rows of each table: missing, unseen, then one per level (see LeanPipeline.transform)
        tables = tuple(np.vstack([np.zeros((2, len(encoder.codes[i]))), np.eye(len(encoder.codes[i]))])
                       for i in categorical)
        parts.append(Part("onehot", tuple(categorical), tables))
    return parts
