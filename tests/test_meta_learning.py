"""Few-shot episodes from task series, and meta-learning that makes a network learn a new task faster."""

from __future__ import annotations

import numpy as np
import pytest

from automl.errors import ConfigError, DataError
from automl.series import from_function, sinusoid

torch = pytest.importorskip("torch")

from automl.meta_algorithms import ALGORITHMS, MetaLearner  # noqa: E402


def small_net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 40), torch.nn.ReLU(),
                               torch.nn.Linear(40, 1))


def test_a_sinusoid_episode_holds_one_task_split_into_support_and_query():
    episode = sinusoid().episode(np.random.default_rng(0), shots=5, query=20)
    assert episode.X_support.shape == (5, 1) and episode.X_query.shape == (20, 1)
    X = np.concatenate([episode.X_support, episode.X_query])[:, 0]
    y = np.concatenate([episode.y_support, episode.y_query])
    # one amplitude and one phase fit all 25 points
    def misfit(phase):
        wave = np.sin(X - phase)
        return np.abs(y - wave * (wave @ y) / (wave @ wave)).max()

    assert min(misfit(p) for p in np.linspace(0, np.pi, 4001)) < 1e-2 * np.abs(y).max()


def test_classification_episodes_are_n_way_k_shot_with_labels_from_zero():
    def sample(rng):
        y = np.repeat(np.arange(6), 10)
        return rng.normal(size=(60, 3)) + y[:, None], y

    episode = from_function(sample, "classification").episode(np.random.default_rng(1), shots=2, query=3, ways=4)
    assert sorted(np.unique(episode.y_support)) == [0, 1, 2, 3]
    assert np.bincount(episode.y_support).tolist() == [2] * 4 and np.bincount(episode.y_query).tolist() == [3] * 4


@pytest.mark.parametrize("sample, message", [
    (lambda rng: (np.zeros((10, 2)), np.zeros(10)), "single class"),
    (lambda rng: (np.zeros((10, 2)), np.array([0] * 8 + [1] * 2)), "fewer than shots"),
    (lambda rng: (np.zeros(10), np.arange(10) % 2), "shape"),
])
def test_bad_task_data_gets_a_clear_error(sample, message):
    with pytest.raises(DataError, match=message):
        from_function(sample, "classification").episode(np.random.default_rng(0), shots=3, query=2)


def test_an_unknown_algorithm_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="maml"):
        MetaLearner(small_net(), "mamal", "regression")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_meta_training_makes_a_new_sinusoid_faster_to_learn_than_a_random_start(algorithm):
    settings = {"reptile": {"inner_lr": 0.02, "outer_lr": 0.5, "inner_steps": 5}}.get(algorithm, {"inner_lr": 0.01, "outer_lr": 0.003})
    series, rng = sinusoid(), np.random.default_rng(0)
    learner = MetaLearner(small_net(), algorithm, "regression", **settings)
    for _ in range(300):
        learner.meta_step([series.episode(rng, 10, 10) for _ in range(4)])
    random_start = MetaLearner(small_net(seed=1), algorithm, "regression", **settings)
    test = [series.episode(np.random.default_rng(100 + i), 10, 50) for i in range(50)]
    trained = np.mean([learner.query_loss(e, steps=5) for e in test])
    untrained = np.mean([random_start.query_loss(e, steps=5) for e in test])
    assert trained < 0.7 * untrained, (trained, untrained)


def test_maml_meta_gradient_matches_finite_differences():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()
    learner = MetaLearner(net, "maml", "regression", inner_lr=0.1, inner_steps=2)
    episode = sinusoid().episode(np.random.default_rng(3), 5, 5)
    learner.tensors = lambda e: tuple(torch.as_tensor(a, dtype=torch.float64) for a in (e.X_support, e.y_support, e.X_query, e.y_query))
    loss = learner.meta_loss([episode])
    analytic = torch.autograd.grad(loss, list(learner.params.values()))
    eps = 1e-6
    for (name, param), grad in zip(learner.params.items(), analytic):
        for index in range(min(param.numel(), 3)):
            up, down = shifted(learner, param, index, eps, episode), shifted(learner, param, index, -eps, episode)
            assert (up - down) / (2 * eps) == pytest.approx(float(grad.view(-1)[index]), rel=1e-4, abs=1e-8), name


def shifted(learner, param, index, eps, episode) -> float:
    """The meta-loss with one entry of ``param`` moved by ``eps`` (and put back)."""
    with torch.no_grad():
        param.view(-1)[index] += eps
    loss = float(learner.meta_loss([episode]).detach())
    with torch.no_grad():
        param.view(-1)[index] -= eps
    return loss


def test_meta_sgd_learns_its_learning_rates():
    learner = MetaLearner(small_net(), "metasgd", "regression", inner_lr=0.01, outer_lr=0.003)
    before = {name: rate.detach().clone() for name, rate in learner.rates.items()}
    rng = np.random.default_rng(0)
    for _ in range(20):
        learner.meta_step([sinusoid().episode(rng, 10, 10) for _ in range(4)])
    assert any(not torch.allclose(before[name], rate) for name, rate in learner.rates.items())


