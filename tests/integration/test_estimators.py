"""The scikit-learn estimators: the estimator contract, and use inside scikit-learn tools."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from automl import AutoMLClassifier, AutoMLRegressor

# repeated fits must agree: no learning in between
FAST = dict(time_budget=None, n_trials=2, learners=["linear", "knn"], remember=False)


@parametrize_with_checks([AutoMLClassifier(**FAST), AutoMLRegressor(**FAST)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_parameters_round_trip_and_clone():
    estimator = AutoMLClassifier(time_budget=12, metric="accuracy", learners=["hgb"])
    assert estimator.get_params()["time_budget"] == 12
    estimator.set_params(time_budget=5)
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and not hasattr(copy, "model_")


def test_works_inside_cross_val_score_and_pipelines(small_binary):
    X, y = small_binary
    X = X.drop(columns="colour").fillna(0).to_numpy()
    scores = cross_val_score(AutoMLClassifier(**FAST), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.7
    pipeline = make_pipeline(FunctionTransformer(np.abs), AutoMLClassifier(**FAST)).fit(X, y)
    assert pipeline.predict(X).shape == (len(y),)
    assert pipeline.predict_proba(X).shape == (len(y), 2)


def test_fitted_attributes_and_leaderboard(small_regression):
    X, y = small_regression
    model = AutoMLRegressor(**FAST).fit(X, y)
    assert model.n_features_in_ == 2 and list(model.feature_names_in_) == ["a", "b"]
    assert model.best_config_.learner in {"linear", "knn"}
    assert len(model.leaderboard()) == 2
    assert model.score(X, y) > 0.5  # R², scikit-learn's meaning of score for regressors


def test_predict_before_fit_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        AutoMLClassifier().predict(np.ones((2, 2)))
