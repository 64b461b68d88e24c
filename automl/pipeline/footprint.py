"""What a model costs to serve: its prediction latency for one row and its serialized size.

A trial's footprint is measured on its first fold's model, which is what the
final model will be like: the latency of predicting one preprocessed row
(median of a few calls after a warm-up) plus that of its preprocessing, and the
size of both pickled. A final model's footprint is measured on the whole
prediction path a user calls (:meth:`AutoModel.predict` on a one-row frame).
The limits of ``fit(max_predict_ms=, max_model_mb=)`` are checked against
these figures; sizes are of the uncompressed pickle, an upper bound of the
saved file's.

>>> from automl.pipeline.footprint import Limits
>>> Limits(max_predict_ms=2.0).allows(predict_ms=1.5, model_mb=300.0)
True
"""

from __future__ import annotations

import math
import pickle
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from automl.errors import ConfigError

TRIAL_REPEATS = 5  # single-row predictions timed per trial (after one warm-up)
FINAL_REPEATS = 25  # ... and for the final model, whose figure is checked against the limit


@dataclass(frozen=True)
class Limits:
    """Upper bounds on a model's single-row prediction latency (ms) and serialized size (MB); None: no bound."""

    max_predict_ms: float | None = None
    max_model_mb: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_predict_ms", "max_model_mb"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
                raise ConfigError(f"{name} must be a positive number or None, got {value!r}")

    @property
    def any(self) -> bool:
        return self.max_predict_ms is not None or self.max_model_mb is not None

    def allows(self, predict_ms: float, model_mb: float) -> bool:
        """Whether a model of this latency and size is within the limits (an unmeasured figure is NaN: not allowed)."""
        return (self.max_predict_ms is None or predict_ms <= self.max_predict_ms) and (
            self.max_model_mb is None or model_mb <= self.max_model_mb
        )

    def describe(self) -> str:
        parts = [f"max_predict_ms={self.max_predict_ms}" if self.max_predict_ms is not None else "",
                 f"max_model_mb={self.max_model_mb}" if self.max_model_mb is not None else ""]
        return ", ".join(part for part in parts if part)


NO_LIMITS = Limits()


def latency_ms(predict: Callable[[], Any], repeats: int = TRIAL_REPEATS) -> float:
    """The median wall time of ``predict()`` in milliseconds, after one untimed warm-up call."""
    predict()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict()
        times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times)


def serialized_mb(obj: Any) -> float:
    """The size of ``obj`` pickled (uncompressed), in MB; NaN when it cannot be pickled."""
    try:
        return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)) / 2**20
    except Exception:  # a learner's model may hold something unpicklable: then it cannot be shipped either
        return math.nan
