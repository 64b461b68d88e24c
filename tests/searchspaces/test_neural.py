"""Neural learners: the estimators' contract, the architecture space, pruning, and the learning-rate prior."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

import automl  # noqa: E402
from automl.search.evaluation import OK, PRUNED, Evaluator, Resampling  # noqa: E402
from automl.search.metrics import get_metric  # noqa: E402
from metaknowledge.candidates import NEURAL_ARCHITECTURES, NEURAL_LEARNING_RATES, NEURAL_TRAINING  # noqa: E402
from metaknowledge.features import EXTRACTOR_VERSION  # noqa: E402
from metaknowledge.lr_prior import LearningRatePrior, best_learning_rates  # noqa: E402
from metaknowledge.snapshot import Knowledge  # noqa: E402
from searchspaces import Config, get_learner  # noqa: E402
from searchspaces.networks.estimators import (  # noqa: E402
    TorchCNNClassifier,
    TorchMLPClassifier,
    TorchMLPRegressor,
    infer_image_shape,
)
from searchspaces.torch_learners import CNN_SPACE, MLP_SPACE  # noqa: E402

FAST = {"epochs": 30, "learning_rate": 1e-2, "device": "cpu", "n_jobs": 1}


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    return X, y


def test_classifier_follows_the_estimator_contract():
    X, y = blobs()
    model = TorchMLPClassifier(hidden_layer_sizes=(32,), **FAST)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(X)
    assert model.fit(X, y) is model
    proba = model.predict_proba(X)
    assert proba.shape == (len(y), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert list(model.classes_) == ["no", "yes"] and set(model.predict(X)) <= {"no", "yes"}
    assert model.score(X, y) > 0.9
    restored = pickle.loads(pickle.dumps(model))
    assert np.allclose(restored.predict_proba(X), proba, atol=1e-6)
    with pytest.raises(ValueError, match="expected 6 features"):
        model.predict(X[:, :3])


def test_training_is_seeded():
    X, y = blobs()
    first = TorchMLPClassifier(random_state=3, **FAST).fit(X, y).predict_proba(X)
    again = TorchMLPClassifier(random_state=3, **FAST).fit(X, y).predict_proba(X)
    other = TorchMLPClassifier(random_state=4, **FAST).fit(X, y).predict_proba(X)
    assert np.allclose(first, again) and not np.allclose(first, other)


def test_regressor_learns_a_smooth_function_on_the_original_scale():
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, size=(400, 3))
    y = 100 + 30 * np.sin(X[:, 0]) + 5 * X[:, 1]
    model = TorchMLPRegressor(hidden_layer_sizes=(64, 64), learning_rate=3e-3, epochs=60, device="cpu").fit(X, y)
    assert model.score(X, y) > 0.9 and abs(model.predict(X).mean() - y.mean()) < 5


def test_early_stopping_keeps_the_best_epoch():
    X, y = blobs(200)
    noisy = np.random.default_rng(0).permutation(y)  # nothing to learn: validation loss soon stops improving
    model = TorchMLPClassifier(hidden_layer_sizes=(256, 256), learning_rate=3e-2, epochs=200, patience=5, device="cpu")
    model.fit(X, noisy)
    assert model.stopped_early_ and model.n_epochs_ < 200
    assert model.best_epoch_ == int(np.argmin(model.validation_losses_)) + 1


def test_categorical_codes_are_embedded_and_unseen_levels_are_tolerated():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 12, size=600).astype(float)
    X = np.column_stack([codes, rng.normal(size=600)])
    y = (codes % 3 == 0).astype(int)  # only the category matters, and not monotonically
    model = TorchMLPClassifier(categorical_mask=(True, False), learning_rate=1e-2, epochs=60, device="cpu").fit(X, y)
    assert model.cardinalities_ == [13]
    assert model.score(X, y) > 0.95
    unseen = np.array([[40.0, 0.0], [np.nan, 0.0]])
    assert model.predict_proba(unseen).shape == (2, 2)


def test_image_shapes_are_inferred_or_refused_clearly():
    assert infer_image_shape(240, None) == (1, 15, 16)  # mfeat_pixel
    assert infer_image_shape(784, None) == (1, 28, 28)
    assert infer_image_shape(48, (3, 4, 4)) == (3, 4, 4)
    with pytest.raises(ValueError, match="pass image_shape"):
        infer_image_shape(13, None)
    with pytest.raises(ValueError, match="does not hold"):
        infer_image_shape(240, (10, 10))


def test_cnn_tells_vertical_from_horizontal_bars():
    rng = np.random.default_rng(3)
    images, labels = [], []
    for i in range(300):
        image = rng.normal(scale=0.3, size=(8, 8))
        row = rng.integers(0, 8)
        if i % 2:
            image[:, row] += 2.0
        else:
            image[row, :] += 2.0
        images.append(image.ravel())
        labels.append(i % 2)
    X, y = np.array(images), np.array(labels)
    model = TorchCNNClassifier(channels=(8,), epochs=30, learning_rate=3e-3, device="cpu").fit(X[:200], y[:200])
    assert model.image_shape_ == (1, 8, 8)
    assert model.score(X[200:], y[200:]) > 0.9


def test_widths_exist_only_under_the_depth_that_uses_them():
    rng = np.random.default_rng(0)
    for _ in range(50):
        params = MLP_SPACE.sample(rng)
        depth = params["n_layers"]
        assert all(f"width_{i}" in params for i in range(1, depth + 1))
        assert not any(f"width_{i}" in params for i in range(depth + 1, 5))
        assert not MLP_SPACE.problems(params)
        blocks = CNN_SPACE.sample(rng)
        assert ({k for k in blocks if k.startswith("channels_")}
                == {f"channels_{i}" for i in range(1, blocks["n_blocks"] + 1)})
    assert "width_3" in MLP_SPACE.problems({**MLP_SPACE.default(), "width_3": 64})[0]  # inactive at depth 2
    assert json.loads(MLP_SPACE.to_json()) == json.loads(type(MLP_SPACE).from_json(MLP_SPACE.to_json()).to_json())


def _evaluator(X, y):
    dataset = automl.data.dataset.load_dataset(X, y)
    learner = get_learner("mlp", "classification")
    return Evaluator(dataset, get_metric(None, dataset.task), {"mlp": learner}, Resampling("cv", n_folds=2), seed=0)


def test_a_pruner_stops_a_trial_after_the_epochs_it_has_seen():
    X, y = blobs()
    evaluator = _evaluator(X, y)
    config = Config("mlp", {**MLP_SPACE.default(), "epochs": 50})
    steps = []

    def stop_at_three(step, value):
        steps.append((step, value))
        return step >= 3

    result = evaluator.evaluate(config, report=stop_at_three)
    assert result.status == PRUNED and [s for s, _ in steps] == [1, 2, 3]
    full = evaluator.evaluate(Config("mlp", {**MLP_SPACE.default(), "epochs": 5}), report=lambda step, value: False)
    assert full.status == OK and len(full.fold_values) == 2


def test_fit_searches_the_architecture_and_prunes_poor_trials():
    X, y = blobs(400)
    model = automl.fit(X, y, learners=["mlp"], n_trials=12, time_budget=None, pruner="sha", warm_start=False,
                       remember=False, verbose=0, seed=0)
    board = model.leaderboard()
    assert (board["status"] == "ok").sum() >= 2
    assert board["params"].map(lambda p: p["n_layers"]).nunique() > 1  # depth is searched
    assert (board["status"] == "pruned").any()
    assert model.score(X, y) > 0.85


def test_a_short_neural_search_ends_with_the_network_it_found():
    """The final fit runs in a fresh worker: torch's first-use imports must not eat the seconds left for it."""
    X, y = blobs(400)
    model = automl.fit(X, y, learners=["mlp"], time_budget=8, warm_start=False, remember=False, verbose=0, seed=0)
    assert "constant predictor" not in model.summary.refit_note
    assert model.score(X, y) > 0.85


