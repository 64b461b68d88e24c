"""The Ray backend on a real multi-node cluster started on this machine (marked ``ray``)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

import automl  # noqa: E402
import searchspaces  # noqa: E402
from searchspaces import Categorical, Learner, SearchSpace  # noqa: E402
from tests.conftest import pmlb_path  # noqa: E402
from tests.misbehaving import slow_learner  # noqa: E402
from tests.ray_cluster import local_cluster  # before ray: it sets the session's auth token

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]  # minutes of cluster start-ups: their own target, pytest -m ray


def _use(cluster, monkeypatch):
    """Connect this process to ``cluster`` on the next fit (a fresh connection per cluster)."""
    import ray

    ray.shutdown()


@pytest.fixture(scope="module")
def two_nodes():
    with local_cluster(worker_nodes=1, cpus_per_node=1) as cluster:
        yield cluster


def data():
    return pd.read_csv(pmlb_path("prnn_crabs"), sep="\t"), "target"


def test_trials_run_on_both_nodes_and_the_leaderboard_says_where(two_nodes, monkeypatch):
    _use(two_nodes, monkeypatch)
    frame, target = data()
    # how closely a cluster search keeps its budget is measured by benchmarks/ray_overhead.py
    model = automl.fit(frame, target=target, time_budget=20, backend="ray", address=two_nodes.address,
                       warm_start=False, remember=False, verbose=0)
    board = model.leaderboard()
    assert set(board["node"]) == {"127.0.0.2", "127.0.0.3"}
    assert board.loc[0, "status"] == "ok" and len(board) >= 6
    assert model.predict(frame.drop(columns=target)).shape == (len(frame),)


def test_same_answers_as_the_optuna_backend_on_a_fixed_seed(two_nodes, monkeypatch):
    _use(two_nodes, monkeypatch)
    frame, target = data()
    common = dict(target=target, time_budget=None, n_trials=8, pruner=None, warm_start=False, remember=False, verbose=0,
                  seed=3, learners=["linear", "knn"])
    local = automl.fit(frame, **common)
    remote = automl.fit(frame, backend="ray", address=two_nodes.address, max_concurrent=1, **common)
    key = lambda board: sorted((str(p), round(s, 10)) for p, s in zip(board["params"], board["score"]))  # noqa: E731
    assert key(local.leaderboard()) == key(remote.leaderboard())
    assert local.best_config_ == remote.best_config_


def test_a_resumed_ray_search_keeps_its_finished_trials(two_nodes, monkeypatch, tmp_path):
    _use(two_nodes, monkeypatch)
    frame, target = data()
    common = dict(target=target, time_budget=None, n_trials=4, backend="ray", address=two_nodes.address,
                  storage=str(tmp_path / "study.db"), warm_start=False, remember=False, verbose=0,
                  learners=["linear", "knn"])
    first = automl.fit(frame, **common)
    second = automl.fit(frame, **common)
    assert len(second.leaderboard()) == len(first.leaderboard()) + 4


def test_plain_ray_tune_mode(two_nodes, monkeypatch):
    _use(two_nodes, monkeypatch)
    frame, target = data()
    model = automl.fit(frame, target=target, time_budget=40, backend="ray-tune", address=two_nodes.address,
                       warm_start=False, remember=False, verbose=0, learners=["linear", "knn", "lightgbm"])
    board = model.leaderboard()
    assert (board["status"] == "ok").sum() >= 3 and set(board["node"]) <= {"127.0.0.2", "127.0.0.3"}


@pytest.mark.parametrize("backend", ["ray", "ray-tune"])
def test_a_neural_search_on_ray_stops_poor_architectures_after_a_few_epochs(two_nodes, monkeypatch, backend):
    pytest.importorskip("torch")
    _use(two_nodes, monkeypatch)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    # batched: Optuna's successive halving on the driver; plain Tune: ASHA, both on the epochs each trial reports
    model = automl.fit(X, y, learners=["mlp"], time_budget=None, n_trials=12, backend=backend,
                       address=two_nodes.address, pruner="sha", warm_start=False, remember=False, verbose=0, seed=0)
    board = model.leaderboard()
    assert (board["status"] == "pruned").any() and (board["status"] == "ok").any()
    # stopped trials are on it too, as pruned
    assert len(board) == 12 and set(board["node"]) <= {"127.0.0.2", "127.0.0.3"}
    assert board["params"].map(lambda p: p["n_layers"]).nunique() > 1  # the architecture is searched
    assert model.score(X, y) > 0.85


def test_killing_a_worker_node_mid_search_loses_no_finished_trial(monkeypatch):
    with local_cluster(worker_nodes=1, cpus_per_node=1) as cluster:
        _use(cluster, monkeypatch)
        searchspaces.register_learner(slow_learner(), replace=True)
        frame, target = data()
        outcome = {}

        def search():
            outcome["model"] = automl.fit(frame, target=target, time_budget=40, backend="ray", address=cluster.address,
                                          learners=["slow", "knn"], warm_start=False, remember=False, verbose=0)

        try:
            thread = threading.Thread(target=search)
            thread.start()
            time.sleep(18)
            cluster.kill_node(cluster.nodes[1])
            thread.join(timeout=120)
        finally:
            searchspaces.unregister_learner("slow")
        assert "model" in outcome, "the search did not finish"
        board = outcome["model"].leaderboard()
        on_killed = board[(board["node"] == "127.0.0.3") & (board["status"] == "ok")]
        assert len(on_killed) >= 2  # trials finished on the node before it died are kept
        after = board[(board["node"] == "127.0.0.2") & (board["finished_at"] > on_killed["finished_at"].max() + 1)]
        assert len(after) >= 1  # and the search went on without it
        assert outcome["model"].summary.refit_note == ""  # and the final model is the real one


def test_gpu_learners_get_gpu_slots_and_cpu_learners_never_hold_one(monkeypatch):
    from sklearn.dummy import DummyClassifier

    gpu_learner = Learner("gpu_dummy", frozenset({"classification"}),
                          SearchSpace((Categorical("strategy", ("prior", "stratified")),)),
                          lambda params, context: DummyClassifier(**params), gpu=True)
    searchspaces.register_learner(gpu_learner, replace=True)
    try:
        with local_cluster(worker_nodes=1, cpus_per_node=2, worker_gpus=1) as cluster:
            _use(cluster, monkeypatch)
            frame, target = data()
            model = automl.fit(frame, target=target, time_budget=None, n_trials=10, backend="ray",
                               address=cluster.address, learners=["gpu_dummy", "linear"], warm_start=False,
                               remember=False, verbose=0)
    finally:
        searchspaces.unregister_learner("gpu_dummy")
    board = model.leaderboard()
    assert (board.loc[board["learner"] == "gpu_dummy", "gpus"] == "0").all()
    assert (board.loc[board["learner"] == "linear", "gpus"] == "").all()
    assert set(board.loc[board["learner"] == "gpu_dummy", "node"]) == {"127.0.0.3"}  # the only node with a GPU


def test_a_meta_hyperparameter_search_runs_its_trials_on_the_cluster(two_nodes, monkeypatch):
    pytest.importorskip("torch")
    from automl.learn2learn.meta_search import TRIALS
    from automl.learn2learn.series import sinusoid

    _use(two_nodes, monkeypatch)
    monkeypatch.setenv("RAY_ADDRESS", two_nodes.address)
    meta = automl.meta_fit(sinusoid(), algorithm="fomaml", shots=5, search=True, backend="ray", time_budget=30,
                           verbose=0)
    assert len(meta.trials) == TRIALS and meta.validation_score is not None
    assert {trial["node"] for trial in meta.trials} == {"127.0.0.2", "127.0.0.3"}
    episode = sinusoid().episode(np.random.default_rng(0), 5, 20)
    assert meta.adapt(episode.X_support, episode.y_support).predict(episode.X_query).shape == (20,)
