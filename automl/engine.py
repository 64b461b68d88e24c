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
from functools import partial
from typing import Any

from automl.data.dataset import Dataset, load_dataset
from automl.errors import ConfigError, SearchFailed
from automl.knowledge.describe import describe
from automl.knowledge.fit_knowledge import FitKnowledge
from automl.knowledge.warm_start import (
    ZERO_SHOT_METHOD,
    initial_configs,
    plan_portfolio,
    plan_warm_start,
)
from automl.knowledge.writeback import remember, remember_meta_features
from automl.model import AutoModel, SearchSummary, WarmStartRecord
from automl.options import FitOptions
from automl.pipeline.footprint import Limits
from automl.pipeline.row_encoder import RowEncoder
from automl.reporting.report import write_report
from automl.search.backends.base import Backend, SearchPlan
from automl.search.backends.optuna_backend import OptunaBackend
from automl.search.backends.ray_backend import RayBackend
from automl.search.budget import Budget, search_rows
from automl.search.ensemble import Ensemble
from automl.search.evaluation import OK, Evaluator, TrialResult, choose_resampling
from automl.search.final_model import constant_pipeline, fit_final_model, trim_to_limits
from automl.search.metrics import Metric, get_metric
from automl.search.progress import SearchProgress, log_level
from automl.search.worker import WorkerPool
from searchspaces import BuildContext, Config, Learner, default_space, joint_space, resolve_learners
from searchspaces.torch_learners import compressible, is_compressible

log = logging.getLogger(__name__)

