"""The final model averages the best configuration with those as good within cross-validation noise."""

from __future__ import annotations

import time

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression

import automl
import searchspaces
from automl.budget import Budget
from automl.ensemble import choose_members
from automl.evaluation import OK, TrialResult
from automl.metrics import get_metric
from searchspaces import Categorical, Config, Learner, SearchSpace

RMSE = get_metric("rmse", "regression")
AUC = get_metric("roc_auc", "binary")


def _trial(alpha: float, folds: list[float]) -> TrialResult:
    return TrialResult(Config("linear", {"alpha": alpha}), OK, float(np.mean(folds)), list(folds))


BEST = [1.0, 1.2, 0.9, 1.1, 1.0]


def test_runners_up_within_noise_join_the_best_and_clear_losers_do_not():
    best = _trial(1.0, BEST)
    close = _trial(2.0, [1.05, 1.15, 0.95, 1.12, 1.0])  # ahead on one fold, behind on three: noise
    worse = _trial(3.0, [v + 0.2 + 0.01 * i for i, v in enumerate(BEST)])  # behind on every fold
    other_folds = _trial(4.0, [1.05, 1.05, 1.05])  # scored on other splits: not comparable
    failed = TrialResult(Config("linear", {"alpha": 5.0}), "failed", None, [], error="boom")
    members = choose_members([worse, close, failed, other_folds, best], RMSE, size=5)
    assert [m.config for m in members] == [best.config, close.config]


def test_the_size_caps_the_members_and_one_means_the_best_alone():
    best = _trial(1.0, BEST)
    twins = [_trial(2.0 + i, BEST) for i in range(6)]  # same fold scores: indistinguishable from the best
    assert len(choose_members([best, *twins], RMSE, size=3)) == 3
    assert choose_members([best, *twins], RMSE, size=1) == [best]


def test_higher_is_better_metrics_and_holdout_searches():
    best = _trial(1.0, [0.90, 0.92, 0.88])
    close = _trial(2.0, [0.91, 0.90, 0.87])
    worse = _trial(3.0, [0.80, 0.81, 0.79])
    assert [m.config for m in choose_members([worse, close, best], AUC, size=5)] == [best.config, close.config]
    holdout = [_trial(1.0, [0.9]), _trial(2.0, [0.9])]  # one split: no spread to judge noise by
    assert len(choose_members(holdout, AUC, size=5)) == 1


@pytest.fixture
def twin_learner():
    """Three configurations of one model (the tag changes nothing): the search cannot tell them apart."""
    learner = Learner(
        name="twin",
        tasks=frozenset({"classification"}),
        space=SearchSpace((Categorical("tag", ("a", "b", "c")),), name="twin"),
        build=lambda params, context: LogisticRegression(),
    )
    searchspaces.register_learner(learner, replace=True)
    yield learner
    searchspaces.unregister_learner("twin")


def _twins(tags: str) -> list[Config]:
    return [Config("twin", {"tag": tag}) for tag in tags]


def test_fit_averages_configurations_as_good_as_the_best(small_binary, twin_learner):
    X, y = small_binary
    model = automl.fit(X, y, learners=["twin", "knn"], initial_configs=_twins("abc"), n_trials=6, time_budget=None,
                       ensemble_size=3, verbose=0)
    board = model.leaderboard()
    assert len(model.members_) == 3 and model.best_config_ == model.members_[0]
    assert {c.learner for c in model.members_} == {"twin"}
    assert set(board.loc[board["in_model"], "learner"]) == {"twin"} and board["in_model"].sum() == 3
    alone = automl.fit(X, y, learners=["twin", "knn"], initial_configs=_twins("abc"), n_trials=6, time_budget=None,
                       ensemble_size=1, verbose=0)
    assert len(alone.members_) == 1
    # averaging three copies of one model changes nothing
    np.testing.assert_allclose(model.predict_proba(X), alone.predict_proba(X))
    assert "averaged with 2 more" in repr(model)


def test_bad_ensemble_sizes_are_rejected(small_binary):
    X, y = small_binary
    for size in (0, 2.5, True):
        with pytest.raises(automl.ConfigError, match="ensemble_size"):
            automl.fit(X, y, n_trials=1, time_budget=None, ensemble_size=size, verbose=0)


