"""The final model: a weighted average of configurations, chosen on out-of-fold predictions.

Every trial of a search is scored on the same folds, and keeps its predictions
on the rows those folds validate on. The final model is built from them by
greedy forward selection with replacement (Caruana et al., 2004, as in
auto-sklearn and AutoGluon): start from nothing, and at each of
``SELECTION_ROUNDS`` steps add the trial whose predictions, averaged with those
already chosen, score best on the task's metric; a trial may be added again,
so the counts become weights. Members of different learners make different
errors, and the average beats each of them where their errors cancel.
Selection keeps the best prefix of its steps, so it never ends worse (on these
rows) than the best single trial, and it only admits trials whose final fit
on all rows still fits in the time left.

Without predictions to select on (trials resumed from storage, plain Ray
Tune), :func:`choose_members` guards against the winner's curse instead: the
best configuration averaged with the runners-up whose fold scores are within
one standard error of it.

>>> from automl.search.ensemble import select_ensemble
>>> chosen = select_ensemble(results, y, metric, max_members=5)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from automl.pipeline.probabilities import aligned_proba
from automl.search.evaluation import TrialResult
from automl.search.leaderboard import best_result, ranked_results
from automl.search.metrics import Metric
from automl.search.stacking import Stacker
from searchspaces import Config

PRIOR_MIXES = (0.001, 0.003, 0.01, 0.03, 0.1)  # shares of the class prior a log-loss model's probabilities may take
SELECTION_ROUNDS = 25  # greedy steps: weights are multiples of 1/25 (AutoGluon's default ensemble size)
ENSEMBLE_SIZE = 5  # the most configurations a final model averages, unless fit(ensemble_size=) says otherwise
SELECTION_POOL = 20  # the best distinct trials selection chooses among, besides each learner's best


REFIT, BAGGED = "refit", "bagged"  # how a member was fitted: on all training rows, or as the search's fold models


@dataclass(frozen=True)
class Member:
    """A configuration of the final model, its weight in the average (weights sum to 1), and how it was fitted:
    ``"refit"`` on the training rows, or ``"bagged"``, the average of its ``models`` fold models from the search;
    ``stacked`` when a stacking layer combines the members (:mod:`automl.search.stacking`)."""

    config: Config
    weight: float
    fit: str = REFIT
    models: int = 1
    stacked: bool = False  # the model combines its members with a stacking layer, not by these weights


def selection_pool(results: list[TrialResult], metric: Metric, size: int = SELECTION_POOL) -> list[TrialResult]:
    """The trials ensemble selection may choose: the best ``size`` distinct ones, and each learner's best.

    Best first; only successful trials that still hold their predictions.
    """
    ranked = [r for r in ranked_results(results, metric) if r.predictions is not None]
    pool: list[TrialResult] = []
    seen: set[str] = set()
    learners: set[str] = set()
    for result in ranked:
        key = result.config.key()
        if key in seen:
            continue
        if len(pool) < size or result.config.learner not in learners:
            pool.append(result)
            seen.add(key)
            learners.add(result.config.learner)
    return pool


@dataclass(frozen=True)
class Allowance:
    """A resource the chosen members share: each member's ``cost``, and the most they may cost together.

    The seconds to fit each on all rows within the time left; the milliseconds
    each adds to a prediction within ``max_predict_ms``; its megabytes within
    ``max_model_mb``.
    """

    cost: Callable[[TrialResult], float]
    limit: float


def select_ensemble(
    results: list[TrialResult],
    y: np.ndarray,
    metric: Metric,
    max_members: int,
    allowances: Sequence[Allowance] = (),
    rounds: int = SELECTION_ROUNDS,
    seconds: float = float("inf"),
) -> list[tuple[TrialResult, float]]:
    """Greedy forward selection with replacement; the chosen trials and their weights, heaviest first.

    ``y``: the encoded target on the rows the predictions cover. At most
    ``max_members`` distinct trials are chosen, and their costs together stay
    within each of the ``allowances``. Selection stops early after ``seconds``
    (keeping its best prefix so far). Empty when no trial has predictions or
    none is affordable.
    """
    stop_at = time.monotonic() + seconds
    limits = np.array([allowance.limit for allowance in allowances])
    pool = [r for r in selection_pool(results, metric)
            if all(allowance.cost(r) <= allowance.limit for allowance in allowances)]
    if not pool or max_members < 1:
        return []
    stacked = np.stack([np.asarray(r.predictions, dtype=float) for r in pool])
    if metric.kind == "regression":
        stacked = stacked[..., 0]
    costs = np.array([[allowance.cost(r) for allowance in allowances] for r in pool]).reshape(len(pool),
                                                                                               len(allowances))
    counts = np.zeros(len(pool), dtype=int)
    total = np.zeros(stacked.shape[1:])
    history: list[tuple[float, np.ndarray]] = []
    for step in range(1, rounds + 1):
        if step > 1 and time.monotonic() > stop_at:
            break
        chosen = counts > 0
        affordable = (costs + costs[chosen].sum(axis=0) <= limits).all(axis=1)
        eligible = chosen | (affordable & (chosen.sum() < max_members))
        losses = np.full(len(pool), np.inf)
        for index in np.flatnonzero(eligible):
            value = metric(y, (total + stacked[index]) / step)
            if np.isfinite(value):
                losses[index] = metric.loss(value)
        if not np.isfinite(losses).any():
            break
        pick = int(np.argmin(losses))  # the better-ranked trial on ties
        counts[pick] += 1
        total += stacked[pick]
        history.append((float(losses[pick]), counts.copy()))
    if not history:
        return []
    best_step = min(range(len(history)), key=lambda i: history[i][0])  # the earliest of equally good prefixes
    final = history[best_step][1]
    order = sorted(np.flatnonzero(final), key=lambda i: (-final[i], i))
    return [(pool[i], final[i] / final.sum()) for i in order]


def prior_mix(chosen: list[tuple[TrialResult, float]], y: np.ndarray, metric: Metric, prior: np.ndarray) -> float:
    """The share of the class prior to mix into the final probabilities, for log loss; 0 for other metrics.

    Log loss punishes one confident mistake without bound: a class given a
    probability of 1e-9 costs 21 nats on its row, more than a hundred rows of
    fair guesses. Mixing in a little of the training class prior bounds that
    loss at a cost of at most the share itself on every other row. The share is
    the one of :data:`PRIOR_MIXES` whose mix scores best on the ensemble's
    out-of-fold predictions (the smallest when they are not known): never none,
    because a small sample can hold no surprise that new rows will.
    """
    if metric.name != "log_loss":
        return 0.0
    if not chosen or any(result.predictions is None for result, _ in chosen):
        return PRIOR_MIXES[0]
    weights = np.array([weight for _, weight in chosen])
    mixed = np.tensordot(weights / weights.sum(), np.stack([r.predictions for r, _ in chosen]).astype(float), axes=1)
    losses = [metric(y, (1 - share) * mixed + share * prior) for share in PRIOR_MIXES]
    return PRIOR_MIXES[int(np.argmin(losses))]


def likely_members(leaders: list[TrialResult], metric: Metric, size: int) -> list[TrialResult]:
    """What the final model will likely hold, to keep time for fitting it: the best, then other learners' best.

    Ensemble selection mostly mixes learners, so the best of each of the
    leading learners (up to ``size``) stands in for its choice while the
    search runs, at no cost.
    """
    likely: list[TrialResult] = []
    for result in ranked_results(leaders, metric):
        if len(likely) == max(1, size):
            break
        if all(result.config.learner != member.config.learner for member in likely):
            likely.append(result)
    return likely


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
    """Fitted pipelines (preprocessing + model each) whose predictions are averaged with their weights."""

    # The training class prior, mixed into predicted probabilities with this share (see :func:`prior_mix`).
    # Class attributes, so that ensembles saved before the mix existed load with none.
    prior: np.ndarray | None = None
    prior_share: float = 0.0

    fits: list[str] | None = None  # how each pipeline was fitted (REFIT or BAGGED); None in files from before bagging
    stacker: Stacker | None = None  # a linear layer over the members' predictions instead of their weighted average

    def __init__(self, pipelines: list[Any], configs: list[Config], weights: list[float] | None = None,
                 fits: list[str] | None = None):
        if not pipelines or len(pipelines) != len(configs):
            raise ValueError("an ensemble needs one configuration per fitted pipeline, and at least one")
        self.pipelines = list(pipelines)
        self.configs = list(configs)
        self.weights = list(weights) if weights is not None else [1.0] * len(pipelines)
        self.fits = list(fits) if fits is not None else [REFIT] * len(pipelines)
        if len(self.weights) != len(self.pipelines) or min(self.weights) <= 0:
            raise ValueError("an ensemble needs one positive weight per fitted pipeline")

    def mix_prior(self, prior: np.ndarray, share: float) -> None:
        """Mix ``share`` of the class ``prior`` into every probability this ensemble predicts."""
        self.prior, self.prior_share = np.asarray(prior, dtype=float), float(share)

    def stack(self, stacker: Stacker | None) -> None:
        """Combine the members' predictions with ``stacker`` (None: their weighted average, the prior mixed in)."""
        self.stacker = stacker

    @property
    def stacked(self) -> bool:
        return self.stacker is not None

    def add(self, pipeline: Any, config: Config, weight: float = 1.0, fit: str = REFIT) -> None:
        self.fits = self._fits() + [fit]
        self.pipelines.append(pipeline)
        self.configs.append(config)
        self.weights.append(weight)

    def _fits(self) -> list[str]:
        return list(self.fits) if self.fits is not None else [REFIT] * len(self.pipelines)

    def __len__(self) -> int:
        return len(self.pipelines)

    def without(self, index: int) -> Ensemble:
        """This ensemble less its ``index``-th member (the others' weights grow in proportion)."""
        if len(self) < 2:
            raise ValueError("an ensemble keeps at least one member")
        keep = [i for i in range(len(self)) if i != index]
        weights, fits = list(self.shares), self._fits()
        smaller = Ensemble([self.pipelines[i] for i in keep], [self.configs[i] for i in keep],
                           [weights[i] for i in keep], [fits[i] for i in keep])
        if self.prior is not None:
            smaller.mix_prior(self.prior, self.prior_share)
        return smaller

    @property
    def members(self) -> list[Member]:
        """Each configuration with its share of the average and how it was fitted (a bagged one's fold models
        together), in the order of their pipelines."""
        merged: dict[str, Member] = {}
        for config, weight, fit in zip(self.configs, self.shares, self._fits()):
            known = merged.get(config.key())
            merged[config.key()] = Member(config, float(weight), fit, 1, self.stacked) if known is None else \
                Member(config, known.weight + float(weight), fit, known.models + 1, self.stacked)
        return list(merged.values())

    @property
    def shares(self) -> np.ndarray:
        """Each pipeline's share of the average (they sum to 1)."""
        # files before weights
        weights = np.asarray(getattr(self, "weights", None) or [1.0] * len(self.pipelines), dtype=float)
        return weights / weights.sum()

    def predict(self, X: Any) -> np.ndarray:
        """The members' weighted mean prediction (regression)."""
        return self.combine([np.asarray(p.predict(X), dtype=float).ravel() for p in self.pipelines])

    def predict_proba(self, X: Any, n_classes: int) -> np.ndarray:
        """The members' weighted mean class probabilities, one column per class of the task."""
        return self.combine([aligned_proba(p[-1], p[:-1].transform(X), n_classes) for p in self.pipelines])

    def combine(self, predictions: list[np.ndarray]) -> np.ndarray:
        """The pipelines' predictions (one array each, in their order) as the ensemble's: weighted, the prior mixed
        in; or, stacked, each configuration's (its fold models averaged) through the stacker."""
        if self.stacker is not None:
            shares = self.shares
            by_config: dict[str, list[int]] = {}
            for index, config in enumerate(self.configs):
                by_config.setdefault(config.key(), []).append(index)
            per_member = [np.average([predictions[i] for i in by_config[key]], axis=0,
                                     weights=shares[by_config[key]]) for key in self.stacker.members]
            return self.stacker.predict(per_member)
        averaged = np.average(predictions, axis=0, weights=self.shares)
        if not self.prior_share or averaged.ndim == 1:
            return averaged
        return (1 - self.prior_share) * averaged + self.prior_share * self.prior
