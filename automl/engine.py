"""``fit``: from data to a tuned model, within a wall-clock budget.

The flow is one-way: data -> task and evaluator -> search plan -> backend ->
trial results -> the best configuration fitted on the training data ->
:class:`~automl.model.AutoModel`. The time budget covers the whole call: the
search stops early enough to leave time for the final fit.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.pipeline import Pipeline

from automl import writeback
from automl.backends.base import Backend, SearchPlan
from automl.backends.driver import RefitScale
from automl.backends.optuna_backend import OptunaBackend
from automl.budget import Budget, check_budget
from automl.data import Dataset, load_dataset
from automl.ensemble import Ensemble, choose_members, prior_mix, select_ensemble
from automl.errors import ConfigError, SearchFailed
from automl.evaluation import OK, PRUNED, TIMEOUT, UNVALIDATED, Evaluator, TrialResult, choose_resampling
from automl.leaderboard import best_result, ranked_results
from automl.metrics import Metric, get_metric
from automl.model import AutoModel, SearchSummary
from automl.progress import SearchProgress, log_level
from automl.warm import ZERO_SHOT_METHOD, TrialShape, WarmStart, initial_count, plan_warm_start
from automl.worker import WorkerPool
from metaknowledge.features import extract
from searchspaces import BuildContext, Config, Learner, default_space, joint_space, resolve_learners

log = logging.getLogger(__name__)

ROWS_PER_SECOND_OF_BUDGET = 2_000  # search on a sample of at most this many rows per budget second
MIN_SEARCH_ROWS = 5_000
TRIAL_SHARE = 1 / 3  # default per-trial time limit, as a share of the budget
MIN_REFIT_ROWS = 100  # when time is this short, a small sample beats running late
REFIT_GRACE_SHARE = 0.05  # the final fit may end this share of the budget late before it is abandoned
STAND_IN_ROWS = 1000  # rows the stand-in model is fitted on when no trial finished in time
FIRST_FIT_FLOOR = 0.25  # seconds the final model's first fit always gets: a late model beats a constant one
FALLBACK_SHARE = 0.03  # of the budget granted to a quick configuration when the final model's members all failed
SELECTION_SHARE = 0.1  # ensemble selection may take this share of the time left after the search


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
    remember: bool = True,
    kb: str | None = None,
    meta_init: Any = None,
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
    and CatBoost from 10 s when installed: ``searchspaces.default_space``); ``initial_configs`` are evaluated first, after each
    learner's default. ``storage`` (an SQLite path or database URL) keeps every
    finished trial; calling ``fit`` again with it resumes the search.

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
    scale on the rates; :mod:`automl.meta_init`). The meta-model must have
    been meta-trained for this task kind on tables with the same feature
    columns, in the same order.

    Final model: a weighted average of up to ``ensemble_size`` configurations
    (``1``: the best alone), chosen by greedy ensemble selection on the trials'
    out-of-fold predictions among those whose fits on all rows end within the
    budget, and refitted on all rows (see :mod:`automl.ensemble`).

    Write-back: unless ``remember=False``, the dataset's
    meta-features and the trials are appended to the user's knowledge base
    (``kb``, else ``$AUTOML_KB``, else the user cache directory), which is read
    together with the knowledge shipped with the package.

    >>> import automl
    >>> from sklearn.datasets import load_breast_cancer
    >>> model = automl.fit(load_breast_cancer(), time_budget=10, verbose=0)  # doctest: +SKIP
    >>> model.leaderboard().head()                                           # doctest: +SKIP
    """
    return _run(dict(locals()), final=True)


def work(data: Any, y: Any = None, *, storage: Any, study_name: str | None = None, **options: Any) -> list[TrialResult]:
    """Search on a shared study without fitting a model: one of several worker processes.

    Several ``work`` processes (``automl worker`` on the command line) and a
    final ``fit`` given the same ``storage`` (a database URL, an SQLite file or
    a journal file on one machine) and ``study_name`` share one Optuna study:
    each adds trials, and the ``fit`` refits the best of all of them. Other
    options are those of :func:`fit`; each worker should get its own ``seed``.
    Returns this process's trials.
    """
    defaults = {name: p.default for name, p in inspect.signature(fit).parameters.items() if p.default is not p.empty}
    unknown = set(options) - set(defaults)
    if unknown:
        raise ConfigError(f"unknown options for work: {sorted(unknown)}")
    return _run({**defaults, **options, "data": data, "y": y, "storage": storage, "study_name": study_name}, final=False)


