"""The embedded default backend: Optuna in-process, trials in worker processes.

Optuna's ask-and-tell interface drives a :class:`~automl.search.worker.WorkerPool`,
so the backend owns the clock: it stops asking when the budget says so, kills
trials at their deadlines and keeps several workers busy when ``n_jobs > 1``.
With a storage (an SQLite file by default), every finished trial is written as
it ends; running the same ``fit`` again resumes the study with its finished
trials kept.
"""

from __future__ import annotations

import logging
import random
import time
from functools import partial
from pathlib import Path
from typing import Any

import optuna
from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, SuccessiveHalvingPruner
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from automl.errors import ConfigError
from automl.search.backends.base import Backend, ResultCallback, SearchPlan
from automl.search.backends.driver import StudyDriver, stored_results
from automl.search.budget import Budget
from automl.search.evaluation import Evaluator, TrialResult
from automl.search.interrupts import CtrlC
from automl.search.metrics import Metric
from automl.search.optuna_setup import make_sampler, quiet_optuna
from automl.search.refit import RefitScale
from automl.search.worker import WorkerPool
from metaknowledge.location import with_driver
from searchspaces.space import LEARNER_KEY

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30
POLL_SECONDS = 0.25
STORAGE_ATTEMPTS = 5
JOURNAL_SUFFIXES = {".log", ".journal", ".jsonl"}


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
    text = with_driver(text)
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            with quiet_optuna():
                return RDBStorage(text, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=3 * HEARTBEAT_SECONDS)
        except (IntegrityError, OperationalError, ProgrammingError):
            # Workers starting together race to create the tables (SQLite: locked; PostgreSQL: a
            # duplicate table or key): the tables exist by the next attempt.
            if attempt == STORAGE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")


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
        """Create the study, or load it to resume (see :func:`open_study`)."""
        return open_study(self.storage, self.study_name, self.sampler, self.pruner, evaluator.metric,
                          study_marks(plan, evaluator, self.storage))

    def run(self, plan: SearchPlan, evaluator: Evaluator, budget: Budget,
            on_result: ResultCallback) -> list[TrialResult]:
        with quiet_optuna():
            return self._run(plan, evaluator, budget, on_result)

    def _run(self, plan: SearchPlan, evaluator: Evaluator, budget: Budget,
             on_result: ResultCallback) -> list[TrialResult]:
        study = self.open_study(plan, evaluator)
        self.study = study
        driver = StudyDriver(study, plan, budget, evaluator.metric, RefitScale.of(evaluator), self.pruner is not None,
                             self.seed)
        for result in driver.previous:
            on_result(result)
        results: list[TrialResult] = list(driver.previous)
        with WorkerPool(evaluator, self.n_jobs, self.memory_limit_mb) as pool, CtrlC() as ctrl_c:
            try:
                while True:
                    ctrl_c.check()
                    while pool.idle:
                        job = driver.next()
                        if job is None:
                            break
                        reporter = partial(driver.report, job.number) if driver.pruning else None
                        pool.submit(job.config, time.monotonic() + job.seconds, reporter, ticket=job.number,
                                    keep_models_below=job.keep_models_below)
                    plan.started()
                    if not pool.busy:
                        break
                    finished = pool.cancel_all() if driver.seconds_left() <= 0 else pool.wait(POLL_SECONDS)
                    for number, result in finished:
                        results.append(driver.finish(number, result))
                        on_result(results[-1])
                    driver.heartbeat()
            except KeyboardInterrupt:
                self.interrupted = True
                log.warning("search interrupted: %d trials finished; the running ones are marked failed", len(results))
                driver.fail_running()
        return results + others_in(study, results)


def study_marks(plan: SearchPlan, evaluator: Evaluator, storage: Any) -> dict[str, str]:
    """What a stored study must match to be resumed: the data, the space and the metric."""
    return {
        "dataset": evaluator.dataset.fingerprint() if storage is not None else "",
        "space": plan.space.fingerprint(),
        "metric": evaluator.metric.name,
    }


def open_study(storage: Any, study_name: str | None, sampler: Any, pruner: Any, metric: Metric,
               marks: dict[str, str]) -> optuna.Study:
    """Create the study, or load it to resume; refuse one made for other data, metric or space."""
    name = study_name or f"automl-{marks['dataset'] or 'memory'}-{marks['metric']}-{marks['space']}"
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=sampler, pruner=pruner, direction=metric.direction,
        load_if_exists=True
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
    if isinstance(storage, RDBStorage):
        optuna.storages.fail_stale_trials(study)
    return study


def others_in(study: optuna.Study, results: list[TrialResult]) -> list[TrialResult]:
    """Finished trials other processes added to a shared study (they count for the best model)."""
    if study._storage.__class__.__name__ == "InMemoryStorage":
        return []
    mine = {r.number for r in results}
    return [r for r in stored_results(study) if r.number not in mine]
