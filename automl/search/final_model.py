"""The final model of a search: which configurations, fitted on which rows, with which fallbacks.

Given the search's results and the time left, :func:`fit_final_model` chooses
the members (greedy ensemble selection on out-of-fold predictions, see
:mod:`automl.search.ensemble`) and fits them on the training rows, heaviest first,
each only while it is likely to end within the budget. When time is short it
fits the best on a sample, or an earlier incumbent that fits on all rows (the
late-incumbent rule); when no trial finished, a stand-in fitted unvalidated;
when every member fails, the best configuration that refits quickly; and,
last of all, a constant predictor. The result says which of these happened.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.pipeline import Pipeline

from automl.data.dataset import Dataset
from automl.errors import ConfigError, SearchFailed
from automl.pipeline.footprint import FINAL_REPEATS, NO_LIMITS, Limits, latency_ms, serialized_mb
from automl.pipeline.preprocessing import make_preprocessor
from automl.search.budget import Budget
from automl.search.ensemble import BAGGED, Allowance, Ensemble, choose_members, prior_mix, select_ensemble
from automl.search.evaluation import PRUNED, TIMEOUT, UNVALIDATED, Evaluator, TrialResult
from automl.search.leaderboard import best_result, ranked_results
from automl.search.metrics import Metric
from automl.search.refit import RefitScale
from automl.search.stacking import fit_stacker
from automl.search.worker import WorkerPool
from searchspaces import Config, Preprocessing

log = logging.getLogger(__name__)

MIN_REFIT_ROWS = 100  # when time is this short, a small sample beats running late
REFIT_GRACE_SHARE = 0.05  # the final fit may end this share of the budget late before it is abandoned
STAND_IN_ROWS = 1000  # rows the stand-in model is fitted on when no trial finished in time
FIRST_FIT_FLOOR = 0.25  # seconds the final model's first fit always gets: a late model beats a constant one
FALLBACK_SHARE = 0.03  # of the budget granted to a quick configuration when the final model's members all failed
SELECTION_SHARE = 0.1  # ensemble selection may take this share of the time left after the search
STACK_MIN_SECONDS = 0.3  # the stacking layer is tried only with this much of the budget left


@dataclass
class FinalModel:
    """The fitted final model, the result it stands for, the rows its lead member was fitted on, and what happened."""

    ensemble: Ensemble
    best: TrialResult
    refit_rows: int
    note: str = ""  # empty when the chosen members were fitted on all rows as planned


def fit_final_model(
    evaluator: Evaluator, results: list[TrialResult], budget: Budget, memory_limit: float | None, ensemble_size: int,
    limits: Limits = NO_LIMITS, first: Config | None = None, bag: bool = False,
) -> FinalModel:
    """The final model of a search over ``results``, fitted within what is left of ``budget`` (see the module
    docstring). ``first`` is the configuration the search meant to run first (the head of the warm start), which
    stands in when no trial finished in time.

    With ``limits``, only trials whose footprint is within them are chosen, and
    the members together must stay within them (:func:`within_limits`). With
    ``bag``, a member whose trial kept its fold models is their average rather
    than a refit: it costs no time, so the late-incumbent and sample rules do
    not apply to it; and a stacking layer replaces the members' weighted
    average where it measures better (:mod:`automl.search.stacking`).
    """
    metric = evaluator.metric
    results = within_limits(results, limits, metric)
    best = best_result(results, metric)
    if best is None:
        best = _stand_in(results, evaluator, budget, first)
    rows, deadline = _refit_rows(evaluator, best, budget)
    if best.status == UNVALIDATED:
        rows = min(len(evaluator.y), STAND_IN_ROWS)
    if bag and best.fold_models is not None:
        rows = None  # nothing to refit for the lead
    late = _late_incumbent(results, best, rows, evaluator, budget)
    if late is not None:
        log.info("%s was found too late to fit on enough rows; the model uses %s, which fits in time", best.config,
                 late.config)
        rows, deadline = _refit_rows(evaluator, late, budget)
    lead = late or best
    if best.status == UNVALIDATED:
        note = f"no trial finished within the budget: {best.config} was fitted unvalidated on {rows} rows"
    elif late is not None:
        note = "the best configuration was found too late to fit in the time left; the best one that fits was used"
    else:
        note = "" if rows is None else f"fitted on a sample of {rows} rows to stay within the budget"
    # the best fitted on all rows can have company; a sample means no time for more
    chosen = [(lead, 1.0)] if note else _members(results, lead, evaluator, budget, ensemble_size, limits, bag)
    with WorkerPool(evaluator, 1, memory_limit) as pool:
        ensemble, error = _fit_members(pool, evaluator, chosen, budget, deadline, rows, bag)
        quick = _quickest(results, [r for r, _ in chosen], evaluator, budget) if ensemble is None else None
        if quick is not None:
            ensemble, note = _fit_quickest(pool, evaluator, quick, budget, error)
    if ensemble is None:
        log.warning("the final fit of %s failed (%s); falling back to a constant predictor", lead.config, error)
        ensemble = Ensemble([constant_pipeline(evaluator)], [lead.config])
        note = f"final fit failed ({error}); constant predictor used"
    else:
        if evaluator.dataset.task != "regression":
            prior = np.bincount(evaluator.y, minlength=evaluator.n_classes) / len(evaluator.y)
            ensemble.mix_prior(prior, prior_mix(chosen, evaluator.validation_target, metric, prior))
        if bag and budget.remaining() > STACK_MIN_SECONDS:
            held = {config.key() for config in ensemble.configs}
            ensemble.stack(fit_stacker([(r, w) for r, w in chosen if r.config.key() in held],
                                       evaluator.validation_target, metric, evaluator.seed,
                                       seconds=budget.remaining() - STACK_MIN_SECONDS / 2))
    return FinalModel(ensemble, best, int(rows or len(evaluator.y)), note)


def _stand_in(results: list[TrialResult], evaluator: Evaluator, budget: Budget, first: Config | None) -> TrialResult:
    """What to fit when no trial succeeded, if the trials only ran out of time (or none could start): ``first``, the
    configuration the search meant to run first, else the cheapest learner's low-cost corner.

    On large data, a busy machine or a small budget every trial can pass its
    time limit; a model fitted on a sample, unvalidated, then serves better than
    an error. Trials that failed for other reasons (the data, the learners)
    raise :class:`SearchFailed` with their errors.
    """
    if budget.time_budget is None or any(r.status not in (TIMEOUT, PRUNED) for r in results):
        raise SearchFailed(_failure_summary(results, budget))
    failed = {r.config.key() for r in results}
    if first is None or first.key() in failed or first.learner not in evaluator.learners:
        cheapest = min(evaluator.learners.values(), key=lambda learner: learner.cost)
        first = cheapest.low_cost_config()
    log.warning("no trial finished within the budget; fitting %s unvalidated on a sample", first)
    warnings.warn(f"no trial finished within the time budget ({budget.time_budget} s): the model is {first} fitted "
                  "on a sample, unvalidated; give fit a larger time_budget for a searched one", RuntimeWarning,
                  stacklevel=2)
    return TrialResult(first, UNVALIDATED, origin="stand-in")


def within_limits(results: list[TrialResult], limits: Limits, metric: Metric) -> list[TrialResult]:
    """The results the final model may use: every one without limits; else those that failed (for the record) and
    the successful ones whose footprint is within ``limits``.

    Raises :class:`ConfigError` when trials succeeded but none is within the limits, naming the leanest one found.
    """
    if not limits.any:
        return results
    kept = [r for r in results if not r.ok or limits.allows(r.predict_ms, r.model_mb)]
    succeeded = [r for r in results if r.ok]
    if succeeded and not any(r.ok for r in kept):
        fastest = min(succeeded, key=lambda r: (np.nan_to_num(r.predict_ms, nan=np.inf), r.model_mb))
        smallest = min(succeeded, key=lambda r: np.nan_to_num(r.model_mb, nan=np.inf))
        raise ConfigError(
            f"no configuration of the {len(succeeded)} that succeeded is within {limits.describe()}: "
            "the fastest found, "
            f"{fastest.config}, predicts a row in {fastest.predict_ms:.3g} ms; the smallest, {smallest.config}, is "
            f"{smallest.model_mb:.3g} MB. Raise the limits, or search faster learners (learners=[...])."
        )
    return kept


def _members(
    results: list[TrialResult], lead: TrialResult, evaluator: Evaluator, budget: Budget, ensemble_size: int,
    limits: Limits = NO_LIMITS, bag: bool = False,
) -> list[tuple[TrialResult, float]]:
    """The final model's trials and weights: chosen on out-of-fold predictions where the trials kept them.

    Ensemble selection admits only trials whose fits on all rows together end
    within the budget (with ``bag``, a trial with its fold models needs none),
    and whose latencies and sizes together are within the ``limits``; without
    predictions (resumed trials), the best is averaged with those within one
    standard error of it (the best alone under limits).
    """
    if ensemble_size <= 1:
        return [(lead, 1.0)]
    scale = RefitScale.of(evaluator)
    if lead.predictions is not None:
        remaining = budget.remaining()

        def refit_seconds(result: TrialResult) -> float:
            return 0.0 if bag and result.fold_models is not None else scale.refit_seconds(result)

        allowances = [Allowance(refit_seconds, remaining)]
        if limits.max_predict_ms is not None:
            allowances.append(Allowance(lambda r: r.predict_ms, limits.max_predict_ms))
        if limits.max_model_mb is not None:
            allowances.append(Allowance(lambda r: r.model_mb, limits.max_model_mb))
        chosen = select_ensemble(results, evaluator.validation_target, evaluator.metric, ensemble_size,
                                 allowances=allowances, seconds=SELECTION_SHARE * remaining)
        return chosen or [(lead, 1.0)]
    if limits.any:
        return [(lead, 1.0)]
    members = choose_members(results, evaluator.metric, ensemble_size)
    return [(member, 1.0 / len(members)) for member in members]


def _fit_members(
    pool: WorkerPool, evaluator: Evaluator, chosen: list[tuple[TrialResult, float]], budget: Budget, deadline: float,
    rows: int | None, bag: bool = False,
) -> tuple[Ensemble | None, str]:
    """Fit the ``chosen`` trials on the training rows, heaviest first; the ensemble of those that fit, or why none did.

    The first may run until ``deadline`` on ``rows`` (None: all of them); the
    others run on all rows, and only while each is likely to end within the
    budget. With ``bag``, a trial that kept its fold models joins as their
    average instead, each fold model with its share of the trial's weight. A
    member that fails is left out and the others' weights grow.
    """
    scale = RefitScale.of(evaluator)
    ensemble: Ensemble | None = None
    first_error = ""
    for index, (result, weight) in enumerate(chosen):
        if bag and result.fold_models is not None and not _prediction_fault(result.fold_models[0], evaluator.dataset):
            share = weight / len(result.fold_models)
            for pipeline in result.fold_models:
                if ensemble is None:
                    ensemble = Ensemble([pipeline], [result.config], [share], [BAGGED])
                else:
                    ensemble.add(pipeline, result.config, share, BAGGED)
            continue
        if index > 0 and scale.refit_seconds(result) > budget.remaining():
            log.info("left %s out of the final model: not enough time left to fit it", result.config)
            continue
        pipeline, error = _refit(pool, evaluator, result.config, deadline if index == 0 else budget.deadline,
                                 rows if index == 0 else None)
        if pipeline is None:
            log.info("left %s out of the final model: %s", result.config, error)
            first_error = first_error or error
            continue
        if ensemble is None:
            ensemble = Ensemble([pipeline], [result.config], [weight])
        else:
            ensemble.add(pipeline, result.config, weight)
    return ensemble, first_error


def _quickest(results: list[TrialResult], tried: list[TrialResult], evaluator: Evaluator,
              budget: Budget) -> TrialResult | None:
    """When the final model's members could not be fitted: the best other validated result that refits quickest.

    Among the results that should refit within ``FALLBACK_SHARE`` of the
    budget (at least ``FIRST_FIT_FLOOR`` seconds), the best; else the quickest of all.
    """
    scale = RefitScale.of(evaluator)
    others = [r for r in ranked_results(results, evaluator.metric) if all(r.config != t.config for t in tried)]
    if not others:
        return None
    allowance = _fallback_seconds(budget)
    return next((r for r in others if scale.refit_seconds(r) <= allowance), min(others, key=scale.refit_seconds))


def _fallback_seconds(budget: Budget) -> float:
    """The time a fallback configuration may take once the final model's members failed."""
    return max(FIRST_FIT_FLOOR, FALLBACK_SHARE * (budget.time_budget or float("inf")))


