"""The final model: ensemble selection on out-of-fold predictions, or the best averaged with those as good within
noise."""

from __future__ import annotations

import time

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression

import automl
import searchspaces
from automl.search.budget import Budget
from automl.search.ensemble import Allowance, Ensemble, Member, choose_members, select_ensemble
from automl.search.evaluation import OK, TrialResult
from automl.search.metrics import get_metric
from searchspaces import Categorical, Config, Learner, SearchSpace

RMSE = get_metric("rmse", "regression")
AUC = get_metric("roc_auc", "binary")
LOG_LOSS = get_metric("log_loss", "binary")


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


def _predicted(name: str, predictions: np.ndarray, y: np.ndarray, metric=RMSE) -> TrialResult:
    predictions = np.asarray(predictions, dtype=float).reshape(len(y), -1)
    value = metric(y, predictions[:, 0] if metric.kind == "regression" else predictions)
    return TrialResult(Config(name, {}), OK, value, [value], fit_seconds=1.0, predictions=predictions)


def test_selection_mixes_trials_whose_errors_cancel_and_leaves_out_the_rest():
    y = np.zeros(100)
    error = np.where(np.arange(100) % 2 == 0, 1.0, -1.0)
    high = _predicted("high", y + error, y)  # the two are wrong on every row, in opposite directions:
    low = _predicted("low", y - error, y)  # their average is right
    poor = _predicted("poor", np.full(100, 2.0), y)
    chosen = select_ensemble([poor, high, low], y, RMSE, max_members=5)
    weights = {result.config.learner: weight for result, weight in chosen}
    assert set(weights) == {"high", "low"} and sum(weights.values()) == pytest.approx(1.0)
    assert weights["high"] == pytest.approx(0.5, abs=0.05)  # the mix that cancels the errors


def test_selection_never_ends_worse_than_the_best_trial_alone():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    best = _predicted("best", y + rng.normal(scale=0.1, size=200), y)
    copies = [_predicted(f"copy{i}", best.predictions, y) for i in range(3)]
    far = _predicted("far", y + rng.normal(scale=3.0, size=200), y)
    chosen = select_ensemble([far, *copies, best], y, RMSE, max_members=5)
    assert len(chosen) == 1 and chosen[0][1] == 1.0  # copies add nothing; the noisy one only hurts


def test_selection_respects_the_member_cap_the_time_allowance_and_missing_predictions():
    y = np.zeros(60)
    offsets = [0.5, -0.5, 0.4, -0.4]
    trials = [_predicted(f"m{i}", np.full(60, offset), y) for i, offset in enumerate(offsets)]
    assert len(select_ensemble(trials, y, RMSE, max_members=1)) == 1
    pricey = {"m0": 1.0, "m1": 5.0, "m2": 1.0, "m3": 1.0}
    chosen = select_ensemble(trials, y, RMSE, max_members=5,
                             allowances=[Allowance(lambda r: pricey[r.config.learner], 2.5)])
    assert "m1" not in {r.config.learner for r, _ in chosen} and len(chosen) == 2
    stripped = [TrialResult(t.config, OK, t.value, t.fold_values) for t in trials]
    assert select_ensemble(stripped, y, RMSE, max_members=5) == []


def test_selection_optimises_the_task_metric_for_probabilities():
    y = np.array([0, 1] * 50)
    confident = _predicted("confident", np.where(y[:, None] == np.arange(2), 0.9, 0.1), y, LOG_LOSS)
    timid = _predicted("timid", np.full((100, 2), 0.5), y, LOG_LOSS)
    chosen = select_ensemble([timid, confident], y, LOG_LOSS, max_members=5)
    assert chosen[0][0] is confident


