"""Bagged final models (the search's fold models, no refit) and the stacking layer over the members."""

from __future__ import annotations

import numpy as np
import pytest

import automl
from automl.errors import ExportError
from automl.search.ensemble import Ensemble
from automl.search.evaluation import OK, TrialResult
from automl.search.metrics import get_metric
from automl.search.stacking import fit_stacker
from searchspaces import Config


def test_a_bagged_model_averages_the_searchs_fold_models_and_says_so(small_binary, tmp_path):
    X, y = small_binary
    model = automl.fit(X, y, time_budget=4, final_fit="bag", verbose=0)
    members = model.members_
    assert members and all(m.fit == "bagged" for m in members)
    assert all(m.models == 5 for m in members)  # 240 rows: 5-fold cross-validation, one model per fold
    assert len(model.ensemble.pipelines) == sum(m.models for m in members)
    board = model.leaderboard()
    assert set(board.loc[board["in_model"], "final_fit"]) <= {"bagged", "bagged+stacked"}
    assert set(board.loc[~board["in_model"], "final_fit"]) == {""}
    assert model.summary.refit_note == ""
    model.save(tmp_path / "bagged.pkl")
    loaded = automl.load(tmp_path / "bagged.pkl")
    np.testing.assert_allclose(loaded.predict_proba(X.iloc[:20]), model.predict_proba(X.iloc[:20]))
    assert all(r.fold_models is None for r in loaded.results)  # a model file keeps no fold models of its trials


def test_refit_and_auto_on_large_data_refit_on_all_rows(small_binary):
    X, y = small_binary
    model = automl.fit(X, y, time_budget=3, final_fit="refit", verbose=0)
    assert all(m.fit == "refit" and m.models == 1 for m in model.members_)
    assert all(r.fold_models is None for r in model.results)  # nothing was sent back for a bag
    with pytest.raises(automl.ConfigError, match="final_fit must be one of"):
        automl.fit(X, y, time_budget=3, final_fit="bagging", verbose=0)


def trial(name: str, predictions: np.ndarray, value: float) -> TrialResult:
    return TrialResult(Config("linear", {"name": name}), OK, value, predictions=predictions[:, None])


def test_the_stacking_layer_is_kept_only_where_it_beats_the_weighted_average():
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    rmse = get_metric("rmse", "regression")
    # one member twice too large, one pure noise: no weighting of the two fixes the scale, a linear layer does
    scaled, noise = trial("scaled", 2 * y, 1.0), trial("noise", rng.normal(size=400), 1.5)
    stacker = fit_stacker([(scaled, 0.9), (noise, 0.1)], y, rmse)
    assert stacker is not None
    assert rmse(y, stacker.predict([2 * y, noise.predictions[:, 0]])) < 0.05
    # two members with errors of their own around the truth: their average is what a layer would learn
    first, second = (trial(str(i), y + rng.normal(scale=0.1, size=400), 0.1) for i in range(2))
    assert fit_stacker([(first, 0.5), (second, 0.5)], y, rmse) is None


def test_a_stacked_ensemble_combines_each_configurations_fold_models_then_stacks_and_cannot_be_exported(
        small_regression):
    X, y = small_regression
    model = automl.fit(X, y, time_budget=3, final_fit="bag", verbose=0)
    ensemble = model.ensemble
    keys = list(dict.fromkeys(config.key() for config in ensemble.configs))

    class Halving:  # a stand-in stacker: half the first configuration's prediction
        members = keys[:1]

        @staticmethod
        def predict(per_member):
            return per_member[0] / 2

    ensemble.stack(Halving())
    first = [i for i, config in enumerate(ensemble.configs) if config.key() == keys[0]]
    predictions = [np.full(3, float(i)) for i in range(len(ensemble.pipelines))]
    expected = np.average([predictions[i] for i in first], axis=0, weights=ensemble.shares[first]) / 2
    np.testing.assert_allclose(ensemble.combine(predictions), expected)
    assert all(m.stacked for m in model.members_)
    shown = set(model.leaderboard().query("in_model")["final_fit"])
    assert "bagged+stacked" in shown and shown <= {"bagged+stacked", "refit+stacked"}
    with pytest.raises(ExportError, match="final_fit='refit'"):
        model.export("model.onnx")
    assert isinstance(Ensemble([object()], [Config("linear", {})]).stacked, bool)


def test_only_the_leading_trials_keep_their_fold_models(small_binary):
    from automl.search.backends.driver import BAGGED_LEADERS

    X, y = small_binary
    model = automl.fit(X, y, n_trials=30, time_budget=None, final_fit="bag", verbose=0)
    kept = [r for r in model.results if r.fold_models is not None]
    learners = {r.config.learner for r in model.results}
    assert len(model.results) > BAGGED_LEADERS + len(learners)  # enough trials for the bound to matter
    assert 0 < len(kept) <= BAGGED_LEADERS + len(learners)
    loss = get_metric(model.metric, "binary").loss
    best_without = min((loss(r.value) for r in model.results if r.ok and r.fold_models is None), default=np.inf)
    assert sorted(loss(r.value) for r in kept)[0] <= best_without  # the best trial is among those that kept them