def _run(args: dict[str, Any], final: bool) -> Any:
    """The body of :func:`fit` (``final``) and :func:`work` (search only)."""
    time_budget, n_trials, trial_time_limit = args["time_budget"], args["n_trials"], args["trial_time_limit"]
    check_budget(time_budget, n_trials)
    started = time.monotonic()
    if trial_time_limit is not None and not trial_time_limit > 0:
        raise ConfigError(f"trial_time_limit must be a positive number of seconds, got {trial_time_limit}")
    ensemble_size = args["ensemble_size"]
    if isinstance(ensemble_size, bool) or not isinstance(ensemble_size, int) or ensemble_size < 1:
        raise ConfigError(f"ensemble_size must be a whole number of at least 1 (1: the best model alone), got {ensemble_size!r}")
    limit = trial_time_limit if trial_time_limit is not None else (time_budget * TRIAL_SHARE if time_budget else None)
    budget = Budget(time_budget, started=started, max_trials=n_trials, trial_time_limit=limit)
    seed, remember, kb, verbose = args["seed"], args["remember"], args["kb"], args["verbose"]
    with log_level(verbose):
        dataset = load_dataset(args["data"], args["y"], target=args["target"], task=args["task"], categorical=args["categorical"])
        chosen_metric = get_metric(args["metric"], dataset.task)
        meta_learner = _meta_init_learner(args["meta_init"], dataset)
        meta_features = describe(dataset, seed) if (remember or args["warm_start"]) else None
        space = args["space"] or (None if args["learners"] is not None else default_space(time_budget))
        evaluator = _make_evaluator(dataset, chosen_metric, args["learners"], space, args["resampling"],
                                    args["n_folds"], time_budget, seed)
        if meta_learner is not None:
            from automl.meta_init import with_meta_learner

            evaluator.learners = with_meta_learner(evaluator.learners, meta_learner)
        warm = _warm_start(args["warm_start"], meta_features, dataset, evaluator, budget, kb)
        plan = SearchPlan(
            space=joint_space({name: learner.space for name, learner in evaluator.learners.items()}),
            initial=_initial_configs(evaluator.learners, args["initial_configs"], warm),
            priors=warm.priors if warm is not None else {},
            final_models=ensemble_size,
        )
        search_backend = make_backend(
            args["backend"], storage=args["storage"], study_name=args["study_name"], sampler=args["sampler"],
            pruner=args["pruner"], n_jobs=args["n_jobs"], seed=seed, memory_limit_mb=args["memory_limit"],
            address=args["address"], resources_per_trial=args["resources_per_trial"], max_concurrent=args["max_concurrent"],
        )
        log.info(
            "%s task, %d rows x %d features, metric %s, learners %s, %s",
            dataset.task, len(dataset.X), dataset.X.shape[1], chosen_metric.name,
            sorted(evaluator.learners), evaluator.resampling,
        )
        _prime_imports(evaluator)
        results = _search(search_backend, plan, evaluator, budget, verbose)
        mine = [r for r in results if not r.resumed]
        if remember:  # the meta-learned learner's trials hold for its meta-model only: no knowledge for other searches
            kept = [r for r in mine if meta_learner is None or r.config.learner != meta_learner.name]
            writeback.remember(dataset, chosen_metric.name, kept, meta_features, kb)
        if not final:
            return mine
        return _final_model(evaluator, results, budget, search_backend, args["memory_limit"], ensemble_size)


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

    Costs one set of meta-features and one fit, like FLAML's zero-shot
    defaults. Without any knowledge it fits the first learner's default.
    Arguments mean what they mean for :func:`fit`.

    >>> model = automl.zero_shot("train.csv", target="label")  # doctest: +SKIP
    """
    started = time.monotonic()
    dataset = load_dataset(data, y, target=target, task=task, categorical=categorical)
    chosen_metric = get_metric(metric, dataset.task)
    evaluator = _make_evaluator(dataset, chosen_metric, learners, space, "auto", None, None, seed)
    warm = plan_warm_start(describe(dataset, seed), dataset.task, evaluator.learners, 1, kb, method=ZERO_SHOT_METHOD)
    if warm.suggestions:
        config, origin = warm.suggestions[0].config, f"warm:{warm.method}"
    else:
        config, origin = next(iter(evaluator.learners.values())).default_config(), "default"
    with WorkerPool(evaluator, 1) as pool:
        pipeline, error = pool.refit(config, float("inf"))
    if pipeline is None:
        raise SearchFailed(f"the zero-shot configuration {config} could not be fitted: {error}")
    result = TrialResult(config, OK, None, origin=origin, number=0, fit_seconds=time.monotonic() - started)
    summary = SearchSummary(backend="zero-shot", n_trials=1, seconds=time.monotonic() - started, refit_rows=len(dataset.X))
    return AutoModel(Ensemble([pipeline], [config]), dataset.schema, dataset.task_info(chosen_metric.name), [result], result, summary)


def describe(dataset: Dataset, seed: int = 0) -> dict[str, float]:
    """The dataset's meta-features (see :mod:`metaknowledge.features`)."""
    return extract(dataset.X, dataset.encoded_target(), dataset.task, dataset.categorical, seed=seed)


