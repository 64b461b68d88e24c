"""``automl.fit`` end to end, on corpus datasets and on misbehaving learners."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

import automl
import searchspaces
from automl.errors import ConfigError, SearchFailed
from tests.conftest import ROOT, pmlb_path
from tests.misbehaving import fails_on_all_rows_learner, misbehaving_learner, slow_on_many_rows_learner


@pytest.mark.parametrize(
    "name, task, metric",
    [("prnn_crabs", "binary", "roc_auc"), ("iris", "multiclass", "log_loss"), ("1027_ESL", "regression", "rmse")],
)
def test_fit_on_corpus_datasets(name, task, metric):
    data = pd.read_csv(pmlb_path(name), sep="\t").sample(frac=1.0, random_state=0)
    train, test = data.iloc[: int(len(data) * 0.75)], data.iloc[int(len(data) * 0.75):]
    kind = "regression" if task == "regression" else "classification"  # a bare DataFrame has no yaml to say so
    model = automl.fit(train, target="target", task=kind, time_budget=4, verbose=0)  # overruns: benchmarks/peers.py
    assert model.task.task == task and model.metric == metric
    board = model.leaderboard()
    assert len(board) >= 2 and board.loc[0, "rank"] == 1 and board.loc[0, "status"] == "ok"
    assert model.best_score_ == pytest.approx(board.loc[0, "score"])
    predictions = model.predict(test.drop(columns="target"))
    assert len(predictions) == len(test)
    if task != "regression":
        proba = model.predict_proba(test.drop(columns="target"))
        assert proba.shape == (len(test), len(model.classes_)) and np.allclose(proba.sum(axis=1), 1)
        assert set(predictions) <= set(model.classes_)
    assert np.isfinite(model.score(test.drop(columns="target"), test["target"]))


def test_beats_the_constant_predictor_on_held_out_data(small_regression):
    X, y = small_regression
    model = automl.fit(X[:150], y[:150], time_budget=4, verbose=0)
    assert model.score(X[150:], y[150:]) < 0.5 * np.std(y[150:])


def test_save_and_load_give_identical_predictions(tmp_path, small_binary):
    X, y = small_binary
    model = automl.fit(X, y, n_trials=4, time_budget=None, verbose=0)
    path = model.save(tmp_path / "model.pkl")
    loaded = automl.load(path)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.leaderboard().equals(model.leaderboard())


def test_load_refuses_files_that_are_not_models(tmp_path):
    bogus = tmp_path / "notes.pkl"
    bogus.write_text("hello")
    with pytest.raises(automl.ModelFileError, match="not a model saved by automl"):
        automl.load(bogus)
    with pytest.raises(automl.ModelFileError, match="no such model file"):
        automl.load(tmp_path / "missing.pkl")


def test_n_trials_and_initial_configs(small_binary):
    X, y = small_binary
    first = searchspaces.Config("linear", {"C": 0.01, "class_weight": "balanced"})
    model = automl.fit(X, y, learners=["linear", "knn"], n_trials=5, time_budget=None, initial_configs=[first],
                       verbose=0)
    board = model.leaderboard().sort_values("trial")
    assert len(board) == 5
    assert list(board["origin"][:3]) == ["default", "default", "user"]
    assert board["params"].iloc[2] == {"C": 0.01, "class_weight": "balanced"}


def test_misbehaving_trials_do_not_stop_the_search(small_binary):
    X, y = small_binary
    searchspaces.register_learner(misbehaving_learner(("ok", "sleep", "crash", "raise")), replace=True)
    try:
        bad = [searchspaces.Config("misbehaving", {"mode": m}) for m in ("sleep", "raise", "crash")]
        model = automl.fit(
            X, y, learners=["misbehaving", "linear"], initial_configs=bad, n_trials=8, time_budget=30,
            trial_time_limit=1.0, verbose=0,
        )
    finally:
        searchspaces.unregister_learner("misbehaving")
    statuses = set(model.leaderboard()["status"])
    assert {"timeout", "failed", "crashed", "ok"} <= statuses
    assert model.best_config_.learner == "linear"


def test_a_search_where_nothing_works_fails_clearly(small_binary):
    X, y = small_binary
    searchspaces.register_learner(misbehaving_learner(("raise",)), replace=True)
    try:
        with pytest.raises(SearchFailed, match="no trial succeeded"):
            automl.fit(X, y, learners=["misbehaving"], n_trials=2, time_budget=None, verbose=0)
    finally:
        searchspaces.unregister_learner("misbehaving")


def test_when_every_trial_runs_out_of_time_a_stand_in_fitted_on_a_sample_is_returned():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=2400)})
    y = (X["a"] > 0).astype(int).to_numpy()
    searchspaces.register_learner(slow_on_many_rows_learner(rows=1000), replace=True)
    try:
        model = automl.fit(X, y, learners=["slow_on_many_rows"], time_budget=4, warm_start=False, verbose=0)
    finally:
        searchspaces.unregister_learner("slow_on_many_rows")
    assert set(model.leaderboard()["status"]) == {"timeout"}
    assert model.best_score_ is None and "no trial finished within the budget" in model.summary.refit_note
    assert model.predict_proba(X.head(3)).shape == (3, 2)


def test_a_user_registered_learner_is_searched(small_regression):
    from sklearn.linear_model import Lasso

    # declared without a default: the search starts in the (geometric) middle of the range
    @searchspaces.register_learner("test_user_lasso", tasks="regression", scale=True,
                                   params=[searchspaces.Float("alpha", 1e-4, 1.0, log=True)])
    def build(params, context):
        return Lasso(alpha=params["alpha"])

    try:
        X, y = small_regression
        model = automl.fit(X, y, learners=["test_user_lasso", "linear"], n_trials=6, time_budget=None, verbose=0)
    finally:
        searchspaces.unregister_learner("test_user_lasso")
    board = model.leaderboard()
    lasso = board[board["learner"] == "test_user_lasso"].sort_values("trial")
    assert len(lasso) >= 2 and lasso["params"].iloc[0]["alpha"] == pytest.approx(0.01)


@pytest.mark.parametrize("budget", [0, -5, "ten"])
def test_bad_budgets_are_rejected(small_binary, budget):
    X, y = small_binary
    with pytest.raises(ConfigError, match="time_budget"):
        automl.fit(X, y, time_budget=budget, verbose=0)


def test_resuming_from_storage_keeps_finished_trials(tmp_path, small_binary):
    X, y = small_binary
    db = tmp_path / "study.db"
    first = automl.fit(X, y, storage=db, n_trials=4, time_budget=None, verbose=0, learners=["linear", "knn"])
    second = automl.fit(X, y, storage=db, n_trials=3, time_budget=None, verbose=0, learners=["linear", "knn"])
    before = first.leaderboard().set_index("trial")
    after = second.leaderboard().set_index("trial")
    assert len(after) == 7
    assert after.loc[before.index, "score"].equals(before["score"])


def test_storage_refuses_a_study_of_other_data(tmp_path, small_binary):
    X, y = small_binary
    db = tmp_path / "study.db"
    automl.fit(X, y, storage=db, study_name="mine", n_trials=1, time_budget=None, verbose=0, learners=["linear"])
    with pytest.raises(ConfigError, match="different dataset"):
        automl.fit(X[:100], y[:100], storage=db, study_name="mine", n_trials=1, time_budget=None, verbose=0,
                   learners=["linear"])


SCRIPT = """
import sys, automl
from tests.conftest import pmlb_path
model = automl.fit(str(pmlb_path("prnn_crabs")), storage=sys.argv[1], time_budget=120, verbose=0,
                   learners=["linear", "knn"], trial_time_limit=30)
