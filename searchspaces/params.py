"""Hyperparameters as plain data: ranges, choices, defaults and conditions.

A parameter knows its domain, its default, an optional cheap starting value
(``low_cost``, as FLAML declares it) and an optional :class:`Condition` that
says when it exists at all (e.g. ``width_3`` only when ``n_layers >= 3``).
Everything serialises to JSON so spaces can be stored, shipped and compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Value = int | float | str | bool | None


@dataclass(frozen=True)
class Condition:
    """The parameter is active only when ``parent`` takes one of ``values``."""

    parent: str
    values: tuple[Value, ...]

    def holds(self, assignment: dict[str, Any]) -> bool:
        return self.parent in assignment and assignment[self.parent] in self.values

    def to_dict(self) -> dict[str, Any]:
        return {"parent": self.parent, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Condition:
        return cls(parent=data["parent"], values=tuple(data["values"]))


def when(parent: str, *values: Value) -> Condition:
    """Shorthand: ``when("penalty", "elasticnet")``."""
    return Condition(parent, tuple(values))


@dataclass(frozen=True)
class Param:
    """Base of all parameter kinds; ``kind`` names it in serialised form.

    ``default`` is where a cold search starts; left out, it is the middle of a
    numeric range (the geometric middle on a log scale) or the first choice.
    """

    name: str
    default: Any = field(default=None, kw_only=True)
    low_cost: Any = field(default=None, kw_only=True)
    condition: Condition | None = field(default=None, kw_only=True)
    kind: str = field(default="", init=False)

    def is_active(self, assignment: dict[str, Any]) -> bool:
        return self.condition is None or self.condition.holds(assignment)

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniform draw (log-uniform for log scales) from the domain."""
        raise NotImplementedError

    def from_unit(self, u: float) -> Any:
        """Map ``u`` in [0, 1) onto the domain (for space-filling designs)."""
        raise NotImplementedError

    def to_unit(self, value: Any) -> float:
        """Where ``value`` lies in [0, 1] (the inverse of :meth:`from_unit`, up to rounding)."""
        raise NotImplementedError

    def narrowed(self, values: list[Any], margin: float) -> Param:
        """A copy whose domain just covers ``values``, widened by ``margin`` (a share of the unit range)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "name": self.name}
        for key, value in self._domain().items():
            data[key] = list(value) if isinstance(value, tuple) else value
        data["default"] = self.default
        if self.low_cost is not None:
            data["low_cost"] = self.low_cost
        if self.condition is not None:
            data["condition"] = self.condition.to_dict()
        return data

    def _domain(self) -> dict[str, Any]:
        raise NotImplementedError

    def renamed(self, name: str, condition: Condition | None) -> Param:
        """A copy under another name and condition (used to namespace spaces)."""
        clone = object.__new__(type(self))
        for key, value in self.__dict__.items():
            object.__setattr__(clone, key, value)
        object.__setattr__(clone, "name", name)
        object.__setattr__(clone, "condition", condition)
        return clone


def _check_range(name: str, low: float, high: float, log: bool) -> None:
    if not low < high:
        raise ValueError(f"parameter {name!r}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ValueError(f"parameter {name!r}: a log scale needs low > 0, got {low}")


def _check_numeric(param: Float | Int) -> None:
    """Check a numeric parameter's range, default and low-cost value; without a default, it starts mid-range."""
    _check_range(param.name, param.low, param.high, param.log)
    if param.default is None:
        object.__setattr__(param, "default", param.from_unit(0.5))
    for label, value in (("default", param.default), ("low_cost", param.low_cost)):
        if value is not None and not param.contains(value):
            raise ValueError(f"parameter {param.name!r}: {label} {value} is outside [{param.low}, {param.high}]")


