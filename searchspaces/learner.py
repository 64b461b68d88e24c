"""What a learner is to the engine: a space, a factory, and a few hints.

A :class:`Learner` pairs an estimator factory with its search space (as data),
the preprocessing it needs, and hints the engine uses to schedule it well:
whether it trains in stages (so a pruner can stop it early), the largest data
it is sensible on, its rough relative cost, and whether it can use a GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from searchspaces.space import Config, SearchSpace

TASK_KINDS = ("classification", "regression")
CATEGORICAL_HANDLING = ("onehot", "ordinal", "native")


@dataclass(frozen=True)
class Preprocessing:
    """How a learner wants its inputs prepared (fitted inside every fold).

    ``categorical``: ``"onehot"`` (rare levels grouped), ``"ordinal"`` (integer
    codes) or ``"native"`` (integer codes flagged as categorical to learners
    that split on categories themselves). ``scale`` standardises numeric
    columns; ``impute`` fills missing values (off for learners that handle NaN).
    """

    categorical: str = "onehot"
    scale: bool = False
    impute: bool = True

    def __post_init__(self) -> None:
        if self.categorical not in CATEGORICAL_HANDLING:
            raise ValueError(f"categorical must be one of {CATEGORICAL_HANDLING}, got {self.categorical!r}")


@dataclass(frozen=True)
class Staging:
    """An iterative learner scored while it trains, so a pruner can stop a poor trial early.

    By default the estimator is grown through ``warm_start``: fitted with
    ``param`` set to each fraction of its configured value in turn (keeping
    what it learned) and scored after each stage. With ``callback``, the name
    of an estimator parameter taking ``f(step, estimator)``, it is fitted once
    and scored every time it calls back (neural learners: after every epoch);
    ``param`` then names the fidelity (epochs) for schedulers that need one.
    """

    param: str
    fractions: tuple[float, ...] = (1 / 9, 1 / 3, 1.0)
    callback: str | None = None


@dataclass(frozen=True)
class BuildContext:
    """What a factory may need to know about the data it will be fitted on."""

    task: str  # "binary", "multiclass" or "regression"
    n_rows: int
    n_features: int  # after preprocessing
    categorical_mask: tuple[bool, ...] = ()  # after preprocessing, for "native" learners
    seed: int = 0
    device: str = "cpu"

    @property
    def task_kind(self) -> str:
        return "regression" if self.task == "regression" else "classification"


Factory = Callable[[dict[str, Any], BuildContext], Any]


@dataclass(frozen=True)
class Learner:
    """A tunable learner: ``build(params, context)`` returns an unfitted estimator."""

    name: str
    tasks: frozenset[str]
    space: SearchSpace
    build: Factory
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    staging: Staging | None = None
    max_rows: int | None = None
    gpu: bool = False
    description: str = ""
    cost: float = 1.0  # training cost relative to LightGBM's default, for ordering cheap learners first
    fit_exponent: float = 1.0  # training time grows as rows ** this (kernel SVMs: about 2); sizes the final fit's time

    def __post_init__(self) -> None:
        tasks = frozenset([self.tasks] if isinstance(self.tasks, str) else self.tasks)
        unknown = tasks - set(TASK_KINDS)
        if not tasks or unknown:
            raise ValueError(f"learner {self.name!r}: tasks must be a non-empty subset of {TASK_KINDS}, "
                             f"got {sorted(tasks)}")
        object.__setattr__(self, "tasks", tasks)
        if "." in self.name or not self.name:
            raise ValueError(f"learner name {self.name!r} must be non-empty and contain no '.'")
        if self.staging is not None and self.staging.param not in self.space.names:
            raise ValueError(f"learner {self.name!r}: staging parameter {self.staging.param!r} is not in its space")

    def default_config(self) -> Config:
        return Config(self.name, self.space.default())

    def low_cost_config(self) -> Config:
        return Config(self.name, self.space.low_cost())

    def supports(self, task_kind: str) -> bool:
        return task_kind in self.tasks


def as_space(params: Iterable[Any] | SearchSpace, name: str) -> SearchSpace:
    """Accept either a ready space or a list of parameters."""
    return params if isinstance(params, SearchSpace) else SearchSpace(tuple(params), name=name)