def _fit_quickest(pool: WorkerPool, evaluator: Evaluator, quick: TrialResult, budget: Budget,
                  error: str) -> tuple[Ensemble | None, str]:
    """``quick`` fitted in the little time granted after the members failed (on a sample if need be), and a note."""
    allowance = _fallback_seconds(budget)
    rows = RefitScale.of(evaluator).rows_within(quick, 0.8 * allowance) if budget.time_budget else None
    rows = None if rows is None or rows >= len(evaluator.y) else max(rows, MIN_REFIT_ROWS)
    pipeline, second = _refit(pool, evaluator, quick.config, time.monotonic() + allowance, rows)
    if pipeline is None:
        return None, f"{error}; then {second}"
    log.warning("the final fit failed (%s); the model uses %s, the best configuration that refits quickly", error,
                quick.config)
    sample = "" if rows is None else f" on {rows} rows"
    return Ensemble([pipeline], [quick.config]), (f"final fit failed ({error}); "
                                                  f"{quick.config.learner} fitted{sample} instead")


def _refit(pool: WorkerPool, evaluator: Evaluator, config: Config, deadline: float,
           rows: int | None) -> tuple[Pipeline | None, str]:
    """``config`` fitted on the training data and able to predict, or None and why not."""
    pipeline, error = pool.refit(config, deadline, rows)
    if pipeline is not None:
        error = _prediction_fault(pipeline, evaluator.dataset)
    return (None, error) if error else (pipeline, "")