def make_backend(backend: Any, *, address: str | None = None, resources_per_trial: Mapping[str, float] | None = None,
                 max_concurrent: int | None = None, n_jobs: int = 1, **common: Any) -> Backend:
    """The search backend by name: ``"optuna"``, ``"ray"`` (batched) or ``"ray-tune"`` (plain Tune), or a ready one."""
    if isinstance(backend, Backend):
        return backend
    if backend == "optuna":
        if address is not None or resources_per_trial is not None or max_concurrent is not None:
            raise ConfigError("address, resources_per_trial and max_concurrent apply to backend='ray'; use n_jobs with 'optuna'")
        return OptunaBackend(n_jobs=n_jobs, **common)
    if backend in ("ray", "ray-tune"):
        if n_jobs != 1:
            raise ConfigError("with backend='ray', parallelism comes from the cluster: use max_concurrent, not n_jobs")
        from automl.backends.ray_backend import RayBackend

        return RayBackend(address=address, resources_per_trial=dict(resources_per_trial or {}), max_concurrent=max_concurrent,
                          mode="batched" if backend == "ray" else "tune", **common)
    raise ConfigError(f"backend must be 'optuna', 'ray' or 'ray-tune', got {backend!r}")


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
        # Holdout or not is decided on all the rows, not on the search's sample: a small budget must not buy
        # costlier trials (cross-validation on a 20,000-row sample, where a larger budget holds out on all 30,000).
        plan = choose_resampling(len(dataset.X), resampling, n_folds)
        if plan.kind == "holdout":  # the share held out suits the rows searched
            plan = choose_resampling(min(len(dataset.X), max_rows or len(dataset.X)), "holdout")
    except (KeyError, ValueError) as error:
        raise ConfigError(str(error).strip('"')) from None
    evaluator = Evaluator(dataset, metric, {}, plan, seed=seed, max_rows=max_rows)
    evaluator.learners = _fitting_learners(chosen, evaluator.n_train_rows, explicit=learners is not None)
    return evaluator


def _meta_init_learner(meta_init: Any, dataset: Dataset) -> Learner | None:
    """The learner that starts from ``meta_init``'s meta-learned network, checked against ``dataset`` (None without)."""
    if meta_init is None:
        return None
    try:
        from automl import meta_init as module
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
                log.warning("%s is slow above %d rows; it is searched because you asked for it", learner.name, learner.max_rows)
            else:
                log.info("skipping %s: %d training rows exceed its limit of %d", learner.name, n_rows, learner.max_rows)
                continue
        kept[learner.name] = learner
    if not kept:
        raise ConfigError(f"no learner suits {n_rows} rows; name some explicitly with learners=[...]")
    return kept


