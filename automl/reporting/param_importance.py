"""Hyperparameter importance per learner: which of its parameters the score depended on, in this search.

For each learner, its successful trials are rebuilt as an in-memory Optuna
study (:func:`optuna.trial.create_trial`, with distributions from the
learner's search space, or from the values tried when the space is not at
hand or a value lies outside it) and judged by Optuna's fANOVA evaluator
(PED-ANOVA where fANOVA is missing). Importances sum to 1 per learner. Only
parameters every trial of the learner set are judged (fANOVA cannot judge
conditional ones), and only learners with at least :data:`MIN_TRIALS` trials
and one parameter that varied; the others get the reason instead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from automl.search.evaluation import TrialResult
from automl.search.metrics import Metric
from searchspaces import Learner
from searchspaces.to_optuna import distribution

log = logging.getLogger(__name__)

MIN_TRIALS = 5


@dataclass
class ParamImportance:
    """One learner's parameter importances (summing to 1, largest first), or why there are none."""

    learner: str
    trials: int
    importances: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # set when importances is empty


def param_importances(
    results: list[TrialResult],
    metric: Metric,
    learners: Mapping[str, Learner] | None = None,
    min_trials: int = MIN_TRIALS,
    seed: int = 0,
) -> list[ParamImportance]:
    """Each learner's parameter importances over its successful ``results``, learners with most trials first.

    ``learners``: the search's learners, whose spaces give the distributions
    (without them, the distributions are derived from the values tried).
    """
    by_learner: dict[str, list[TrialResult]] = {}
    for result in results:
        if result.ok:
            by_learner.setdefault(result.config.learner, []).append(result)
    found = []
    for name, mine in sorted(by_learner.items(), key=lambda item: (-len(item[1]), item[0])):
        learner = (learners or {}).get(name)
        found.append(_one_learner(name, mine, metric, learner, min_trials, seed))
    return found


def _one_learner(name: str, results: list[TrialResult], metric: Metric, learner: Learner | None,
                 min_trials: int, seed: int) -> ParamImportance:
    if len(results) < min_trials:
        return ParamImportance(name, len(results),
                               reason=f"too few trials ({len(results)}; at least {min_trials} needed)")
    names = set.intersection(*(set(r.config.params) for r in results))
    distributions = {}
    for param in sorted(names):
        values = [_plain(r.config.params[param]) for r in results]
        if len({repr(v) for v in values}) > 1:
            distributions[param] = _distribution(param, values, learner)
    if not distributions:
        return ParamImportance(name, len(results), reason="no parameter varied across its trials")
    try:
        importances = _evaluate(results, distributions, metric, seed)
    except Exception as error:  # a report never fails over one figure
        log.info("parameter importance of %s not computed: %s", name, error)
        return ParamImportance(name, len(results), reason=f"not computed ({type(error).__name__}: {error})")
    return ParamImportance(name, len(results), dict(sorted(importances.items(), key=lambda item: -item[1])))


def _evaluate(results: list[TrialResult], distributions: dict[str, BaseDistribution], metric: Metric,
              seed: int) -> dict[str, float]:
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = optuna.create_study(direction=metric.direction)
            for result in results:
                params = {p: _as_choice(_plain(result.config.params[p]), d) for p, d in distributions.items()}
                study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                          value=float(result.value)))
            return {k: float(v)
                    for k, v in optuna.importance.get_param_importances(study, evaluator=_evaluator(seed)).items()}
    finally:
        optuna.logging.set_verbosity(previous)


def _evaluator(seed: int) -> optuna.importance.BaseImportanceEvaluator:
    try:
        return optuna.importance.FanovaImportanceEvaluator(seed=seed)
    except ImportError:  # fANOVA's own dependencies missing
        return optuna.importance.PedAnovaImportanceEvaluator()


def _distribution(param: str, values: list[Any], learner: Learner | None) -> BaseDistribution:
    """The space's distribution for ``param`` when it holds every value tried, else one derived from them."""
    if learner is not None:
        try:
            chosen = distribution(learner.space[param])
            if all(_contains(chosen, _as_choice(v, chosen)) for v in values):
                return chosen
        except (KeyError, TypeError, ValueError):
            pass
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) == len(values) and all(np.isfinite(numbers)):
        low, high = min(numbers), max(numbers)
        log_scale = low > 0 and high / low >= 100
        if all(isinstance(v, int) for v in numbers):
            return IntDistribution(int(low), int(high), log=log_scale)
        return FloatDistribution(float(low), float(high), log=log_scale)
    choices = sorted({_choice(v) for v in values}, key=repr)
    return CategoricalDistribution(choices)


def _contains(chosen: BaseDistribution, value: Any) -> bool:
    try:
        return bool(chosen._contains(chosen.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def _as_choice(value: Any, chosen: BaseDistribution) -> Any:
    """``value`` as the distribution holds it (a categorical's choices are plain scalars)."""
    if isinstance(chosen, CategoricalDistribution):
        return value if value in chosen.choices else _choice(value)
    return value


def _choice(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
