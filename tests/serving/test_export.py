"""ONNX export: one graph per model, run in onnxruntime, matching the model's own predictions."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, load_iris, make_regression
from threadpoolctl import threadpool_limits

import automl
from automl.cli.commands import main
from automl.errors import ConfigError, ExportError

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

QUICK = dict(time_budget=None, warm_start=False, remember=False, verbose=0)
NEW_ROWS = pd.DataFrame({"a": [0.5, np.nan, -1.0], "b": [2.0, np.nan, 9.0], "c": ["red", "violet", None],
                         "d": ["y", "z", "x"]})  # a missing number, unseen levels, a missing level


def _run(path, encoded: np.ndarray) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": encoded.astype(np.float64)})


@pytest.fixture(scope="module")
def regression_rows() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_regression(240, 5, noise=5.0, random_state=0)
    return pd.DataFrame(X, columns=list("abcde")), y


def test_an_ensemble_exports_as_one_graph_that_predicts_as_the_model(tmp_path, mixed_rows, monkeypatch):
    X, y = mixed_rows
    model = automl.fit(X, y, learners=["linear", "random_forest", "lightgbm", "hgb"], n_trials=8, ensemble_size=4,
                       metric="log_loss", **QUICK)  # log loss: the class prior is mixed in too
    assert len(model.members_) > 1 and model.ensemble.prior_share > 0
    report = model.export(tmp_path / "model.onnx")
    assert (report.members, report.rows_checked, report.rows_beyond) == (len(model.members_), len(X), 0)
    assert report.max_abs_diff < report.tolerance == 1e-4
    assert "checked in onnxruntime on 300 training rows" in report.describe()

    metadata = json.loads((tmp_path / "model.onnx.json").read_text())
    assert metadata["input"]["columns"] == ["a", "b", "c", "d"] and metadata["classes"] == ["no", "yes"]
    codes = metadata["input"]["categorical_codes"]["c"]
    assert sorted(codes) == ["blue", "green", "rare", "red"] and metadata["input"]["unseen_level"] == -1
    assert metadata["check"]["rows"] == 300

    probabilities, label = _run(tmp_path / "model.onnx", model.row_encoder.encode(NEW_ROWS))
    assert np.allclose(probabilities, model.predict_proba(NEW_ROWS), atol=1e-4)
    assert list(model.classes_[label]) == list(model.predict(NEW_ROWS))

    monkeypatch.setattr("automl.serving.export.TOLERANCE", 0.0)  # no float32 rounding allowed: the check must refuse
    with pytest.raises(ExportError,
                       match=r"differs from the model on \d+ of 300 rows .* not written; member \d \(\w+ \("):
        model.export(tmp_path / "strict.onnx")
    assert not (tmp_path / "strict.onnx").exists()


@pytest.mark.parametrize("learner",
                         ["linear", "random_forest", "extra_trees", "lightgbm", "hgb", "xgboost", "svm", "knn"])
def test_each_learner_round_trips_with_categories_and_missing_values(tmp_path, mixed_rows, learner):
    pytest.importorskip({"lightgbm": "lightgbm", "xgboost": "xgboost"}.get(learner, "sklearn"))
    X, y = mixed_rows
    model = automl.fit(X, y, learners=[learner], n_trials=1, **QUICK)
    assert model.export(tmp_path / "m.onnx").max_abs_diff < 1e-4
    probabilities, _ = _run(tmp_path / "m.onnx", model.row_encoder.encode(NEW_ROWS))
    assert np.allclose(probabilities, model.predict_proba(NEW_ROWS), atol=1e-4)


def test_regression_multiclass_and_the_student_round_trip(tmp_path, regression_rows):
    X, y = regression_rows
    model = automl.fit(X, y, learners=["svm"], n_trials=1, **QUICK)  # svm learns a standardized target
    report = model.export(tmp_path / "reg.onnx")
    assert report.rows_beyond == 0 and report.tolerance == pytest.approx(1e-4 * np.std(model.predict(X)))
    (prediction,) = _run(tmp_path / "reg.onnx", model.row_encoder.encode(X))
    assert prediction.shape == (len(X),) and np.allclose(prediction, model.predict(X), atol=report.tolerance)

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = automl.fit(X, y, learners=["hgb", "linear"], n_trials=4, ensemble_size=2, **QUICK)
    assert model.export(tmp_path / "iris.onnx").max_abs_diff < 1e-4
    student = model.distill(time_budget=2)
    assert student.export(tmp_path / "student.onnx", X=X).max_abs_diff < 1e-4
    probabilities, label = _run(tmp_path / "student.onnx", student.encoder.encode(X))
    assert np.allclose(probabilities, student.predict_proba(X), atol=1e-4)
    assert list(student.classes_[label]) == list(student.predict(X))


@pytest.mark.parametrize("kind", ["lightgbm", "linear"])
def test_a_student_of_categorical_rows_exports(tmp_path, mixed_rows, kind):
    X, y = mixed_rows
    student = automl.fit(X, y, learners=["linear"], n_trials=1, **QUICK).distill(time_budget=2, student=kind)
    assert student.report.student == kind
    assert student.export(tmp_path / "student.onnx", X=X).max_abs_diff < 1e-4
    probabilities, _ = _run(tmp_path / "student.onnx", student.encoder.encode(NEW_ROWS))
    assert np.allclose(probabilities, student.predict_proba(NEW_ROWS), atol=1e-4)


def _booster_cases():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.integers(0, 6, 500), rng.integers(0, 3, 500), rng.normal(size=(500, 2))]).astype(float)
    X[::9, 0], X[::7, 2], X[::13, 1] = np.nan, np.nan, np.nan
    y = np.isin(X[:, 0], [2, 4]) ^ (np.nan_to_num(X[:, 2]) > 0.3)
    probe = np.vstack([X, [[-1, 7, 0.1, 0.2], [np.nan, np.nan, np.nan, np.nan]]])  # unseen and missing codes too
    return X, y.astype(int), probe


@threadpool_limits.wrap(limits=1)  # HistGradientBoosting's OpenMP threads wait long on a busy machine
def test_tree_converters_follow_categorical_splits_and_linear_leaves():
    """The trees written by automl.serving.onnx.trees decide as their libraries do (the members use them too)."""
    lightgbm = pytest.importorskip("lightgbm")
    xgboost = pytest.importorskip("xgboost")
    from sklearn.ensemble import HistGradientBoostingClassifier

    from automl.serving.onnx.members import convert_estimator, student_member

    X, y, probe = _booster_cases()
    fitted = [lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, n_jobs=1, verbose=-1).fit(
                  X, y, categorical_feature=[0, 1]),
              HistGradientBoostingClassifier(max_iter=20, categorical_features=[True, True, False, False]).fit(X, y),
              xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1, enable_categorical=True,
                                    feature_types=["c", "c", "q", "q"]).fit(X, y)]
    for estimator in fitted:
        converted = convert_estimator(estimator, 4, classification=True)
        session = onnxruntime.InferenceSession(converted.onnx.SerializeToString(), providers=["CPUExecutionProvider"])
        rows = probe if not type(estimator).__name__.startswith("XGB") else X  # XGBoost's members never see -1
        assert np.allclose(session.run([converted.output], {"input": rows})[0], estimator.predict_proba(rows),
                           atol=1e-6)
    booster = lightgbm.train({"objective": "regression", "linear_tree": True, "num_leaves": 6, "verbose": -1,
                              "num_threads": 1}, lightgbm.Dataset(X, X[:, 3] * 3 + y, categorical_feature=[0, 1]),
                             num_boost_round=20)
    converted = student_member(booster, np.array([0.5]), "regression", 0)
    session = onnxruntime.InferenceSession(converted.onnx.SerializeToString(), providers=["CPUExecutionProvider"])
    assert np.allclose(session.run([converted.output], {"input": probe})[0].ravel(), booster.predict(probe) + 0.5)


@pytest.mark.parametrize("learner", ["mlp", "cnn"])
def test_the_torch_networks_export_through_torch_onnx(tmp_path, mixed_rows, learner):
    pytest.importorskip("torch")
    if learner == "mlp":
        X, y = mixed_rows
    else:
        X, y = load_digits(return_X_y=True, as_frame=True)
        X, y = X.iloc[:200], y.iloc[:200]
    model = automl.fit(X, y, learners=[learner], n_trials=1, **QUICK)
    assert model.export(tmp_path / "net.onnx").max_abs_diff < 1e-4


def test_the_cli_exports_a_saved_model_and_says_how_it_was_checked(tmp_path, mixed_rows, capsys):
    X, y = mixed_rows
    model = automl.fit(X, y, learners=["lightgbm"], n_trials=1, **QUICK)
    model.save(tmp_path / "model.pkl")
    X.assign(label=y).to_csv(tmp_path / "train.csv", index=False)
    out = tmp_path / "m.onnx"
    assert main(["export", str(tmp_path / "model.pkl"), "--out", str(out), "--data", str(tmp_path / "train.csv"),
                 "--target", "label"]) == 0
    printed = capsys.readouterr().out
    assert ("checked in onnxruntime on 300 training rows: largest difference" in printed
            and "tolerance 0.0001" in printed)
    assert out.exists() and (tmp_path / "m.onnx.json").exists()
    assert main(["export", str(tmp_path / "model.pkl"), "--format", "pmml", "--data", str(tmp_path / "train.csv")]) == 2
    assert "automl export: error: unknown export format 'pmml'; the formats are onnx" in capsys.readouterr().err


def test_what_cannot_be_exported_says_which_member_and_why(tmp_path, mixed_rows, monkeypatch):
    pytest.importorskip("catboost")
    X, y = mixed_rows
    model = automl.fit(X, y, learners=["catboost"], n_trials=1, **QUICK)
    with pytest.raises(ExportError, match=r"member 0 \(catboost \(depth=\d.*CatBoost with categorical features"):
        model.export(tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
    with pytest.raises(ConfigError, match="unknown export format 'pmml'; the formats are onnx"):
        model.export(tmp_path / "model.pmml", format="pmml")
    loaded = automl.load(model.save(tmp_path / "model.pkl"))
    with pytest.raises(ConfigError, match=r"pass them, model.export\(path, X=X_train\)"):
        loaded.export(tmp_path / "model.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(ExportError, match=r"needs onnxruntime: pip install -e \"\.\[export\]\""):
        loaded.export(tmp_path / "model.onnx", X=X)