def _warm_start(
    warm_start: bool | int,
    meta_features: Mapping[str, float] | None,
    dataset: Dataset,
    evaluator: Evaluator,
    budget: Budget,
    kb: str | None,
) -> WarmStart | None:
    """What meta-knowledge suggests for this dataset (None for a cold start)."""
    if warm_start is False or warm_start is None or meta_features is None:
        return None
    if isinstance(warm_start, bool) or not isinstance(warm_start, int) or warm_start < 1:
        if warm_start is not True:
            raise ConfigError(f"warm_start must be True, False or a positive number of configurations, got {warm_start!r}")
        k = initial_count(budget.time_budget, budget.max_trials)
    else:
        k = warm_start
    try:
        shape = TrialShape(len(evaluator.rows), dataset.X.shape[1], evaluator.resampling.training_share)
        warm = plan_warm_start(meta_features, dataset.task, evaluator.learners, k, kb, time_budget=budget.time_budget,
                               trial_time_limit=budget.trial_time_limit, trial_shape=shape)
    except Exception as error:  # a broken knowledge base must not stop the search
        log.warning("warm start unavailable (%s: %s); starting cold", type(error).__name__, error)
        return None
    log.info("warm start (%s): %d suggestions in %.2f s", warm.method, len(warm.suggestions), warm.seconds)
    return warm if warm.suggestions else None


def _initial_configs(
    learners: Mapping[str, Learner], extra: Sequence[Config | Mapping[str, Any]] | None, warm: WarmStart | None = None
) -> list[tuple[Config, str]]:
    """The configurations to evaluate first, then the user's, validated.

    Cold, every learner's low-cost point comes first (learners in order of
    their cost hint), so that something finishes early even on data where the
    rest is slow, then the learners' defaults. Warm, when the knowledge is
    trusted on data of its size, the suggestions of meta-knowledge come first:
    the zero-shot pick, then each suggested learner's best suggestion before
    any learner's second (the final model is an ensemble, and members of
    different learners make different errors), then the rest; the low-cost
    points follow. While the knowledge is too thin to trust, the low-cost
    points, the defaults and then the suggestions run; on data much larger
    than the knowledge was measured on, defaults and suggestions alternate
    after the low-cost points (see :class:`~automl.warm.WarmStart`).
    """
    initial: list[tuple[Config, str]] = []
    by_cost = sorted(learners.values(), key=lambda learner: learner.cost)
    cheap = [(learner.low_cost_config(), "default") for learner in by_cost]
    defaults = [(learner.default_config(), "default") for learner in by_cost]
    if warm is None:
        candidates = cheap + defaults
    else:
        suggested = [(s.config, f"warm:{s.method}") for s in warm.suggestions]
        if not warm.trusted:
            candidates = cheap + defaults + suggested
        elif warm.extrapolating:
            # defaults that are their learner's cheap corner too have run already: alternate with the others
            candidates = cheap + _alternating([item for item in defaults if item not in cheap], suggested)
        else:  # the cheap corners alone can take half of a small budget on wide data: suggestions first
            candidates = suggested[:1] + _learners_first(suggested[1:]) + cheap
    for config, origin in candidates:
        if all(config != seen for seen, _ in initial):
            initial.append((config, origin))
    for item in extra or ():
        config = item if isinstance(item, Config) else Config.from_dict(item)
        if config.learner not in learners:
            raise ConfigError(f"initial config {config} names learner {config.learner!r}, which is not searched ({sorted(learners)})")
        problems = learners[config.learner].space.problems(dict(config.params))
        if problems:
            raise ConfigError(f"initial config {config} is not valid: {'; '.join(problems)}")
        initial.append((config, "user"))
    return initial


def _learners_first(items: list[tuple[Config, str]]) -> list[tuple[Config, str]]:
    """Each learner's first item, in their order, then the others in theirs."""
    seen: set[str] = set()
    firsts, rest = [], []
    for item in items:
        (rest if item[0].learner in seen else firsts).append(item)
        seen.add(item[0].learner)
    return firsts + rest


