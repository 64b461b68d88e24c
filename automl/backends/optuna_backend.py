"""The embedded default backend: Optuna in-process, trials in worker processes.

Optuna's ask-and-tell interface drives a :class:`~automl.worker.WorkerPool`,
so the backend owns the clock: it stops asking when the budget says so, kills
trials at their deadlines and keeps several workers busy when ``n_jobs > 1``.
With a storage (an SQLite file by default), every finished trial is written as
it ends; running the same ``fit`` again resumes the study with its finished
trials kept.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, SuccessiveHalvingPruner
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from automl.backends.base import Backend, ResultCallback, SearchPlan
from automl.budget import Budget
from automl.errors import ConfigError
from automl.evaluation import PRUNED, TIMEOUT, Evaluator, TrialResult
from automl.worker import WorkerPool
from searchspaces import config_from_flat, flat_from_config
from searchspaces.space import LEARNER_KEY
from searchspaces.to_optuna import suggest

log = logging.getLogger(__name__)

RESULT_ATTR = "automl"
HEARTBEAT_SECONDS = 30
POLL_SECONDS = 0.25
JOURNAL_SUFFIXES = {".log", ".journal", ".jsonl"}
MAX_CACHE_HITS = 200  # repeated suggestions answered from the cache before the search gives up


@contextmanager
def quiet_optuna():
    """Optuna's INFO log and its warnings about features we use on purpose, off while we drive it."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            yield
    finally:
        optuna.logging.set_verbosity(previous)


def resolve_storage(storage: Any) -> BaseStorage | None:
    """``None`` (in memory), an Optuna storage, a database URL, or a file path.

    A path ending in ``.log``/``.journal``/``.jsonl`` becomes a journal file;
    any other path an SQLite database (its folder is created if needed).
    """
    if storage is None or isinstance(storage, BaseStorage):
        return storage
    if not isinstance(storage, (str, Path)):
        raise ConfigError(f"storage must be a path, a database URL or an Optuna storage, got {type(storage).__name__}")
    text = str(storage)
    if "://" not in text:
        path = Path(text).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in JOURNAL_SUFFIXES:
            return JournalStorage(JournalFileBackend(str(path)))
        text = f"sqlite:///{path}"
    with quiet_optuna():
        return RDBStorage(text, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=3 * HEARTBEAT_SECONDS)


class _OneLearnerView:
    """A study as seen by a pruner: only the trials of one learner."""

    def __init__(self, study: optuna.Study, learner: Any):
        self._study, self._learner = study, learner

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        trials = self._study.get_trials(deepcopy=deepcopy, states=states)
        return [t for t in trials if t.params.get(LEARNER_KEY) == self._learner]

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


class PerLearnerPruner(BasePruner):
    """Apply ``base`` comparing a trial only with trials of the same learner.

    Steps mean different amounts of work for different learners (a boosting
    stage, a fold), so comparing across learners would prune unfairly.
    """

    def __init__(self, base: BasePruner):
        self.base = base

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self.base.prune(_OneLearnerView(study, trial.params.get(LEARNER_KEY)), trial)  # type: ignore[arg-type]


def make_pruner(pruner: Any) -> BasePruner | None:
    """``"median"`` (the default), ``"sha"``, ``"hyperband"``, ``None``, or an Optuna pruner."""
    if pruner is None or pruner == "none":
        return None
    if isinstance(pruner, BasePruner):
        return PerLearnerPruner(pruner)
    choices = {
        "auto": lambda: MedianPruner(n_startup_trials=3),
        "median": lambda: MedianPruner(n_startup_trials=3),
        "sha": lambda: SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        "hyperband": lambda: HyperbandPruner(min_resource=1, reduction_factor=3),
    }
    if pruner not in choices:
        raise ConfigError(f"pruner must be one of {sorted(choices)} or None, got {pruner!r}")
    return PerLearnerPruner(choices[pruner]())


def make_sampler(sampler: Any, seed: int, n_jobs: int) -> optuna.samplers.BaseSampler:
    """``"tpe"`` (multivariate, conditional-aware; the default), ``"random"``, or an Optuna sampler."""
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    if sampler in (None, "tpe"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed, constant_liar=n_jobs > 1)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"sampler must be 'tpe', 'random' or an Optuna sampler, got {sampler!r}")


def stored_results(study: optuna.Study) -> list[TrialResult]:
    """The results of a study's finished trials (those this engine recorded)."""
    results = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
        if RESULT_ATTR in trial.user_attrs:
            result = TrialResult.from_dict(json.loads(trial.user_attrs[RESULT_ATTR]))
            result.number = trial.number
            result.resumed = True
            results.append(result)
    return results


