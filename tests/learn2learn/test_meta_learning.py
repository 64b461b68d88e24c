"""Few-shot episodes from task series, and meta-learning that makes a network learn a new task faster."""

from __future__ import annotations

import numpy as np
import pytest

from automl.errors import ConfigError, DataError
from automl.learn2learn.series import from_function, sinusoid

torch = pytest.importorskip("torch")

from automl.learn2learn.algorithms import GRADIENT_ALGORITHMS, MetaLearner  # noqa: E402


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


@pytest.mark.parametrize("algorithm", GRADIENT_ALGORITHMS)
def test_meta_training_makes_a_new_sinusoid_faster_to_learn_than_a_random_start(algorithm):
    settings = {"reptile": {"inner_lr": 0.02, "outer_lr": 0.5, "inner_steps": 5}}.get(
        algorithm, {"inner_lr": 0.01, "outer_lr": 0.003})
    series, rng = sinusoid(), np.random.default_rng(0)
    learner = MetaLearner(small_net(), algorithm, "regression", **settings)
    for _ in range(300):
        learner.meta_step([series.episode(rng, 10, 10) for _ in range(4)])
    random_start = MetaLearner(small_net(seed=1), algorithm, "regression", **settings)
    test = [series.episode(np.random.default_rng(100 + i), 10, 50) for i in range(50)]
    trained = learner.episode_metrics(test, steps=5).mean()
    untrained = random_start.episode_metrics(test, steps=5).mean()
    assert trained < 0.7 * untrained, (trained, untrained)


def test_maml_meta_gradient_matches_finite_differences():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()
    learner = MetaLearner(net, "maml", "regression", inner_lr=0.1, inner_steps=2)
    episode = sinusoid().episode(np.random.default_rng(3), 5, 5)
    learner.tensors = lambda e: tuple(torch.as_tensor(a, dtype=torch.float64)
                                      for a in (e.X_support, e.y_support, e.X_query, e.y_query))
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
    episode = sinusoid().episode(rng, 10, 10)  # adapting takes one step at the learned rates, parameter by parameter
    X, y = (torch.as_tensor(a, dtype=torch.float32) for a in (episode.X_support, episode.y_support))
    loss = torch.mean((torch.func.functional_call(learner.model, learner.params, (X,)).reshape(-1) - y) ** 2)
    grads = dict(zip(learner.params, torch.autograd.grad(loss, list(learner.params.values()))))
    adapted = learner.adapted_params(episode.X_support, episode.y_support, steps=1)
    for name, value in learner.params.items():
        assert torch.allclose(adapted[name], value - learner.rates[name] * grads[name], atol=1e-6)


def test_prototypical_networks_learn_an_embedding_that_separates_new_classes():
    from automl.learn2learn.algorithms import PrototypicalNetwork

    def sample(rng):  # each task: 5 classes around random centres, seen through a fixed random rotation and noise
        centres = rng.normal(size=(5, 2)) * 3
        y = np.repeat(np.arange(5), 20)
        latent = centres[y] + rng.normal(scale=0.5, size=(100, 2))
        return np.concatenate([latent, rng.normal(scale=3.0, size=(100, 8))], axis=1) @ mixing, y

    mixing = np.random.default_rng(42).normal(size=(10, 10))
    series, rng = from_function(sample, "classification"), np.random.default_rng(0)
    torch.manual_seed(0)
    learner = PrototypicalNetwork(torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8)),
                                  outer_lr=0.003)
    test = [series.episode(np.random.default_rng(500 + i), 1, 10, ways=5) for i in range(40)]
    before = learner.episode_metrics(test).mean()
    for _ in range(200):
        learner.meta_step([series.episode(rng, 1, 10, ways=5) for _ in range(4)])
    after = learner.episode_metrics(test).mean()
    assert after > before + 0.1, (before, after)


def test_evaluation_reports_the_metric_by_name_with_a_confidence_interval_that_shrinks_with_episodes():
    from automl.learn2learn.algorithms import evaluate

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
        automl.meta_fit(sinusoid(), algorithm="snail", verbose=0)
    with pytest.raises(ConfigError, match="time_budget"):
        automl.meta_fit(sinusoid(), time_budget=0, verbose=0)
    with pytest.raises(ConfigError, match="cnn"):
        automl.meta_fit(sinusoid(), model="cnn", time_budget=1, verbose=0)


def test_tables_become_a_series_and_mismatched_tables_get_clear_errors(tmp_path):
    import pandas as pd

    from automl.learn2learn.series import from_datasets, from_groups

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