def _alternating(first: list[tuple[Config, str]], second: list[tuple[Config, str]]) -> list[tuple[Config, str]]:
    """One of ``first``, one of ``second``, and so on; the rest of the longer list at the end."""
    merged = [item for pair in zip(first, second) for item in pair]
    shorter = min(len(first), len(second))
    return merged + first[shorter:] + second[shorter:]


def _search(backend: Backend, plan: SearchPlan, evaluator: Evaluator, budget: Budget, verbose: int) -> list[TrialResult]:
    progress = SearchProgress(budget, evaluator.metric, verbose)
    try:
        return backend.run(plan, evaluator, budget, progress.update)
    finally:
        progress.close()


def _final_model(
    evaluator: Evaluator, results: list[TrialResult], budget: Budget, backend: Backend, memory_limit: float | None,
    ensemble_size: int,
) -> AutoModel:
    metric = evaluator.metric
    best = best_result(results, metric)
    if best is None:
        best = _stand_in(results, evaluator, budget)
    if backend.interrupted:
        log.warning("search interrupted after %d trials: fitting the best so far (run again with the same storage to resume)", len(results))
    rows, deadline = _refit_rows(evaluator, best, budget)
    if best.status == UNVALIDATED:
        rows = min(len(evaluator.y), STAND_IN_ROWS)
    late = _late_incumbent(results, best, rows, evaluator, budget)
    if late is not None:
        log.info("%s was found too late to fit on enough rows; the model uses %s, which fits in time", best.config, late.config)
        rows, deadline = _refit_rows(evaluator, late, budget)
    lead = late or best
    if best.status == UNVALIDATED:
        note = f"no trial finished within the budget: {best.config} was fitted unvalidated on {rows} rows"
    elif late is not None:
        note = "the best configuration was found too late to fit in the time left; the best one that fits was used"
    else:
        note = "" if rows is None else f"fitted on a sample of {rows} rows to stay within the budget"
    # the best fitted on all rows can have company; a sample means no time for more
    chosen = [(lead, 1.0)] if note else _members(results, lead, evaluator, budget, ensemble_size)
    with WorkerPool(evaluator, 1, memory_limit) as pool:
        ensemble, error = _fit_members(pool, evaluator, chosen, budget, deadline, rows)
        quick = _quickest(results, [r for r, _ in chosen], evaluator, budget) if ensemble is None else None
        if quick is not None:
            ensemble, note = _fit_quickest(pool, evaluator, quick, budget, error)
    if ensemble is None:
        log.warning("the final fit of %s failed (%s); falling back to a constant predictor", lead.config, error)
        ensemble = Ensemble([_constant_pipeline(evaluator)], [lead.config])
        note = f"final fit failed ({error}); constant predictor used"
    elif evaluator.dataset.task != "regression":
        prior = np.bincount(evaluator.y, minlength=evaluator.n_classes) / len(evaluator.y)
        ensemble.mix_prior(prior, prior_mix(chosen, evaluator.validation_target, metric, prior))
    summary = SearchSummary(
        backend=backend.name,
        n_trials=len(results),
        seconds=budget.elapsed(),
        interrupted=backend.interrupted,
        refit_rows=int(rows or len(evaluator.y)),
        refit_note=note,
    )
    info = evaluator.dataset.task_info(metric.name)
    return AutoModel(ensemble, evaluator.dataset.schema, info, results, best, summary)


def _stand_in(results: list[TrialResult], evaluator: Evaluator, budget: Budget) -> TrialResult:
    """What to fit when no trial succeeded: the cheapest learner's low-cost corner, if the trials only ran out of time.

    On large data and a small budget every trial can pass its time limit; a
    model fitted on a sample, unvalidated, then serves better than an error.
    Trials that failed for other reasons (the data, the learners) raise
    :class:`SearchFailed` with their errors.
    """
    if budget.time_budget is None or not results or any(r.status not in (TIMEOUT, PRUNED) for r in results):
        raise SearchFailed(_failure_summary(results, budget))
    cheapest = min(evaluator.learners.values(), key=lambda learner: learner.cost)
    log.warning("no trial finished within the budget; fitting %s's low-cost configuration on a sample", cheapest.name)
    return TrialResult(cheapest.low_cost_config(), UNVALIDATED, origin="stand-in")