class OptunaBackend(Backend):
    """Optuna's samplers and pruners over worker processes (see the module docstring)."""

    name = "optuna"

    def __init__(
        self,
        storage: Any = None,
        study_name: str | None = None,
        sampler: Any = "tpe",
        pruner: Any = "auto",
        n_jobs: int = 1,
        seed: int = 0,
        memory_limit_mb: float | None = None,
    ):
        if not isinstance(n_jobs, int) or n_jobs < 1:
            raise ConfigError(f"n_jobs must be a positive whole number, got {n_jobs!r}")
        self.storage = resolve_storage(storage)
        self.study_name = study_name
        self.sampler = make_sampler(sampler, seed, n_jobs)
        self.pruner = make_pruner(pruner)
        self.n_jobs = n_jobs
        self.seed = seed
        self.memory_limit_mb = memory_limit_mb
        self.study: optuna.Study | None = None
        self.interrupted = False

    def open_study(self, plan: SearchPlan, evaluator: Evaluator) -> optuna.Study:
        """Create the study, or load it to resume; refuse one made for other data or another space."""
        marks = {
            "dataset": evaluator.dataset.fingerprint() if self.storage is not None else "",
            "space": plan.space.fingerprint(),
            "metric": evaluator.metric.name,
        }
        name = self.study_name or f"automl-{marks['dataset'] or 'memory'}-{marks['metric']}-{marks['space']}"
        study = optuna.create_study(
            storage=self.storage,
            study_name=name,
            sampler=self.sampler,
            pruner=self.pruner,
            direction=evaluator.metric.direction,
            load_if_exists=True,
        )
        for key, value in marks.items():
            stored = study.user_attrs.get(key)
            if stored is None:
                study.set_user_attr(key, value)
            elif value and stored != value:
                raise ConfigError(
                    f"the storage already holds a study named {name!r} for a different {key} "
                    f"({stored} here, {value} now). Pass another study_name, or the same data, metric and learners."
                )
        if isinstance(self.storage, RDBStorage):
            optuna.storages.fail_stale_trials(study)
        return study

    def run(self, plan: SearchPlan, evaluator: Evaluator, budget: Budget, on_result: ResultCallback) -> list[TrialResult]:
        with quiet_optuna():
            return self._run(plan, evaluator, budget, on_result)

    def _run(self, plan: SearchPlan, evaluator: Evaluator, budget: Budget, on_result: ResultCallback) -> list[TrialResult]:
        study = self.open_study(plan, evaluator)
        self.study = study
        previous = stored_results(study)
        for result in previous:
            on_result(result)
        done = {r.config.key(): r for r in previous if r.status != PRUNED}
        for config, origin in plan.initial:
            if config.key() not in done:
                study.enqueue_trial(flat_from_config(config), user_attrs={"origin": origin}, skip_if_exists=True)
        results: list[TrialResult] = list(previous)
        running: dict[int, optuna.Trial] = {}
        rng = np.random.default_rng(self.seed)
        started = cache_hits = 0
        last_beat = time.monotonic()
        with WorkerPool(evaluator, self.n_jobs, self.memory_limit_mb) as pool:
            try:
                while True:
                    while pool.idle and budget.can_start(started) and cache_hits < MAX_CACHE_HITS:
                        self._maybe_enqueue_prior(study, plan, rng)
                        trial = study.ask()
                        config = config_from_flat(suggest(trial, plan.space))
                        cached = done.get(config.key())
                        if cached is not None:
                            cache_hits += 1
                            self._tell(study, trial, cached)
                            continue
                        started += 1
                        reporter = self._reporter(trial) if self.pruner is not None else None
                        pool.submit(config, budget.trial_deadline(), reporter, ticket=trial.number)
                        running[trial.number] = trial
                    if not pool.busy:
                        break
                    if time.monotonic() >= budget.search_deadline():
                        finished = pool.cancel_all()
                    else:
                        finished = pool.wait(POLL_SECONDS)
                    for number, result in finished:
                        trial = running.pop(number)
                        result.number = number
                        result.origin = trial.user_attrs.get("origin", "search")
                        result.finished_at = budget.elapsed()
                        self._tell(study, trial, result)
                        if result.status != PRUNED:
                            done.setdefault(result.config.key(), result)
                        results.append(result)
                        on_result(result)
                    if time.monotonic() - last_beat > HEARTBEAT_SECONDS / 2:
                        self._heartbeat(running.values())
                        last_beat = time.monotonic()
            except KeyboardInterrupt:
                self.interrupted = True
                log.warning("search interrupted: %d trials finished; the running ones are marked failed", len(results))
                for trial in running.values():
                    study.tell(trial, state=TrialState.FAIL)
        return results

    @staticmethod
    def _maybe_enqueue_prior(study: optuna.Study, plan: SearchPlan, rng: np.random.Generator) -> None:
        """Once the initial configurations are used, sometimes put a draw from the priors next."""
        if not plan.priors or study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return
        config = plan.draw_from_priors(rng)
        if config is not None:
            study.enqueue_trial(flat_from_config(config), user_attrs={"origin": "prior"})

    def _reporter(self, trial: optuna.Trial):
        def report(step: int, value: float) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        return report

    def _heartbeat(self, trials: Any) -> None:
        if isinstance(self.storage, RDBStorage):
            for trial in trials:
                self.storage.record_heartbeat(trial._trial_id)

    @staticmethod
    def _tell(study: optuna.Study, trial: optuna.Trial, result: TrialResult) -> None:
        """Record the result; a timeout counts as pruned, so samplers learn to avoid slow regions."""
        trial.set_user_attr(RESULT_ATTR, json.dumps(result.to_dict(), default=str))
        if result.ok:
            study.tell(trial, result.value)
        elif result.status in (PRUNED, TIMEOUT):
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)

