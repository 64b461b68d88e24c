"""The one place where a :class:`SearchSpace` becomes Optuna calls.

Both backends use it: the Optuna backend directly, the Ray backend through
Ray Tune's Optuna search algorithm, which accepts the same define-by-run
function. Only active parameters are suggested, so TPE sees the conditional
structure.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from searchspaces.params import Categorical, Float, Int, Param
from searchspaces.space import SearchSpace


def distribution(param: Param) -> BaseDistribution:
    """Optuna's distribution for one parameter."""
    if isinstance(param, Float):
        return FloatDistribution(param.low, param.high, log=param.log)
    if isinstance(param, Int):
        return IntDistribution(param.low, param.high, log=param.log)
    if isinstance(param, Categorical):
        return CategoricalDistribution(param.choices)
    raise TypeError(f"no Optuna distribution for parameter kind {type(param).__name__}")


def suggest(trial: optuna.trial.BaseTrial, space: SearchSpace) -> dict[str, Any]:
    """Ask ``trial`` for a point of ``space``: define-by-run, conditions respected."""
    assignment: dict[str, Any] = {}
    for param in space:
        if not param.is_active(assignment):
            continue
        if isinstance(param, Float):
            value: Any = trial.suggest_float(param.name, param.low, param.high, log=param.log)
        elif isinstance(param, Int):
            value = trial.suggest_int(param.name, param.low, param.high, log=param.log)
        elif isinstance(param, Categorical):
            value = trial.suggest_categorical(param.name, param.choices)
        else:
            raise TypeError(f"cannot suggest parameter kind {type(param).__name__}")
        assignment[param.name] = value
    return assignment