def _neural_knowledge(n_tasks=16):
    """Tasks whose best learning rate follows their 'scale' meta-feature: 1e-3 on small ones, 3e-2 on large ones."""
    tasks, meta, configs, runs = [], [], {}, []
    for i in range(n_tasks):
        name, large = f"n{i}", i % 2 == 1
        tasks.append({"name": name, "source": "corpus", "task_type": "binary", "metric": "roc_auc", "n_rows": 100,
                      "n_features": 5, "n_classes": 2, "status": "ok"})
        meta.append({"task": name, "version": EXTRACTOR_VERSION, "source": "automl", "seconds": 0.1,
                     "features": json.dumps({"scale": (3.0 if large else -3.0) + 0.1 * i, "other": float(i % 3)})})
        best = 3e-2 if large else 1e-3
        for architecture in NEURAL_ARCHITECTURES.values():
            for rate in NEURAL_LEARNING_RATES:
                config = Config("mlp", {**architecture, **NEURAL_TRAINING, "learning_rate": rate})
                configs[config.key()] = config
                score = 0.9 - 0.05 * abs(np.log10(rate) - np.log10(best))
                runs.append({"run_key": f"{name}-{config.key()}", "task": name, "config_id": config.key(),
                             "metric": "roc_auc", "fold_scores": "[]", "score": score, "fit_seconds": 1.0,
                             "status": "ok", "error": "", "origin": "test", "created": 0.0, "engine_version": ""})
    config_rows = [{"config_id": k, "learner": "mlp", "params": json.dumps(dict(c.params)), "space_version": ""}
                   for k, c in configs.items()]
    return Knowledge(pd.DataFrame(tasks), pd.DataFrame(meta), pd.DataFrame(config_rows), pd.DataFrame(runs))


