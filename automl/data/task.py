"""A compact description of a supervised learning task."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

TASK_TYPES = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class TaskInfo:
    """Task type, metric and the shape of the training data.

    ``task`` is ``"binary"``, ``"multiclass"`` or ``"regression"``;
    ``classes`` holds the original labels (empty for regression), in the
    order of ``predict_proba``'s columns.
    """

    task: str
    metric: str
    n_rows: int
    n_features: int
    feature_names: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str = "target"
    classes: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASK_TYPES:
            raise ValueError(f"task must be one of {TASK_TYPES}, got {self.task!r}")
        # plain Python labels, so that messages and `automl info` print 0, not np.int64(0)
        object.__setattr__(self, "classes", tuple(plain_label(c) for c in self.classes))

    @property
    def kind(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return "regression" if self.task == "regression" else "classification"

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"] = [plain_label(c) for c in self.classes]
        return data


def plain_label(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds (``np.int64(0)`` -> ``0``); anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value
