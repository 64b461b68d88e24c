"""LeanPipeline: a fitted pipeline compiled to NumPy predicts what the pipeline predicts, missing values and unseen
levels included, and pipelines it cannot compile are left alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

from automl.data.dataset import load_dataset
from automl.pipeline.lean import LeanPipeline
from automl.pipeline.preprocessing import MISSING_CATEGORY, make_preprocessor
from automl.pipeline.row_encoder import RowEncoder
from searchspaces import Preprocessing

NEW_ROWS = pd.DataFrame({
    "a": [0.5, np.nan, -1.0, 2.0, 0.0],
    "b": [2.0, 9.0, np.nan, 1.0, 3.0],
    "c": ["red", "violet", None, "rare", "blue"],  # a known level, an unseen one, a missing one, the rare one
    "d": ["y", "x", "z", None, "x"],
})


@pytest.fixture(scope="module")
def mixed(mixed_rows):
    """The rows of ``mixed_rows`` (numbers with missing values, categories with a missing and a rare level) prepared,
    with class codes 0/1/2, a numeric target and the encoder of the rows."""
    frame, _ = mixed_rows
    data = load_dataset(frame.assign(y=np.linspace(0.0, 1.0, len(frame))), target="y")
    X = data.X
    score = X["a"].fillna(0).to_numpy() + (X["c"] == "red").to_numpy() - 0.3 * X["b"].to_numpy()
    classes = np.digitize(score, [-0.8, 0.2])
    values = 2 * X["a"].fillna(0).to_numpy() + (X["d"] == "x").to_numpy() + X["b"].to_numpy()
    return data, classes, values, RowEncoder.fit(data.schema, X)


def _fitted(spec: Preprocessing, model, data, y) -> Pipeline:
    transformer, _ = make_preprocessor(spec, data.X, data.categorical)
    return Pipeline([("prepare", transformer), ("model", model)]).fit(data.X, y)


def _lightgbm_classifier():
    lightgbm = pytest.importorskip("lightgbm")
    return lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, min_child_samples=5, verbose=-1)


@pytest.mark.parametrize("spec, model", [
    (Preprocessing("onehot", scale=True), lambda: LogisticRegression(max_iter=500)),
    (Preprocessing("ordinal"), lambda: RandomForestClassifier(n_estimators=10, random_state=0)),
    (Preprocessing("native", impute=False), _lightgbm_classifier),
], ids=["onehot-scaled-logistic", "ordinal-forest", "native-lightgbm"])
def test_a_compiled_classifier_gives_the_pipelines_probabilities_on_new_rows(mixed, spec, model):
    data, classes, _, encoder = mixed
    pipeline = _fitted(spec, model(), data, classes)
    lean = LeanPipeline.compile(pipeline, encoder)
    assert lean is not None
    expected = pipeline.predict_proba(data.schema.prepare(NEW_ROWS))
    got = lean.predict_proba(encoder.encode(NEW_ROWS), 3)
    assert got.shape == (len(NEW_ROWS), 3)
    assert np.allclose(got, expected, atol=1e-9)
    for i in range(len(NEW_ROWS)):  # one row at a time, as a server asks
        assert np.allclose(lean.predict_proba(encoder.encode(NEW_ROWS.iloc[[i]]), 3), expected[i], atol=1e-9)


@pytest.mark.parametrize("spec, model", [
    (Preprocessing("onehot", scale=True), lambda: Ridge(alpha=1.0)),
    (Preprocessing("native", impute=False),
     lambda: pytest.importorskip("lightgbm").LGBMRegressor(n_estimators=20, num_leaves=7, verbose=-1)),
], ids=["onehot-scaled-ridge", "native-lightgbm"])
def test_a_compiled_regressor_gives_the_pipelines_values_on_new_rows(mixed, spec, model):
    data, _, values, encoder = mixed
    pipeline = _fitted(spec, model(), data, values)
    lean = LeanPipeline.compile(pipeline, encoder)
    assert lean is not None
    expected = pipeline.predict(data.schema.prepare(NEW_ROWS))
    assert np.allclose(lean.predict_values(encoder.encode(NEW_ROWS)), expected, atol=1e-9)


def test_the_transformed_rows_are_what_the_pipelines_transformer_makes(mixed):
    data, classes, _, encoder = mixed
    pipeline = _fitted(Preprocessing("onehot", scale=True), LogisticRegression(max_iter=500), data, classes)
    lean = LeanPipeline.compile(pipeline, encoder)
    expected = pipeline.steps[0][1].transform(data.schema.prepare(NEW_ROWS))
    assert np.allclose(lean.transform(encoder.encode(NEW_ROWS)), expected)


def test_rare_and_unseen_levels_share_the_infrequent_column(mixed):
    data, classes, _, encoder = mixed
    onehot = make_pipeline(SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
                           OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=10, sparse_output=False))
    transformer = ColumnTransformer([("onehot", onehot, ["c", "d"]), ("numeric", SimpleImputer(strategy="median"),
                                                                      ["a", "b"])])
    pipeline = Pipeline([("prepare", transformer), ("model", LogisticRegression(max_iter=500))]).fit(data.X, classes)
    lean = LeanPipeline.compile(pipeline, encoder)
    assert lean is not None
    prepared = data.schema.prepare(NEW_ROWS)
    features = lean.transform(encoder.encode(NEW_ROWS))
    assert np.allclose(features, transformer.transform(prepared))
    # "violet" (unseen) reads as "rare" (infrequent): both set the one grouped column of c's five
    assert features[1, :5].sum() == 1 and np.array_equal(features[1, :5], features[3, :5])
    assert np.allclose(lean.predict_proba(encoder.encode(NEW_ROWS), 3), pipeline.predict_proba(prepared))


def test_a_model_that_saw_only_some_classes_gives_the_others_no_probability(mixed):
    data, classes, _, encoder = mixed
    seen = np.where(classes == 1, 2, classes)  # no row of class 1, as in a fold without it
    pipeline = _fitted(Preprocessing("native", impute=False), _lightgbm_classifier(), data, seen)
    lean = LeanPipeline.compile(pipeline, encoder)
    got = lean.predict_proba(encoder.encode(NEW_ROWS), 3)
    assert np.all(got[:, 1] == 0) and np.allclose(got.sum(axis=1), 1.0)
    assert np.allclose(got[:, [0, 2]], pipeline.predict_proba(data.schema.prepare(NEW_ROWS)), atol=1e-9)


def test_pipelines_it_cannot_compile_are_left_to_predict_the_usual_way(mixed):
    data, classes, _, encoder = mixed
    transformer = ColumnTransformer([("numeric", make_pipeline(SimpleImputer(), PolynomialFeatures()), ["a", "b"])])
    custom = Pipeline([("prepare", transformer), ("model", LogisticRegression(max_iter=500))]).fit(data.X, classes)
    assert LeanPipeline.compile(custom, encoder) is None
    three_steps = Pipeline([("prepare", ColumnTransformer([("numeric", SimpleImputer(), ["a", "b"])])),
                            ("scale", StandardScaler()), ("model", LogisticRegression(max_iter=500))])
    three_steps.fit(data.X, classes)
    assert LeanPipeline.compile(three_steps, encoder) is None
    assert LeanPipeline.compile(LogisticRegression(max_iter=500).fit(data.X[["b"]], classes), encoder) is None
    # a column the encoder does not hold (here: another name for "a")
    renamed = data.X.rename(columns={"a": "z"})
    other = Pipeline([("prepare", ColumnTransformer([("numeric", SimpleImputer(), ["z"])])),
                      ("model", LogisticRegression(max_iter=500))]).fit(renamed, classes)
    assert LeanPipeline.compile(other, encoder) is None


def test_a_model_on_a_column_with_no_values_predicts_a_few_rows_the_usual_way():
    """The one-hot step's imputer drops a column it saw no value in, so the encoder holds one column more than the
    step: that pipeline is not compiled (it raised IndexError on predict before), and predictions still come."""
    X = pd.DataFrame({"colour": ["red"] * 30, "empty": [None] * 30})
    data = load_dataset(X, np.array([0, 1] * 15))
    encoder = RowEncoder.fit(data.schema, data.X)
    spec = Preprocessing(categorical="onehot", scale=True, impute=True)
    pipeline = _fitted(spec, LogisticRegression(max_iter=500), data, data.encoded_target())
    assert LeanPipeline.compile(pipeline, encoder) is None
    assert pipeline.predict_proba(data.schema.prepare(X.iloc[:3])).shape == (3, 2)