def _late_incumbent(
    results: list[TrialResult], best: TrialResult, rows: int | None, evaluator: Evaluator, budget: Budget
) -> TrialResult | None:
    """The result to fit instead of ``best`` when ``best`` came too late for the time left, or None.

    ``rows``: what ``best``'s final fit can afford (:func:`_refit_rows`; None for all of them).

    The search keeps a reserve for fitting the incumbent of the moment. One found
    in the search's last seconds may need far more than is left: fitted on the few
    rows that time allows, it would be worse than the best result whose fit on all
    rows still ends within the budget (usually the incumbent the reserve was kept for).
    """
    if rows is None or rows >= len(evaluator.y) / 2:
        return None
    scale = RefitScale.of(evaluator)
    ranked = ranked_results(results, evaluator.metric)
    return next((r for r in ranked if r is not best and scale.refit_seconds(r) <= budget.remaining()), None)


def _refit_rows(evaluator: Evaluator, best: TrialResult, budget: Budget) -> tuple[int | None, float]:
    """How many rows the final fit can afford, and its deadline."""
    if budget.time_budget is None:
        return None, float("inf")
    rows = max(RefitScale.of(evaluator).rows_within(best, 0.8 * budget.remaining()), MIN_REFIT_ROWS)
    deadline = max(budget.deadline + REFIT_GRACE_SHARE * budget.time_budget, time.monotonic() + FIRST_FIT_FLOOR)
    return (None if rows >= len(evaluator.y) else rows), deadline