def test_the_ensemble_predicts_the_weighted_average():
    pipelines = [_Constant(1.0), _Constant(4.0)]
    ensemble = Ensemble(pipelines, [Config("a", {}), Config("b", {})], [3.0, 1.0])
    np.testing.assert_allclose(ensemble.predict(np.zeros((2, 1))), [1.75, 1.75])
    assert ensemble.members == [Member(Config("a", {}), 0.75), Member(Config("b", {}), 0.25)]
    with pytest.raises(ValueError, match="weight"):
        Ensemble(pipelines, [Config("a", {}), Config("b", {})], [1.0])


class _Constant:
    def __init__(self, value: float):
        self.value = value

    def predict(self, X):
        return np.full(len(X), self.value)


def test_fit_weights_its_members_and_shows_the_weights(small_binary):
    X, y = small_binary
    model = automl.fit(X, y, learners=["linear", "knn", "random_forest"], n_trials=12, time_budget=None, verbose=0)
    board = model.leaderboard()
    weights = [member.weight for member in model.members_]
    assert sum(weights) == pytest.approx(1.0) and weights == sorted(weights, reverse=True)
    assert board.loc[board["in_model"], "weight"].gt(0).all() and board.loc[~board["in_model"], "weight"].eq(0).all()
    shown = board.loc[board["in_model"]].drop_duplicates("trial")
    assert {Config(r.learner, r.params).key() for r in shown.itertuples()} == {m.config.key() for m in model.members_}
    alone = automl.fit(X, y, learners=["linear", "knn", "random_forest"], n_trials=12, time_budget=None,
                       ensemble_size=1, verbose=0)
    assert [m.weight for m in alone.members_] == [1.0] and alone.members_[0].config == alone.best_config_


def test_resumed_trials_without_predictions_average_the_best_with_its_equals(small_binary, twin_learner):
    X, y = small_binary
    configs = _twins("abc")
    model = automl.fit(X, y, learners=["twin"], initial_configs=configs, n_trials=3, time_budget=None, ensemble_size=3,
                       verbose=0)
    for result in model.results:
        result.predictions = None
    from automl.search.final_model import _members

    members = _members(model.results, model.best, _evaluator_of(X, y), Budget(None), 3)
    assert len(members) == 3 and all(weight == pytest.approx(1 / 3) for _, weight in members)


def _evaluator_of(X, y):
    from automl.data.dataset import load_dataset
    from automl.engine import _make_evaluator
    from automl.options import FitOptions
    from automl.search.metrics import get_metric as metric_of

    dataset = load_dataset(X, y)
    return _make_evaluator(dataset, metric_of(None, dataset.task),
                           FitOptions(learners=["twin"], time_budget=None, n_trials=1))


def test_bad_ensemble_sizes_are_rejected(small_binary):
    X, y = small_binary
    for size in (0, 2.5, True):
        with pytest.raises(automl.ConfigError, match="ensemble_size"):
            automl.fit(X, y, n_trials=1, time_budget=None, ensemble_size=size, verbose=0)


def test_a_model_saved_before_ensembles_still_loads(tmp_path, small_binary):
    X, y = small_binary
    model = automl.fit(X, y, learners=["linear"], n_trials=2, time_budget=None, ensemble_size=1, verbose=0,
                       final_fit="refit")
    expected = model.predict_proba(X)
    model.pipeline = model.__dict__.pop("ensemble").pipelines[0]  # what file format 1 held
    path = tmp_path / "old.pkl"
    joblib.dump({"format": "automl-model", "version": 1, "engine": "0.1.0", "sklearn": sklearn.__version__,
                 "model": model}, path)
    loaded = automl.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X), expected)
    assert loaded.members_ == [Member(loaded.best_config_, 1.0)]


