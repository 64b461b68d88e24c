"""Task series: seeded sources of few-shot episodes drawn from related tasks, for meta-learning.

An episode is one task's small support set (what a network adapts on) and its
query set (what the adapted network is scored on). A series draws episodes
from a family of related tasks; meta-learning (:mod:`automl.learn2learn.algorithms`)
trains across many episodes so that a network learns a new task of the family
from a handful of examples. Series: :func:`sinusoid`, :func:`from_function` (a
user's sampler), :func:`from_groups` (one table split by a column),
:func:`from_datasets` (tables with one schema) and :func:`automl.learn2learn.omniglot.omniglot`.

>>> import numpy as np
>>> series = sinusoid()
>>> episode = series.episode(np.random.default_rng(0), shots=5, query=10)
>>> episode.X_support.shape, episode.y_query.shape
((5, 1), (10,))
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from automl.data.sources import read_table
from automl.errors import DataError

REGRESSION, CLASSIFICATION = "regression", "classification"


@dataclass(frozen=True)
class Episode:
    """One task's support set (to adapt on) and query set (to score on); labels of classification run 0..ways-1."""

    X_support: np.ndarray
    y_support: np.ndarray
    X_query: np.ndarray
    y_query: np.ndarray
    task: str  # "regression" or "classification"


class TaskSeries(ABC):
    """A family of related tasks, from which :meth:`episode` draws one task's few-shot data."""

    task: str

    @abstractmethod
    def episode(self, rng: np.random.Generator, shots: int, query: int, ways: int | None = None) -> Episode:
        """A new task's episode: ``shots`` support and ``query`` query examples (per class, for classification)."""


class Sinusoid(TaskSeries):
    """The standard few-shot regression family: ``y = A sin(x - phase)`` with A, phase and x drawn uniformly."""

    task = REGRESSION

    def __init__(self, amplitude: tuple[float, float] = (0.1, 5.0), phase: tuple[float, float] = (0.0, math.pi),
                 x_range: tuple[float, float] = (-5.0, 5.0)):
        for name, (low, high) in (("amplitude", amplitude), ("phase", phase), ("x_range", x_range)):
            if not low <= high:
                raise DataError(f"sinusoid {name} must be a (low, high) pair with low <= high, got {(low, high)}")
        self.amplitude, self.phase, self.x_range = amplitude, phase, x_range

    def episode(self, rng, shots, query, ways=None):
        _check_sizes(shots, query)
        amplitude, phase = rng.uniform(*self.amplitude), rng.uniform(*self.phase)
        x = rng.uniform(*self.x_range, size=(shots + query, 1)).astype(np.float32)
        y = (amplitude * np.sin(x[:, 0] - phase)).astype(np.float32)
        return Episode(x[:shots], y[:shots], x[shots:], y[shots:], REGRESSION)


class FunctionSeries(TaskSeries):
    """Tasks drawn by a user's callable ``sample(rng) -> (X, y)``, one task's data per call."""

    def __init__(self, sample: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]], task: str = REGRESSION):
        if task not in (REGRESSION, CLASSIFICATION):
            raise DataError(f"task must be {REGRESSION!r} or {CLASSIFICATION!r}, got {task!r}")
        self.sample, self.task = sample, task

    def episode(self, rng, shots, query, ways=None):
        _check_sizes(shots, query)
        X, y = self.sample(rng)
        X, y = np.asarray(X, dtype=np.float32), np.asarray(y)
        if X.ndim != 2 or len(X) != len(y):
            raise DataError(f"sample(rng) must return X of shape (rows, features) and y of one value per row, "
                            f"got X {X.shape} and y {y.shape}")
        if self.task == REGRESSION:
            return _regression_episode(X, y.astype(np.float32), rng, shots, query)
        return _classification_episode(X, y, rng, shots, query, ways)


def sinusoid(amplitude: tuple[float, float] = (0.1, 5.0), phase: tuple[float, float] = (0.0, math.pi),
             x_range: tuple[float, float] = (-5.0, 5.0)) -> Sinusoid:
    """The sinusoid regression family of the MAML and Meta-SGD papers (amplitude 0.1–5, phase 0–π, x in [-5, 5])."""
    return Sinusoid(amplitude, phase, x_range)


def from_function(sample: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]],
                  task: str = REGRESSION) -> FunctionSeries:
    """A series whose tasks ``sample(rng)`` draws: each call returns one new task's ``(X, y)``."""
    return FunctionSeries(sample, task)


def _check_sizes(shots: int, query: int) -> None:
    if shots < 1 or query < 1:
        raise DataError("an episode needs at least one support and one query example, "
                        f"got shots={shots}, query={query}")