def _prediction_fault(pipeline: Pipeline, dataset: Dataset) -> str:
    """Predict a few training rows with the final model; the error if it cannot.

    The final fit runs in a worker process, so this is the first prediction in
    this one: it pays the libraries' lazy imports inside the budget rather than
    in the user's first ``predict``, and a model that cannot predict is caught
    while a fallback is still possible.
    """
    try:
        pipeline.predict(dataset.X.iloc[:5])
    except Exception as error:  # any learner may fail here; the caller falls back
        return f"{type(error).__name__}: {error}"
    return ""


def constant_pipeline(evaluator: Evaluator, rows: int | None = None) -> Pipeline:
    """A pipeline predicting the training target's mean or class prior (from the first ``rows`` rows)."""

    X, y = evaluator.dataset.X.iloc[:rows], evaluator.y[:rows]
    transformer, _ = make_preprocessor(Preprocessing("ordinal"), X, evaluator.dataset.categorical)
    model = DummyRegressor() if evaluator.dataset.task == "regression" else DummyClassifier(strategy="prior")
    model.fit(transformer.fit_transform(X), y)
    return Pipeline([("preprocess", transformer), ("model", model)])



def _failure_summary(results: list[TrialResult], budget: Budget) -> str:
    if not results:
        return (
            f"no trial could finish within the budget ({budget.time_budget} s): "
            "increase time_budget, or pass a smaller dataset or faster learners"
        )
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    errors = sorted({r.error for r in results if r.error})[:3]
    statuses = ", ".join(f"{n} {s}" for s, n in counts.items())
    return f"no trial succeeded ({statuses}). First errors: {errors}. Increase time_budget or check the data."


def trim_to_limits(ensemble: Ensemble, predict_row: Callable[[Ensemble], Any],
                   limits: Limits) -> tuple[Ensemble, float, float]:
    """``ensemble`` less its lightest members until the whole prediction path is within ``limits``; its latency
    and size.

    ``predict_row(ensemble)`` predicts one row the way a user's ``predict``
    does (checking and typing the row included), which is what is timed; the
    size is the ensemble's pickle. Raises :class:`ConfigError` when even one
    member alone breaks the limits.
    """
    while True:
        predict_ms = latency_ms(partial(predict_row, ensemble), FINAL_REPEATS)
        model_mb = serialized_mb(ensemble)
        if not limits.any or limits.allows(predict_ms, model_mb):
            return ensemble, predict_ms, model_mb
        if len(ensemble) == 1:
            raise ConfigError(
                f"the final model ({ensemble.configs[0]}) predicts a row in {predict_ms:.3g} ms "
                f"and is {model_mb:.3g} MB, "
                f"beyond {limits.describe()}; its trial measured less, so the rest is the prediction path's own work "
                "(checking and typing the row): raise the limits"
            )
        lightest = int(np.argmin(ensemble.shares))
        log.info("left %s out of the final model to stay within %s", ensemble.configs[lightest], limits.describe())
        ensemble = ensemble.without(lightest)