def _members(
    results: list[TrialResult], lead: TrialResult, evaluator: Evaluator, budget: Budget, ensemble_size: int
) -> list[tuple[TrialResult, float]]:
    """The final model's trials and weights: chosen on out-of-fold predictions where the trials kept them.

    Ensemble selection admits only trials whose fits on all rows together end
    within the budget; without predictions (resumed trials), the best is averaged
    with those within one standard error of it.
    """
    if ensemble_size <= 1:
        return [(lead, 1.0)]
    scale = RefitScale.of(evaluator)
    if lead.predictions is not None:
        remaining = budget.remaining()
        chosen = select_ensemble(results, evaluator.validation_target, evaluator.metric, ensemble_size,
                                 cost=scale.refit_seconds, allowance=remaining, seconds=SELECTION_SHARE * remaining)
        return chosen or [(lead, 1.0)]
    members = choose_members(results, evaluator.metric, ensemble_size)
    return [(member, 1.0 / len(members)) for member in members]


def _fit_members(
    pool: WorkerPool, evaluator: Evaluator, chosen: list[tuple[TrialResult, float]], budget: Budget, deadline: float,
    rows: int | None,
) -> tuple[Ensemble | None, str]:
    """Fit the ``chosen`` trials on the training rows, heaviest first; the ensemble of those that fit, or why none did.

    The first may run until ``deadline`` on ``rows`` (None: all of them); the
    others run on all rows, and only while each is likely to end within the
    budget. A member that fails is left out and the others' weights grow.
    """
    scale = RefitScale.of(evaluator)
    ensemble: Ensemble | None = None
    first_error = ""
    for index, (result, weight) in enumerate(chosen):
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
    log.warning("the final fit failed (%s); the model uses %s, the best configuration that refits quickly", error, quick.config)
    sample = "" if rows is None else f" on {rows} rows"
    return Ensemble([pipeline], [quick.config]), f"final fit failed ({error}); {quick.config.learner} fitted{sample} instead"


def _refit(pool: WorkerPool, evaluator: Evaluator, config: Config, deadline: float, rows: int | None) -> tuple[Pipeline | None, str]:
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


def _constant_pipeline(evaluator: Evaluator, rows: int | None = None) -> Pipeline:
    """A pipeline predicting the training target's mean or class prior (from the first ``rows`` rows)."""
    from automl.preprocessing import make_preprocessor
    from searchspaces import Preprocessing

    X, y = evaluator.dataset.X.iloc[:rows], evaluator.y[:rows]
    transformer, _ = make_preprocessor(Preprocessing("ordinal"), X, evaluator.dataset.categorical)
    model = DummyRegressor() if evaluator.dataset.task == "regression" else DummyClassifier(strategy="prior")
    model.fit(transformer.fit_transform(X), y)
    return Pipeline([("preprocess", transformer), ("model", model)])


def _prime_imports(evaluator: Evaluator) -> None:
    """Fit and apply a tiny pipeline, and build each learner's default estimator, here, before any worker is forked.

    scikit-learn imports some modules on first use, and learners import their
    libraries when they first build an estimator (lightgbm, torch: a second or
    more each). Paid once in this process, they are inherited by every worker,
    the final fit's fresh one included, instead of eating into their time.
    """
    try:
        _constant_pipeline(evaluator, rows=20).predict(evaluator.dataset.X.iloc[:5])
        context = BuildContext(evaluator.dataset.task, n_rows=20, n_features=evaluator.dataset.X.shape[1])
        for learner in evaluator.learners.values():
            learner.build(dict(learner.default_config().params), context)
    except Exception as error:  # only a speed-up: odd first rows or a learner's odd defaults must not stop the search
        log.debug("import priming skipped: %s", error)


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

