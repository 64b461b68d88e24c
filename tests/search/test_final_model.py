"""The final model when the search found nothing: the configuration the search meant to run first, fitted on a sample
with a warning, rather than no model."""

from __future__ import annotations

import time

import pytest

from automl.data.dataset import load_dataset
from automl.errors import SearchFailed
from automl.search.budget import Budget
from automl.search.evaluation import FAILED, UNVALIDATED, Evaluator, Resampling, TrialResult
from automl.search.final_model import fit_final_model
from automl.search.metrics import get_metric
from searchspaces import Config, get_learner


@pytest.fixture
def evaluator(small_binary) -> Evaluator:
    X, y = small_binary
    learners = {name: get_learner(name, "classification") for name in ("linear", "random_forest")}
    return Evaluator(load_dataset(X, y), get_metric(None, "binary"), learners, Resampling("cv", 3))


def test_when_no_trial_could_start_the_head_of_the_warm_start_is_fitted_on_a_sample(evaluator):
    head = Config("random_forest", {**get_learner("random_forest", "classification").default_config().params,
                                     "n_estimators": 20})
    spent = Budget(4.0, started=time.monotonic() - 4.0)  # preparing took the whole budget: no trial ran
    with pytest.warns(RuntimeWarning, match="no trial finished within the time budget"):
        final = fit_final_model(evaluator, [], spent, None, ensemble_size=3, first=head)
    assert final.best.config == head and final.best.status == UNVALIDATED
    assert "unvalidated" in final.note and final.ensemble.predict_proba(evaluator.dataset.X.iloc[:5], 2).shape == (5, 2)


def test_trials_that_failed_for_their_own_reasons_still_raise(evaluator):
    failed = [TrialResult(Config("linear", {"C": 1.0, "class_weight": None}), FAILED, None, error="bad data")]
    with pytest.raises(SearchFailed, match="bad data"):
        fit_final_model(evaluator, failed, Budget(4.0), None, ensemble_size=3)
