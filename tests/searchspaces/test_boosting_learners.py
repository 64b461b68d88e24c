"""XGBoost and CatBoost as learners: categorical and missing values, folds that lack a class, and the search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import automl
from automl.data.dataset import load_dataset
from automl.search.evaluation import Evaluator, Resampling
from automl.search.metrics import get_metric
from searchspaces import get_learner, learner_names

pytest.importorskip("xgboost")
pytest.importorskip("catboost")

BOOSTERS = ["xgboost", "catboost"]


@pytest.fixture
def mixed_multiclass() -> tuple[pd.DataFrame, np.ndarray]:
    """Three classes, one of them with only four rows (a fold of five can lack it), a categorical column and gaps."""
    rng = np.random.default_rng(3)
    n = 150
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "shade": rng.choice(["dark", "light", "mid"], n)})
    y = np.where(X["a"] > 0, 1, 0)
    y[:4] = 2
    X.loc[::9, "b"] = np.nan
    return X, y


@pytest.mark.parametrize("name", BOOSTERS)
def test_default_and_cheap_corner_score_well_on_mixed_data_with_a_rare_class(name, mixed_multiclass):
    X, y = mixed_multiclass
    dataset = load_dataset(X, y)
    learner = get_learner(name, "classification")
    evaluator = Evaluator(dataset, get_metric(None, dataset.task), {name: learner}, Resampling("cv", n_folds=5))
    for config in (learner.default_config(), learner.low_cost_config()):
        result = evaluator.evaluate(config)
        assert result.ok, result.error
        assert result.value < 0.6  # log loss far below the 1.0 of guessing the priors
        assert result.predictions.shape == (len(y), 3)


@pytest.mark.parametrize("name", BOOSTERS)
def test_a_search_of_one_booster_returns_a_model_that_predicts_new_categories(name, mixed_multiclass):
    X, y = mixed_multiclass
    model = automl.fit(X, y, learners=[name], n_trials=3, time_budget=None, warm_start=False, verbose=0)
    new = X.head(3).assign(shade=["unseen", "dark", None])
    proba = model.predict_proba(new)
    assert proba.shape == (3, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert {m.config.learner for m in model.members_} == {name}


def test_both_are_registered_for_both_kinds():
    for kind in ("classification", "regression"):
        assert set(BOOSTERS) <= set(learner_names(kind))


def test_regression_with_categorical_columns(small_regression):
    X, y = small_regression
    X = X.assign(group=np.where(X["a"] > 0, "up", "down"))
    for name in BOOSTERS:
        model = automl.fit(X, y, learners=[name], n_trials=2, time_budget=None, warm_start=False, verbose=0)
        assert model.score(X, y) < np.std(y) / 2


def test_the_boosters_join_a_search_that_names_no_learners_from_ten_seconds(mixed_multiclass):
    X, y = mixed_multiclass
    short = automl.fit(X, y, time_budget=3, warm_start=False, verbose=0)
    longer = automl.fit(X, y, time_budget=10, n_trials=12, warm_start=False, verbose=0)
    assert not set(short.leaderboard()["learner"]) & set(BOOSTERS)
    assert set(BOOSTERS) <= set(longer.leaderboard()["learner"])  # every learner's cheap corner runs first
