"""distill(): a compact student that follows its teacher, saves and loads, and refuses bad arguments clearly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import automl
from automl.errors import ConfigError, DataError
from automl.serving.distill import DistilledModel, distill

QUICK = dict(time_budget=None, warm_start=False, remember=False, verbose=0)


@pytest.fixture(scope="module")
def halves():
    """A small binary task with a categorical column and missing values, split into rows to train on and new rows
    neither model sees."""
    rng = np.random.default_rng(0)
    n = 240
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "colour": rng.choice(["red", "green", "blue"], size=n)})
    y = ((X["a"] + (X["colour"] == "red") * 1.5 + rng.normal(scale=0.5, size=n)) > 0.5).astype(int).to_numpy()
    X.loc[::17, "b"] = np.nan
    train = np.arange(n) % 3 != 0
    return X[train], y[train], X[~train], y[~train]


@pytest.fixture(scope="module")
def teacher(halves):
    X, y, _, _ = halves
    return automl.fit(X, y, learners=["linear"], n_trials=1, **QUICK)


def test_a_student_follows_its_teacher_on_new_rows(teacher, halves):
    pytest.importorskip("lightgbm")  # student="auto" tries a LightGBM student too
    X, y, X_new, y_new = halves
    student = distill(teacher, X, y, time_budget=2)
    assert isinstance(student, DistilledModel)
    assert student.report.fidelity_name == "agreement" and student.report.fidelity >= 0.9
    assert student.report.rows == len(X) and student.report.augmented_rows >= len(X)
    assert np.mean(student.predict(X_new) == teacher.predict(X_new)) >= 0.9
    assert student.score(X_new, y_new) >= 0.85  # ROC AUC on rows neither model saw
    proba = student.predict_proba(X_new)
    assert proba.shape == (len(X_new), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert list(student.classes_) == list(teacher.classes_)


def test_without_rows_the_student_learns_from_the_rows_the_teacher_kept(teacher, halves):
    X, y, X_new, _ = halves
    student = distill(teacher, time_budget=1, student="linear")
    assert student.report.student == "linear" and student.report.rows == len(X)
    assert student.report.score > 0.85  # the kept rows come with their target: the student has its own score
    assert "linear" in repr(student) and "agreement" in repr(student)
    assert np.mean(student.predict(X_new) == teacher.predict(X_new)) >= 0.9


def test_rows_without_their_target_give_no_score_but_still_a_fidelity(teacher, halves):
    X, _, _, _ = halves
    student = distill(teacher, X, time_budget=1, student="linear")
    assert math.isnan(student.report.score) and math.isnan(student.report.teacher_score)
    assert student.report.fidelity >= 0.9


def test_a_student_saves_and_loads_with_automl_load(teacher, halves, tmp_path):
    pytest.importorskip("lightgbm")
    X, y, X_new, _ = halves
    student = distill(teacher, X, y, time_budget=1, student="lightgbm")
    assert student.report.student == "lightgbm" and student.report.trials >= 1
    loaded = automl.load(student.save(tmp_path / "student.pkl"))
    assert isinstance(loaded, DistilledModel)
    assert np.allclose(loaded.predict_proba(X_new), student.predict_proba(X_new))
    assert list(loaded.predict(X_new)) == list(student.predict(X_new))


def test_a_regression_student_predicts_values_close_to_its_teachers(small_regression):
    pytest.importorskip("lightgbm")
    X, y = small_regression
    teacher = automl.fit(X, y, learners=["linear"], n_trials=1, **QUICK)
    student = distill(teacher, X, y, time_budget=1)
    assert student.report.fidelity_name == "r2" and student.report.fidelity > 0.8
    values = student.predict(X.iloc[:20])
    assert values.shape == (20,)
    assert np.corrcoef(values, teacher.predict(X.iloc[:20]))[0, 1] > 0.9
    with pytest.raises(AttributeError, match="only available for classification"):
        student.predict_proba(X)
    with pytest.raises(AttributeError):
        student.classes_  # noqa: B018


def test_no_rows_give_an_empty_prediction(teacher, halves):
    X, y, _, _ = halves
    student = distill(teacher, X, y, time_budget=1, student="linear")
    assert student.predict(X.iloc[:0]).shape == (0,)
    assert student.predict_proba(X.iloc[:0]).shape == (0, 2)


def test_a_bad_student_or_budget_is_a_config_error(teacher, halves):
    X, y, _, _ = halves
    with pytest.raises(ConfigError, match="student must be one of"):
        distill(teacher, X, y, student="forest")
    for budget in (0, -1, True, "10"):
        with pytest.raises(ConfigError, match="time_budget must be a positive number"):
            distill(teacher, X, y, time_budget=budget)


def test_too_few_rows_are_a_data_error(teacher, halves):
    X, y, _, _ = halves
    with pytest.raises(DataError, match="at least 10"):
        distill(teacher, X.iloc[:5], y[:5], time_budget=1)


def test_a_loaded_teacher_needs_its_training_rows(teacher, tmp_path):
    loaded = automl.load(teacher.save(tmp_path / "teacher.pkl"))
    with pytest.raises(ConfigError, match="pass them"):
        distill(loaded, time_budget=1)


def test_export_asks_for_the_rows_the_student_does_not_keep(teacher, halves, tmp_path):
    X, y, _, _ = halves
    student = distill(teacher, X, y, time_budget=1, student="linear")
    with pytest.raises(ConfigError, match="export checks the graph on rows"):
        student.export(tmp_path / "student.onnx")


def test_a_student_that_leaves_out_a_text_column_the_model_reads_says_so():
    """The review gives the label away; the student reads no text, so it warns, names the column and how much it
    matters, and its description shows it."""
    import warnings

    from tests.data.test_everyday_data import everyday_frame

    X, y = everyday_frame(300)
    X["x"] = X["x"].replace(np.inf, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = automl.fit(X, y, n_trials=2, learners=["linear"], warm_start=False, remember=False, verbose=0)
    with pytest.warns(UserWarning, match="does not read text column 'review'"):
        student = model.distill(time_budget=2, student="linear")
    (name, share), = student.report.ignored
    assert name == "review" and share > 0.2  # shuffled, the reviews move many of the model's labels
    assert "ignores 'review'" in repr(student)
