"""The warm start of a search: what meta-knowledge says to try first, and where to look next.

Takes the prepared knowledge (the shipped base plus the user's own, with its
warm starters fitted: :mod:`automl.knowledge.prepared`), and turns the chosen
starter's suggestions for this dataset into the search's initial
configurations and per-learner priors (narrowed regions of the space, see
:meth:`searchspaces.SearchSpace.narrowed`). Neural learners also get their
learning-rate range centred on a meta-learned prediction
(:mod:`metaknowledge.lr_prior`), and their default at that rate among the
first configurations.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from automl.errors import ConfigError
from automl.knowledge.own_history import NO_HISTORY, OwnHistory
from automl.knowledge.portfolio import shipped_portfolio
from automl.knowledge.portfolio_refit import current_table
from automl.knowledge.prepared import HISTORY_ROWS, PreparedKnowledge, knowledge_family, prepared_knowledge
from metaknowledge.cost import CostModel
from metaknowledge.histories import KINDS
from metaknowledge.lr_prior import NEURAL_LEARNERS, RATE
from metaknowledge.warmstart import NearestDatasets, Suggestion, led_by, priors
from searchspaces import Config, Learner, SearchSpace

log = logging.getLogger(__name__)

# Chosen by leave-one-dataset-out evaluation: see benchmarks/results/warmstart/summary.md.
# The initial configurations, per task kind: best over k = 1..10 of the starters fast enough to fit inside a search.
DEFAULT_METHODS = {"classification": "nearest+portfolio", "regression": "portfolio"}
ZERO_SHOT_METHOD = "nearest"  # one configuration: best at k = 1 of the starters that fit in well under a second
PRIOR_METHOD = "nearest"  # the priors: the region where this task's nearest datasets did best
LR_PRIOR_POSITION = 1  # where a neural learner's default, at the predicted learning rate, joins the suggestions
MIN_TASKS_TO_TRUST = 10  # with fewer known tasks of the kind, suggestions follow the defaults instead of replacing them
PRIOR_SUGGESTIONS = 10  # the top suggestions whose region becomes the prior
WARM_SHARE = 0.5  # the suggestions are planned to take at most this share of the time budget, together
COST_MARGIN = 2.0  # predicted seconds are typically right within this factor
HISTORY_TRAINING_SHARE = 2.0  # the histories were timed on 3-fold cross-validation: two times the rows trained on
# data this many times larger than HISTORY_ROWS alternates suggestions with the learners' defaults
FRESH_KNOWLEDGE_BUDGET = 30.0  # below it, the knowledge as prepared before the user's latest searches serves
PREPARE_SHARE = 0.05  # above it, a fit prepares the knowledge afresh if that took at most this share of its budget
# Below it the shipped portfolio alone leads a search: no meta-features, no fitted starter, nothing paid at fit time.
# From it the nearest datasets also narrow the search's priors (the peer benchmark measured them paying at 30 s only).
PRIORS_FROM_BUDGET = 30.0
EXTRAPOLATION_FACTOR = 2


@dataclass(frozen=True)
class TrialShape:
    """What each trial of a search fits: its rows and features, and how many times those rows it trains on in all.

    ``training_share`` is the sum over the resampling's splits of the share of
    rows trained on: 2 for the 3-fold cross-validation the shipped histories were
    timed with (``automl kb build --folds 3``), 4 for 5-fold, 0.8 for a 20 % holdout.
    """

    rows: int
    features: int
    training_share: float = HISTORY_TRAINING_SHARE

    @property
    def cost_factor(self) -> float:
        """How much longer than the histories' timing a trial on these rows takes."""
        return self.training_share / HISTORY_TRAINING_SHARE


@dataclass(frozen=True)
class Neighbour:
    """A known dataset near the new one, and what its history says of the suggestions.

    ``distance`` is measured in robustly scaled meta-features (0: identical);
    ``scores`` holds the suggestions it has a history for, with their
    normalised score on it (1: its best known configuration), best first.
    """

    name: str
    distance: float
    scores: tuple[tuple[Config, float], ...] = ()


