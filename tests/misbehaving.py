"""Learners that misbehave on purpose: they sleep, crash the process, raise, or eat memory."""

from __future__ import annotations

import os
import time

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from searchspaces import Categorical, Learner, SearchSpace


class Misbehaving(DummyClassifier):
    def __init__(self, mode: str = "ok"):
        self.mode = mode
        super().__init__(strategy="prior")

    def fit(self, X, y):
        if self.mode == "sleep":
            time.sleep(3600)
        elif self.mode == "crash":
            os._exit(7)
        elif self.mode == "raise":
            raise RuntimeError("this learner always fails")
        elif self.mode == "memory":
            np.ones((1024, 1024, 1024))  # 8 GB
        return super().fit(X, y)


def misbehaving_learner(modes=("ok", "sleep", "crash", "raise", "memory")) -> Learner:
    return Learner(
        name="misbehaving",
        tasks=frozenset({"classification"}),
        space=SearchSpace((Categorical("mode", tuple(modes)),), name="misbehaving"),
        build=lambda params, context: Misbehaving(**params),
    )


class SlowLogistic(DummyClassifier):
    """Takes a quarter of a second per fit: long enough to kill a node mid-search."""

    def __init__(self, C: float = 1.0):
        self.C = C
        super().__init__(strategy="prior")

    def fit(self, X, y):
        time.sleep(0.25)
        return super().fit(X, y)


def slow_learner() -> Learner:
    return Learner(
        name="slow",
        tasks=frozenset({"classification"}),
        space=SearchSpace((Categorical("C", (0.01, 0.1, 1.0, 10.0, 100.0)),), name="slow"),
        build=lambda params, context: SlowLogistic(**params),
    )


def slow_on_many_rows_learner(rows: int) -> Learner:
    """Sleeps on more than ``rows`` rows, fits the class priors on fewer: every trial of a search on more times out."""
    return Learner(
        name="slow_on_many_rows",
        tasks=frozenset({"classification"}),
        space=SearchSpace((Categorical("mode", ("sleep",)),), name="slow_on_many_rows"),
        build=lambda params, context: Misbehaving("sleep" if context.n_rows > rows else "ok"),
    )


class FailsOnAllRows(LogisticRegression):
    """A logistic regression that raises when fitted on more than ``rows`` rows: fine in the folds, broken at the
    end."""

    def __init__(self, rows: int = 300, C: float = 1.0):
        self.rows = rows
        super().__init__(C=C)

    def fit(self, X, y, sample_weight=None):
        if len(X) > self.rows:
            raise RuntimeError("this learner fails on all the rows")
        return super().fit(X, y, sample_weight)


def fails_on_all_rows_learner(rows: int) -> Learner:
    return Learner(
        name="fails_on_all_rows",
        tasks=frozenset({"classification"}),
        space=SearchSpace((Categorical("C", (0.1, 1.0, 10.0)),), name="fails_on_all_rows"),
        build=lambda params, context: FailsOnAllRows(rows, **params),
    )
