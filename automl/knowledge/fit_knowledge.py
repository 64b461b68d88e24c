"""What meta-knowledge brings to one fit, planned so that nothing of it delays the first trials.

The portfolio of the task kind, budget and data size leads a warm search and
costs nothing to read (:func:`~automl.knowledge.warm_start.plan_portfolio`).
From ``PRIORS_FROM_BUDGET`` up, the nearest datasets also narrow the search's
priors, which it draws from only once the portfolio and the defaults are spent.
So where the portfolio leads, the meta-features and the nearest datasets are
worked out once the first trials run (:meth:`FitKnowledge.settle`, called by the
backend through ``SearchPlan.on_started``), in this process while the trials
run in workers: from "data ready" to "first trial" stays milliseconds however
large the knowledge base has grown (``python -m benchmarks.kb_scaling``), and
their time still counts inside the budget. Without a portfolio, or where the
user asked for ``warm_start=k`` suggestions, the nearest datasets choose the
first configurations themselves and are planned before the search.

>>> knowledge = FitKnowledge.plan(True, None, dataset, evaluator, budget)  # doctest: +SKIP
>>> knowledge.warm.method                                                  # doctest: +SKIP
'portfolio@30s'
>>> knowledge.settle(plan); knowledge.warm.method                          # doctest: +SKIP
'portfolio@30s+nearest+portfolio priors'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from automl.data.dataset import Dataset
from automl.knowledge.describe import describe
from automl.knowledge.own_history import OwnHistory, own_history
from automl.knowledge.warm_start import (
    TrialShape,
    WarmStart,
    initial_count,
    led_by_portfolio,
    needs_meta_features,
    plan_portfolio,
    plan_warm_start,
)
from automl.search.backends.base import SearchPlan
from automl.search.budget import Budget
from automl.search.evaluation import Evaluator

log = logging.getLogger(__name__)


class FitKnowledge:
    """The warm start of one fit (``warm``, None for a cold start) and the data's meta-features, once described
    (``meta_features``, None until then: the write-back describes the data itself where the search never did)."""

    def __init__(self, warm_start: bool | int, kb: str | Path | None, dataset: Dataset, evaluator: Evaluator,
                 budget: Budget, seed: int = 0):
        self.warm: WarmStart | None = None
        self.meta_features: Mapping[str, float] | None = None
        self.pending = False  # the nearest datasets' priors wait for the first trials (settle)
        self._warm_start, self._kb, self._seed = warm_start, kb, seed
        self._dataset, self._evaluator, self._budget = dataset, evaluator, budget

    @classmethod
    def plan(cls, warm_start: bool | int, kb: str | Path | None, dataset: Dataset, evaluator: Evaluator,
             budget: Budget, seed: int = 0) -> FitKnowledge:
        """Plan what must be known before the first trial: the portfolio (``warm_start=True``), and the nearest
        datasets' suggestions only where no portfolio leads."""
        knowledge = cls(warm_start, kb, dataset, evaluator, budget, seed)
        if not warm_start:
            return knowledge
        own = own_history(dataset, kb)
        if warm_start is True:
            knowledge.warm = plan_portfolio(dataset.task, evaluator.learners, budget.time_budget, own, kb,
                                            len(dataset.X))
        if not needs_meta_features(dataset.kind, budget.time_budget, warm_start):
            if knowledge.warm is not None:
                log.info("warm start (%s): %d configurations", knowledge.warm.method, len(knowledge.warm.suggestions))
            return knowledge
        if knowledge.warm is not None:  # the portfolio leads: the nearest datasets bring priors, needed later
            knowledge.pending = True
        else:
            knowledge._plan_nearest(own)
        return knowledge

    def settle(self, plan: SearchPlan) -> None:
        """Plan what waited for the first trials, and give ``plan`` its priors (once; nothing when nothing waits)."""
        if not self.pending:
            return
        self.pending = False
        self._plan_nearest(self.warm.own)
        plan.priors = self.warm.priors

    def _plan_nearest(self, own: OwnHistory) -> None:
        """Describe the data and plan the nearest datasets' warm start (led by the portfolio where one leads)."""
        portfolio, budget, dataset, evaluator = self.warm, self._budget, self._dataset, self._evaluator
        self.meta_features = describe(dataset, self._seed)
        k = initial_count(budget.time_budget, budget.max_trials) if self._warm_start is True else int(self._warm_start)
        try:
            shape = TrialShape(len(evaluator.rows), dataset.X.shape[1], evaluator.resampling.training_share)
            warm = plan_warm_start(self.meta_features, dataset.task, evaluator.learners, k, self._kb,
                                   time_budget=budget.time_budget, trial_time_limit=budget.trial_time_limit,
                                   trial_shape=shape, own=own)
        except Exception as error:  # a broken knowledge base must not stop the search
            log.warning("warm start unavailable (%s: %s); starting with the portfolio alone", type(error).__name__,
                        error)
            return
        if not warm.suggestions:
            return
        self.warm = led_by_portfolio(warm, portfolio)
        log.info("warm start (%s): %d suggestions in %.2f s", self.warm.method, len(self.warm.suggestions),
                 self.warm.seconds)
