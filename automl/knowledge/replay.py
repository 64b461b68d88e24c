"""Replaying a search on the prediction repository: what a policy would have ended with, in milliseconds.

A policy is an order of configurations. Replayed on one task of the
repository at a time budget, it runs as the engine runs it on one core: the
engine starts (``EngineCosts.startup``), then trials run one after another,
each costing its stored seconds scaled to the task's size and the engine's
resampling (:func:`trial_seconds`) plus a little overhead; the search stops
where the engine's does, keeping a reserve for the final fit, and a trial
that would pass that point is lost. The final model is then chosen as the
engine chooses it (:func:`automl.search.ensemble.select_ensemble` over the
finished trials' out-of-fold predictions), and the replay's score is that
ensemble's score on those predictions, normalised as the peer benchmark
normalises (1 = the task's best single candidate, 0 = a constant predictor).

>>> task = ReplayTask(repository.load("analcatdata_boxing1"), repository.configs("classification"))    # doctest: +SKIP
>>> replay(task, ["eb61fef7fc50ece3", ...], budget=10).normalised  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from automl.knowledge.repository import REPOSITORY_FOLDS, TaskPredictions
from automl.search.budget import MAX_RESERVE_SHARE, MIN_RESERVE, REFIT_SAFETY, search_rows
from automl.search.ensemble import ENSEMBLE_SIZE, select_ensemble
from automl.search.evaluation import OK, TrialResult, choose_resampling
from automl.search.metrics import Metric, get_metric
from metaknowledge.histories import LOWER_IS_BETTER
from searchspaces import Config, get_learner


@dataclass(frozen=True)
class EngineCosts:
    """What the engine spends besides its trials' fits (measured by ``benchmarks/replay_check.py``)."""

    startup: float = 0.25  # from the call to the first trial: typing the data, starting the worker
    per_trial: float = 0.03  # around each trial: proposing it, sending it, recording it


ENGINE = EngineCosts()


@dataclass
class ReplayTask:
    """One repository task made ready for replays: scores of single candidates, their normalisation, the metric."""

    data: TaskPredictions
    configs: dict[str, Config]

    @cached_property
    def metric(self) -> Metric:
        return get_metric(self.data.metric, self.data.task_type)

    @cached_property
    def index(self) -> dict[str, int]:
        return {cid: i for i, cid in enumerate(self.data.config_ids)}

    @cached_property
    def single_scores(self) -> np.ndarray:
        """Each candidate's score on its own out-of-fold predictions (NaN where it failed)."""
        ok = self.data.ok()
        return np.array([self.metric(self.data.y, self._prediction(i)) if ok[i] else np.nan
                         for i in range(len(self.data.config_ids))])

    def _prediction(self, i: int) -> np.ndarray:
        prediction = self.data.predictions[i].astype(float)
        return prediction[:, 0] if self.data.task_type == "regression" else prediction

    @cached_property
    def constant_score(self) -> float:
        """The score of predicting the class shares (or the mean) of the rows: what no model at all would get."""
        y = self.data.y
        if self.data.task_type == "regression":
            return self.metric(y, np.full(len(y), float(np.mean(y))))
        shares = np.bincount(y.astype(int), minlength=self.data.predictions.shape[2]) / len(y)
        return self.metric(y, np.tile(shares, (len(y), 1)))

    @cached_property
    def _anchors(self) -> tuple[float, float]:
        """(constant predictor, best single candidate) scores, negated where lower is better."""
        scores = self._signed(self.single_scores)
        scores = scores[np.isfinite(scores)]
        constant = float(self._signed(self.constant_score))
        return constant, float(np.max(scores)) if len(scores) else constant

    def _signed(self, value):
        return -np.asarray(value, dtype=float) if self.data.metric in LOWER_IS_BETTER else np.asarray(value, float)

    def normalise(self, score: float) -> float:
        """``score`` on the task's scale: 1 = its best single candidate, 0 = the constant predictor or worse.

        The peer benchmark's scale (../shared/BENCHMARK.md), so that a search
        that ends with no model scores what it would there.
        """
        if not np.isfinite(score):
            return 0.0
        constant, best = self._anchors
        spread = best - constant
        if spread <= 1e-12:
            return 1.0 if self._signed(score) >= best - 1e-12 else 0.0
        return float(max(0.0, (self._signed(score) - constant) / spread))

    def seconds(self, budget: float | None) -> np.ndarray:
        """Each candidate's trial seconds in the engine at ``budget`` (NaN where it failed)."""
        return np.array([trial_seconds(self.data, self.configs[cid], budget) if cid in self.configs else np.nan
                         for cid in self.data.config_ids]) * np.where(self.data.ok(), 1.0, np.nan)

    def refit_seconds(self, i: int) -> float:
        """The final fit of candidate ``i`` on all the task's rows, as the engine's budget estimates it."""
        config = self.configs[self.data.config_ids[i]]
        exponent = get_learner(config.learner, self.kind).fit_exponent
        fold_rows = self.data.rows * (REPOSITORY_FOLDS - 1) / REPOSITORY_FOLDS
        growth = max(1.0, self.data.n_rows / fold_rows) ** exponent
        return float(self.data.seconds[i]) / REPOSITORY_FOLDS * growth * REFIT_SAFETY

    @property
    def kind(self) -> str:
        return self.data.kind


