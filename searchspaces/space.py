"""Search spaces and configurations as plain, JSON-serialisable data.

A :class:`SearchSpace` is an ordered tuple of parameters; a parameter may only
be conditioned on parameters listed before it, so walking the tuple in order
always knows which parameters are active. Several learners' spaces are joined
into one flat space under a top-level ``learner`` choice, with every learner's
parameters namespaced as ``"<learner>.<param>"``; backends only ever see that
flat form, and :func:`config_from_flat` turns it back into a :class:`Config`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from searchspaces.params import Categorical, Condition, Param, param_from_dict

LEARNER_KEY = "learner"
SEPARATOR = "."


def plain(value: Any) -> Any:
    """Numpy scalars to Python ones, so configurations are JSON-clean."""
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Config:
    """One point to evaluate: a learner name and its hyperparameters."""

    learner: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", {k: plain(v) for k, v in sorted(dict(self.params).items())})

    def to_dict(self) -> dict[str, Any]:
        return {"learner": self.learner, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        return cls(learner=data["learner"], params=dict(data.get("params", {})))

    def key(self) -> str:
        """A canonical hash: equal configurations always share it.

        Computed once per configuration (a warm start over a base of thousands of
        tasks asks for the keys of thousands of configurations at every fit).
        """
        cached = self.__dict__.get("_key")
        if cached is None:
            text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
            cached = hashlib.sha1(text.encode()).hexdigest()[:16]
            object.__setattr__(self, "_key", cached)
        return cached

    def __hash__(self) -> int:
        return hash(self.key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.key() == other.key()

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Config({self.learner}: {inner})"

    def describe(self) -> str:
        """The learner and its parameters in plain words, for messages and files read by people.

        >>> Config("linear", {"C": 2.80760219, "class_weight": "balanced"}).describe()
        'linear (C=2.808, class_weight=balanced)'
        """
        shown = describe_params(self.params)
        return f"{self.learner} ({shown})" if shown else self.learner


def describe_params(params: Mapping[str, Any]) -> str:
    """Parameters as ``name=value, ...``, floats to four significant digits.

    >>> describe_params({"C": 2.80760219, "class_weight": None})
    'C=2.808, class_weight=None'
    """
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


@dataclass(frozen=True)
class SearchSpace:
    """An ordered tuple of (possibly conditional) parameters."""

    params: tuple[Param, ...]
    name: str = "space"

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        seen: set[str] = set()
        for param in self.params:
            if param.name in seen:
                raise ValueError(f"space {self.name!r}: parameter {param.name!r} is defined twice")
            if param.condition is not None and param.condition.parent not in seen:
                raise ValueError(
                    f"space {self.name!r}: parameter {param.name!r} depends on {param.condition.parent!r}, "
                    "which must be defined before it"
                )
            seen.add(param.name)

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(f"space {self.name!r} has no parameter {name!r}; it has {[p.name for p in self.params]}")

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def _walk(self, pick) -> dict[str, Any]:
        assignment: dict[str, Any] = {}
        for param in self.params:
            if param.is_active(assignment):
                assignment[param.name] = pick(param)
        return assignment

    def default(self) -> dict[str, Any]:
        """Every active parameter at its default."""
        return self._walk(lambda p: p.default)

    def low_cost(self) -> dict[str, Any]:
        """The cheapest sensible point: ``low_cost`` where declared, else the default."""
        return self._walk(lambda p: p.default if p.low_cost is None else p.low_cost)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A random point; inactive parameters are left out."""
        return self._walk(lambda p: p.sample(rng))

    def from_unit(self, point: Iterable[float]) -> dict[str, Any]:
        """Map a point of the unit cube (one coordinate per parameter) onto the space."""
        coordinates = dict(zip(self.names, point))
        return self._walk(lambda p: p.from_unit(coordinates[p.name]))

    def problems(self, assignment: Mapping[str, Any]) -> list[str]:
        """What is wrong with ``assignment`` (empty when it is a valid point)."""
        found: list[str] = []
        active: dict[str, Any] = {}
        for param in self.params:
            if not param.is_active(active):
                if param.name in assignment:
                    found.append(f"{param.name!r} is set but inactive under {param.condition}")
                continue
            if param.name not in assignment:
                found.append(f"{param.name!r} is missing")
                continue
            value = assignment[param.name]
            if not param.contains(value):
                found.append(f"{param.name}={value!r} is outside its domain {param._domain()}")
            active[param.name] = value
        unknown = set(assignment) - set(self.names)
        found.extend(f"{name!r} is not a parameter of this space" for name in sorted(unknown))
        return found

    def narrowed(self, points: list[Mapping[str, Any]], margin: float = 0.1) -> SearchSpace:
        """The region the given points occupy (each parameter's observed range or choices, plus ``margin``).

        Parameters never active in ``points`` keep their full domain. Used for
        search-space priors learned from task histories.
        """
        params = []
        for param in self.params:
            seen = [p[param.name] for p in points if param.name in p and param.contains(p[param.name])]
            params.append(param.narrowed(seen, margin) if seen else param)
        return SearchSpace(tuple(params), name=f"{self.name}-narrowed")

    def fingerprint(self) -> str:
        """A short hash of the space's definition: its version in stored histories."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": [p.to_dict() for p in self.params]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        return cls(params=tuple(param_from_dict(p) for p in data["params"]), name=data.get("name", "space"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls.from_dict(json.loads(text))


def joint_space(spaces: Mapping[str, SearchSpace], name: str = "joint") -> SearchSpace:
    """Join per-learner spaces under one ``learner`` choice, namespacing their parameters."""
    if not spaces:
        raise ValueError("cannot join an empty set of learner spaces")
    params: list[Param] = [Categorical(LEARNER_KEY, choices=tuple(spaces))]
    for learner, space in spaces.items():
        for param in space:
            if param.condition is None:
                condition = Condition(LEARNER_KEY, (learner,))
            else:
                condition = Condition(f"{learner}{SEPARATOR}{param.condition.parent}", param.condition.values)
            params.append(param.renamed(f"{learner}{SEPARATOR}{param.name}", condition))
    return SearchSpace(tuple(params), name=name)


def config_from_flat(flat: Mapping[str, Any]) -> Config:
    """The :class:`Config` behind a point of a :func:`joint_space`."""
    learner = flat[LEARNER_KEY]
    prefix = f"{learner}{SEPARATOR}"
    return Config(learner, {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)})


def flat_from_config(config: Config) -> dict[str, Any]:
    """The point of a :func:`joint_space` that stands for ``config``."""
    flat: dict[str, Any] = {LEARNER_KEY: config.learner}
    flat.update({f"{config.learner}{SEPARATOR}{k}": v for k, v in config.params.items()})
    return flat
