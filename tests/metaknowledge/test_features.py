"""Meta-features: complete, deterministic, robust to awkward data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl.data.dataset import load_dataset
from metaknowledge.features import EXTRACTOR_VERSION, extract
from tests.conftest import pmlb_path


def features_of(X, y, task="binary", categorical=()):
    return extract(X, np.asarray(y), task, categorical, seed=0)


def test_every_group_is_present_and_named():
    dataset = load_dataset(pmlb_path("prnn_crabs"))
    values = extract(dataset.X, dataset.encoded_target(), dataset.task, dataset.categorical)
    groups = {name.split(".")[0] for name in values}
    assert groups == {"simple", "stat", "info", "landmark", "pca"}
    assert values["simple.n_rows"] == 200 and values["simple.n_classes"] == 2
    assert 0.5 < values["landmark.linear"] <= 1.0
    assert EXTRACTOR_VERSION


def test_extraction_is_deterministic_for_a_seed():
    dataset = load_dataset(pmlb_path("mfeat_fourier"))
    first = extract(dataset.X, dataset.encoded_target(), dataset.task, seed=3)
    second = extract(dataset.X, dataset.encoded_target(), dataset.task, seed=3)
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] or (np.isnan(first[k]) and np.isnan(second[k])) for k in first)


def test_awkward_data_gives_a_full_set_of_numbers():
    rng = np.random.default_rng(0)
    n = 120
    X = pd.DataFrame(
        {
            "constant": np.ones(n),
            "mostly_missing": np.where(rng.uniform(size=n) < 0.9, np.nan, rng.normal(size=n)),
            "all_missing": np.full(n, np.nan),
            "colour": pd.Categorical(rng.choice(["a", "b", None], n)),
            "signal": rng.normal(size=n),
        }
    )
    y = np.r_[np.zeros(n - 1, dtype=int), 1]  # a class with a single row
    values = features_of(X, y, "binary", ["colour"])
    reference = extract(*_reference())
    assert values.keys() == reference.keys()
    assert all(isinstance(v, float) for v in values.values())
    assert np.isfinite(values["simple.missing_share"]) and values["stat.constant_share"] > 0


def _reference():
    dataset = load_dataset(pmlb_path("prnn_crabs"))
    return dataset.X, dataset.encoded_target(), dataset.task, dataset.categorical


def test_regression_tasks_fill_target_statistics_and_leave_class_ones_empty():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.uniform(size=300)})
    y = 2 * X["a"].to_numpy() + rng.normal(scale=0.1, size=300)
    values = features_of(X, y, "regression")
    assert np.isnan(values["simple.class_imbalance"]) and np.isnan(values["landmark.naive_bayes"])
    assert values["stat.target_correlation_max"] > 0.9 and values["landmark.linear"] > 0.9


@pytest.mark.parametrize("rows", [5, 12])
def test_tiny_data_works(rows):
    X = pd.DataFrame({"a": np.arange(rows, dtype=float), "b": np.arange(rows, dtype=float) ** 2})
    values = features_of(X, np.arange(rows) % 2)
    assert values["simple.n_rows"] == rows