print("TRIALS", len(model.leaderboard()), "INTERRUPTED", model.summary.interrupted, flush=True)
"""


def _finished_trials(db) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _start_search(db):
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(db)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def _wait_for_trials(process, db, count, timeout=60):
    deadline = time.monotonic() + timeout
    while _finished_trials(db) < count:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the search made no progress"
        time.sleep(0.2)


@pytest.mark.parametrize("how", ["killed", "ctrl-c"])
def test_an_interrupted_search_resumes_with_its_trials(tmp_path, how):
    db = tmp_path / "interrupted.db"
    process = _start_search(db)
    _wait_for_trials(process, db, 5)
    if how == "killed":
        process.kill()
        process.wait(timeout=30)
    else:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert "INTERRUPTED True" in out  # Ctrl-C stops the search and returns the best model so far
    kept = _finished_trials(db)
    assert kept >= 5
    resumed = automl.fit(str(pmlb_path("prnn_crabs")), storage=db, n_trials=2, time_budget=None, verbose=0,
                         learners=["linear", "knn"])
    assert (resumed.leaderboard()["status"] == "ok").sum() >= kept


def test_the_progress_bar_shows_trials_best_score_and_time_left(capsys, small_binary):
    X, y = small_binary
    automl.fit(X, y, learners=["linear"], time_budget=2, verbose=1, remember=False)
    shown = capsys.readouterr().err
    assert "search" in shown and "trials=" in shown and "best roc_auc=" in shown and "s left" in shown
    automl.fit(X, y, learners=["linear"], time_budget=2, verbose=0, remember=False)
    assert capsys.readouterr().err == ""


def test_when_the_final_fit_fails_the_best_configuration_that_refits_quickly_serves_not_a_constant():
    """A final fit that failed (or did not finish) used to leave a constant predictor: the mean, on a dataset where
    other configurations had scored well."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 20)), columns=[f"x{i}" for i in range(20)])
    y = (X["x0"] + 0.3 * X["x1"] > 0).astype(int)  # linear: the logistic regression wins, the neighbours trail
    searchspaces.register_learner(fails_on_all_rows_learner(rows=550), replace=True)  # folds have fewer rows
    try:
        model = automl.fit(X, y, learners=["fails_on_all_rows", "knn"], n_trials=6, time_budget=None,
                           ensemble_size=1, warm_start=False, remember=False, verbose=0, final_fit="refit")
    finally:
        searchspaces.unregister_learner("fails_on_all_rows")
    assert model.best_config_.learner == "fails_on_all_rows"
    assert [m.config.learner for m in model.members_] == ["knn"]
    assert "knn fitted instead" in model.summary.refit_note
    assert model.score(X, y) > 0.9  # ROC AUC: a real model, not the class prior
