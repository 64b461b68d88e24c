"""LightGBM as the engine builds it: stable on multiclass data with classes of a few rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl.data.dataset import load_dataset
from automl.pipeline.probabilities import aligned_proba
from automl.search.evaluation import Evaluator, Resampling
from automl.search.metrics import get_metric, log_loss
from searchspaces import get_learner
from tests.conftest import pmlb_path

pytest.importorskip("lightgbm")


def test_default_lightgbm_stays_calibrated_on_a_class_of_a_few_rows():
    """On shuttle's first 6,000 rows (classes of 2 to 4,700 rows), LightGBM's own defaults score a log loss of
    about 7 on the rows after them (the leaves of the rare classes blow up); the engine's build stays near 0."""
    frame = pd.read_csv(pmlb_path("shuttle"), sep="\t")
    y = frame.pop("target").to_numpy()
    train, test = slice(0, 6000), slice(6000, 12000)
    dataset = load_dataset(frame.iloc[train], y[train])
    learner = get_learner("lightgbm", "classification")
    evaluator = Evaluator(dataset, get_metric("log_loss", dataset.task), {"lightgbm": learner},
                          Resampling("cv", n_folds=3))
    model = evaluator.fit_final(learner.default_config())
    seen = np.isin(y[test], dataset.classes)  # a class absent from the first rows cannot be scored
    proba = aligned_proba(model[-1], model[:-1].transform(frame.iloc[test][seen]), len(dataset.classes))
    assert log_loss(np.searchsorted(dataset.classes, y[test][seen]), proba) < 0.1
