"""Shared fixtures: corpus datasets from ../shared, temporary files, small learners."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.postgres_server import postgres_server

ROOT = Path(__file__).resolve().parents[1]
PMLB = Path(os.environ.get("AUTOML_PMLB", ROOT.parent / "shared" / "datasets" / "pmlb"))


def pmlb_path(name: str) -> Path:
    """A corpus file; the test is skipped with a clear reason if the corpus is absent."""
    path = PMLB / f"{name}.tsv.gz"
    if not path.exists():
        pytest.skip(f"corpus dataset {name} not found under {PMLB} (set AUTOML_PMLB)")
    return path


@pytest.fixture(autouse=True)
def private_knowledge_base(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's own knowledge base, and start without shipped knowledge
    (tests that need knowledge build their own)."""
    monkeypatch.setenv("AUTOML_KB", str(tmp_path_factory.mktemp("kb") / "kb.sqlite"))
    monkeypatch.setenv("AUTOML_SHIPPED_KB", "none")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))  # the warm-start cache too
    monkeypatch.setenv("AUTOML_BACKGROUND_REFRESH", "0")  # no process outlives its test (one test turns it on)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on 127.0.0.2 for the whole test session (see :mod:`tests.postgres_server`)."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def kb_location(request, tmp_path) -> str:
    """Where a fresh knowledge base is, once in an SQLite file and once on PostgreSQL: the knowledge-base tests run
    against both stores."""
    if request.param == "sqlite":
        return str(tmp_path / "kb.sqlite")
    return request.getfixturevalue("postgres").new_database(f"kb_{abs(hash(request.node.nodeid)) % 10**9}")


@pytest.fixture
def small_binary() -> tuple[pd.DataFrame, np.ndarray]:
    """A small, learnable binary task with a categorical column and missing values."""
    rng = np.random.default_rng(0)
    n = 240
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
        }
    )
    y = ((X["a"] + (X["colour"] == "red") * 1.5 + rng.normal(scale=0.5, size=n)) > 0.5).astype(int).to_numpy()
    X.loc[::17, "b"] = np.nan
    return X, y


@pytest.fixture
def small_regression() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    n = 200
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(size=n)})
    y = 3 * X["a"].to_numpy() - 2 * X["b"].to_numpy() ** 2 + rng.normal(scale=0.1, size=n)
    return X, y


@pytest.fixture(scope="module")
def mixed_rows() -> tuple[pd.DataFrame, np.ndarray]:
    """300 rows of numbers with missing values and categorical columns with a missing and a rare level; yes/no
    labels."""
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 5, n).astype(float),
                          "c": rng.choice(["red", "green", "blue", "rare"], n, p=[0.4, 0.3, 0.29, 0.01]),
                          "d": rng.choice(["x", "y"], n)})
    frame.loc[::7, "a"] = np.nan
    frame.loc[::11, "c"] = None
    return frame, np.where(frame["a"].fillna(0) + (frame["c"] == "red") > 0.3, "yes", "no")