def test_prototypical_networks_learn_an_embedding_that_separates_new_classes():
    from automl.meta_algorithms import PrototypicalNetwork

    def sample(rng):  # each task: 5 classes around random centres, seen through a fixed random rotation and noise
        centres = rng.normal(size=(5, 2)) * 3
        y = np.repeat(np.arange(5), 20)
        latent = centres[y] + rng.normal(scale=0.5, size=(100, 2))
        return np.concatenate([latent, rng.normal(scale=3.0, size=(100, 8))], axis=1) @ mixing, y

    mixing = np.random.default_rng(42).normal(size=(10, 10))
    series, rng = from_function(sample, "classification"), np.random.default_rng(0)
    torch.manual_seed(0)
    learner = PrototypicalNetwork(torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8)), outer_lr=0.003)
    test = [series.episode(np.random.default_rng(500 + i), 1, 10, ways=5) for i in range(40)]
    before = np.mean([learner.accuracy(e) for e in test])
    for _ in range(200):
        learner.meta_step([series.episode(rng, 1, 10, ways=5) for _ in range(4)])
    after = np.mean([learner.accuracy(e) for e in test])
    assert after > before + 0.1, (before, after)


def test_evaluation_reports_the_metric_by_name_with_a_confidence_interval_that_shrinks_with_episodes():
    from automl.meta_algorithms import evaluate

    learner = MetaLearner(small_net(), "maml", "regression")
    few = evaluate(learner, sinusoid(), shots=5, episodes=20)
    many = evaluate(learner, sinusoid(), shots=5, episodes=320)
    assert few.metric == "mse" and "95 % CI" in str(many)
    assert many.ci95 < few.ci95 and few.mean > 0

    def sample(rng):
        y = np.repeat(np.arange(3), 10)
        return rng.normal(size=(30, 1)).astype(np.float32) + 3 * y[:, None], y

    classifier = MetaLearner(torch.nn.Linear(1, 3), "maml", "classification", inner_lr=0.5, inner_steps=5)
    result = evaluate(classifier, from_function(sample, "classification"), shots=5, query=5, episodes=30)
    assert result.metric == "accuracy" and 0.0 <= result.mean <= 1.0


def test_meta_fit_returns_a_model_that_adapts_evaluates_and_survives_save_and_load(tmp_path):
    import automl

    meta = automl.meta_fit(sinusoid(), algorithm="metasgd", shots=10, time_budget=6, verbose=0)
    assert len(meta.history) >= 2  # checkpoints were scored
    episode = sinusoid().episode(np.random.default_rng(7), 10, 50)
    adapted = meta.adapt(episode.X_support, episode.y_support, steps=5)
    mse = float(np.mean((adapted.predict(episode.X_query) - episode.y_query) ** 2))
    assert mse < float(np.mean(episode.y_query ** 2))  # better than predicting zero
    meta.save(tmp_path / "meta.pkl")
    loaded = automl.load(tmp_path / "meta.pkl")
    again = loaded.adapt(episode.X_support, episode.y_support, steps=5).predict(episode.X_query)
    assert np.allclose(again, adapted.predict(episode.X_query))
    assert loaded.evaluate(sinusoid(), episodes=30).metric == "mse"
    with pytest.raises(ConfigError, match="predict_proba"):
        adapted.predict_proba(episode.X_query)


def test_meta_fit_refuses_bad_options():
    import automl

    with pytest.raises(ConfigError, match="choose one of"):
        automl.meta_fit(sinusoid(), algorithm="maml++", verbose=0)
    with pytest.raises(ConfigError, match="time_budget"):
        automl.meta_fit(sinusoid(), time_budget=0, verbose=0)
    with pytest.raises(ConfigError, match="cnn"):
        automl.meta_fit(sinusoid(), model="cnn", time_budget=1, verbose=0)


def test_tables_become_a_series_and_mismatched_tables_get_clear_errors(tmp_path):
    import pandas as pd

    from automl.series import from_datasets, from_groups

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=90), "x2": rng.normal(size=90), "shop": np.repeat(["a", "b", "c"], 30)})
    frame["target"] = frame["x1"] * np.repeat([1.0, 2.0, 3.0], 30) + rng.normal(size=90)
    series = from_groups(frame, "target", "shop")
    assert series.task == "regression" and series.names == ["a", "b", "c"]
    episode = series.episode(np.random.default_rng(1), shots=5, query=10)
    assert episode.X_support.shape == (5, 2)

    frame.iloc[:30].drop(columns="shop").to_csv(tmp_path / "one.csv", index=False)
    frame.iloc[30:60].drop(columns="shop").to_csv(tmp_path / "two.tsv", sep="\t", index=False)
    assert len(from_datasets([tmp_path / "one.csv", tmp_path / "two.tsv"]).tables) == 2
    with pytest.raises(DataError, match="same features"):
        from_datasets([frame.drop(columns="shop"), frame.drop(columns=["shop", "x2"])])
    with pytest.raises(DataError, match="no column 'store'"):
        from_groups(frame, "target", "store")
