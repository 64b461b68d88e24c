"""The linear student: a ridge or logistic model of a teacher's outputs over encoded rows, its penalty chosen on
held-out rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl.data.dataset import load_dataset
from automl.pipeline.lean import LeanPipeline
from automl.pipeline.row_encoder import RowEncoder
from automl.serving.linear_student import ALPHAS, fit_linear_student, linear_scores, refit


def _squared(raw: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean((raw[:, 0] - targets[:, 0]) ** 2))


def _cross_entropy(raw: np.ndarray, targets: np.ndarray) -> float:
    """Against soft targets: raw scores are log-odds (one column) or logits (one per class)."""
    if raw.shape[1] == 1:
        positive = 1 / (1 + np.exp(-raw[:, 0]))
        probabilities = np.column_stack([1 - positive, positive])
    else:
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    return float(-np.mean(np.sum(targets * np.log(np.clip(probabilities, 1e-12, 1)), axis=1)))


@pytest.fixture(scope="module")
def encoded():
    """Encoded rows of two numeric columns (one with missing values) and a categorical one, and their encoder."""
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(-1, 1, size=n),
                          "colour": rng.choice(["red", "green", "blue"], size=n), "y": rng.normal(size=n)})
    frame.loc[::13, "b"] = np.nan
    data = load_dataset(frame, target="y")
    encoder = RowEncoder.fit(data.schema, data.X)
    return encoder, encoder.encode_prepared(data.X), data.X


def _linear_values(prepared: pd.DataFrame) -> np.ndarray:
    """A teacher linear in the inputs, as one column: 2a - 3b (b missing reads as 0) + 1 for red rows."""
    values = 2 * prepared["a"].to_numpy(float) - 3 * prepared["b"].fillna(0).to_numpy(float)
    return (values + (prepared["colour"].astype(str) == "red").to_numpy(float)).reshape(-1, 1)


def test_a_linear_student_reproduces_a_linear_teacher(encoded):
    encoder, X, prepared = encoded
    targets = _linear_values(prepared)
    train, valid = slice(0, 200), slice(200, None)
    fitted = fit_linear_student(encoder, X[train], targets[train], X[valid], targets[valid], "regression", _squared,
                                5.0)
    assert fitted is not None
    student, alpha, loss, tried = fitted
    assert isinstance(student, LeanPipeline) and alpha in ALPHAS and 1 <= tried <= len(ALPHAS)
    assert loss < 0.05  # the teacher's values have a variance of about 7 on these rows
    scores = linear_scores(student, X[valid])
    assert scores.shape == (100, 1)
    assert loss == pytest.approx(_squared(scores, targets[valid]))


def test_the_chosen_penalty_follows_the_teacher_best_of_those_tried(encoded):
    encoder, X, prepared = encoded
    targets = _linear_values(prepared)
    train, valid = slice(0, 200), slice(200, None)
    student, alpha, loss, tried = fit_linear_student(encoder, X[train], targets[train], X[valid], targets[valid],
                                                     "regression", _squared, 60.0)
    assert tried == len(ALPHAS)  # time enough for every penalty
    for other in ALPHAS:
        candidate = refit(student, other, X[train], targets[train], "regression")
        assert loss <= _squared(linear_scores(candidate, X[valid]), targets[valid]) + 1e-12


def test_out_of_time_it_still_tries_one_penalty(encoded):
    encoder, X, prepared = encoded
    targets = _linear_values(prepared)
    _, alpha, _, tried = fit_linear_student(encoder, X, targets, X, targets, "regression", _squared, 0.0)
    assert tried == 1 and alpha == ALPHAS[0]


def test_a_classification_student_learns_the_teachers_probabilities(encoded):
    encoder, X, prepared = encoded
    logit = 2 * prepared["a"].to_numpy(float) + np.where(prepared["colour"].astype(str) == "red", 1.5, 0.0)
    positive = 1 / (1 + np.exp(-logit))
    targets = np.column_stack([1 - positive, positive])
    student, _, loss, _ = fit_linear_student(encoder, X, targets, X, targets, "binary", _cross_entropy, 5.0)
    scores = linear_scores(student, X)
    assert scores.shape == (len(X), 1)
    learned = 1 / (1 + np.exp(-scores[:, 0]))
    assert np.max(np.abs(learned - positive)) < 0.02
    assert np.mean((learned > 0.5) == (positive > 0.5)) >= 0.97


def test_a_multiclass_student_gives_one_score_per_class(encoded):
    encoder, X, prepared = encoded
    logits = np.column_stack([prepared["a"].to_numpy(float), -prepared["a"].to_numpy(float), np.zeros(len(X))])
    targets = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    student, _, _, _ = fit_linear_student(encoder, X, targets, X, targets, "multiclass", _cross_entropy, 5.0)
    scores = linear_scores(student, X)
    assert scores.shape == (len(X), 3)
    assert np.mean(np.argmax(scores, axis=1) == np.argmax(targets, axis=1)) >= 0.95


def test_a_class_the_teacher_never_predicts_gives_no_linear_student(encoded):
    encoder, X, _ = encoded
    targets = np.zeros((len(X), 3))
    targets[:, 0], targets[:, 1] = 0.7, 0.3  # the third class never gets any probability
    assert fit_linear_student(encoder, X, targets, X, targets, "multiclass", _cross_entropy, 5.0) is None


def test_missing_values_and_unseen_levels_get_finite_scores(encoded):
    encoder, X, prepared = encoded
    targets = _linear_values(prepared)
    student, _, _, _ = fit_linear_student(encoder, X, targets, X, targets, "regression", _squared, 5.0)
    new = encoder.encode(pd.DataFrame({"a": [np.nan, 0.5], "b": [0.2, np.nan], "colour": ["violet", None]}))
    assert np.isnan(new).any()  # the rows do hold missing values and an unseen level
    scores = linear_scores(student, new)
    assert np.isfinite(scores).all()
    # a missing value reads as the column's median, which is about 0 for a: close to a row holding 0
    median_row = encoder.encode(pd.DataFrame({"a": [float(np.nanmedian(X[:, 0]))], "b": [0.2], "colour": ["violet"]}))
    assert scores[0, 0] == pytest.approx(linear_scores(student, median_row)[0, 0])


def test_refit_keeps_the_preprocessing_and_fits_the_model_on_the_rows_given(encoded):
    encoder, X, prepared = encoded
    targets = _linear_values(prepared)
    student, alpha, _, _ = fit_linear_student(encoder, X[:50], targets[:50], X[50:], targets[50:], "regression",
                                              _squared, 5.0)
    again = refit(student, alpha, X, -targets, "regression")  # a teacher of the opposite sign, on all rows
    assert again.parts is student.parts and again.model is not student.model
    assert np.corrcoef(linear_scores(again, X)[:, 0], linear_scores(student, X)[:, 0])[0, 1] < -0.95