def test_the_learning_rate_model_learns_which_rate_suits_which_task():
    knowledge = _neural_knowledge()
    best = best_learning_rates(knowledge)
    assert len(best) == 16 * len(NEURAL_ARCHITECTURES)
    prior = LearningRatePrior().fit(knowledge)
    default = MLP_SPACE.default()
    small = prior.predict({"scale": -3.0, "other": 0.0}, default)
    large = prior.predict({"scale": 3.0, "other": 0.0}, default)
    assert 5e-4 < small < 2e-3 and 1.5e-2 < large < 6e-2
    assert not LearningRatePrior().fit(Knowledge.empty()).fitted


def test_the_predicted_rate_centres_the_search_prior_and_starts_the_search(tmp_path):
    from automl.knowledge import warm_start as warm
    from tests.knowledge_builders import write_knowledge

    kb = tmp_path / "kb.sqlite"
    write_knowledge(kb, _neural_knowledge())
    learners = {"mlp": get_learner("mlp", "classification")}
    plan = warm.plan_warm_start({"scale": 3.0, "other": 0.0}, "binary", learners, k=3, kb=kb)
    rate = plan.priors["mlp"]["learning_rate"]
    full = MLP_SPACE["learning_rate"]
    assert full.low < rate.low < 3e-2 < rate.high < full.high  # centred on the prediction, narrower than the space
    from_prior = [s for s in plan.suggestions if s.method == "lr-prior"]
    assert len(from_prior) == 1 and rate.low < from_prior[0].config.params["learning_rate"] < rate.high


def test_without_torch_the_error_says_how_to_enable_neural_learners(monkeypatch):
    from searchspaces import registry

    monkeypatch.setattr(registry, "_LEARNERS", {k: v for k, v in registry._LEARNERS.items() if k[0] != "mlp"})
    with pytest.raises(KeyError, match="pip install"):
        get_learner("mlp", "classification")