def test_a_model_saved_before_ensembles_still_loads(tmp_path, small_binary):
    X, y = small_binary
    model = automl.fit(X, y, learners=["linear"], n_trials=2, time_budget=None, verbose=0)
    expected = model.predict_proba(X)
    model.pipeline = model.__dict__.pop("ensemble").pipelines[0]  # what file format 1 held
    path = tmp_path / "old.pkl"
    joblib.dump({"format": "automl-model", "version": 1, "engine": "0.1.0", "sklearn": sklearn.__version__, "model": model}, path)
    loaded = automl.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X), expected)
    assert loaded.members_ == [loaded.best_config_]


def test_the_search_reserves_time_for_the_members_but_keeps_most_for_itself():
    budget = Budget(10.0)
    budget.plan_refit([0.5])
    alone = budget.reserve
    budget.plan_refit([0.5, 0.1])
    assert budget.reserve > alone  # a cheap member is allowed for
    budget.plan_refit([0.5, 5.0, 5.0])
    assert budget.reserve == pytest.approx(alone + 1.0)  # costly members take at most a tenth of the budget


def test_a_kernel_svm_gets_more_time_and_fewer_rows_for_its_final_fit_than_a_forest():
    """Kernel SVMs train in about quadratic time: scaling their fold time linearly left too little time for
    the final fit, which then timed out and fell back to a constant predictor."""
    from automl import engine
    from automl.backends.driver import RefitScale
    from automl.data import load_dataset
    from automl.evaluation import OK, Evaluator, Resampling, TrialResult
    from automl.metrics import get_metric
    from searchspaces import get_learner

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(3000, 4)), rng.integers(0, 2, 3000)
    learners = {name: get_learner(name, "classification") for name in ("svm", "random_forest")}
    evaluator = Evaluator(load_dataset(X, y), get_metric(None, "binary"), learners, Resampling("cv", 3))
    svm, forest = (TrialResult(get_learner(name, "classification").default_config(), OK, 0.9, fit_seconds=3.0)
                   for name in ("svm", "random_forest"))
    scale = RefitScale.of(evaluator)  # 2,000 rows per fold, 3,000 in all: 1.5 times the rows
    assert scale.refit_seconds(forest) == pytest.approx(1.0 * 1.5 * 1.3)
    assert scale.refit_seconds(svm) == pytest.approx(1.0 * 1.5**2 * 1.3)
    budget = Budget(10.0, started=time.monotonic() - 8.0)  # 2 s left: room for a 1.5-times fit, not a 2.25-times one
    assert engine._refit_rows(evaluator, forest, budget)[0] is None  # all rows
    rows = engine._refit_rows(evaluator, svm, budget)[0]
    assert rows is not None and 2000 < rows < 3000


def test_an_incumbent_found_too_late_to_fit_gives_way_to_the_best_that_fits_in_time():
    """A costly configuration that wins in the search's last second cannot be fitted in the time left; fitted
    on a few hundred rows (or timing out into a constant predictor) it would lose to the runner-up."""
    from automl import engine
    from automl.data import load_dataset
    from automl.evaluation import OK, Evaluator, Resampling, TrialResult
    from automl.metrics import get_metric
    from searchspaces import Config, get_learner

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(3000, 4)), rng.normal(size=3000)
    learners = {name: get_learner(name, "regression") for name in ("lightgbm", "linear")}
    evaluator = Evaluator(load_dataset(X, y), get_metric(None, "regression"), learners, Resampling("cv", 3))
    late = TrialResult(Config("lightgbm", {"n_estimators": 2000}), OK, 1.0, fit_seconds=30.0)  # 10 s a fold
    earlier = TrialResult(Config("linear", {"alpha": 1.0}), OK, 1.1, fit_seconds=0.3)
    worse = TrialResult(Config("linear", {"alpha": 10.0}), OK, 1.2, fit_seconds=0.3)
    results = [worse, earlier, late]
    budget = Budget(30.0, started=time.monotonic() - 29.0)  # a second left
    rows = engine._refit_rows(evaluator, late, budget)[0]
    assert engine._late_incumbent(results, late, rows, evaluator, budget) is earlier
    plenty = Budget(30.0, started=time.monotonic() - 5.0)
    rows = engine._refit_rows(evaluator, late, plenty)[0]
    assert engine._late_incumbent(results, late, rows, evaluator, plenty) is None  # it fits: the best stays
