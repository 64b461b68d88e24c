"""A target given to ``score`` as metrics take it: class codes in the order of the model's classes, or values."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from automl.data.schema import as_numbers, clean_labels
from automl.data.task import TaskInfo, plain_label
from automl.errors import DataError


def encoded_truth(task: TaskInfo, y: Any, n_rows: int) -> np.ndarray:
    """``y`` as metrics take it for ``task`` (class codes in the order of its classes, or values), checked against
    ``n_rows``."""
    classes = np.asarray(task.classes)
    y_true = _true_values(y)
    if len(y_true) != n_rows:
        raise DataError(f"X has {n_rows} rows but y has {len(y_true)}")
    if not n_rows:
        raise DataError("there are no rows to score: pass at least one row of X and y")
    if task.task == "regression":
        values, bad = ((y_true.astype(float), None) if pd.api.types.is_numeric_dtype(y_true.dtype)
                       else as_numbers(y_true))
        if bad is not None or not np.isfinite(values.to_numpy()).all():
            example = bad if bad is not None else values[~np.isfinite(values.to_numpy())].iloc[0]
            raise DataError("y must hold a finite number on every row to score a regression, "
                            f"but holds {plain_label(example)!r}")
        return values.to_numpy()
    labels = clean_labels(y_true)
    if labels.isna().any():
        raise DataError("y holds missing labels: drop those rows (or fill them in) before scoring")
    try:
        unknown = set(labels.tolist()) - set(classes.tolist())
    except TypeError:  # unhashable values (lists, dicts)
        raise DataError("y must hold one label per row, "
                        f"but holds values like {plain_label(labels.iloc[0])!r}") from None
    if unknown:
        raise DataError(f"y holds labels the model never saw in training: {sorted(map(str, unknown))[:5]}")
    return np.searchsorted(classes, labels.to_numpy())


def _true_values(y: Any) -> pd.Series:
    """The labels or values given to ``score``, one per row."""
    if isinstance(y, pd.DataFrame) and y.shape[1] == 1:
        y = y.iloc[:, 0]
    if isinstance(y, pd.Series):
        return y.reset_index(drop=True)
    try:
        values = np.asarray(y)
    except (ValueError, TypeError):
        values = np.asarray(list(y) if hasattr(y, "__iter__") else [y], dtype=object)
    if values.ndim > 1 and values.shape[1:] != (1,) * (values.ndim - 1):
        raise DataError(f"y must be one column of labels or values, got shape {values.shape}")
    return pd.Series(np.ravel(values))
