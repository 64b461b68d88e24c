"""Pruning and int8 quantization of the neural learners (searchspaces.networks.compression, the estimators' options)."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import joblib  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from torch import nn  # noqa: E402

from searchspaces.learner import BuildContext  # noqa: E402
from searchspaces.networks import compression  # noqa: E402
from searchspaces.networks.estimators import (  # noqa: E402
    TorchCNNClassifier,
    TorchMLPClassifier,
    TorchMLPRegressor,
)
from searchspaces.sklearn_learners import builtin_learners  # noqa: E402
from searchspaces.torch_learners import CNN, MLP, compressible, is_compressible  # noqa: E402

torch.set_num_threads(1)
FAST = {"epochs": 12, "learning_rate": 1e-2, "device": "cpu", "n_jobs": 1, "random_state": 0}
MLP_NAMES = ["n_layers", "width_1", "width_2", "width_3", "width_4", "activation", "norm", "dropout", "residual",
             "learning_rate", "weight_decay", "batch_size", "schedule", "epochs"]


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=500, n_features=20, n_informative=8, random_state=0)
    return X[:350], y[:350], X[350:], y[350:]


def _fit(data, cls=TorchMLPClassifier, **options):
    X, y, _, _ = data
    return cls(**FAST, **options).fit(X, y)


def _hidden_and_output(model):
    layers = compression.prunable_layers(model.network_)
    return layers[:-1], layers[-1]


@pytest.mark.parametrize("amount", [0.5, 0.9])
def test_magnitude_pruning_zeroes_the_stated_share(data, amount):
    model = _fit(data, prune_amount=amount)
    hidden, output = _hidden_and_output(model)
    weights = [layer.weight.detach() for layer in hidden]
    share = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert share == pytest.approx(amount, abs=0.01)
    assert int((output.weight == 0).sum()) == 0  # the output layer is left whole
    assert amount - 0.03 < model.compression_.zeroed_share <= share  # over every layer, the output one included
    assert model.compression_.n_nonzero < model.compression_.n_parameters
    assert not any(name.endswith("_mask") for name, _ in model.network_.named_buffers())  # pruning made permanent


def test_structured_pruning_zeroes_whole_neurons(data):
    model = _fit(data, prune_amount=0.5, prune_structured=True)
    hidden, output = _hidden_and_output(model)
    for layer in hidden:
        rows = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        zero_rows = (rows == 0).all(dim=1)
        assert int(zero_rows.sum()) == round(0.5 * len(rows))
        assert int((rows[~zero_rows] == 0).sum()) == 0  # only whole rows are zeroed
    assert int((output.weight == 0).all(dim=1).sum()) == 0  # every class keeps its logit
    assert model.compression_.prune_structured


def test_structured_pruning_of_cnn_channels():
    X = np.random.default_rng(0).normal(size=(240, 64))
    y = (X[:, :32].sum(axis=1) > 0).astype(int)
    model = TorchCNNClassifier(epochs=2, device="cpu", n_jobs=1, prune_amount=0.5, prune_structured=True,
                               finetune_epochs=1).fit(X, y)
    convs = [m for m in model.network_.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        channels = conv.weight.detach().reshape(conv.out_channels, -1)
        assert int((channels == 0).all(dim=1).sum()) == conv.out_channels // 2


def test_quantization_shrinks_the_pickle_and_runs_on_cpu(data):
    plain, quantized = _fit(data), _fit(data, quantize=True)
    assert plain.compression_ is None
    assert compression.is_quantized(quantized.network_)
    assert not any(type(m) is nn.Linear for m in quantized.network_.modules())  # every Linear is int8 now
    assert quantized.device_.type == "cpu"
    assert len(pickle.dumps(quantized)) < 0.5 * len(pickle.dumps(plain))
    report = quantized.compression_
    assert report.quantized and report.bytes_after < 0.5 * report.bytes_before


def test_pruning_shrinks_the_pickle(data):
    plain, pruned = _fit(data), _fit(data, prune_amount=0.9)
    assert len(pickle.dumps(pruned)) < 0.3 * len(pickle.dumps(plain))


@pytest.mark.parametrize("options", [
    {"prune_amount": 0.8},
    {"prune_amount": 0.5, "prune_structured": True},
    {"quantize": True},
    {"prune_amount": 0.9, "quantize": True},
])
def test_compressed_networks_still_beat_chance(data, options):
    _, _, X_test, y_test = data
    model = _fit(data, **options)
    assert model.score(X_test, y_test) > 0.75


@pytest.mark.parametrize("options", [{"prune_amount": 0.8}, {"quantize": True},
                                     {"prune_amount": 0.5, "prune_structured": True, "quantize": True}])
def test_pickled_compressed_models_predict_the_same(data, options):
    _, _, X_test, _ = data
    model = _fit(data, **options)
    expected = model.predict_proba(X_test)
    again = pickle.loads(pickle.dumps(model))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    for copy in (again, loaded):
        np.testing.assert_allclose(copy.predict_proba(X_test), expected, atol=1e-6)
        assert copy.compression_ == model.compression_
    np.testing.assert_allclose(model.predict_proba(X_test), expected)  # pickling left the original as it was


def test_compressed_regressor_and_cnn_round_trip():
    X, y = make_regression(n_samples=300, n_features=8, noise=1.0, random_state=0)
    model = TorchMLPRegressor(**FAST, prune_amount=0.8, quantize=True).fit(X, y)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).predict(X), model.predict(X), atol=1e-6)
    assert np.corrcoef(model.predict(X), y)[0, 1] > 0.8
    images = np.random.default_rng(1).normal(size=(200, 64))
    labels = (images[:, :32].sum(axis=1) > 0).astype(int)
    cnn = TorchCNNClassifier(epochs=2, device="cpu", n_jobs=1, quantize=True).fit(images, labels)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(cnn)).predict_proba(images), cnn.predict_proba(images),
                               atol=1e-6)


def test_pack_state_round_trip():
    network = nn.Sequential(nn.Linear(6, 32), nn.BatchNorm1d(32), nn.Linear(32, 2))
    compression.prune_network(network, 0.7, structured=False)
    compression.make_permanent(network)
    state = compression.unpack_state(pickle.loads(pickle.dumps(compression.pack_state(network.state_dict()))))
    for key, value in network.state_dict().items():
        assert torch.equal(state[key], value)


@pytest.mark.parametrize("options, message", [
    ({"prune_amount": 1.5}, "prune_amount"),
    ({"prune_amount": -0.1}, "prune_amount"),
    ({"finetune_epochs": -1}, "finetune_epochs"),
    ({"quantize": "yes"}, "quantize"),
])
def test_invalid_options_give_a_clear_error(data, options, message):
    with pytest.raises(ValueError, match=message):
        _fit(data, **options)


def test_a_quantized_network_refuses_warm_start(data):
    X, y, _, _ = data
    model = _fit(data, quantize=True, warm_start=True)
    with pytest.raises(ValueError, match="quantized"):
        model.fit(X, y)


def test_compressible_learner_searches_the_options():
    assert MLP.space.names == MLP_NAMES  # the plain learners' spaces are as before
    assert "prune_amount" not in CNN.space.names
    variant = compressible(MLP)
    assert variant.name == "mlp" and variant.space.names == MLP_NAMES + ["prune_amount", "prune_structured", "quantize"]
    assert variant.space.fingerprint() != MLP.space.fingerprint()
    assert compressible(variant) is variant
    assert variant.space["prune_amount"].choices == (0.0, 0.5, 0.8, 0.9)
    assert "prune_structured" not in variant.space.default()  # only when pruning
    assert variant.space.problems(variant.space.default()) == []
    params = dict(variant.space.default(), prune_amount=0.8, prune_structured=True, quantize=True)
    estimator = variant.build(params, BuildContext(task="binary", n_rows=100, n_features=5))
    assert (estimator.prune_amount, estimator.prune_structured, estimator.quantize) == (0.8, True, True)
    assert pickle.loads(pickle.dumps(variant)).space == variant.space
    assert is_compressible(compressible(CNN))


def test_compressible_refuses_other_learners():
    linear = next(learner for learner in builtin_learners() if learner.name == "linear")
    assert not is_compressible(linear)
    with pytest.raises(ValueError, match="no compression options"):
        compressible(linear)


def test_fine_tuning_is_bounded_and_can_be_skipped(data):
    tuned = _fit(data, prune_amount=0.8, finetune_epochs=3)
    assert 1 <= tuned.compression_.finetune_epochs <= 3
    untuned = _fit(data, prune_amount=0.8, finetune_epochs=0)
    assert untuned.compression_.finetune_epochs == 0
    assert untuned.compression_.zeroed_share == pytest.approx(tuned.compression_.zeroed_share, abs=0.01)
