"""``fit``: from data to a tuned model, within a wall-clock budget.

The flow is one-way: data -> task and evaluator -> search plan -> backend ->
trial results -> the best configuration fitted on the training data ->
:class:`~automl.model.AutoModel`. The time budget covers the whole call: the
search stops early enough to leave time for the final fit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.pipeline import Pipeline

from automl import writeback
from automl.backends.base import SearchPlan
from automl.backends.optuna_backend import OptunaBackend
from automl.budget import Budget, check_budget
from automl.data import Dataset, load_dataset
from automl.errors import ConfigError, SearchFailed
from automl.evaluation import Evaluator, TrialResult, choose_resampling
from automl.leaderboard import best_result
from automl.metrics import Metric, get_metric
from automl.model import AutoModel, SearchSummary
from automl.progress import SearchProgress, log_level
from automl.worker import WorkerPool
from metaknowledge.features import extract
from searchspaces import Config, Learner, joint_space, resolve_learners

log = logging.getLogger(__name__)

ROWS_PER_SECOND_OF_BUDGET = 2_000  # search on a sample of at most this many rows per budget second
MIN_SEARCH_ROWS = 10_000
TRIAL_SHARE = 1 / 3  # default per-trial time limit, as a share of the budget
MIN_REFIT_ROWS = 100  # when time is this short, a small sample beats running late
REFIT_GRACE_SHARE = 0.05  # the final fit may end this share of the budget late before it is abandoned


def fit(
    data: Any,
    y: Any = None,
    *,
    target: str | None = None,
    task: str | None = None,
    metric: str | None = None,
    time_budget: float | None = 60.0,
    n_trials: int | None = None,
    learners: Sequence[str] | None = None,
    space: str | None = None,
    categorical: Sequence[str | int] | None = None,
    initial_configs: Sequence[Config | Mapping[str, Any]] | None = None,
    resampling: str = "auto",
    n_folds: int | None = None,
    trial_time_limit: float | None = None,
    memory_limit: float | None = None,
    n_jobs: int = 1,
    storage: Any = None,
    study_name: str | None = None,
    sampler: Any = "tpe",
    pruner: Any = "auto",
    seed: int = 0,
    remember: bool = True,
    kb: str | None = None,
    verbose: int = 1,
) -> AutoModel:
    """Search learners and hyperparameters for ``data``; return the best model, refitted.

    Data: ``(X, y)``; a DataFrame with ``target=``; a CSV/TSV/Parquet path with
    ``target=`` (PMLB files need none); ``"openml:<id>"``; a scikit-learn Bunch.
    ``task`` overrides the inferred task; ``metric`` defaults to ROC AUC
    (binary), log loss (multiclass) or RMSE (regression).

    Budget: ``time_budget`` seconds for the whole call (final fit included)
    and/or ``n_trials``. Each trial runs in a worker process and is stopped
    after ``trial_time_limit`` seconds (default: a third of the budget) or
    when it exceeds ``memory_limit`` MB; failures are recorded, not raised.

    Search: ``learners`` (names) or ``space`` (a registered space name) choose
    what is searched; ``initial_configs`` are evaluated first, after each
    learner's default. ``storage`` (an SQLite path or database URL) keeps every
    finished trial; calling ``fit`` again with it resumes the search.

    Knowledge: unless ``remember=False``, the dataset's meta-features and the
    trials are appended to the user's knowledge base (``kb``, else
    ``$AUTOML_KB``, else the user cache directory).

    >>> import automl
    >>> from sklearn.datasets import load_breast_cancer
    >>> model = automl.fit(load_breast_cancer(), time_budget=10, verbose=0)  # doctest: +SKIP
    >>> model.leaderboard().head()                                           # doctest: +SKIP
    """
    check_budget(time_budget, n_trials)
    started = time.monotonic()
    if trial_time_limit is not None and not trial_time_limit > 0:
        raise ConfigError(f"trial_time_limit must be a positive number of seconds, got {trial_time_limit}")
    limit = trial_time_limit if trial_time_limit is not None else (time_budget * TRIAL_SHARE if time_budget else None)
    budget = Budget(time_budget, started=started, max_trials=n_trials, trial_time_limit=limit)
    with log_level(verbose):
        dataset = load_dataset(data, y, target=target, task=task, categorical=categorical)
        chosen_metric = get_metric(metric, dataset.task)
        meta_features = describe(dataset, seed) if remember else None
        evaluator = _make_evaluator(dataset, chosen_metric, learners, space, resampling, n_folds, time_budget, seed)
        plan = SearchPlan(
            space=joint_space({name: learner.space for name, learner in evaluator.learners.items()}),
            initial=_initial_configs(evaluator.learners, initial_configs),
        )
        backend = OptunaBackend(
            storage=storage, study_name=study_name, sampler=sampler, pruner=pruner,
            n_jobs=n_jobs, seed=seed, memory_limit_mb=memory_limit,
        )
        log.info(
            "%s task, %d rows x %d features, metric %s, learners %s, %s",
            dataset.task, len(dataset.X), dataset.X.shape[1], chosen_metric.name,
            sorted(evaluator.learners), evaluator.resampling,
        )
        results = _search(backend, plan, evaluator, budget, verbose)
        model = _final_model(evaluator, results, budget, backend, memory_limit)
        if remember:
            writeback.remember(dataset, chosen_metric.name, results, meta_features, kb)
        return model


def describe(dataset: Dataset, seed: int = 0) -> dict[str, float]:
    """The dataset's meta-features (see :mod:`metaknowledge.features`)."""
    return extract(dataset.X, dataset.encoded_target(), dataset.task, dataset.categorical, seed=seed)


