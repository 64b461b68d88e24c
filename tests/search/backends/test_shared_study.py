"""Several processes sharing one Optuna study without Ray (``automl worker``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import automl
from tests.conftest import ROOT, pmlb_path


def _workers(storage: str, data: str, count: int, trials: int) -> list[subprocess.Popen]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "automl.cli", "worker", data, "--storage", storage, "--study", "shared",
               "--trials", str(trials), "--time", "120", "--learners", "linear", "knn", "-q"]
    return [subprocess.Popen(command + ["--seed", str(i)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
            for i in range(count)]


def _check_shared(storage: str) -> None:
    data = str(pmlb_path("prnn_crabs"))
    processes = _workers(storage, data, count=2, trials=4)
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        assert "worker added 4 trials" in out
    model = automl.fit(data, storage=storage, study_name="shared", n_trials=2, time_budget=None,
                       learners=["linear", "knn"], verbose=0, remember=False)
    board = model.leaderboard()
    assert len(board) == 10  # both workers' trials, and the final fit's own
    assert model.best_score_ == board["score"].max()


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_workers_and_a_final_fit_share_one_study(tmp_path, kind):
    storage = str(tmp_path / ("study.db" if kind == "sqlite" else "study.log"))
    _check_shared(storage)


def test_workers_share_a_postgresql_study(postgres):
    """On a real server the test starts (:mod:`tests.postgres_server`), with a password in the URL."""
    _check_shared(postgres.new_database("shared_study"))
