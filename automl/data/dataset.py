"""Turning whatever the user passed into a validated, typed :class:`Dataset`.

Accepted: ``(X, y)`` as numpy or pandas; a DataFrame with ``target=``; a path
to a CSV/TSV (optionally compressed) or Parquet file with ``target=`` (PMLB
files default to ``target`` and their ``.yaml``); ``"openml:<id>"`` or
``"openml-task:<id>"``; a scikit-learn Bunch, or ``"sklearn:<name>"`` for a
bundled one (iris, wine, breast_cancer, digits, diabetes). Every problem is reported as a
:class:`~automl.errors.DataError` that names it and says how to fix it.

Features are typed by the :class:`~automl.data.schema.FeatureSchema` the data gets
here (:mod:`automl.data.schema`), which new data is prepared by at predict time.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import DataConversionWarning

from automl.data.column_kinds import plan_columns
from automl.data.schema import (
    MAX_MAGNITUDE,
    SCHEMA_ATTR,
    FeatureSchema,
    as_frame,
    check_unique_columns,
    clean_labels,
    feature_level,
    is_text_like,
    prepared_by,
    typed_features,
)
from automl.data.sources import (
    RawData,
    is_openml_spec,
    is_sklearn_spec,
    read_bunch,
    read_file,
    read_openml,
    read_sklearn,
)
from automl.data.task import TaskInfo, plain_label
from automl.errors import DataError

log = logging.getLogger(__name__)

MIN_ROWS = 5
MAX_CLASSES_INFERRED = 20  # an integer target with more distinct values is taken as regression
TASK_WORDS = ("classification", "regression", "binary", "multiclass")


@dataclass
class Dataset:
    """Validated training data: typed features, target and task."""

    X: pd.DataFrame
    y: pd.Series
    task: str  # "binary", "multiclass" or "regression"
    categorical: tuple[str, ...]
    name: str = "data"
    target: str = "target"
    feature_schema: FeatureSchema | None = None  # how the input columns became X; None: X's columns as they are

    @property
    def kind(self) -> str:
        return "regression" if self.task == "regression" else "classification"

    @property
    def schema(self) -> FeatureSchema:
        if self.feature_schema is not None:
            return self.feature_schema
        return FeatureSchema(tuple(self.X.columns), self.categorical)

    @property
    def classes(self) -> np.ndarray:
        """Sorted distinct labels (empty for regression)."""
        if self.task == "regression":
            return np.array([])
        return np.unique(self.y.to_numpy())

    def encoded_target(self) -> np.ndarray:
        """Labels as ``0..C-1`` (classification) or floats (regression)."""
        if self.task == "regression":
            return self.y.to_numpy(dtype=float)
        return np.searchsorted(self.classes, self.y.to_numpy())

    def task_info(self, metric: str) -> TaskInfo:
        return TaskInfo(
            task=self.task,
            metric=metric,
            n_rows=len(self.X),
            n_features=self.X.shape[1],
            feature_names=tuple(self.X.columns),
            categorical=self.categorical,
            target=self.target,
            classes=tuple(plain_label(c) for c in self.classes),
        )

    def fingerprint(self) -> str:
        """A hash of the content: the same data always gives the same value."""
        digest = hashlib.sha1()
        digest.update(pd.util.hash_pandas_object(self.X, index=False).to_numpy().tobytes())
        digest.update(pd.util.hash_pandas_object(self.y, index=False).to_numpy().tobytes())
        digest.update(repr((tuple(self.X.columns), self.categorical, self.task)).encode())
        return digest.hexdigest()[:16]


def load_dataset(
    data: Any,
    y: Any = None,
    *,
    target: str | None = None,
    task: str | None = None,
    categorical: Sequence[str | int] | None = None,
) -> Dataset:
    """Read, validate and type the training data (see the module docstring)."""
    raw = _read(data, y, target)
    X, y_values, target_name = _split_target(raw, y)
    _check_features_table(X)
    X, y_values = _drop_missing_target(X, y_values)
    if len(X) < MIN_ROWS:
        raise DataError(f"at least {MIN_ROWS} rows with a known target are needed to train and validate, "
                        f"got n_samples={len(X)}")
    declared = set(raw.categorical) | _resolve_categorical(categorical, X.columns)
    task_type, y_values = _infer_task(y_values, task or raw.task)
    prepared = prepared_by(X)
    if prepared is not None:  # dataset.X (or rows of it) given back: keep the schema that made it
        schema = prepared
        features, cleaning = typed_features(X, feature_level(schema), training=True)
    else:
        plan = plan_columns(X, declared, is_text_like)
        schema = FeatureSchema(tuple(X.columns), plan.categorical, plan.dates, plan.text, plan.dropped, plan.notes)
        features, cleaning = typed_features(X, schema, training=True)
        schema = cleaning.noted(schema)
    cleaning.warn()
    features.attrs[SCHEMA_ATTR] = schema
    return Dataset(
        X=features,
        y=y_values,
        task=task_type,
        categorical=schema.categorical,
        name=raw.name,
        target=str(target_name),
        feature_schema=schema,
    )


def _read(data: Any, y: Any, target: str | None) -> RawData:
    if is_sklearn_spec(data):
        return read_sklearn(str(data))
    if isinstance(data, (str, Path)) and not is_openml_spec(data):
        if y is not None:
            raise DataError("a file already holds the target: pass target='<column>' instead of y")
        return read_file(data, target)
    if is_openml_spec(data):
        raw = read_openml(str(data))
        if target is not None:
            raw.target = target
        return raw
    if _is_bunch(data):
        if y is not None:
            raise DataError("a Bunch already holds the target: drop the y argument")
        return read_bunch(data)
    if data is None:
        raise DataError("no data given: pass X and y, a DataFrame with target=, or a path to a data file")
    if y is None and target is None:
        raise DataError("no target given: pass y (the labels or values to learn) or target='<column of X>'")
    if y is not None and target is not None:
        raise DataError("pass either y or target=, not both")
    return RawData(frame=as_frame(data), target=target if target is not None else y)


def _is_bunch(data: Any) -> bool:
    return isinstance(data, dict) and "data" in data and "target" in data


def _split_target(raw: RawData, y: Any) -> tuple[pd.DataFrame, pd.Series, str]:
    frame = raw.frame.rename(columns=str)
    check_unique_columns(frame)
    target = raw.target
    if isinstance(target, str):
        if target not in frame.columns:
            close = difflib.get_close_matches(target, list(frame.columns), n=3)
            hint = f" Did you mean {close}?" if close else ""
            raise DataError(f"no target column {target!r} in the data.{hint} Columns: {list(frame.columns)[:20]}")
        _check_scalar_target(frame[target])
        return frame.drop(columns=[target]).reset_index(drop=True), frame[target].reset_index(drop=True), target
    values = target.iloc[:, 0] if isinstance(target, pd.DataFrame) and target.shape[1] == 1 else target
    if not isinstance(values, (pd.Series, pd.DataFrame)):
        values = _as_array(values)
    if isinstance(values, pd.DataFrame) or (np.ndim(values) > 1 and np.shape(values)[1] != 1):
        raise DataError(f"y must be one column of labels or values, got shape {np.shape(values)}")
    if np.ndim(values) == 2:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
            "(n_samples, ), for example using ravel().",
            DataConversionWarning,
            stacklevel=4,
        )
    series = values.reset_index(drop=True) if isinstance(values, pd.Series) else pd.Series(np.ravel(np.asarray(values)))
    if len(series) != len(frame):
        raise DataError(f"X has {len(frame)} rows but y has {len(series)}: they must describe the same rows")
    _check_scalar_target(series)
    name = str(getattr(values, "name", None) or "target")
    return frame.reset_index(drop=True), series, name


def _as_array(values: Any) -> np.ndarray:
    """``values`` as an array; as an array of objects when NumPy cannot find a common type (bytes and str)."""
    try:
        return np.asarray(values)
    except (ValueError, TypeError):
        pass
    try:
        return np.asarray(values, dtype=object)
    except (ValueError, TypeError):  # ragged: rows of different lengths
        raise DataError("y must be one column of labels or values, but its rows have different lengths") from None


def _check_scalar_target(y: pd.Series) -> None:
    """One label or value per row: lists, dicts or arrays in ``y`` cannot be learned."""
    if pd.api.types.is_object_dtype(y.dtype):
        odd = y[y.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray)))]
        if len(odd):
            raise DataError(f"y holds {type(odd.iloc[0]).__name__} values; give one label or value per row")


def _check_features_table(X: pd.DataFrame) -> None:
    if X.shape[0] == 0:
        raise DataError("the data has no rows")
    if X.shape[1] == 0:
        raise DataError(
            f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required: "
            "the data has no feature columns besides the target"
        )


def _drop_missing_target(X: pd.DataFrame, y: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    missing = y.isna().to_numpy()
    if missing.all():
        raise DataError("every target value is missing (NaN): there is nothing to learn from")
    if missing.any():
        warnings.warn(
            f"dropped {int(missing.sum())} of {len(y)} rows whose target is missing", UserWarning, stacklevel=3
        )
        keep = ~missing
        X, y = X.loc[keep].reset_index(drop=True), y.loc[keep].reset_index(drop=True)
    return X, y


def _resolve_categorical(categorical: Sequence[str | int] | None, columns: pd.Index) -> set[str]:
    if categorical is None:
        return set()
    if isinstance(categorical, (str, int)):
        categorical = [categorical]
    chosen = set()
    for item in categorical:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= item < len(columns):
                raise DataError(f"categorical column index {item} is out of range (there are {len(columns)} features)")
            chosen.add(str(columns[item]))
        elif str(item) in columns:
            chosen.add(str(item))
        else:
            raise DataError(f"categorical column {item!r} is not in the data; columns: {list(columns)[:20]}")
    return chosen


def _infer_task(y: pd.Series, task: str | None) -> tuple[str, pd.Series]:
    if task is not None and task not in TASK_WORDS:
        raise DataError(f"task must be one of {TASK_WORDS}, got {task!r}")
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if not numeric and pd.api.types.is_object_dtype(y.dtype):
        converted = pd.to_numeric(y, errors="coerce")
        if converted.notna().all():
            y, numeric = converted, True
    if task == "regression" or (task is None and numeric and _looks_continuous(y)):
        if not numeric:
            raise DataError(
                "a regression target must be numeric, "
                f"but y holds values like {[plain_label(v) for v in y.unique()[:3]]}; "
                "pass task='classification' if these are class labels"
            )
        y = y.astype(float)
        if not np.isfinite(y.to_numpy()).all():
            raise DataError("the target holds infinite values; replace or drop them")
        if (np.abs(y.to_numpy()) > MAX_MAGNITUDE).any():
            raise DataError(f"the target holds values too large to compute with (beyond {MAX_MAGNITUDE:g}); rescale it")
        return "regression", y
    if numeric and _has_fractions(y) and y.nunique() > MAX_CLASSES_INFERRED:
        raise DataError(
            f"Unknown label type: the target is continuous (values like {plain_label(y.iloc[0])!r}), "
            "so it cannot be classified; "
            "pass task='regression'"
        )
    labels = clean_labels(y)
    n_classes = labels.nunique()
    if n_classes < 2:
        raise DataError(
            f"the target has a single class ({plain_label(labels.iloc[0])!r}); a classifier needs at least two. "
            "If it is a numeric target, pass task='regression'."
        )
    if task is None:
        log.info("inferred a classification task with %d classes; pass task='regression' to override", n_classes)
    detected = "binary" if n_classes == 2 else "multiclass"
    if task == "binary" and detected != "binary":
        raise DataError(f"task='binary' but the target has {n_classes} classes")
    return detected, labels


def _has_fractions(y: pd.Series) -> bool:
    values = y.to_numpy(dtype=float)
    return not np.all(np.mod(values[np.isfinite(values)], 1) == 0)


def _looks_continuous(y: pd.Series) -> bool:
    return _has_fractions(y) or y.nunique() > MAX_CLASSES_INFERRED


