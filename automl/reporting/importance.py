"""Permutation feature importance: how much a model's score drops when one input column is shuffled.

Shuffling a column's values across rows keeps its distribution and breaks
its link to the target; the drop in the task's metric is what the model owes
that column. Importance is always oriented so that positive means useful,
for losses (RMSE, log loss) as for scores (ROC AUC): it is the rise in the
metric's loss. Each input column is one row of the answer, even where it
became several features (a date column's parts are shuffled together).

It must be measured on rows the model did not train on; on its own
training rows a model that memorised noise would call the noise important.
:meth:`automl.model.AutoModel.feature_importance` measures it on rows the
user holds out; :func:`out_of_fold_importance` at the end of a fit refits the
final model's leading configuration on each split's training part and
measures it on that split's validation part.

>>> model.feature_importance(X_test, y_test)  # doctest: +SKIP
   feature  importance     std
0     worst_area    0.0412  0.0061
...
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from automl.search.evaluation import Evaluator, sample_rows
from automl.search.metrics import Metric
from searchspaces import Config

log = logging.getLogger(__name__)

COLUMNS = ["feature", "importance", "std"]
OOF_SPLITS = 3  # splits refitted for out-of-fold importance, at most
OOF_ROWS = 2_000  # validation rows a split's importance is measured on, at most
OOF_TRAIN_ROWS = 10_000  # training rows a split's refit takes, at most (it runs after the fit's budget)
MIN_TRAIN_ROWS = 1_000  # ... and at least, however slow the configuration

Predict = Callable[[pd.DataFrame], np.ndarray]  # feature rows -> probabilities (one column per class) or values


def feature_groups(schema: Any, columns: Sequence[str]) -> dict[str, list[str]]:
    """Each input column of a model's ``schema`` and the feature columns it became (those in ``columns``).

    A date column becomes several numeric features; every other column stays
    one. Feature columns the schema does not explain are their own group.
    """
    present = set(columns)
    outputs = {d.name: list(d.outputs) for d in getattr(schema, "dates", ())}
    groups: dict[str, list[str]] = {}
    for name in getattr(schema, "inputs", ()):
        kept = [c for c in outputs.get(name, [name]) if c in present]
        if kept:
            groups[name] = kept
    covered = {c for kept in groups.values() for c in kept}
    for column in columns:
        if column not in covered:
            groups[str(column)] = [column]
    return groups


def permutation_importance(
    predict: Predict,
    features: pd.DataFrame,
    y: np.ndarray,
    metric: Metric,
    groups: Mapping[str, Sequence[str]] | None = None,
    n_repeats: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Importance of each group of ``features`` for ``predict`` on these rows: mean and std over ``n_repeats`` shuffles.

    ``y``: the target as the metric takes it (class codes ``0..C-1`` or
    values); ``groups``: input column -> its feature columns (default: each
    column alone). Sorted, most important first.
    """
    drops = _drops(predict, features, y, metric, groups, n_repeats, seed)
    return summarise({name: np.asarray(values) for name, values in drops.items()})


def summarise(drops: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row per feature: the mean and standard deviation of its score drops, most important first."""
    rows = [{"feature": name, "importance": float(np.nanmean(v)) if np.isfinite(v).any() else np.nan,
             "std": float(np.nanstd(v)) if np.isfinite(v).any() else np.nan} for name, v in drops.items()]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values("importance", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def _drops(predict: Predict, features: pd.DataFrame, y: np.ndarray, metric: Metric,
           groups: Mapping[str, Sequence[str]] | None, n_repeats: int, seed: int) -> dict[str, list[float]]:
    """Each group's rises in the metric's loss, one per shuffle."""
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be at least 1, got {n_repeats}")
    groups = groups if groups is not None else {str(c): [c] for c in features.columns}
    rng = np.random.default_rng(seed)
    working = features.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        baseline = metric.loss(metric(y, predict(working)))
        drops: dict[str, list[float]] = {}
        for name, columns in groups.items():
            columns = list(columns)
            original = working[columns].copy()
            values = []
            for _ in range(n_repeats):
                order = rng.permutation(len(working))
                for column in columns:
                    working[column] = original[column].iloc[order].set_axis(working.index)
                values.append(float(metric.loss(metric(y, predict(working))) - baseline))
            for column in columns:
                working[column] = original[column]
            drops[name] = values
    return drops


def _affordable_rows(evaluator: Evaluator, config: Config, rows: int, most: int, seconds: float,
                     fit_seconds: float | None) -> int:
    """How many of a split's ``rows`` a refit of ``config`` can take in ``seconds``, from its trial's
    ``fit_seconds``."""
    if not fit_seconds or fit_seconds <= 0:
        return min(rows, most)
    per_split = fit_seconds / max(1, len(evaluator.splits))  # the trial trained on these very splits
    exponent = getattr(evaluator.learners.get(config.learner), "fit_exponent", 1.0) or 1.0
    within = rows * min(1.0, seconds / per_split) ** (1 / exponent)
    return int(min(rows, most, max(MIN_TRAIN_ROWS, within)))


def out_of_fold_importance(
    evaluator: Evaluator,
    config: Config,
    groups: Mapping[str, Sequence[str]] | None = None,
    n_repeats: int = 5,
    seed: int = 0,
    max_splits: int = OOF_SPLITS,
    max_rows: int = OOF_ROWS,
    max_train_rows: int = OOF_TRAIN_ROWS,
    seconds: float = 60.0,
    fit_seconds: float | None = None,
) -> pd.DataFrame:
    """Importance for ``config`` refitted on each of the evaluator's splits' training part, shuffled on its
    validation part.

    At most ``max_splits`` splits, each refitted on at most ``max_train_rows``
    of its training rows and judged on at most ``max_rows`` of its validation
    rows (stratified samples); the drops of all splits and shuffles are pooled. After
    the first split, no further one starts once ``seconds`` are spent (or
    would be, at the pace of the first). ``fit_seconds``: what the
    configuration's trial took on all the splits, to refit on fewer training
    rows (at least ``MIN_TRAIN_ROWS``) when a split's refit would take longer
    than ``seconds``. ``frame.attrs`` says what it was measured on.
    """
    started = time.monotonic()
    classification = evaluator.dataset.kind == "classification"
    pooled: dict[str, list[float]] = {}
    used, rows, fitted = 0, 0, 0
    for index, (train, valid) in enumerate(evaluator.splits[:max_splits]):
        size = _affordable_rows(evaluator, config, len(train), max_train_rows, seconds, fit_seconds)
        train = train[sample_rows(evaluator.y[train], size, seed + index, classification)]
        pipeline = evaluator.fit_rows(config, train)
        chosen = valid[sample_rows(evaluator.y[valid], max_rows, seed + index, classification)]
        features = evaluator.dataset.X.iloc[chosen]
        drops = _drops(partial(evaluator.predict, pipeline), features, evaluator.y[chosen],
                       evaluator.metric, groups, n_repeats, seed + index)
        for name, values in drops.items():
            pooled.setdefault(name, []).extend(values)
        used, rows, fitted = used + 1, rows + len(chosen), max(fitted, len(train))
        spent = time.monotonic() - started
        if spent + spent / used > seconds:
            break
    frame = summarise({name: np.asarray(values) for name, values in pooled.items()})
    frame.attrs.update(source="out-of-fold", splits=used, rows=rows, train_rows=fitted, config=str(config),
                       metric=evaluator.metric.name, seconds=round(time.monotonic() - started, 2))
    log.info("out-of-fold feature importance of %s: %d splits, %d rows, %.1f s", config, used, rows,
             time.monotonic() - started)
    return frame