def _make_evaluator(
    dataset: Dataset,
    metric: Metric,
    learners: Sequence[str] | None,
    space: str | None,
    resampling: str,
    n_folds: int | None,
    time_budget: float | None,
    seed: int,
) -> Evaluator:
    max_rows = None if time_budget is None else max(MIN_SEARCH_ROWS, int(time_budget * ROWS_PER_SECOND_OF_BUDGET))
    try:
        chosen = resolve_learners(dataset.kind, learners, space)
        plan = choose_resampling(min(len(dataset.X), max_rows or len(dataset.X)), resampling, n_folds)
    except (KeyError, ValueError) as error:
        raise ConfigError(str(error).strip('"')) from None
    evaluator = Evaluator(dataset, metric, {}, plan, seed=seed, max_rows=max_rows)
    evaluator.learners = _fitting_learners(chosen, evaluator.n_train_rows, explicit=learners is not None)
    return evaluator


def _fitting_learners(chosen: list[Learner], n_rows: int, explicit: bool) -> dict[str, Learner]:
    """Drop learners too slow for this many rows, unless the user named them."""
    kept = {}
    for learner in chosen:
        if learner.max_rows is not None and n_rows > learner.max_rows:
            if explicit:
                log.warning("%s is slow above %d rows; it is searched because you asked for it", learner.name, learner.max_rows)
            else:
                log.info("skipping %s: %d training rows exceed its limit of %d", learner.name, n_rows, learner.max_rows)
                continue
        kept[learner.name] = learner
    if not kept:
        raise ConfigError(f"no learner suits {n_rows} rows; name some explicitly with learners=[...]")
    return kept