@dataclass(frozen=True)
class Float(Param):
    """A real number in [low, high], optionally on a log scale."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", "float")
        _check_numeric(self)

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def from_unit(self, u: float) -> float:
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return float(min(self.high, max(self.low, value)))  # exp(log(x)) may round past an end

    def sample(self, rng: np.random.Generator) -> float:
        return self.from_unit(rng.random())

    def to_unit(self, value: Any) -> float:
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def narrowed(self, values: list[Any], margin: float) -> Float:
        low, high = _unit_box(self, values, max(margin, 1e-3))
        return _replace(self, low=self.from_unit(low), high=self.from_unit(high))

    def _domain(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Int(Param):
    """An integer in [low, high] (both included), optionally on a log scale."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", "int")
        _check_numeric(self)

    def contains(self, value: Any) -> bool:
        is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        return is_int and self.low <= value <= self.high

    def from_unit(self, u: float) -> int:
        if self.log:
            low, high = math.log(self.low - 0.5 if self.low > 0.5 else self.low), math.log(self.high + 0.5)
            value = math.exp(low + u * (high - low))
        else:
            value = self.low - 0.5 + u * (self.high - self.low + 1)
        return int(min(self.high, max(self.low, round(value))))

    def sample(self, rng: np.random.Generator) -> int:
        return self.from_unit(rng.random())

    def to_unit(self, value: Any) -> float:
        if self.log:
            low = self.low - 0.5 if self.low > 0.5 else self.low
            return (math.log(value) - math.log(low)) / (math.log(self.high + 0.5) - math.log(low))
        return (value - self.low + 0.5) / (self.high - self.low + 1)

    def narrowed(self, values: list[Any], margin: float) -> Int:
        low, high = _unit_box(self, values, margin)
        new_low, new_high = self.from_unit(low), self.from_unit(min(high, 1.0 - 1e-9))
        if new_low >= new_high:  # a single value: keep a valid two-value range around it
            new_low, new_high = (new_low, new_low + 1) if new_low < self.high else (new_low - 1, new_low)
        return _replace(self, low=new_low, high=new_high)

    def _domain(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Categorical(Param):
    """One of a fixed tuple of choices (str, int, float, bool or None)."""

    choices: tuple[Value, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", "categorical")
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ValueError(f"parameter {self.name!r}: needs at least one choice")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError(f"parameter {self.name!r}: choices must be distinct, got {self.choices}")
        for label, value in (("default", self.default), ("low_cost", self.low_cost)):
            if value is not None and value not in self.choices:
                raise ValueError(f"parameter {self.name!r}: {label} {value!r} is not one of {self.choices}")
        if self.default is None and None not in self.choices:
            object.__setattr__(self, "default", self.choices[0])

    def contains(self, value: Any) -> bool:
        return value in self.choices

    def from_unit(self, u: float) -> Value:
        return self.choices[min(len(self.choices) - 1, int(u * len(self.choices)))]

    def sample(self, rng: np.random.Generator) -> Value:
        return self.choices[int(rng.integers(len(self.choices)))]

    def to_unit(self, value: Any) -> float:
        return (self.choices.index(value) + 0.5) / len(self.choices)

    def narrowed(self, values: list[Any], margin: float) -> Categorical:
        kept = tuple(c for c in self.choices if c in values) or self.choices
        default = self.default if self.default in kept else kept[0]
        return _replace(self, choices=kept, default=default, low_cost=self.low_cost if self.low_cost in kept else None)

    def _domain(self) -> dict[str, Any]:
        return {"choices": self.choices}


def _unit_box(param: Param, values: list[Any], margin: float) -> tuple[float, float]:
    units = [param.to_unit(v) for v in values]
    return max(0.0, min(units) - margin), min(1.0, max(units) + margin)


def _replace(param: Param, **changes: Any) -> Any:
    """A copy with new domain values; default and low_cost are dropped when they fall outside."""
    data = {k: v for k, v in param.__dict__.items() if k != "kind"}
    data.update(changes)
    clone = type(param)(**data | {"default": None, "low_cost": None})
    for key in ("default", "low_cost"):
        value = data.get(key)
        if value is not None and clone.contains(value):
            object.__setattr__(clone, key, value)
    return clone


_KINDS: dict[str, type[Param]] = {"float": Float, "int": Int, "categorical": Categorical}


def param_from_dict(data: dict[str, Any]) -> Param:
    """Rebuild a parameter from :meth:`Param.to_dict` output."""
    data = dict(data)
    kind = data.pop("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown parameter kind {kind!r}; expected one of {sorted(_KINDS)}")
    if "condition" in data:
        data["condition"] = Condition.from_dict(data["condition"])
    if "choices" in data:
        data["choices"] = tuple(data["choices"])
    return _KINDS[kind](**data)