def search_shape(n_rows: int, budget: float | None) -> tuple[int, int, float]:
    """(rows a trial searches on, its fits, the rows of each fit) in the engine at ``budget``."""
    rows = min(n_rows, search_rows(budget) or n_rows)
    plan = choose_resampling(n_rows)
    fits = 1 if plan.kind == "holdout" else plan.n_folds
    return rows, fits, rows * plan.training_share / fits


def trial_seconds(data: TaskPredictions, config: Config, budget: float | None) -> float:
    """A candidate's stored seconds (3-fold, ``data.rows`` rows) scaled to the engine's trial on the whole task.

    Training time grows as rows ** the learner's ``fit_exponent``, per fold;
    the folds' number and sizes follow the engine's resampling of the task.
    """
    stored = float(data.seconds[data.config_ids.index(config.key())])
    exponent = get_learner(config.learner, data.kind).fit_exponent
    _, fits, fit_rows = search_shape(data.n_rows, budget)
    stored_fold_rows = data.rows * (REPOSITORY_FOLDS - 1) / REPOSITORY_FOLDS
    return stored / REPOSITORY_FOLDS * (fit_rows / stored_fold_rows) ** exponent * fits


@dataclass(frozen=True)
class Replayed:
    """What a replayed search ended with."""

    score: float  # the final ensemble's score on the out-of-fold predictions (the task's metric)
    normalised: float
    finished: tuple[str, ...]  # config ids of the trials that finished, in order
    members: tuple[tuple[str, float], ...]  # the ensemble's (config id, weight)
    seconds: float  # when the search ended


def replay(task: ReplayTask, order: Sequence[str], budget: float | None, costs: EngineCosts = ENGINE,
           seconds: np.ndarray | None = None) -> Replayed:
    """Run ``order`` (config ids; unknown or failed ones are tried and cost nothing) within ``budget`` on ``task``."""
    seconds = task.seconds(budget) if seconds is None else seconds
    clock = costs.startup
    limit = float("inf") if budget is None else budget
    finished: list[int] = []
    best = None
    for cid in order:
        i = task.index.get(cid)
        if i is None or not np.isfinite(seconds[i]):
            continue
        reserve = _reserve(task, best, budget)
        if clock >= limit - reserve:
            break
        clock += costs.per_trial + seconds[i]
        if clock > limit - reserve:
            clock = limit - reserve
            break
        finished.append(i)
        if best is None or task.metric.is_better(task.single_scores[i], task.single_scores[best]):
            best = i
    return _final(task, finished, clock)


def _reserve(task: ReplayTask, best: int | None, budget: float | None) -> float:
    if budget is None:
        return 0.0
    estimate = task.refit_seconds(best) if best is not None else MIN_RESERVE
    return min(max(MIN_RESERVE, estimate), MAX_RESERVE_SHARE * budget)


def _final(task: ReplayTask, finished: list[int], clock: float) -> Replayed:
    if not finished:
        return Replayed(float("nan"), 0.0, (), (), clock)
    ids = task.data.config_ids
    results = [TrialResult(task.configs.get(ids[i], Config("?", {})), OK, float(task.single_scores[i]),
                           predictions=task.data.predictions[i]) for i in finished]
    chosen = select_ensemble(results, task.data.y, task.metric, ENSEMBLE_SIZE)
    weights = np.array([weight for _, weight in chosen])
    mixed = np.tensordot(weights, np.stack([r.predictions for r, _ in chosen]).astype(float), axes=1)
    score = task.metric(task.data.y, mixed[:, 0] if task.data.task_type == "regression" else mixed)
    members = tuple((r.config.key(), float(w)) for r, w in chosen)
    return Replayed(float(score), task.normalise(score), tuple(ids[i] for i in finished), members, clock)
