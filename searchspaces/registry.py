"""The registry of learners and named search spaces.

Extension is by registration: a user adds a learner in one call (or with one
decorator) and every part of the engine sees it, with no edit to our files::

    from sklearn.linear_model import Lasso
    from searchspaces import Float, register_learner

    @register_learner("lasso", tasks="regression",
                      params=[Float("alpha", 1e-4, 10.0, log=True, default=1.0)],
                      scale=True)
    def build_lasso(params, context):
        return Lasso(alpha=params["alpha"], random_state=context.seed)

Learners are keyed by name *and* task kind, so one name (``"linear"``) can
mean logistic regression for classification and ridge for regression.
A named space is a list of learner names, selected with ``fit(space=...)``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from searchspaces.learner import (
    TASK_KINDS,
    Factory,
    Learner,
    Preprocessing,
    Staging,
    as_space,
)

_LEARNERS: dict[tuple[str, str], Learner] = {}
# Built-in learners whose package may be missing, and how to install it.
OPTIONAL_LEARNERS = {
    "lightgbm": "It needs the lightgbm package: pip install 'automl-engine[lightgbm]'.",
    "xgboost": "It needs the xgboost package: pip install 'automl-engine[xgboost]'.",
    "catboost": "It needs the catboost package: pip install 'automl-engine[catboost]'.",
    "mlp": "Neural learners need torch: pip install 'automl-engine[torch]' (a CPU build: pip install torch==2.13.0).",
    "cnn": "Neural learners need torch: pip install 'automl-engine[torch]' (a CPU build: pip install torch==2.13.0).",
}
_SPACES: dict[str, tuple[str, ...]] = {}


def _add(learner: Learner, replace: bool) -> Learner:
    for task in learner.tasks:
        if (learner.name, task) in _LEARNERS and not replace:
            raise ValueError(
                f"a {task} learner named {learner.name!r} is already registered; "
                "pick another name or pass replace=True"
            )
    for task in learner.tasks:
        _LEARNERS[(learner.name, task)] = learner
    return learner


def register_learner(
    learner: Learner | str,
    *,
    tasks: str | Iterable[str] = TASK_KINDS,
    params: Iterable[Any] = (),
    categorical: str = "onehot",
    scale: bool = False,
    impute: bool = True,
    staging: Staging | None = None,
    max_rows: int | None = None,
    gpu: bool = False,
    cost: float = 1.0,
    fit_exponent: float = 1.0,
    replace: bool = False,
) -> Any:
    """Register a learner; returns it, or a decorator when given a name.

    ``register_learner(Learner(...))`` registers a ready learner.
    ``@register_learner("name", tasks=..., params=[...])`` decorates a factory
    ``build(params, context) -> estimator``; the other keywords describe its
    preprocessing (see :class:`Preprocessing`) and scheduling hints (``cost``:
    training cost relative to LightGBM's default, used to try cheap learners first;
    ``fit_exponent``: how its training time grows with the rows, ``rows ** fit_exponent``,
    used to keep time for the final fit on all rows).
    """
    if isinstance(learner, Learner):
        return _add(learner, replace)
    if not isinstance(learner, str):
        raise TypeError("register_learner takes a Learner, or a name to use it as a decorator")
    name = learner

    def decorate(build: Factory) -> Factory:
        _add(
            Learner(
                name=name,
                tasks=frozenset([tasks] if isinstance(tasks, str) else tasks),
                space=as_space(params, name),
                build=build,
                preprocessing=Preprocessing(categorical=categorical, scale=scale, impute=impute),
                staging=staging,
                max_rows=max_rows,
                gpu=gpu,
                cost=cost,
                fit_exponent=fit_exponent,
                description=(build.__doc__ or "").strip().split("\n")[0],
            ),
            replace,
        )
        return build

    return decorate


def unregister_learner(name: str) -> None:
    """Remove every registration of ``name`` (no error if there is none)."""
    for key in [k for k in _LEARNERS if k[0] == name]:
        del _LEARNERS[key]


def learner_names(task_kind: str | None = None) -> list[str]:
    """Registered learner names, for one task kind or all."""
    return sorted({name for name, task in _LEARNERS if task_kind in (None, task)})


def get_learner(name: str, task_kind: str) -> Learner:
    """The learner registered as ``name`` for ``task_kind``, or a helpful error."""
    if task_kind not in TASK_KINDS:
        raise ValueError(f"task kind must be one of {TASK_KINDS}, got {task_kind!r}")
    try:
        return _LEARNERS[(name, task_kind)]
    except KeyError:
        known = learner_names(task_kind)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        if name in OPTIONAL_LEARNERS:
            hint = f" {OPTIONAL_LEARNERS[name]}"
        raise KeyError(f"no {task_kind} learner named {name!r}.{hint} Registered: {known}") from None


def register_space(name: str, learners: Sequence[str], replace: bool = False) -> None:
    """Name a set of learners, to be searched with ``fit(space=name)``."""
    if name in _SPACES and not replace:
        raise ValueError(f"a space named {name!r} is already registered; pass replace=True to redefine it")
    if not learners:
        raise ValueError(f"space {name!r} needs at least one learner")
    _SPACES[name] = tuple(learners)


def space_learners(name: str) -> tuple[str, ...]:
    """The learner names of a registered space."""
    try:
        return _SPACES[name]
    except KeyError:
        raise KeyError(f"no search space named {name!r}; registered: {sorted(_SPACES)}") from None


BOOSTERS_FROM_SECONDS = 10.0  # XGBoost and CatBoost join a search's default learners from this budget on


def default_space(time_budget: float | None) -> str:
    """The space searched when neither learners nor a space are named, by time budget.

    XGBoost and CatBoost (when installed) join the ``"default"`` learners from
    10 s on, and without a time budget: on validation datasets outside the peer
    benchmark they pay at 10 s, while at 3 s their slow first fits leave too few
    trials to break even (``benchmarks/results/boosters/``).

    >>> default_space(3), default_space(30)
    ('default', 'with_boosters')
    """
    return "default" if time_budget is not None and time_budget < BOOSTERS_FROM_SECONDS else "with_boosters"


def space_names() -> list[str]:
    return sorted(_SPACES)


def resolve_learners(task_kind: str, learners: Sequence[str] | None = None, space: str | None = None) -> list[Learner]:
    """The learners to search: explicit names, a named space, or the default space."""
    if learners is not None and space is not None:
        raise ValueError("pass either learners= or space=, not both")
    names = list(learners) if learners is not None else list(space_learners(space or "default"))
    chosen = []
    for name in names:
        if (name, task_kind) not in _LEARNERS and learners is None:
            continue  # a named space may mix task kinds and name optional learners not installed
        if (name, task_kind) not in _LEARNERS and any(key[0] == name for key in _LEARNERS):
            raise ValueError(f"learner {name!r} does not support {task_kind}")
        chosen.append(get_learner(name, task_kind))
    if not chosen:
        raise ValueError(f"no learner in {names} supports {task_kind}")
    return chosen


def registered(task_kind: str | None = None) -> list[Learner]:
    """All registered learners (each once), for one task kind or all."""
    seen: dict[int, Learner] = {}
    for (_, task), learner in sorted(_LEARNERS.items()):
        if task_kind in (None, task):
            seen.setdefault(id(learner), learner)
    return list(seen.values())

