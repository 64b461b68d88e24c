"""A compact description of a supervised learning task."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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

    @property
    def kind(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return "regression" if self.task == "regression" else "classification"

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"] = [c.item() if hasattr(c, "item") else c for c in self.classes]
        return data
