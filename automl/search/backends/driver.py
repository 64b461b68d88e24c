"""The search logic both backends share: which configuration next, what a result means.

A :class:`StudyDriver` wraps an Optuna study and answers three questions:
``next()`` — the next configuration to evaluate and how long it may run (the
initial configurations first, then draws from the priors or the sampler;
repeated configurations are answered from a cache without running them),
``report()`` — whether a running trial should be pruned, and ``finish()`` —
recording a result (a timeout is stored as failed: it has no score of its own,
and the configuration is not run again). Initial configurations enter the
study's queue one at a time, so a search leaves no trial waiting. It also
keeps the budget's reserve for the final fit in step with the incumbent. The
Optuna backend calls it in-process; the Ray backend calls it inside a
coordinator actor, so time limits are handed out as durations, never as clock
readings of another machine.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from automl.search.backends.base import SearchPlan
from automl.search.budget import Budget
from automl.search.ensemble import likely_members
from automl.search.evaluation import PRUNED, TrialResult
from automl.search.metrics import Metric
from automl.search.refit import RefitScale
from searchspaces import Config, config_from_flat, flat_from_config
from searchspaces.space import LEARNER_KEY
from searchspaces.to_optuna import suggest

log = logging.getLogger(__name__)

RESULT_ATTR = "automl"
DASHBOARD_ATTRS = ("learner", "origin", "status", "fit_seconds")  # plain user attributes of every told trial
HEARTBEAT_SECONDS = 30
LEADERS = 50  # results kept to choose the final model's members from: they are among the best few
BAGGED_LEADERS = 8  # of them, the best few keep their fold models (for a bagged final model), with each learner's best
BAGGED_MEMBER_SECONDS = 0.15  # what a bagged member needs at the end (no refit: checking it, a share of stacking)
MAX_CACHE_HITS = 200  # repeated suggestions answered from the cache before the search gives up


@dataclass
class Job:
    """A configuration to evaluate, its trial number and the seconds it may run."""

    number: int
    config: Config
    seconds: float
    origin: str
    keep_models_below: float | None = None  # the loss under which its fold models are worth sending back


def dashboard_attrs(result: TrialResult, origin: str, repeat: bool = False) -> dict[str, str | float | bool]:
    """The user attributes a told trial shows in ``optuna-dashboard``: learner, origin, our status, fit seconds.

    ``origin`` is the trial's own (a repeat of a configuration answered from
    the cache keeps its own origin, and says it is a repeat).
    """
    attrs: dict[str, str | float | bool] = {
        "learner": result.config.learner,
        "origin": origin,
        "status": result.status,
        "fit_seconds": round(float(result.fit_seconds), 3),
    }
    if repeat:
        attrs["repeat"] = True
    return attrs


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


class StudyDriver:
    """One search's decisions over an Optuna study (see the module docstring)."""

    def __init__(self, study: optuna.Study, plan: SearchPlan, budget: Budget, metric: Metric, scale: RefitScale,
                 pruning: bool, seed: int = 0):
        self.study, self.plan, self.budget, self.metric, self.scale = study, plan, budget, metric, scale
        self.pruning = pruning
        self.rng = np.random.default_rng(seed)
        self.running: dict[int, optuna.Trial] = {}
        self.started = 0
        self.cache_hits = 0
        self.leaders: list[TrialResult] = []  # the best results, best first: where the final model's members come from
        self.learner_best: dict[str, TrialResult] = {}  # each learner's best result (ensembles like variety)
        self.last_beat = time.monotonic()
        self.previous = stored_results(study)
        for result in self.previous:
            self._track(result)
        self.done = {r.config.key(): r for r in self.previous if r.status != PRUNED}
        # enqueued one at a time, just before it is asked for: a search that ends early leaves no trial waiting
        self.queue = [(config, origin) for config, origin in plan.initial if config.key() not in self.done]

    def can_start(self) -> bool:
        return self.budget.can_start(self.started) and self.cache_hits < MAX_CACHE_HITS

    def next(self) -> Job | None:
        """The next configuration to run, or None when the search may start nothing more."""
        while self.can_start():
            self._enqueue_next()
            trial = self.study.ask()
            config = config_from_flat(suggest(trial, self.plan.space))
            cached = self.done.get(config.key())
            if cached is not None:
                self.cache_hits += 1
                self._tell(trial, cached, record=False)  # the sampler learns the value; no new result exists
                continue
            if config.key() in self.plan.avoid:  # it timed out or failed on this data in an earlier search
                self.cache_hits += 1
                for key, value in (("learner", config.learner), ("status", "avoided"),
                                   ("origin", trial.user_attrs.get("origin", "search"))):
                    trial.set_user_attr(key, value)
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            self.started += 1
            self.running[trial.number] = trial
            seconds = max(0.0, self.budget.trial_deadline() - time.monotonic())
            return Job(trial.number, config, seconds, trial.user_attrs.get("origin", "search"), self._models_bar())
        return None

    def report(self, number: int, step: int, value: float) -> bool:
        """Record an intermediate score; True when the trial should stop (pruned)."""
        trial = self.running.get(number)
        if trial is None or not self.pruning:
            return False
        trial.report(value, step)
        return trial.should_prune()

    def finish(self, number: int, result: TrialResult) -> TrialResult:
        """Record a finished trial's result; returns it completed with its number, origin and time."""
        trial = self.running.pop(number)
        result.number = number
        result.origin = trial.user_attrs.get("origin", "search")
        result.finished_at = self.budget.elapsed()
        self._tell(trial, result)
        if result.status != PRUNED:
            self.done.setdefault(result.config.key(), result)
        self._track(result)
        return result

    def seconds_left(self) -> float:
        """Until the search must end (so the final fit still fits in the budget)."""
        return self.budget.search_deadline() - time.monotonic()

    def fail_running(self) -> None:
        """Mark every running trial failed (the search was interrupted)."""
        for trial in self.running.values():
            trial.set_user_attr("status", "interrupted")
            trial.set_user_attr("origin", trial.user_attrs.get("origin", "search"))
            trial.set_user_attr("learner", str(trial.params.get(LEARNER_KEY, "")))
            self.study.tell(trial, state=TrialState.FAIL)
        self.running.clear()

    def heartbeat(self) -> None:
        """Tell an RDB storage the running trials are alive (so a crash can be told apart)."""
        storage = self.study._storage
        if isinstance(storage, RDBStorage) and time.monotonic() - self.last_beat > HEARTBEAT_SECONDS / 2:
            for trial in self.running.values():
                storage.record_heartbeat(trial._trial_id)
            self.last_beat = time.monotonic()

    def _track(self, result: TrialResult) -> None:
        """Keep the leading results, and the budget's reserve for fitting the final model's members at the end.

        Only the leaders and each learner's best keep their out-of-fold
        predictions (what ensemble selection chooses among), and only the first
        ``BAGGED_LEADERS`` of them and each learner's best their fold models;
        the rest drop them, so a long search holds a bounded amount of them.
        """
        if not result.ok:
            result.predictions = result.fold_models = None
            return
        champion = self.learner_best.get(result.config.learner)
        if champion is None or self.metric.loss(result.value) < self.metric.loss(champion.value):
            self.learner_best[result.config.learner] = result
            if champion is not None and all(champion is not leader for leader in self.leaders[:BAGGED_LEADERS]):
                champion.fold_models = None
                if all(champion is not leader for leader in self.leaders):
                    champion.predictions = None
        leaders = sorted([*self.leaders, result], key=lambda r: self.metric.loss(r.value))
        for rank, dropped in enumerate(leaders[BAGGED_LEADERS:], start=BAGGED_LEADERS):
            if self.learner_best.get(dropped.config.learner) is not dropped:
                dropped.fold_models = None
                if rank >= LEADERS:
                    dropped.predictions = None
        self.leaders = leaders[:LEADERS]
        if any(leader is result for leader in self.leaders):
            members = likely_members(self.leaders, self.metric, self.plan.final_models)
            self.budget.plan_refit([BAGGED_MEMBER_SECONDS if r.fold_models is not None else self.scale.refit_seconds(r)
                                    for r in members])

    def _models_bar(self) -> float | None:
        """The loss a new trial must beat for its fold models to be kept: that of the last of the bagged leaders
        (none while there are fewer; None when the plan keeps no fold models)."""
        if not self.plan.keep_fold_models:
            return None
        if len(self.leaders) < BAGGED_LEADERS:
            return float("inf")
        return self.metric.loss(self.leaders[BAGGED_LEADERS - 1].value)

    def _enqueue_next(self) -> None:
        """Put the next initial configuration in the study's queue (one another process of a shared study already
        runs is passed over), else a draw from the priors, unless a trial is waiting already."""
        if (not self.queue and not self.plan.priors) or self._waiting():  # nothing to enqueue: no storage query
            return
        while self.queue:
            config, origin = self.queue.pop(0)
            self.study.enqueue_trial(flat_from_config(config), user_attrs={"origin": origin}, skip_if_exists=True)
            if self._waiting():
                return
        config = self.plan.draw_from_priors(self.rng) if self.plan.priors else None
        if config is not None:
            self.study.enqueue_trial(flat_from_config(config), user_attrs={"origin": "prior"})

    def _waiting(self) -> bool:
        return bool(self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))

    def _tell(self, trial: optuna.Trial, result: TrialResult, record: bool = True) -> None:
        """Tell the study how ``trial`` ended; ``record``: store its result (False: a repeat answered from the cache).

        Besides the full result (for resuming), the trial gets the attributes
        :data:`DASHBOARD_ATTRS` as plain values, so ``optuna-dashboard`` shows
        each trial's learner, who proposed it and how it ended.
        """
        if record:
            trial.set_user_attr(RESULT_ATTR, json.dumps(result.to_dict(), default=str))
        for key, value in dashboard_attrs(result, trial.user_attrs.get("origin", "search"), repeat=not record).items():
            trial.set_user_attr(key, value)
        if result.ok:
            self.study.tell(trial, result.value)
        elif result.status == PRUNED:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:  # a timeout too: as PRUNED it would carry a score of its unfinished folds, maybe above the best
            self.study.tell(trial, state=TrialState.FAIL)