WRITEBACK_DESCRIBE_SHARE = 0.2  # a fit that skipped meta-features describes its data after the final fit if this
# share of its budget is left


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
    backend: Any = "optuna",
    address: str | None = None,
    resources_per_trial: Mapping[str, float] | None = None,
    max_concurrent: int | None = None,
    storage: Any = None,
    study_name: str | None = None,
    sampler: Any = "tpe",
    pruner: Any = "auto",
    seed: int = 0,
    warm_start: bool | int = True,
    ensemble_size: int = 5,
    final_fit: str = "auto",
    max_predict_ms: float | None = None,
    max_model_mb: float | None = None,
    remember: bool = True,
    kb: str | None = None,
    meta_init: Any = None,
    report: str | None = None,
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
    what is searched (by default the ``"default"`` learners, joined by XGBoost
    and CatBoost from 10 s when installed: ``searchspaces.default_space``);
    ``initial_configs`` are evaluated first, after each learner's default.
    ``storage`` (an SQLite path or database URL) keeps every finished trial;
    calling ``fit`` again with it resumes the search.

    Backend: ``"optuna"`` (in-process, ``n_jobs`` worker processes) or
    ``"ray"`` (a Ray cluster: ``address`` is ``None`` for a local one,
    ``"auto"``, ``"host:port"`` or ``"ray://host:port"``; ``resources_per_trial``
    like ``{"cpu": 1, "gpu": 0}``; ``max_concurrent`` caps parallel trials);
    ``"ray-tune"`` is plain Ray Tune, one Tune trial per configuration.

    Knowledge: with ``warm_start`` (the default), the search starts with the
    configurations meta-knowledge suggests for this dataset (``True``: as many
    as the budget allows; a number: that many; ``False``: a cold start with
    each learner's cheap and default points) and then samples part of its
    trials under learned priors.

    Meta-learned start: ``meta_init`` (a ``MetaModel`` from
    :func:`automl.meta_fit`, or the path of one saved with ``MetaModel.save``;
    needs torch) adds the learner ``"meta_mlp"``, in the place of ``"mlp"``
    when that is searched: the meta-learned network, started from its learned
    initialization and adapted to the training rows by full-batch gradient
    steps at its learned rates (the search tunes the number of steps and a
    scale on the rates; :mod:`automl.learn2learn.meta_init`). The meta-model must have
    been meta-trained for this task kind on tables with the same feature
    columns, in the same order.

    Final model: a weighted average of up to ``ensemble_size`` configurations
    (``1``: the best alone), chosen by greedy ensemble selection on the trials'
    out-of-fold predictions among those whose fits on all rows end within the
    budget, and refitted on all rows (see :mod:`automl.search.ensemble`). With
    ``final_fit="bag"`` (``"auto"``: on data of at most 5,000 rows, without
    serving limits) a member is instead the average of its fold models from
    the search, which needs no refit; the leaderboard's ``final_fit`` column
    and ``members_`` say which each member is.

    Serving limits: ``max_predict_ms`` (the latency of ``predict`` on one
    row, median of repeated calls) and ``max_model_mb`` (the model's pickled
    size) bound the final model: each trial's latency and size are measured
    on its first fold's model (leaderboard columns ``predict_ms``,
    ``model_mb``), trials beyond the limits are not chosen, the ensemble's
    members together stay within them, and the fitted model is measured and
    trimmed until it is. When no configuration found meets them, a
    ``ConfigError`` names the fastest and the smallest.

    Write-back: unless ``remember=False``, the dataset's
    meta-features and the trials are appended to the user's knowledge base
    (``kb``, else ``$AUTOML_KB``, else the user cache directory), which is read
    together with the knowledge shipped with the package. ``kb`` is a file
    path (SQLite) or a team's PostgreSQL server
    (``postgresql://USER@HOST:PORT/DB``; its password is never shown).

    >>> import automl
    >>> from sklearn.datasets import load_breast_cancer
    >>> model = automl.fit(load_breast_cancer(), time_budget=10, verbose=0)  # doctest: +SKIP
    Report: ``report`` (a path) writes an HTML report of the search at the
    end, with out-of-fold feature importance (see :meth:`AutoModel.report`);
    it takes time beyond the budget.

    All options are checked and held in one :class:`~automl.options.FitOptions`.

    >>> model.leaderboard().head()                                           # doctest: +SKIP
    """
    options = FitOptions(
        target=target, task=task, categorical=categorical, metric=metric, learners=learners, space=space,
        initial_configs=initial_configs, resampling=resampling, n_folds=n_folds, time_budget=time_budget,
        n_trials=n_trials, trial_time_limit=trial_time_limit, memory_limit=memory_limit, backend=backend,
        n_jobs=n_jobs, address=address, resources_per_trial=resources_per_trial, max_concurrent=max_concurrent,
        storage=storage, study_name=study_name, sampler=sampler, pruner=pruner, seed=seed, warm_start=warm_start,
        remember=remember, kb=kb, meta_init=meta_init, ensemble_size=ensemble_size, final_fit=final_fit,
        max_predict_ms=max_predict_ms, max_model_mb=max_model_mb, report=report, verbose=verbose,
    )
    return fit_with_options(data, y, options)


def fit_with_options(data: Any, y: Any, options: FitOptions) -> AutoModel:
    """:func:`fit` with its options built already (as the estimators and the CLI build them)."""
    return _run(data, y, options, final=True)


def work(data: Any, y: Any = None, *, storage: Any, study_name: str | None = None, **options: Any) -> list[TrialResult]:
    """Search on a shared study without fitting a model: one of several worker processes.

    Several ``work`` processes (``automl worker`` on the command line) and a
    final ``fit`` given the same ``storage`` (a database URL, an SQLite file or
    a journal file on one machine) and ``study_name`` share one Optuna study:
    each adds trials, and the ``fit`` refits the best of all of them. Other
    options are those of :func:`fit`; each worker should get its own ``seed``.
    Returns this process's trials.
    """
    return _run(data, y, FitOptions.build(**options, storage=storage, study_name=study_name), final=False)


def _run(data: Any, y: Any, options: FitOptions, final: bool) -> Any:
    """The body of :func:`fit` (``final``: returns the model) and :func:`work` (search only: returns its trials)."""
    started = time.monotonic()
    budget = Budget(options.time_budget, started=started, max_trials=options.n_trials,
                    trial_time_limit=options.trial_limit)
    with log_level(options.verbose):
        dataset = load_dataset(data, y, target=options.target, task=options.task, categorical=options.categorical)
        metric = get_metric(options.metric, dataset.task)
        meta_learner = _meta_init_learner(options.meta_init, dataset)
        evaluator = _make_evaluator(dataset, metric, options)
        if meta_learner is not None:
            from automl.learn2learn.meta_init import with_meta_learner

            evaluator.learners = with_meta_learner(evaluator.learners, meta_learner)
        knowledge = FitKnowledge.plan(options.warm_start, options.kb, dataset, evaluator, budget, options.seed)
        warm = knowledge.warm
        initial = initial_configs(evaluator.learners, options.initial_configs, warm)
        named = {config.key() for config, origin in initial if origin == "user"}  # what the user names still runs
        plan = SearchPlan(
            space=joint_space({name: learner.space for name, learner in evaluator.learners.items()}),
            initial=initial,
            priors=warm.priors if warm is not None else {},
            final_models=options.ensemble_size,
            avoid=frozenset() if warm is None else warm.own.failed - named,
            keep_fold_models=options.bagging(len(evaluator.rows)),
        )
        plan.on_started = partial(_once_started, plan, knowledge, evaluator)
        search_backend = make_backend(options)
        log.info(
            "%s task, %d rows x %d features, metric %s, learners %s, %s",
            dataset.task, len(dataset.X), dataset.X.shape[1], metric.name, sorted(evaluator.learners),
            evaluator.resampling,
        )
        prepared = time.monotonic()
        results = _search(search_backend, plan, evaluator, budget, options.verbose)
        searched = time.monotonic()
        mine = [r for r in results if not r.resumed]
        # the meta-learned learner's trials hold for its meta-model only: no knowledge for other searches
        if options.remember:
            kept = [r for r in mine if meta_learner is None or r.config.learner != meta_learner.name]
            remember(dataset, metric.name, kept, knowledge.meta_features, options.kb)
        if not final:
            return mine
        if search_backend.interrupted:
            log.warning("search interrupted after %d trials: fitting the best so far "
                        "(run again with the same storage to resume)", len(results))
        final_model = fit_final_model(evaluator, results, budget, options.memory_limit, options.ensemble_size,
                                      options.limits, first=plan.initial[0][0] if plan.initial else None,
                                      bag=plan.keep_fold_models)
        if options.remember and knowledge.meta_features is None:
            _remember_meta_features(dataset, options, budget)
        summary = SearchSummary(
            backend=search_backend.name,
            n_trials=len(results),
            seconds=budget.elapsed(),
            interrupted=search_backend.interrupted,
            refit_rows=final_model.refit_rows,
            refit_note=final_model.note,
            time_budget=options.time_budget,
            prepare_seconds=prepared - started,
            search_seconds=searched - prepared,
            final_seconds=time.monotonic() - searched,
            warm_start=None if knowledge.warm is None else WarmStartRecord.of(knowledge.warm),
        )
        model = AutoModel(final_model.ensemble, dataset.schema, dataset.task_info(metric.name), results,
                          final_model.best, summary)
        model.training_rows = (dataset.X, dataset.y)  # for model.distill(); in memory only, never saved
        model.row_encoder = RowEncoder.fit(dataset.schema, dataset.X)  # the lean path of predictions on a few rows
        if options.limits.any:
            _serve_within(model, options.limits, dataset.X.iloc[:1])
        if options.report:

            try:
                log.info("report written to %s", write_report(model, options.report, evaluator=evaluator))
            except OSError as error:  # the model matters more than its report: keep it, say why there is none
                log.warning("the report could not be written to %s (%s); write it later with model.report(path)",
                            options.report, error)
        return model


def zero_shot(
    data: Any,
    y: Any = None,
    *,
    target: str | None = None,
    task: str | None = None,
    metric: str | None = None,
    learners: Sequence[str] | None = None,
    space: str | None = None,
    categorical: Sequence[str | int] | None = None,
    seed: int = 0,
    kb: str | None = None,
) -> AutoModel:
    """Fit, once and without search, the configuration meta-knowledge ranks first for ``data``.

    That is the head of the shipped portfolio learned without a budget for data
    of this size: the configuration that, judged on corpus tasks of that size
    left out in turn, serves best alone
    (:func:`automl.knowledge.portfolio_build.zero_shot_head`). It costs nothing to
    choose; like FLAML's zero-shot defaults, one fit in all. Without a
    portfolio for the data's kind (or with ``learners`` it does not cover) the
    nearest datasets' pick is fitted, and without any knowledge the first
    learner's default. Arguments mean what they mean for :func:`fit`.

    >>> model = automl.zero_shot("train.csv", target="label")  # doctest: +SKIP
    """
    started = time.monotonic()
    options = FitOptions(target=target, task=task, metric=metric, learners=learners, space=space,
                         categorical=categorical, seed=seed, kb=kb, time_budget=None, n_trials=1)
    dataset = load_dataset(data, y, target=target, task=task, categorical=categorical)
    chosen_metric = get_metric(metric, dataset.task)
    evaluator = _make_evaluator(dataset, chosen_metric, options)
    warm = plan_portfolio(dataset.task, evaluator.learners, None, kb=kb, rows=len(dataset.X))
    if warm is None:
        warm = plan_warm_start(describe(dataset, seed), dataset.task, evaluator.learners, 1, kb,
                               method=ZERO_SHOT_METHOD)
    if warm.suggestions:
        config, origin = warm.suggestions[0].config, f"warm:{warm.method}"
    else:
        config, origin = next(iter(evaluator.learners.values())).default_config(), "default"
    with WorkerPool(evaluator, 1) as pool:
        pipeline, error = pool.refit(config, float("inf"))
    if pipeline is None:
        raise SearchFailed(f"the zero-shot configuration {config} could not be fitted: {error}")
    result = TrialResult(config, OK, None, origin=origin, number=0, fit_seconds=time.monotonic() - started)
    summary = SearchSummary(backend="zero-shot", n_trials=1, seconds=time.monotonic() - started,
                            refit_rows=len(dataset.X))
    return AutoModel(Ensemble([pipeline], [config]), dataset.schema, dataset.task_info(chosen_metric.name), [result],
                     result, summary)


def make_backend(options: FitOptions) -> Backend:
    """The search backend ``options.backend`` names: ``"optuna"``, ``"ray"`` (batched) or ``"ray-tune"`` (plain Tune),
    or a ready one."""
    backend = options.backend
    if isinstance(backend, Backend):
        return backend
    common = dict(storage=options.storage, study_name=options.study_name, sampler=options.sampler,
                  pruner=options.pruner, seed=options.seed, memory_limit_mb=options.memory_limit)
    ray_only = (options.address, options.resources_per_trial, options.max_concurrent)
    if backend == "optuna":
        if any(value is not None for value in ray_only):
            raise ConfigError("address, resources_per_trial and max_concurrent apply to backend='ray'; "
                              "use n_jobs with 'optuna'")
        return OptunaBackend(n_jobs=options.n_jobs, **common)
    if backend in ("ray", "ray-tune"):
        if options.n_jobs != 1:
            raise ConfigError("with backend='ray', parallelism comes from the cluster: use max_concurrent, not n_jobs")

        return RayBackend(address=options.address, resources_per_trial=dict(options.resources_per_trial or {}),
                          max_concurrent=options.max_concurrent, mode="batched" if backend == "ray" else "tune",
                          **common)
    raise ConfigError(f"backend must be 'optuna', 'ray' or 'ray-tune', got {backend!r}")


def _make_evaluator(dataset: Dataset, metric: Metric, options: FitOptions) -> Evaluator:
    """The evaluator of the search: the learners searched, the resampling, and the rows trials fit on."""
    learners, time_budget = options.learners, options.time_budget
    space = options.space or (None if learners is not None else default_space(time_budget))
    max_rows = search_rows(time_budget)
    try:
        chosen = resolve_learners(dataset.kind, learners, space)
        # Holdout or not is decided on all the rows, not on the search's sample: a small budget must not buy
        # costlier trials (cross-validation on a 20,000-row sample, where a larger budget holds out on all 30,000).
        plan = choose_resampling(len(dataset.X), options.resampling, options.n_folds)
        if plan.kind == "holdout":  # the share held out suits the rows searched
            plan = choose_resampling(min(len(dataset.X), max_rows or len(dataset.X)), "holdout")
    except (KeyError, ValueError) as error:
        raise ConfigError(str(error).strip('"')) from None
    evaluator = Evaluator(dataset, metric, {}, plan, seed=options.seed, max_rows=max_rows)
    if options.limits.any:  # under serving limits the networks may also be pruned and quantized
        chosen = [compressible(learner) if is_compressible(learner) else learner for learner in chosen]
    evaluator.learners = _fitting_learners(chosen, evaluator.n_train_rows, explicit=learners is not None)
    return evaluator


def _meta_init_learner(meta_init: Any, dataset: Dataset) -> Learner | None:
    """The learner that starts from ``meta_init``'s meta-learned network, checked against ``dataset`` (None without)."""
    if meta_init is None:
        return None
    try:
        from automl.learn2learn import meta_init as module
    except ImportError as error:
        raise ConfigError(f"meta_init needs torch ({error}): pip install 'automl-engine[torch]'") from None
    meta = module.load_meta_model(meta_init)
    module.check_meta_model(meta, dataset.kind, dataset.X.shape[1], len(dataset.classes))
    return module.meta_init_learner(meta, module.network_order(dataset.X, dataset.categorical))


def _fitting_learners(chosen: list[Learner], n_rows: int, explicit: bool) -> dict[str, Learner]:
    """Drop learners too slow for this many rows, unless the user named them."""
    kept = {}
    for learner in chosen:
        if learner.max_rows is not None and n_rows > learner.max_rows:
            if explicit:
                log.warning("%s is slow above %d rows; it is searched because you asked for it", learner.name,
                            learner.max_rows)
            else:
                log.info("skipping %s: %d training rows exceed its limit of %d", learner.name, n_rows, learner.max_rows)
                continue
        kept[learner.name] = learner
    if not kept:
        raise ConfigError(f"no learner suits {n_rows} rows; name some explicitly with learners=[...]")
    return kept


def _remember_meta_features(dataset: Dataset, options: FitOptions, budget: Budget) -> None:
    """Describe the data for the write-back after the final fit, where the budget still has room for it."""
    if budget.time_budget is not None and budget.remaining() < WRITEBACK_DESCRIBE_SHARE * budget.time_budget:
        return
    remember_meta_features(dataset, describe(dataset, options.seed), options.kb)


def _search(backend: Backend, plan: SearchPlan, evaluator: Evaluator, budget: Budget,
            verbose: int) -> list[TrialResult]:
    progress = SearchProgress(budget, evaluator.metric, verbose)
    try:
        return backend.run(plan, evaluator, budget, progress.update)
    finally:
        progress.close()



def _serve_within(model: AutoModel, limits: Limits, row: Any) -> None:
    """Trim ``model``'s members until predicting ``row`` through it is within ``limits``; record its latency
    and size."""

    def predict_row(ensemble: Ensemble) -> Any:
        model.ensemble = ensemble
        return model.predict(row)

    model.ensemble, model.summary.predict_ms, model.summary.model_mb = trim_to_limits(model.ensemble, predict_row,
                                                                                      limits)


def _once_started(plan: SearchPlan, knowledge: FitKnowledge, evaluator: Evaluator) -> None:
    """This process's work once the first trials run: what the knowledge left for then (the nearest datasets'
    priors), then priming imports for the workers it starts later."""
    knowledge.settle(plan)
    _prime_imports(evaluator)


def _prime_imports(evaluator: Evaluator) -> None:
    """Fit and apply a tiny pipeline, and build each learner's default estimator, here, while the first trials run.

    scikit-learn imports some modules on first use, and learners import their
    libraries when they first build an estimator (lightgbm, torch: a second or
    more each). Paid once in this process, they are inherited by every worker
    it starts later, the final fit's fresh one included, instead of eating into
    their time. It runs once the first trials are running (``SearchPlan.on_started``),
    so that it does not delay them: the search's first workers import what their
    trials need themselves.
    """
    try:
        constant_pipeline(evaluator, rows=20).predict(evaluator.dataset.X.iloc[:5])
        context = BuildContext(evaluator.dataset.task, n_rows=20, n_features=evaluator.dataset.X.shape[1])
        for learner in evaluator.learners.values():
            learner.build(dict(learner.default_config().params), context)
    except Exception as error:  # only a speed-up: odd first rows or a learner's odd defaults must not stop the search
        log.debug("import priming skipped: %s", error)
