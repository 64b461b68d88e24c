"""A first fit on a fresh machine pays nothing to prepare: four `automl fit --time 4` started at once with an empty
cache folder each return a model, and the knowledge base learns all four tasks."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

from metaknowledge.store import KnowledgeBase
from tests.conftest import ROOT


def test_four_first_fits_at_once_on_an_empty_cache_all_return_a_model(tmp_path):
    home = tmp_path / "home"
    env = {key: value for key, value in os.environ.items() if key not in ("AUTOML_KB", "AUTOML_SHIPPED_KB")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), PYTHONPATH=str(ROOT))
    commands = []
    for i, rows in enumerate((1000, 1200, 1400, 1600)):
        X, y = make_classification(n_samples=rows, n_features=8 + i, n_informative=4, random_state=i)
        path = tmp_path / f"data{i}.csv"
        pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])]).assign(label=y).to_csv(path, index=False)
        commands.append([sys.executable, "-m", "automl.cli", "fit", str(path), "--target", "label", "--time", "4",
                         "-q", "--out", str(tmp_path / f"model{i}.pkl")])
    fits = [subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for command in commands]
    outputs = [fit.communicate(timeout=240) for fit in fits]
    for fit, (out, err) in zip(fits, outputs):
        assert fit.returncode == 0, err[-2000:]
        assert "model written to" in out
    assert all((tmp_path / f"model{i}.pkl").exists() for i in range(4))
    tasks = KnowledgeBase(home / ".cache" / "automl" / "kb.sqlite", readonly=True).tasks()
    assert len(tasks) == 4 and np.all(tasks["name"].str.startswith("user/"))