def test_a_batch_of_episodes_is_adapted_at_once_with_the_same_loss_as_one_by_one():
    learner = MetaLearner(small_net(), "maml", "regression", inner_lr=0.05, inner_steps=2)
    rng = np.random.default_rng(4)
    same_shape = [sinusoid().episode(rng, 5, 10) for _ in range(6)]
    one_by_one = np.mean([float(learner.meta_loss([episode])) for episode in same_shape])
    assert float(learner.meta_loss(same_shape)) == pytest.approx(one_by_one, rel=1e-5)  # vectorised (vmap)
    mixed = [*same_shape[:3], sinusoid().episode(rng, 7, 10)]  # shapes differ: adapted one after another
    assert float(learner.meta_loss(mixed)) == pytest.approx(np.mean([float(learner.meta_loss([e])) for e in mixed]),
                                                            rel=1e-5)


def three_blobs(rng):
    """A task: three classes around random centres in 4 dimensions."""
    centres = rng.normal(size=(3, 4)) * 3
    y = np.repeat(np.arange(3), 12)
    return (centres[y] + rng.normal(scale=0.5, size=(36, 4))).astype(np.float32), y


def test_prototypical_networks_meta_fit_and_adapt_to_labels_of_any_kind():
    import automl

    series = from_function(three_blobs, "classification")
    meta = automl.meta_fit(series, algorithm="protonet", ways=3, shots=2, query=5, time_budget=3, verbose=0)
    X, y = three_blobs(np.random.default_rng(11))
    names = np.array(["ash", "birch", "cedar"])[y]
    adapted = meta.adapt(X[::6], names[::6])
    assert set(adapted.predict(X)) <= set(names) and np.mean(adapted.predict(X) == names) > 0.8
    assert np.allclose(adapted.predict_proba(X).sum(axis=1), 1.0)
    assert meta.evaluate(series, query=5, episodes=20).metric == "accuracy"
    with pytest.raises(ConfigError, match="protonet"):
        automl.meta_fit(sinusoid(), algorithm="protonet", time_budget=1, verbose=0)


def test_a_network_meta_trained_for_three_ways_refuses_a_task_with_more_classes():
    import automl

    meta = automl.meta_fit(from_function(three_blobs, "classification"), algorithm="fomaml", ways=3, shots=2, query=5,
                           time_budget=1, verbose=0)
    X = np.random.default_rng(0).normal(size=(5, 4))
    with pytest.raises(DataError, match="3-way"):
        meta.adapt(X, np.arange(5))


def test_search_tunes_the_meta_hyperparameters_starting_from_the_papers_settings():
    import automl
    from automl.learn2learn.meta_model import MetaSettings
    from automl.learn2learn.meta_search import TRIALS

    meta = automl.meta_fit(sinusoid(), algorithm="maml", shots=5, search=True, time_budget=8, verbose=0)
    assert len(meta.trials) == TRIALS
    defaults = MetaSettings.defaults("maml", "mlp")
    assert {k: v for k, v in meta.trials[0].items() if k not in ("score", "node")} == vars(defaults)
    assert len({(t["inner_lr"], t["width"], t["depth"]) for t in meta.trials}) > 1  # the sampler explored
    assert vars(meta.settings) in [{k: v for k, v in t.items() if k not in ("score", "node")} for t in meta.trials]
    with pytest.raises(ConfigError, match="backend"):
        automl.meta_fit(sinusoid(), search=True, backend="dask", time_budget=1, verbose=0)


def test_the_device_is_the_gpu_when_torch_sees_one_and_a_bad_name_is_refused():
    from automl.learn2learn.meta_model import choose_device

    assert choose_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="device"):
        choose_device("quantum")


def test_a_prototypical_network_trains_on_the_episodes_the_benchmark_found_best_unless_told_otherwise():
    """Five queries a class and one episode a step for Prototypical Networks; the gradient learners keep 15."""
    import automl

    series = from_function(three_blobs, "classification")
    protonet = automl.meta_fit(series, algorithm="protonet", ways=3, shots=2, time_budget=1, verbose=0)
    assert (protonet.progress.query, protonet.progress.meta_batch) == (5, 1)
    told = automl.meta_fit(series, algorithm="protonet", ways=3, shots=2, query=7, time_budget=1, verbose=0)
    assert told.progress.query == 7
    maml = automl.meta_fit(sinusoid(), algorithm="maml", shots=5, time_budget=1, verbose=0)
    assert maml.progress.query == 15