def _regression_episode(X: np.ndarray, y: np.ndarray, rng: np.random.Generator, shots: int, query: int) -> Episode:
    if len(X) < shots + query:
        raise DataError(f"a task has {len(X)} rows, fewer than shots + query = {shots + query}: "
                        "draw more rows per task or ask for fewer shots")
    order = rng.permutation(len(X))
    support, rest = order[:shots], order[shots:shots + query]
    return Episode(X[support], y[support], X[rest], y[rest], REGRESSION)


def _classification_episode(X: np.ndarray, y: np.ndarray, rng: np.random.Generator, shots: int, query: int,
                            ways: int | None) -> Episode:
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"a task has a single class ({classes.tolist()}): few-shot classification needs at least two")
    ways = len(classes) if ways is None else ways
    if not 2 <= ways <= len(classes):
        raise DataError(f"ways={ways}, but a task has {len(classes)} classes: ask for 2 to {len(classes)} ways")
    chosen = rng.choice(len(classes), size=ways, replace=False)
    short = [(classes[i].item(), counts[i]) for i in chosen if counts[i] < shots + query]
    if short:
        label, count = short[0]
        raise DataError(f"class {label!r} has {count} examples, fewer than shots + query = {shots + query} "
                        "per class: ask for fewer shots or query examples")
    parts = {"support": ([], []), "query": ([], [])}
    for new_label, index in enumerate(chosen):
        rows = rng.permutation(np.flatnonzero(y == classes[index]))
        for name, picked in (("support", rows[:shots]), ("query", rows[shots:shots + query])):
            parts[name][0].append(X[picked])
            parts[name][1].append(np.full(len(picked), new_label, dtype=np.int64))
    (Xs, ys), (Xq, yq) = ([np.concatenate(p) for p in parts[name]] for name in ("support", "query"))
    return Episode(Xs, ys, Xq, yq, CLASSIFICATION)


class TableSeries(TaskSeries):
    """Tasks that are given tables with one feature schema: each episode draws one of them."""

    def __init__(self, tables: list[tuple[np.ndarray, np.ndarray]], task: str, names: list[str]):
        self.tables, self.task, self.names = tables, task, names

    def episode(self, rng, shots, query, ways=None):
        _check_sizes(shots, query)
        X, y = self.tables[rng.integers(len(self.tables))]
        if self.task == REGRESSION:
            return _regression_episode(X, y, rng, shots, query)
        return _classification_episode(X, y, rng, shots, query, ways)


def from_groups(frame, target: str, group: str, task: str | None = None) -> TableSeries:
    """One table split into tasks by its ``group`` column (numeric features; ``target`` is the label)."""
    for column in (target, group):
        if column not in frame.columns:
            raise DataError(f"no column {column!r} in the table: its columns are {list(frame.columns)}")
    names = sorted(frame[group].unique().tolist(), key=str)
    parts = [frame[frame[group] == name].drop(columns=[group]) for name in names]
    return _tables(parts, target, task, [str(name) for name in names])


def from_datasets(datasets, target: str = "target", task: str | None = None) -> TableSeries:
    """Several tables with the same feature columns (DataFrames, or CSV, TSV or Parquet paths), each a task."""
    import pandas as pd


    frames = [item if isinstance(item, pd.DataFrame) else read_table(item) for item in datasets]
    names = [f"table{i}" if isinstance(item, pd.DataFrame) else str(item) for i, item in enumerate(datasets)]
    return _tables(frames, target, task, names)


def _tables(frames, target: str, task: str | None, names: list[str]) -> TableSeries:
    if len(frames) < 2:
        raise DataError(f"a series needs at least two tasks, got {len(frames)}")
    schema = [c for c in frames[0].columns if c != target]
    for frame, name in zip(frames, names):
        if target not in frame.columns:
            raise DataError(f"task {name!r} has no target column {target!r}")
        features = [c for c in frame.columns if c != target]
        if features != schema:
            raise DataError(f"task {name!r} has feature columns {features}, the first task {schema}: "
                            "every task of a series needs the same features, in the same order")
    labels = np.concatenate([frame[target].to_numpy() for frame in frames])
    if task is None:
        numeric = np.issubdtype(labels.dtype, np.number)
        task = REGRESSION if numeric and len(np.unique(labels)) > 20 else CLASSIFICATION
    tables = [(frame[schema].to_numpy(dtype=np.float32),
               frame[target].to_numpy(dtype=np.float32) if task == REGRESSION else frame[target].to_numpy())
              for frame in frames]
    return TableSeries(tables, task, names)