def _initial_configs(
    learners: Mapping[str, Learner], extra: Sequence[Config | Mapping[str, Any]] | None
) -> list[tuple[Config, str]]:
    """Cheap first: every learner's low-cost point, then the defaults, then the user's configurations.

    Learners are taken in order of their cost hint, so that something finishes
    early even on data where the defaults are slow; duplicates are dropped.
    """
    by_cost = sorted(learners.values(), key=lambda learner: learner.cost)
    initial: list[tuple[Config, str]] = []
    cheap_then_default = [learner.low_cost_config() for learner in by_cost] + [learner.default_config() for learner in by_cost]
    for config in cheap_then_default:
        if all(config != seen for seen, _ in initial):
            initial.append((config, "default"))
    for item in extra or ():
        config = item if isinstance(item, Config) else Config.from_dict(item)
        if config.learner not in learners:
            raise ConfigError(f"initial config {config} names learner {config.learner!r}, which is not searched ({sorted(learners)})")
        problems = learners[config.learner].space.problems(dict(config.params))
        if problems:
            raise ConfigError(f"initial config {config} is not valid: {'; '.join(problems)}")
        initial.append((config, "user"))
    return initial


def _search(backend: OptunaBackend, plan: SearchPlan, evaluator: Evaluator, budget: Budget, verbose: int) -> list[TrialResult]:
    progress = SearchProgress(budget, evaluator.metric, verbose)
    incumbent: list[TrialResult] = []
    folds = len(evaluator.splits)

    def on_result(result: TrialResult) -> None:
        progress.update(result)
        if result.ok and (not incumbent or evaluator.metric.is_better(result.value, incumbent[0].value)):  # type: ignore[arg-type]
            incumbent[:] = [result]
            budget.plan_refit(result.fit_seconds / folds, evaluator.n_train_rows, len(evaluator.y))

    try:
        return backend.run(plan, evaluator, budget, on_result)
    finally:
        progress.close()


def _final_model(
    evaluator: Evaluator, results: list[TrialResult], budget: Budget, backend: OptunaBackend, memory_limit: float | None
) -> AutoModel:
    metric = evaluator.metric
    best = best_result(results, metric)
    if best is None:
        raise SearchFailed(_failure_summary(results, budget))
    if backend.interrupted:
        log.warning("search interrupted after %d trials: fitting the best so far (run again with the same storage to resume)", len(results))
    rows, deadline = _refit_rows(evaluator, best, budget)
    with WorkerPool(evaluator, 1, memory_limit) as pool:
        pipeline, error = pool.refit(best.config, deadline, rows)
    note = "" if rows is None or rows >= len(evaluator.y) else f"fitted on a sample of {rows} rows to stay within the budget"
    if pipeline is None:
        log.warning("the final fit of %s failed (%s); falling back to a constant predictor", best.config, error)
        pipeline, note = _constant_pipeline(evaluator), f"final fit failed ({error}); constant predictor used"
    summary = SearchSummary(
        backend=backend.name,
        n_trials=len(results),
        seconds=budget.elapsed(),
        interrupted=backend.interrupted,
        refit_rows=int(rows or len(evaluator.y)),
        refit_note=note,
    )
    info = evaluator.dataset.task_info(metric.name)
    return AutoModel(pipeline, evaluator.dataset.schema, info, results, best, summary)


def _refit_rows(evaluator: Evaluator, best: TrialResult, budget: Budget) -> tuple[int | None, float]:
    """How many rows the final fit can afford, and its deadline."""
    if budget.time_budget is None:
        return None, float("inf")
    per_row = best.fit_seconds / len(evaluator.splits) / max(1, evaluator.n_train_rows)
    affordable = int(0.8 * max(0.0, budget.remaining()) / max(per_row, 1e-9))
    rows = max(affordable, MIN_REFIT_ROWS)
    deadline = budget.deadline + REFIT_GRACE_SHARE * budget.time_budget
    return (None if rows >= len(evaluator.y) else rows), deadline


def _constant_pipeline(evaluator: Evaluator) -> Pipeline:
    from automl.preprocessing import make_preprocessor
    from searchspaces import Preprocessing

    transformer, _ = make_preprocessor(Preprocessing("ordinal"), evaluator.dataset.X, evaluator.dataset.categorical)
    model = DummyRegressor() if evaluator.dataset.task == "regression" else DummyClassifier(strategy="prior")
    X = transformer.fit_transform(evaluator.dataset.X)
    model.fit(X, evaluator.y)
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