def test_a_model_saved_before_weighted_ensembles_averages_its_members_equally(tmp_path, small_binary):
    X, y = small_binary
    model = automl.fit(X, y, learners=["linear", "knn"], n_trials=4, time_budget=None, verbose=0)
    pipelines = model.ensemble.pipelines[:2] * (2 if len(model.ensemble) == 1 else 1)
    model.ensemble = Ensemble(pipelines, [Config("x", {}), Config("y", {})])
    del model.ensemble.weights  # what file format 2 held
    path = tmp_path / "v2.pkl"
    joblib.dump({"format": "automl-model", "version": 2, "engine": "0.1.0", "sklearn": sklearn.__version__,
                 "model": model}, path)
    loaded = automl.load(path)
    assert [m.weight for m in loaded.members_] == [0.5, 0.5]
    expected = np.mean([pipeline.predict_proba(model.schema.prepare(X)) for pipeline in pipelines], axis=0)
    np.testing.assert_allclose(loaded.predict_proba(X), expected, atol=1e-12)


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
    from automl.data.dataset import load_dataset
    from automl.search import final_model
    from automl.search.evaluation import OK, Evaluator, Resampling, TrialResult
    from automl.search.metrics import get_metric
    from automl.search.refit import RefitScale
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
    assert final_model._refit_rows(evaluator, forest, budget)[0] is None  # all rows
    rows = final_model._refit_rows(evaluator, svm, budget)[0]
    assert rows is not None and 2000 < rows < 3000


def test_an_incumbent_found_too_late_to_fit_gives_way_to_the_best_that_fits_in_time():
    """A costly configuration that wins in the search's last second cannot be fitted in the time left; fitted
    on a few hundred rows (or timing out into a constant predictor) it would lose to the runner-up."""
    from automl.data.dataset import load_dataset
    from automl.search import final_model
    from automl.search.evaluation import OK, Evaluator, Resampling, TrialResult
    from automl.search.metrics import get_metric
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
    rows = final_model._refit_rows(evaluator, late, budget)[0]
    assert final_model._late_incumbent(results, late, rows, evaluator, budget) is earlier
    plenty = Budget(30.0, started=time.monotonic() - 5.0)
    rows = final_model._refit_rows(evaluator, late, plenty)[0]
    assert final_model._late_incumbent(results, late, rows, evaluator, plenty) is None  # it fits: the best stays


def test_log_loss_models_mix_in_the_class_prior_as_much_as_their_out_of_fold_mistakes_ask():
    from automl.search.ensemble import PRIOR_MIXES, prior_mix

    metric = get_metric("log_loss", "multiclass")
    y = np.array([0, 1, 2] * 20)
    prior = np.full(3, 1 / 3)
    sure = np.eye(3)[y] * 0.98 + 0.01  # right, and confident
    careful = _predicted("careful", sure, y, metric)
    assert prior_mix([(careful, 1.0)], y, metric, prior) == PRIOR_MIXES[0]  # never none
    reckless = sure.copy()
    reckless[:6] = np.eye(3)[(y[:6] + 1) % 3] * (1 - 2e-9) + 1e-9  # six confident mistakes
    chosen = [(_predicted("reckless", reckless, y, metric), 1.0)]
    share = prior_mix(chosen, y, metric, prior)
    assert share > PRIOR_MIXES[0]
    assert metric(y, (1 - share) * reckless + share * prior) < metric(y, reckless) / 4
    assert prior_mix(chosen, y, get_metric("accuracy", "multiclass"), prior) == 0.0  # rankings and labels need none


def test_the_ensemble_mixes_the_prior_into_its_probabilities(small_binary):
    X, y = small_binary
    model = automl.fit(X, y, learners=["knn"], n_trials=1, time_budget=None, metric="log_loss", verbose=0)
    ensemble = model.ensemble
    assert ensemble.prior_share > 0 and np.allclose(ensemble.prior, np.bincount(y) / len(y))
    share = ensemble.prior_share
    ensemble.mix_prior(ensemble.prior, 0.0)
    raw = model.predict_proba(X)
    ensemble.mix_prior(ensemble.prior, share)
    np.testing.assert_allclose(model.predict_proba(X), (1 - share) * raw + share * ensemble.prior)
