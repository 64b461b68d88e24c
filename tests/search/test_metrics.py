"""Metrics: values, directions, defaults and errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from automl.errors import ConfigError
from automl.search.metrics import DEFAULT_METRIC, get_metric


def test_defaults_follow_the_benchmark_protocol():
    assert DEFAULT_METRIC == {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
    assert get_metric(None, "binary").greater_is_better
    assert not get_metric(None, "multiclass").greater_is_better
    assert get_metric(None, "regression").direction == "minimize"


def test_log_loss_clips_and_matches_scikit_learn():
    y = np.array([0, 1, 2, 1])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    metric = get_metric("log_loss", "multiclass")
    assert metric(y, proba) == pytest.approx(sk_log_loss(y, proba))
    certain_and_wrong = np.array([[1.0, 0.0, 0.0]])
    assert metric(np.array([1]), certain_and_wrong) == pytest.approx(-np.log(1e-15))


def test_roc_auc_binary_and_one_vs_rest():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    p1 = np.clip(y * 0.6 + rng.uniform(size=100) * 0.5, 0, 1)
    proba = np.column_stack([1 - p1, p1])
    assert get_metric("auc", "binary")(y, proba) == pytest.approx(roc_auc_score(y, p1))
    y3 = rng.integers(0, 3, 90)
    proba3 = rng.dirichlet(np.ones(3), 90)
    expected = np.mean([roc_auc_score(y3 == c, proba3[:, c]) for c in range(3)])
    assert get_metric("roc_auc", "multiclass")(y3, proba3) == pytest.approx(expected)
    tied = np.round(proba, 1)  # ties count half, as in scikit-learn
    assert get_metric("auc", "binary")(y, tied) == pytest.approx(roc_auc_score(y, tied[:, 1]))
    assert np.isnan(get_metric("auc", "binary")(np.zeros(5, dtype=int), proba[:5]))


def test_regression_metrics():
    y, p = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])
    assert get_metric("rmse", "regression")(y, p) == pytest.approx(np.sqrt(4 / 3))
    assert get_metric("mae", "regression")(y, p) == pytest.approx(2 / 3)
    assert get_metric("neg_root_mean_squared_error", "regression").name == "rmse"


def test_metric_errors_say_what_to_use():
    with pytest.raises(ConfigError, match="Did you mean 'roc_auc'"):
        get_metric("roc_aux", "binary")
    with pytest.raises(ConfigError, match="is for classification"):
        get_metric("accuracy", "regression")
    with pytest.raises(ConfigError, match="binary target"):
        get_metric("f1", "multiclass")


def test_is_better_and_best_respect_direction():
    auc, rmse = get_metric("roc_auc", "binary"), get_metric("rmse", "regression")
    assert auc.is_better(0.9, 0.8) and rmse.is_better(0.8, 0.9)
    assert auc.best([0.5, np.nan, 0.7]) == 0.7 and rmse.best([0.5, 0.7]) == 0.5
