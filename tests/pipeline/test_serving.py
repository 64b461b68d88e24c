"""Models that ship: serving limits in the search, and distillation into a compact student."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine, make_regression

import automl
from automl.errors import ConfigError
from automl.pipeline.footprint import latency_ms
from automl.pipeline.row_encoder import RowEncoder

QUICK = dict(time_budget=None, warm_start=False, remember=False, verbose=0)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def test_the_leaderboard_shows_each_trials_latency_and_size(cancer):
    model = automl.fit(*cancer, learners=["linear", "random_forest"], n_trials=4, **QUICK)
    board = model.leaderboard()
    done = board[board["status"] == "ok"]
    assert (done["predict_ms"] > 0).all() and (done["model_mb"] > 0).all()
    forest, linear = (done[done["learner"] == name]["model_mb"].max() for name in ("random_forest", "linear"))
    assert forest > 5 * linear  # a forest's trees weigh more than thirty coefficients


def test_a_size_limit_is_honoured_by_the_chosen_members(cancer):
    model = automl.fit(*cancer, learners=["linear", "random_forest"], n_trials=6, max_model_mb=0.05, **QUICK)
    assert {member.config.learner for member in model.members_} == {"linear"}
    assert model.summary.model_mb <= 0.05


def test_a_latency_limit_is_honoured_by_the_returned_model(cancer):
    X, y = cancer
    unlimited = automl.fit(X, y, learners=["linear", "knn", "random_forest"], n_trials=6, **QUICK)
    measured = unlimited.leaderboard().dropna(subset=["predict_ms"])
    limit = 3 * float(measured["predict_ms"].min())
    model = automl.fit(X, y, learners=["linear", "knn", "random_forest"], n_trials=6, max_predict_ms=limit, **QUICK)
    assert model.summary.predict_ms <= limit
    assert latency_ms(lambda: model.predict(X.iloc[:1]), 25) <= 2 * limit  # measured again, on a shared machine


def test_impossible_limits_name_the_fastest_configuration(cancer):
    with pytest.raises(ConfigError, match=r"fastest found.*predicts a row in .* ms"):
        automl.fit(*cancer, learners=["linear"], n_trials=2, max_predict_ms=1e-6, **QUICK)
    with pytest.raises(ConfigError, match="max_model_mb must be a positive number"):
        automl.fit(*cancer, n_trials=2, max_model_mb=-1, **QUICK)


def test_a_distilled_student_follows_its_teacher(cancer):
    X, y = cancer
    train, test = np.arange(len(X)) % 4 != 0, np.arange(len(X)) % 4 == 0
    teacher = automl.fit(X[train], y[train], learners=["linear", "svm", "random_forest"], n_trials=6, **QUICK)
    student = teacher.distill(time_budget=4)
    assert student.report.fidelity >= 0.93 and student.report.augmented_rows >= len(X[train])
    agreement = np.mean(student.predict(X[test]) == teacher.predict(X[test]))
    assert agreement >= 0.93
    assert student.score(X[test], y[test]) >= 0.95  # ROC AUC on rows neither model saw


def test_students_of_multiclass_and_regression_models_save_and_load(tmp_path):
    X, y = load_wine(return_X_y=True, as_frame=True)
    teacher = automl.fit(X, y, learners=["linear"], n_trials=2, **QUICK)
    student = teacher.distill(time_budget=3)
    loaded = automl.load(student.save(tmp_path / "student.pkl"))
    assert np.allclose(loaded.predict_proba(X), student.predict_proba(X))
    assert student.predict_proba(X).shape == (len(X), 3) and student.report.fidelity >= 0.9

    Xr, yr = make_regression(300, 6, noise=5.0, random_state=0)
    teacher = automl.fit(Xr, yr, learners=["linear"], n_trials=2, **QUICK)
    student = teacher.distill(time_budget=3)
    assert student.report.fidelity_name == "r2" and student.report.fidelity > 0.8


def test_a_loaded_model_needs_its_training_rows_to_distill(tmp_path, cancer):
    teacher = automl.fit(*cancer, learners=["linear"], n_trials=2, **QUICK)
    loaded = automl.load(teacher.save(tmp_path / "model.pkl"))
    with pytest.raises(ConfigError, match="pass them"):
        loaded.distill(time_budget=2)
    with pytest.raises(ConfigError, match="student must be one of"):
        teacher.distill(time_budget=2, student="forest")
    assert loaded.distill(*cancer, time_budget=2).report.score > 0.9


def test_the_row_encoder_reads_raw_rows_as_the_schema_does():
    frame = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0], "c": ["x", "y", "x", None, "y", "x"],
                          "y": [0, 1] * 3})
    data = automl.data.dataset.load_dataset(frame, target="y")
    encoder = RowEncoder.fit(data.schema, data.X)
    raw = pd.DataFrame({"a": [np.inf, "oops", 3], "c": ["y", "unseen", 1.0]})
    lean = encoder.encode(raw)
    with pytest.warns(UserWarning):
        full = encoder.encode_prepared(data.schema.prepare(raw))
    assert np.array_equal(np.isnan(lean), np.isnan(full)) and np.allclose(np.nan_to_num(lean), np.nan_to_num(full))


@pytest.mark.parametrize("learner", ["lightgbm", "linear", "random_forest", "hgb", "knn", "svm"])
def test_a_few_rows_take_the_lean_path_and_get_the_same_predictions(learner, mixed_rows):
    frame, y = mixed_rows
    model = automl.fit(frame, y, learners=[learner], n_trials=1, **QUICK)
    new = pd.DataFrame({"a": [0.5, np.nan, -1.0], "b": [2.0, 9.0, np.nan], "c": ["red", "violet", None],
                        "d": ["y", "x", "z"]})
    full = model._proba(model._features(new))  # the standard path: the schema types rows, the pipeline transforms them
    lean = np.vstack([model.predict_proba(new.iloc[[i]]) for i in range(len(new))])
    assert model._lean_members[1] is not None  # the pipeline compiled
    assert np.allclose(lean, full, atol=1e-9)
    assert list(model.predict(new)) == list(model.classes_[np.argmax(full, axis=1)])


def test_a_linear_teacher_gets_a_linear_student_that_follows_it(tmp_path):
    from sklearn.datasets import make_classification

    X, y = make_classification(600, 60, n_informative=40, random_state=0)
    X = pd.DataFrame(X, columns=[f"x{i}" for i in range(60)])
    teacher = automl.fit(X, y, learners=["linear"], n_trials=2, **QUICK)
    student = teacher.distill(time_budget=6)
    assert student.report.student == "linear" and student.report.fidelity >= 0.97  # trees step along a hyperplane
    assert "linear, penalty" in repr(student)
    loaded = automl.load(student.save(tmp_path / "student.pkl"))
    assert np.allclose(loaded.predict_proba(X), student.predict_proba(X))
    assert teacher.distill(time_budget=3, student="lightgbm").report.student == "lightgbm"