@dataclass
class WarmStart:
    """The suggestions to evaluate first, the priors to search under next, and what it cost.

    ``trusted`` is False while the knowledge is thin (fewer than
    ``MIN_TASKS_TO_TRUST`` tasks of this kind): the search then tries the
    learners' defaults before the suggestions, and searches without priors.
    ``extrapolating`` is True on data much larger than the histories were
    measured on, where configurations tuned on small samples can lose to the
    learners' defaults: the search then alternates defaults and suggestions.
    """

    suggestions: list[Suggestion]
    priors: dict[str, SearchSpace] = field(default_factory=dict)
    seconds: float = 0.0
    method: str = ""
    trusted: bool = True
    extrapolating: bool = False
    neighbours: list[Neighbour] = field(default_factory=list)  # where the suggestions came from
    own: OwnHistory = NO_HISTORY  # earlier searches on this very data: what failed on it does not come back
    ordered: bool = False  # a portfolio: its order was learned for the ensemble that follows, and runs as it is


def initial_count(time_budget: float | None, n_trials: int | None) -> int:
    """How many suggestions to enqueue when the user did not say: more for larger budgets."""
    if n_trials is not None and time_budget is None:
        return max(1, min(25, n_trials // 2))
    return int(min(25, max(3, (time_budget or 60) / 2)))


def needs_meta_features(kind: str, time_budget: float | None, warm_start: bool | int = True) -> bool:
    """Whether a warm start of ``time_budget`` seconds describes the data: for priors, or where no portfolio ships
    (never for a cold start, ``warm_start=False``).

    >>> needs_meta_features("classification", 10), needs_meta_features("classification", 60)
    (False, True)
    """
    if not warm_start:
        return False  # a cold start
    if warm_start is not True or shipped_portfolio(kind, time_budget) is None:
        return True
    return time_budget is None or time_budget >= PRIORS_FROM_BUDGET


def plan_portfolio(task_type: str, learners: Mapping[str, Learner], time_budget: float | None,
                   own: OwnHistory = NO_HISTORY, kb: str | Path | None = None,
                   rows: int | None = None) -> WarmStart | None:
    """The warm start that costs nothing at fit time: the portfolio of the task kind, budget and number of
    ``rows``, as shipped or as last refitted from the user's searches in the knowledge base ``kb``
    (:mod:`automl.knowledge.portfolio_refit`).

    Its members of learners the search leaves out, invalid in their space, or
    that failed on this very data before (``own``) are passed over. None when
    the table has no portfolio for this kind or no member is left.
    """
    started = time.perf_counter()
    portfolio = current_table(knowledge_family(kb)).lookup(KINDS.get(task_type, "classification"), time_budget,
                                                             rows)
    if portfolio is None:
        return None
    suggestions = [Suggestion(config, portfolio.method, 0.0) for config in portfolio.configs
                   if config.learner in learners and own.allows(config)
                   and not learners[config.learner].space.problems(dict(config.params))]
    if not suggestions:
        return None
    return WarmStart(suggestions, {}, time.perf_counter() - started, portfolio.method, own=own, ordered=True)


def led_by_portfolio(warm: WarmStart, portfolio: WarmStart | None) -> WarmStart:
    """``warm``'s priors and provenance with the portfolio's suggestions in their order (``warm`` without one)."""
    if portfolio is None:
        return warm
    return replace(warm, suggestions=portfolio.suggestions, method=f"{portfolio.method}+{warm.method} priors",
                   seconds=warm.seconds + portfolio.seconds, ordered=True)


def plan_warm_start(
    meta_features: Mapping[str, float],
    task_type: str,
    learners: Mapping[str, Learner],
    k: int,
    kb: str | Path | None = None,
    method: str | None = None,
    prior_method: str = PRIOR_METHOD,
    time_budget: float | None = None,
    trial_time_limit: float | None = None,
    trial_shape: TrialShape | None = None,
    own: OwnHistory = NO_HISTORY,
) -> WarmStart:
    """Suggestions (by ``method``, by default the task kind's) and priors (by ``prior_method``) for a new task.

    The first suggestion is the zero-shot pick (``ZERO_SHOT_METHOD``'s best,
    the best single configuration in leave-one-dataset-out evaluation), then
    ``method``'s, which do better together over the first few.

    Given the ``trial_shape`` (the rows and features trials will fit), suggestions
    too slow to afford are passed over for the next ones: one that would likely
    pass the ``trial_time_limit``, and any that would take the suggestions
    together past ``WARM_SHARE`` of the ``time_budget``. What earlier searches
    on this very data found (``own``) is obeyed: a configuration that timed out
    or failed on it is not suggested, and one that ran costs what it took.
    """
    started = time.perf_counter()
    kind = KINDS.get(task_type, "classification")
    method = method or DEFAULT_METHODS[kind]
    knowledge = prepared_knowledge(kb, stale_ok=time_budget is not None and time_budget < FRESH_KNOWLEDGE_BUDGET,
                                   affordable=None if time_budget is None else PREPARE_SHARE * time_budget)
    if knowledge.empty:
        log.info("no task histories yet: the search starts cold")
        return WarmStart([], {}, time.perf_counter() - started, method, own=own)

    def ranked(by: str, count: int) -> list[Suggestion]:
        suggestions = knowledge.starter(by, learners).suggest(meta_features, task_type, k=3 * count,
                                                              learners=list(learners))
        return [s for s in suggestions if own.allows(s.config)
                and not learners[s.config.learner].space.problems(dict(s.config.params))]

    candidates = ranked(method, k)
    if method != ZERO_SHOT_METHOD:
        candidates = led_by(ranked(ZERO_SHOT_METHOD, 1)[:1], candidates)
    limits = (time_budget or float("inf"), trial_time_limit or float("inf"))
    suggestions = _affordable(candidates, knowledge.cost, k, limits, trial_shape, own)
    regions = ranked(prior_method, PRIOR_SUGGESTIONS) if prior_method != method or k < PRIOR_SUGGESTIONS else candidates
    trusted = knowledge.tasks_per_kind.get(kind, 0) >= MIN_TASKS_TO_TRUST
    learned = priors(regions[:PRIOR_SUGGESTIONS], kind) if trusted else {}
    suggestions = _centre_learning_rates(suggestions, learned, meta_features, learners, knowledge, k)
    extrapolating = trial_shape is not None and trial_shape.rows > EXTRAPOLATION_FACTOR * HISTORY_ROWS
    found = _neighbours(knowledge, learners, meta_features, task_type, suggestions)
    return WarmStart(suggestions, learned, time.perf_counter() - started, method, trusted, extrapolating, found, own)


def _neighbours(knowledge: PreparedKnowledge, learners: Mapping[str, Learner], meta_features: Mapping[str, float],
                task_type: str, suggestions: list[Suggestion], per_neighbour: int = 3) -> list[Neighbour]:
    """The nearest known datasets, each with the suggestions it knows, scored on it: the warm start's provenance."""
    starter = knowledge.starter(NearestDatasets.name, learners)
    history = starter.histories.get(KINDS.get(task_type, "classification"))
    if history is None or not isinstance(starter, NearestDatasets):
        return []
    found = []
    for name, distance in starter.neighbours(meta_features, task_type):
        row = history.normalised_row(name)
        scored = [(s.config, float(row[s.config.key()])) for s in suggestions
                  if s.config.key() in row.index and np.isfinite(row[s.config.key()])]
        scored.sort(key=lambda item: -item[1])
        found.append(Neighbour(name, distance, tuple(scored[:per_neighbour])))
    return found


def _affordable(
    candidates: list[Suggestion], costs: CostModel, count: int, limits: tuple[float, float], shape: TrialShape | None,
    own: OwnHistory = NO_HISTORY,
) -> list[Suggestion]:
    """The first ``count`` candidates, in rank order, that fit the (time budget, trial time limit) ``limits``.

    A suggestion costs the seconds it took on this data before (``own``), else
    what the cost model predicts; one never timed (a new configuration) costs
    nothing in this plan.
    """
    time_budget, trial_limit = limits
    if shape is None or not costs.fitted or (time_budget == trial_limit == float("inf")):
        return candidates[:count]
    allowance = WARM_SHARE * time_budget
    kept = []
    for suggestion in candidates:
        seconds = own.seconds.get(suggestion.config.key())
        if seconds is None:
            seconds = (costs.predict(suggestion.config, shape.rows, shape.features) or 0.0) * shape.cost_factor
        if seconds > allowance or COST_MARGIN * seconds > trial_limit:
            log.debug("passing over %s: about %.1f s, %.1f s left for suggestions", suggestion.config, seconds,
                      allowance)
            continue
        kept.append(suggestion)
        allowance -= seconds
        if len(kept) == count:
            break
    return kept


def _centre_learning_rates(
    suggestions: list[Suggestion], learned: dict[str, SearchSpace], meta_features: Mapping[str, float],
    learners: Mapping[str, Learner], knowledge: PreparedKnowledge, k: int,
) -> list[Suggestion]:
    """For neural learners: a prior centred on the predicted learning rate, and their default at that rate early on."""
    neural = [name for name in learners if name in NEURAL_LEARNERS]
    if not neural or not knowledge.lr_prior.fitted:
        return suggestions
    model = knowledge.lr_prior
    for name in neural:
        space = learners[name].space
        learned[name] = model.centred(learned.get(name, space), meta_features)
        default = space.default()
        config = Config(name, {**default, RATE: float(model.predict(meta_features, default))})
        if not space.problems(dict(config.params)):
            suggestions = [*suggestions[:LR_PRIOR_POSITION], Suggestion(config, "lr-prior", 0.0),
                           *suggestions[LR_PRIOR_POSITION:]]
    return suggestions[:max(k, 1)]


def initial_configs(
    learners: Mapping[str, Learner], extra: Sequence[Config | Mapping[str, Any]] | None, warm: WarmStart | None = None
) -> list[tuple[Config, str]]:
    """The configurations to evaluate first, then the user's, validated.

    Cold, every learner's low-cost point comes first (learners in order of
    their cost hint), so that something finishes early even on data where the
    rest is slow, then the learners' defaults. Led by a portfolio
    (``warm.ordered``), its members run in their learned order, then the cold
    start's configurations it does not hold. Otherwise warm, when the knowledge is
    trusted on data of its size, the suggestions of meta-knowledge come first:
    the zero-shot pick, then each suggested learner's best suggestion before
    any learner's second (the final model is an ensemble, and members of
    different learners make different errors), then the rest; the low-cost
    points follow. While the knowledge is too thin to trust, the low-cost
    points, the defaults and then the suggestions run; on data much larger
    than the knowledge was measured on, defaults and suggestions alternate
    after the low-cost points (see :class:`~automl.knowledge.warm_start.WarmStart`).
    Warm, a configuration that timed out or failed on this very data in an
    earlier search (``warm.own``) is left out; the user's own are kept.
    """
    initial: list[tuple[Config, str]] = []
    by_cost = sorted(learners.values(), key=lambda learner: learner.cost)
    cheap = [(learner.low_cost_config(), "default") for learner in by_cost]
    defaults = [(learner.default_config(), "default") for learner in by_cost]
    if warm is None:
        candidates = cheap + defaults
    else:
        suggested = [(s.config, f"warm:{s.method}") for s in warm.suggestions]
        if warm.ordered:  # a portfolio learned for the ensemble that follows: as it is, then the cold start's
            candidates = suggested + cheap + defaults
        elif not warm.trusted:
            candidates = cheap + defaults + suggested
        elif warm.extrapolating:
            # defaults that are their learner's cheap corner too have run already: alternate with the others
            candidates = cheap + alternating([item for item in defaults if item not in cheap], suggested)
        else:  # the cheap corners alone can take half of a small budget on wide data: suggestions first
            candidates = suggested[:1] + learners_first(suggested[1:]) + cheap
    own = warm.own if warm is not None else NO_HISTORY
    for config, origin in candidates:
        if own.allows(config) and all(config != seen for seen, _ in initial):
            initial.append((config, origin))
    for item in extra or ():
        config = item if isinstance(item, Config) else Config.from_dict(item)
        if config.learner not in learners:
            raise ConfigError(f"initial config {config} names learner {config.learner!r}, "
                              f"which is not searched ({sorted(learners)})")
        problems = learners[config.learner].space.problems(dict(config.params))
        if problems:
            raise ConfigError(f"initial config {config} is not valid: {'; '.join(problems)}")
        initial.append((config, "user"))
    return initial


def learners_first(items: list[tuple[Config, str]]) -> list[tuple[Config, str]]:
    """Each learner's first item, in their order, then the others in theirs."""
    seen: set[str] = set()
    firsts, rest = [], []
    for item in items:
        (rest if item[0].learner in seen else firsts).append(item)
        seen.add(item[0].learner)
    return firsts + rest


def alternating(first: list[tuple[Config, str]], second: list[tuple[Config, str]]) -> list[tuple[Config, str]]:
    """One of ``first``, one of ``second``, and so on; the rest of the longer list at the end."""
    merged = [item for pair in zip(first, second) for item in pair]
    shorter = min(len(first), len(second))
    return merged + first[shorter:] + second[shorter:]
