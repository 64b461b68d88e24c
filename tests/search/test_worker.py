"""Trials in worker processes: hard time limits, crashes, memory limits, reports."""

from __future__ import annotations

import sys
import time

import pytest

from automl.data.dataset import load_dataset
from automl.search.evaluation import Evaluator, Resampling
from automl.search.metrics import get_metric
from automl.search.worker import WorkerPool
from searchspaces import Config, get_learner
from tests.misbehaving import misbehaving_learner


@pytest.fixture
def evaluator(small_binary) -> Evaluator:
    X, y = small_binary
    learners = {"misbehaving": misbehaving_learner(), "hgb": get_learner("hgb", "classification")}
    return Evaluator(load_dataset(X, y), get_metric(None, "binary"), learners, Resampling("cv", 3))


def run_one(pool: WorkerPool, config: Config, limit: float, on_report=None):
    started = time.monotonic()
    pool.submit(config, started + limit, on_report)
    results = []
    while not results:
        results = pool.wait(30)
    return results[0][1]


def test_a_hanging_trial_is_killed_at_its_limit_and_the_next_one_runs(evaluator):
    with WorkerPool(evaluator) as pool:
        result = run_one(pool, Config("misbehaving", {"mode": "sleep"}), 1.0)
        assert result.status == "timeout" and "time limit" in result.error
        result = run_one(pool, Config("misbehaving", {"mode": "ok"}), 10)
        assert result.ok


def test_a_crashing_trial_is_recorded_and_the_pool_recovers(evaluator):
    with WorkerPool(evaluator) as pool:
        result = run_one(pool, Config("misbehaving", {"mode": "crash"}), 10)
        assert result.status == "crashed" and "exit code 7" in result.error
        result = run_one(pool, Config("misbehaving", {"mode": "raise"}), 10)
        assert result.status == "failed" and "always fails" in result.error
        result = run_one(pool, Config("misbehaving", {"mode": "ok"}), 10)
        assert result.ok


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory limits need Linux")
def test_a_trial_over_its_memory_limit_fails_cleanly(evaluator):
    with WorkerPool(evaluator, memory_limit_mb=512) as pool:
        result = run_one(pool, Config("misbehaving", {"mode": "memory"}), 20)
        assert result.status == "failed" and "MemoryError" in result.error
        result = run_one(pool, Config("misbehaving", {"mode": "ok"}), 10)
        assert result.ok


def test_reports_reach_the_parent_and_its_answer_prunes(evaluator):
    seen = []
    with WorkerPool(evaluator) as pool:
        config = evaluator.learners["hgb"].default_config()
        result = run_one(pool, config, 30, lambda step, value: seen.append((step, value)) or step == 2)
    assert [step for step, _ in seen] == [1, 2]
    assert result.status == "pruned"


def test_parallel_workers_run_trials_at_the_same_time(evaluator):
    with WorkerPool(evaluator, n_workers=2) as pool:
        started = time.monotonic()
        for _ in range(2):
            pool.submit(Config("misbehaving", {"mode": "sleep"}), started + 1.5)
        assert pool.busy == 2 and pool.idle == 0  # both trials run at once, each in its own process
        assert len({worker.process.pid for worker in pool.workers}) == 2
        results = []
        while len(results) < 2:
            results += pool.wait(10)
        assert {r.status for _, r in results} == {"timeout"}


def test_refit_returns_a_fitted_pipeline(evaluator):
    with WorkerPool(evaluator) as pool:
        model, error = pool.refit(evaluator.learners["hgb"].default_config(), time.monotonic() + 60)
    assert error == "" and model.predict(evaluator.dataset.X).shape == (len(evaluator.y),)
