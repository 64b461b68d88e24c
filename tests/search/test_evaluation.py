"""The evaluator: resampling, leakage-free preprocessing, failures, staged reporting."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.dummy import DummyClassifier

import searchspaces
from automl.data.dataset import load_dataset
from automl.search.evaluation import Evaluator, Resampling, choose_resampling
from automl.search.metrics import get_metric
from searchspaces import Config, Learner, Preprocessing, SearchSpace

THREE_FOLDS = Resampling("cv", 3)


def evaluator_for(X, y, names, resampling=THREE_FOLDS, **kwargs) -> Evaluator:
    dataset = load_dataset(X, y)
    learners = {name: searchspaces.get_learner(name, dataset.kind) for name in names}
    return Evaluator(dataset, get_metric(None, dataset.task), learners, resampling, **kwargs)


def test_resampling_choice_depends_on_size():
    assert choose_resampling(500) == Resampling("cv", 5)
    assert choose_resampling(8_000) == Resampling("cv", 3)
    assert choose_resampling(50_000).kind == "holdout"
    assert choose_resampling(50_000, n_folds=4) == Resampling("cv", 4)
    with pytest.raises(ValueError):
        choose_resampling(100, "bootstrap")


def test_a_small_budget_on_large_data_holds_out_on_its_sample_instead_of_cross_validating():
    from automl import engine
    from automl.options import FitOptions

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30_000, 3)), rng.normal(size=30_000)
    dataset, metric = load_dataset(X, y), get_metric(None, "regression")
    evaluators = {budget: engine._make_evaluator(dataset, metric, FitOptions(learners=["linear"], time_budget=budget))
                  for budget in (10, 60)}
    # 10 s searches a 20,000-row sample, 60 s all 30,000 rows; both hold out, so each trial fits once
    assert [len(e.rows) for e in evaluators.values()] == [20_000, 30_000]
    assert all(len(e.splits) == 1 and e.resampling.kind == "holdout" for e in evaluators.values())
    assert evaluators[10].n_train_rows == 16_000


def test_stratified_folds_keep_rare_classes_in_training():
    y = np.array([0] * 50 + [1] * 50 + [2] * 2)
    splits = Resampling("cv", 5).splits(y, classification=True, seed=0)
    assert len(splits) == 2  # at most as many folds as the rarest class has members
    for train, _ in splits:
        assert set(y[train]) == {0, 1, 2}


def test_defaults_score_sensibly(small_binary):
    X, y = small_binary
    evaluator = evaluator_for(X, y, ["linear", "hgb"])
    for name in ("linear", "hgb"):
        result = evaluator.evaluate(evaluator.learners[name].default_config())
        assert result.ok and len(result.fold_values) == 3
        assert 0.8 < result.value <= 1.0


class _Spy(BaseEstimator, ClassifierMixin):
    """Records the feature means it was fitted on."""

    seen: list = []

    def fit(self, X, y):
        _Spy.seen.append(np.asarray(X).mean(axis=0))
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def test_preprocessing_is_fitted_inside_each_fold(small_binary):
    X, y = small_binary
    spy = Learner(
        "spy", frozenset({"classification"}), SearchSpace(()), lambda p, c: _Spy(),
        Preprocessing(categorical="onehot", scale=True),
    )
    dataset = load_dataset(X, y)
    evaluator = Evaluator(dataset, get_metric(None, "binary"), {"spy": spy}, Resampling("cv", 3))
    _Spy.seen = []
    evaluator.evaluate(Config("spy", {}))
    assert len(_Spy.seen) == 3
    for means in _Spy.seen:  # scaled on the fold's own training rows: exactly zero mean there
        assert np.allclose(means[-2:], 0.0, atol=1e-9)


def test_a_raising_learner_becomes_a_failed_result(small_binary):
    X, y = small_binary

    class Broken(DummyClassifier):
        def fit(self, X, y):
            raise RuntimeError("cannot fit")

    broken = Learner("broken", frozenset({"classification"}), SearchSpace(()), lambda p, c: Broken())
    evaluator = Evaluator(load_dataset(X, y), get_metric(None, "binary"), {"broken": broken}, Resampling("cv", 3))
    result = evaluator.evaluate(Config("broken", {}))
    assert result.status == "failed" and "RuntimeError: cannot fit" in result.error


def test_invalid_configurations_are_rejected_not_fitted(small_binary):
    X, y = small_binary
    evaluator = evaluator_for(X, y, ["linear"])
    result = evaluator.evaluate(Config("linear", {"C": -1.0, "class_weight": None}))
    assert result.status == "failed" and "outside its domain" in result.error


def test_iterative_learners_report_each_stage_then_each_fold(small_binary):
    X, y = small_binary
    evaluator = evaluator_for(X, y, ["hgb", "linear"])
    reports = []
    result = evaluator.evaluate(evaluator.learners["hgb"].default_config(), lambda s, v: reports.append(s) or False)
    assert result.ok and reports == [1, 2, 3, 4, 5]  # 3 boosting stages on fold 1, then folds 2 and 3
    reports.clear()
    evaluator.evaluate(evaluator.learners["linear"].default_config(), lambda s, v: reports.append(s) or False)
    assert reports == [1, 2, 3]


def test_a_pruner_can_stop_a_trial_early(small_binary):
    X, y = small_binary
    evaluator = evaluator_for(X, y, ["hgb"])
    result = evaluator.evaluate(evaluator.learners["hgb"].default_config(), lambda step, value: step >= 2)
    assert result.status == "pruned"


def test_large_data_is_searched_on_a_stratified_sample():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 3))
    y = (rng.uniform(size=3000) < 0.1).astype(int)
    evaluator = evaluator_for(X, y, ["linear"], Resampling("holdout"), max_rows=1000)
    assert len(evaluator.rows) == 1000
    assert abs(evaluator.y[evaluator.rows].mean() - y.mean()) < 0.01
    model = evaluator.fit_final(evaluator.learners["linear"].default_config())
    assert model.predict(load_dataset(X, y).X).shape == (3000,)


def test_a_final_fit_on_nearly_all_rows_of_many_classes_gives_a_real_model():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(18), 6)  # 108 rows: leaving 5 out cannot keep one of each of 18 classes aside
    X = rng.normal(scale=0.1, size=(len(y), 3)) + y[:, None]
    evaluator = evaluator_for(X, y, ["linear"])
    model = evaluator.fit_final(evaluator.learners["linear"].default_config(), max_rows=len(y) - 5)
    assert (model.predict(evaluator.dataset.X) == y).mean() > 0.5
