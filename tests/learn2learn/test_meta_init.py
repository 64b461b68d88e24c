"""``fit(meta_init=)``: a neural learner that starts from a meta-learned initialization and its learned rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import automl
from automl.errors import ConfigError
from automl.learn2learn.series import from_function

torch = pytest.importorskip("torch")

from automl.cli.commands import main  # noqa: E402
from automl.learn2learn.meta_init import MetaInitRegressor, network_order  # noqa: E402

FEATURES = 3
ONE_TRIAL = {"n_trials": 1, "time_budget": None, "warm_start": False, "ensemble_size": 1, "remember": False,
             "final_fit": "refit", "verbose": 0}


def linear_task(rng: np.random.Generator, rows: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """One task of the family: a random linear function of three features, plus one."""
    w = rng.normal(size=FEATURES)
    X = rng.normal(size=(rows, FEATURES))
    return X, X @ w + 1.0


def two_blobs(rng: np.random.Generator, rows: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """One classification task: two classes around random centres."""
    y = np.arange(rows) % 2
    centres = rng.normal(scale=2.0, size=(2, FEATURES))
    return centres[y] + rng.normal(size=(rows, FEATURES)), y


@pytest.fixture(scope="module")
def regression_meta():
    return automl.meta_fit(from_function(linear_task), algorithm="maml", time_budget=3, device="cpu", verbose=0)


@pytest.fixture(scope="module")
def classification_meta():
    return automl.meta_fit(from_function(two_blobs, "classification"), algorithm="metasgd", ways=2, time_budget=2,
                           device="cpu", verbose=0)


def test_fit_with_meta_init_starts_from_the_given_weights(regression_meta):
    X, y = linear_task(np.random.default_rng(1))
    model = automl.fit(X, y, learners=["mlp"], meta_init=regression_meta, **ONE_TRIAL)
    config = model.best_config_
    assert config.learner == "meta_mlp" and config.params["rate_scale"] == 1.0  # meta_mlp took mlp's place
    expected = regression_meta.adapt(X, y, config.params["steps"]).predict(X)
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-5, atol=1e-5)


def test_the_estimator_adapts_at_the_learned_rates_times_the_scale_and_leaves_the_meta_model_alone(regression_meta):
    X, y = linear_task(np.random.default_rng(2))
    before = {name: p.detach().clone() for name, p in regression_meta.learner.params.items()}
    once = MetaInitRegressor(regression_meta, steps=5, rate_scale=1.0).fit(X, y).predict(X)
    np.testing.assert_allclose(once, regression_meta.adapt(X, y, 5).predict(X), rtol=1e-5, atol=1e-5)
    doubled = MetaInitRegressor(regression_meta, steps=5, rate_scale=2.0).fit(X, y).predict(X)
    assert not np.allclose(doubled, once)
    for name, p in regression_meta.learner.params.items():
        assert torch.equal(p.detach(), before[name])


def test_categorical_columns_reach_the_network_in_the_tables_order(regression_meta):
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=40), "code": rng.integers(0, 3, size=40), "b": rng.normal(size=40)})
    y = X["a"].to_numpy() - X["code"].to_numpy() + 1.0
    assert network_order(X, ["code"]) == (1, 0, 2)  # the preprocessing puts the categorical column first
    model = automl.fit(X, y, learners=["mlp"], meta_init=regression_meta, categorical=["code"], **ONE_TRIAL)
    expected = regression_meta.adapt(X.to_numpy(), y, model.best_config_.params["steps"]).predict(X.to_numpy())
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-5, atol=1e-5)


def test_on_few_rows_of_a_related_task_the_meta_initialized_fit_beats_the_mean(regression_meta):
    errors, baseline = [], []
    for seed in range(6):
        X, y = linear_task(np.random.default_rng(100 + seed), rows=210)
        X_train, y_train, X_test, y_test = X[:10], y[:10], X[10:], y[10:]
        model = automl.fit(X_train, y_train, meta_init=regression_meta, learners=["mlp"], n_trials=4, time_budget=None,
                           remember=False, verbose=0)
        errors.append(np.mean((model.predict(X_test) - y_test) ** 2))
        baseline.append(np.mean((y_train.mean() - y_test) ** 2))
    assert np.mean(errors) < 0.9 * np.mean(baseline)


def test_a_classification_meta_model_fits_and_predicts_the_original_labels(classification_meta):
    X, y = two_blobs(np.random.default_rng(4))
    labels = np.array(["no", "yes"])[y]
    model = automl.fit(X, labels, learners=["mlp", "linear"], meta_init=classification_meta, n_trials=3,
                       time_budget=None, warm_start=False, remember=False, verbose=0)
    assert "meta_mlp" in set(model.leaderboard()["learner"])
    assert set(model.predict(X)) <= {"no", "yes"} and model.predict_proba(X).shape == (len(X), 2)


def test_mismatched_meta_models_get_clear_errors(regression_meta, classification_meta):
    rng = np.random.default_rng(5)
    X, y = linear_task(rng)
    with pytest.raises(ConfigError,
                       match=r"takes 3 features but this dataset has 5 feature columns.*same feature columns"):
        automl.fit(np.hstack([X, X[:, :2]]), y, learners=["mlp"], meta_init=regression_meta, **ONE_TRIAL)
    X_class, y_class = two_blobs(rng)
    with pytest.raises(ConfigError, match="meta-trained for regression but this dataset is a classification task"):
        automl.fit(X_class, y_class, learners=["mlp"], meta_init=regression_meta, **ONE_TRIAL)
    with pytest.raises(ConfigError, match="3 classes but the meta-model was trained for 2-way"):
        automl.fit(X_class, np.arange(len(X_class)) % 3, learners=["mlp"], meta_init=classification_meta, **ONE_TRIAL)
    with pytest.raises(ConfigError, match="MetaModel"):
        automl.fit(X, y, learners=["mlp"], meta_init=object(), **ONE_TRIAL)


def test_a_prototypical_network_is_refused_with_the_alternatives():
    protonet = automl.meta_fit(from_function(two_blobs, "classification"), algorithm="protonet", ways=2, time_budget=1,
                               device="cpu", verbose=0)
    X, y = two_blobs(np.random.default_rng(6))
    with pytest.raises(ConfigError, match="protonet.*maml"):
        automl.fit(X, y, learners=["mlp"], meta_init=protonet, **ONE_TRIAL)


def test_the_command_line_fits_from_a_saved_meta_model(regression_meta, tmp_path, capsys):
    path = tmp_path / "meta.pkl"
    regression_meta.save(path)
    X, y = linear_task(np.random.default_rng(7))
    table = tmp_path / "task.csv"
    pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2], "y": y}).to_csv(table, index=False)
    out = tmp_path / "model.pkl"
    argv = ["fit", str(table), "--target", "y", "--task", "regression", "--learners", "mlp", "--trials", "2",
            "--meta-init", str(path), "--out", str(out), "-q"]
    assert main(argv) == 0
    assert "meta_mlp" in capsys.readouterr().out and out.exists()
    assert automl.load(out).predict(pd.DataFrame(X, columns=["x0", "x1", "x2"])).shape == (len(X),)

    pd.DataFrame({"x0": X[:, 0], "y": y}).to_csv(table, index=False)
    assert main(argv) == 2
    assert "takes 3 features but this dataset has 1" in capsys.readouterr().err
