"""The final model: the best configuration, averaged with those cross-validation cannot tell apart from it.

After many trials on small, noisy data the configuration with the best
cross-validation score is often best partly by luck (the winner's curse): its
lead is smaller than the spread of its fold scores, and it does worse on new
rows than its score promised. Averaging it with the runners-up whose scores
are within that noise trades none of the expected quality for less variance:
for log loss and squared error the average's loss is at most the members'
average loss, and the members are as good as the best within noise.
auto-sklearn and AutoGluon end their searches with an ensemble for the same
reason; this one needs no stored predictions, only the fold scores every
trial already has.

>>> from automl.ensemble import choose_members
>>> members = choose_members(results, metric, size=5)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from automl.evaluation import TrialResult, aligned_proba
from automl.leaderboard import best_result
from automl.metrics import Metric
from searchspaces import Config


def choose_members(results: list[TrialResult], metric: Metric, size: int) -> list[TrialResult]:
    """The best trial, then up to ``size - 1`` others within one standard error of it, best first.

    "Within one standard error" is judged on paired fold scores (every trial of
    a search is scored on the same folds): a trial joins when its mean shortfall
    against the best is no larger than the standard error of that shortfall.
    With a single holdout split there is no spread to judge by, so the best
    trial stays alone.
    """
    best = best_result(results, metric)
    if best is None:
        return []
    members = [best]
    folds = len(best.fold_values)
    if size <= 1 or folds < 2:
        return members
    best_folds = np.asarray(best.fold_values, dtype=float)
    complete = [r for r in results if r.ok and r is not best and len(r.fold_values) == folds]
    seen = {best.config.key()}
    for result in sorted(complete, key=lambda r: metric.loss(r.value)):
        if len(members) == size:
            break
        if result.config.key() in seen:
            continue
        shortfall = metric.loss(np.asarray(result.fold_values, dtype=float) - best_folds)
        if not np.all(np.isfinite(shortfall)):
            continue
        if shortfall.mean() <= shortfall.std(ddof=1) / np.sqrt(folds):
            members.append(result)
            seen.add(result.config.key())
    return members


class Ensemble:
    """Fitted pipelines (preprocessing + model each) whose predictions are averaged with equal weight."""

    def __init__(self, pipelines: list[Any], configs: list[Config]):
        if not pipelines or len(pipelines) != len(configs):
            raise ValueError("an ensemble needs one configuration per fitted pipeline, and at least one")
        self.pipelines = list(pipelines)
        self.configs = list(configs)

    def add(self, pipeline: Any, config: Config) -> None:
        self.pipelines.append(pipeline)
        self.configs.append(config)

    def __len__(self) -> int:
        return len(self.pipelines)

    def predict(self, X: Any) -> np.ndarray:
        """The members' mean prediction (regression)."""
        return np.mean([np.asarray(p.predict(X), dtype=float).ravel() for p in self.pipelines], axis=0)

    def predict_proba(self, X: Any, n_classes: int) -> np.ndarray:
        """The members' mean class probabilities, one column per class of the task."""
        return np.mean([aligned_proba(p[-1], p[:-1].transform(X), n_classes) for p in self.pipelines], axis=0)
