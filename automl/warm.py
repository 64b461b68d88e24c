"""The warm start of a search: what meta-knowledge says to try first, and where to look next.

Reads the shipped knowledge and the user's own base, fits the chosen warm
starter (cached per process for the same knowledge), and turns its
suggestions for this dataset into the search's initial configurations and
per-learner priors (narrowed regions of the space, see
:meth:`searchspaces.SearchSpace.narrowed`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from metaknowledge.shipped import load_knowledge
from metaknowledge.snapshot import Knowledge
from metaknowledge.warmstart import Suggestion, WarmStarter, make_warm_starter, priors
from searchspaces import Learner, SearchSpace

log = logging.getLogger(__name__)

# Chosen by leave-one-dataset-out evaluation: see benchmarks/results/warmstart/summary.md.
DEFAULT_METHOD = "nearest+portfolio"
PRIOR_SUGGESTIONS = 10  # the top suggestions whose region becomes the prior
EXCLUDE_ENV = "AUTOML_KB_EXCLUDE"  # comma-separated task names left out (held-out evaluations)

_cache: dict[tuple, WarmStarter] = {}


@dataclass
class WarmStart:
    """The suggestions to evaluate first, the priors to search under next, and what it cost."""

    suggestions: list[Suggestion]
    priors: dict[str, SearchSpace] = field(default_factory=dict)
    seconds: float = 0.0
    method: str = DEFAULT_METHOD


def initial_count(time_budget: float | None, n_trials: int | None) -> int:
    """How many suggestions to enqueue when the user did not say: more for larger budgets."""
    if n_trials is not None and time_budget is None:
        return max(1, min(25, n_trials // 2))
    return int(min(25, max(3, (time_budget or 60) / 2)))


def knowledge_for(kb: str | Path | None) -> Knowledge:
    """Shipped plus user knowledge, minus tasks named in ``$AUTOML_KB_EXCLUDE``."""
    knowledge = load_knowledge(kb)
    excluded = [name for name in os.environ.get(EXCLUDE_ENV, "").split(",") if name]
    return knowledge.without_tasks(excluded) if excluded else knowledge


def fitted_starter(method: str, knowledge: Knowledge) -> WarmStarter:
    """The warm starter fitted on ``knowledge`` (reused while the knowledge is unchanged)."""
    key = (method, len(knowledge.tasks), len(knowledge.runs), float(knowledge.runs["created"].max() or 0) if len(knowledge.runs) else 0.0)
    if key not in _cache:
        _cache.clear()
        _cache[key] = make_warm_starter(method).fit(knowledge)
    return _cache[key]


def plan_warm_start(
    meta_features: Mapping[str, float],
    task_type: str,
    learners: Mapping[str, Learner],
    k: int,
    kb: str | Path | None = None,
    method: str = DEFAULT_METHOD,
) -> WarmStart:
    """Suggestions and priors for a new task, from everything the engine knows."""
    started = time.perf_counter()
    knowledge = knowledge_for(kb)
    if knowledge.runs.empty:
        log.info("no task histories yet: the search starts cold")
        return WarmStart([], {}, time.perf_counter() - started, method)
    starter = fitted_starter(method, knowledge)
    ranked = starter.suggest(meta_features, task_type, k=max(k, PRIOR_SUGGESTIONS), learners=list(learners))
    valid = [s for s in ranked if not learners[s.config.learner].space.problems(dict(s.config.params))]
    kind = "regression" if task_type == "regression" else "classification"
    return WarmStart(valid[:k], priors(valid[:PRIOR_SUGGESTIONS], kind), time.perf_counter() - started, method)
