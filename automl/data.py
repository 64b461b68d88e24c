"""Turning whatever the user passed into a validated, typed :class:`Dataset`.

Accepted: ``(X, y)`` as numpy or pandas; a DataFrame with ``target=``; a path
to a CSV/TSV (optionally compressed) or Parquet file with ``target=`` (PMLB
files default to ``target`` and their ``.yaml``); ``"openml:<id>"`` or
``"openml-task:<id>"``; a scikit-learn Bunch, or ``"sklearn:<name>"`` for a
bundled one (iris, wine, breast_cancer, digits, diabetes). Every problem is reported as a
:class:`~automl.errors.DataError` that names it and says how to fix it.

Feature columns end up either numeric (``float64``) or categorical (pandas
``category`` of strings, so that ``1``, ``1.0`` and ``"1"`` read alike at fit
and predict time), or free text (strings, turned into numbers per fold by the
preprocessing). Date columns become numeric parts, ID-like columns are dropped
and infinite values read as missing (:mod:`automl.column_kinds` decides which
column is which). :class:`FeatureSchema` records all of it, so new data at
predict time is prepared exactly the same way.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.exceptions import DataConversionWarning

from automl.column_kinds import ColumnNote, DateColumn, plan_columns
from automl.errors import DataError
from automl.sources import (
    RawData,
    is_openml_spec,
    is_sklearn_spec,
    read_bunch,
    read_file,
    read_openml,
    read_sklearn,
)
from automl.task import TaskInfo, plain_label

log = logging.getLogger(__name__)

MIN_ROWS = 5
SCHEMA_ATTR = "automl_schema"  # DataFrame.attrs key: the schema a table of features was prepared by
MAX_MAGNITUDE = 1e150  # larger values overflow when squared (variances, squared errors): as good as infinite
MAX_CLASSES_INFERRED = 20  # an integer target with more distinct values is taken as regression
TASK_WORDS = ("classification", "regression", "binary", "multiclass")


@dataclass(frozen=True)
class FeatureSchema:
    """The input columns a model was trained on, and how each becomes features.

    ``names``: the input columns in training order (ID-like ones included, so
    an array as wide as the training data still lines up); ``categorical``:
    the categorical feature columns; ``dates``: how each date column becomes
    numbers; ``text``: the free-text columns; ``dropped``: the ID-like columns,
    ignored (new data may hold them or not); ``notes``: what was done to which
    column. The fields after ``categorical`` default to empty, so a model
    saved before they existed still loads and predicts as it did.
    """

    names: tuple[str, ...]
    categorical: tuple[str, ...]
    dates: tuple[DateColumn, ...] = ()
    text: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    notes: tuple[ColumnNote, ...] = ()

    @property
    def inputs(self) -> tuple[str, ...]:
        """The input columns new data must hold."""
        dropped = set(getattr(self, "dropped", ()))
        return tuple(n for n in self.names if n not in dropped)

    @property
    def features(self) -> tuple[str, ...]:
        """The feature columns :meth:`prepare` returns, in order (a date column gives several)."""
        dates = {d.name: d.outputs for d in getattr(self, "dates", ())}
        return tuple(output for name in self.inputs for output in dates.get(name, (name,)))

    def prepare(self, X: Any) -> pd.DataFrame:
        """New data as the model expects it: same columns, same types, dates and text as in training.

        A value a numeric column cannot hold (a string, an infinity) reads as
        missing, with a warning naming the column.
        """
        frame = _as_frame(X, self.names, self.inputs).rename(columns=str)
        _check_unique_columns(frame)
        if _prepared_by(frame) == self:  # features this schema made already (rows of dataset.X)
            features, cleaning = _typed_features(frame, _feature_level(self), training=False)
            cleaning.warn(stacklevel=5)
            return features
        missing = [n for n in self.inputs if n not in frame.columns]
        if missing:
            raise DataError(
                f"the data lacks {len(missing)} column(s) the model was trained on: {missing[:10]}. "
                f"Expected columns: {list(self.inputs)[:20]}"
            )
        features, cleaning = _typed_features(frame, self, training=False)
        cleaning.warn(stacklevel=5)  # the caller of AutoModel.predict
        return features


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
        raise DataError(f"at least {MIN_ROWS} rows with a known target are needed to train and validate, got n_samples={len(X)}")
    declared = set(raw.categorical) | _resolve_categorical(categorical, X.columns)
    task_type, y_values = _infer_task(y_values, task or raw.task)
    prepared = _prepared_by(X)
    if prepared is not None:  # dataset.X (or rows of it) given back: keep the schema that made it
        schema = prepared
        features, cleaning = _typed_features(X, _feature_level(schema), training=True)
    else:
        plan = plan_columns(X, declared, _is_text_like)
        schema = FeatureSchema(tuple(X.columns), plan.categorical, plan.dates, plan.text, plan.dropped, plan.notes)
        features, cleaning = _typed_features(X, schema, training=True)
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


def _prepared_by(frame: pd.DataFrame) -> FeatureSchema | None:
    """The schema that made ``frame``, when it is a table of features from :func:`load_dataset` (its ``X``,
    or rows of it), so that ``fit(dataset.X, dataset.y)`` and ``predict(dataset.X)`` mean the raw data again."""
    schema = frame.attrs.get(SCHEMA_ATTR)
    if isinstance(schema, FeatureSchema) and tuple(frame.columns) == schema.features:
        return schema
    return None


def _feature_level(schema: FeatureSchema) -> FeatureSchema:
    """A schema that takes ``schema``'s feature columns as they are."""
    return FeatureSchema(schema.features, schema.categorical, text=getattr(schema, "text", ()))


@dataclass
class _Cleaning:
    """Values read as missing while typing the features: infinities and (at predict time) non-numbers."""

    infinite: dict[str, int]  # infinite values, or beyond MAX_MAGNITUDE
    unreadable: dict[str, Any]

    def warn(self, stacklevel: int = 4) -> None:
        """One warning per kind of value read as missing; ``stacklevel`` points it at the user's call."""
        if self.infinite:
            counts = ", ".join(f"{name!r} ({count})" for name, count in list(self.infinite.items())[:10])
            warnings.warn(f"infinite values read as missing in column(s) {counts}", UserWarning, stacklevel=stacklevel)
        if self.unreadable:
            examples = ", ".join(f"{name!r} (e.g. {plain_label(value)!r})" for name, value in list(self.unreadable.items())[:10])
            warnings.warn(
                f"values that are not numbers read as missing in numeric column(s) {examples}", UserWarning, stacklevel=stacklevel
            )

    def noted(self, schema: FeatureSchema) -> FeatureSchema:
        """``schema`` with a note for each column whose infinite values were read as missing."""
        notes = [
            ColumnNote(name, "infinite", f"{count} infinite (or beyond {MAX_MAGNITUDE:g}) value(s) read as missing")
            for name, count in self.infinite.items()
        ]
        return replace(schema, notes=schema.notes + tuple(notes)) if notes else schema


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
    return RawData(frame=_as_frame(data), target=target if target is not None else y)


def _is_bunch(data: Any) -> bool:
    return isinstance(data, dict) and "data" in data and "target" in data


def _as_frame(X: Any, names: Sequence[str] | None = None, narrower: Sequence[str] | None = None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        raise DataError("X is a single Series; pass a 2-D table, e.g. X.to_frame()")
    if scipy.sparse.issparse(X):
        raise DataError("sparse input is not supported: convert it with X.toarray(), or pass a DataFrame")
    try:
        array = np.asarray(X)
    except Exception as error:
        raise DataError(f"X cannot be read as a table: {error}") from None
    if array.ndim != 2:
        hint = " (X.reshape(-1, 1) if it is a single feature)" if array.ndim == 1 else ""
        raise DataError(f"Reshape your data: X must be 2-D (rows x features), got an array of shape {array.shape}{hint}")
    if names is not None and len(names) == array.shape[1]:
        columns = list(names)
    elif narrower is not None and len(narrower) == array.shape[1]:  # without the columns the model ignores
        columns = list(narrower)
    else:
        if names is not None:
            raise DataError(f"X has {array.shape[1]} features, but automl is expecting {len(names)} features as input, as in training")
        columns = [f"x{i}" for i in range(array.shape[1])]
    return pd.DataFrame(array, columns=columns)


def _check_unique_columns(frame: pd.DataFrame) -> None:
    if frame.columns.duplicated().any():
        dups = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise DataError(f"duplicate column names {dups[:10]}: rename them so every column is unique")


def _split_target(raw: RawData, y: Any) -> tuple[pd.DataFrame, pd.Series, str]:
    frame = raw.frame.rename(columns=str)
    _check_unique_columns(frame)
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
                f"a regression target must be numeric, but y holds values like {[plain_label(v) for v in y.unique()[:3]]}; "
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
            f"Unknown label type: the target is continuous (values like {plain_label(y.iloc[0])!r}), so it cannot be classified; "
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


def clean_labels(y: pd.Series) -> pd.Series:
    """Labels of one comparable type (numbers or strings), so they can be sorted."""
    values = y.astype(object) if isinstance(y.dtype, pd.CategoricalDtype) else y
    kinds = {type(v) for v in values}
    if len(kinds) > 1 and not all(issubclass(k, (int, float, np.number, bool, np.bool_)) for k in kinds):
        try:
            return values.astype(str)
        except UnicodeDecodeError:  # bytes that are not UTF-8
            return values.map(str)
    if pd.api.types.is_float_dtype(values) and np.all(np.isfinite(values)) and np.all(np.mod(values.to_numpy(), 1) == 0):
        return values.astype(np.int64)
    return values


def _typed_features(X: pd.DataFrame, schema: FeatureSchema, *, training: bool) -> tuple[pd.DataFrame, _Cleaning]:
    """The feature table for ``schema``'s input columns of ``X``: numbers as ``float64``, categories as
    ``category``, dates as their numeric parts, text as strings; and what was read as missing.

    A numeric column mixing numbers with other values is an error at training
    time (the user should say what it is) but reads as missing at predict time.
    """
    dates = {d.name: d for d in getattr(schema, "dates", ())}
    text = set(getattr(schema, "text", ()))
    categorical = set(schema.categorical)
    cleaning = _Cleaning(infinite={}, unreadable={})
    columns: dict[str, pd.Series] = {}
    for name in schema.inputs:
        column = X[name]
        if name in dates:
            columns.update(dates[name].parts(column))
        elif name in text:
            columns[name] = _as_text(column)
        elif name in categorical:
            columns[name] = _as_category(column, name)
        else:
            values, bad = _as_numeric(column, name)
            if bad is not None:
                if training:
                    raise DataError(f"column {name!r} mixes numbers with values like {bad!r}; clean it or mark it categorical")
                cleaning.unreadable[name] = bad
            infinite = np.abs(values.to_numpy()) > MAX_MAGNITUDE  # inf, and numbers too large to compute with
            if infinite.any():
                cleaning.infinite[name] = int(infinite.sum())
                values = values.mask(infinite)
            columns[name] = values
    return pd.DataFrame(columns, index=X.index), cleaning


def _as_text(column: pd.Series) -> pd.Series:
    """Free text as plain strings (object dtype), missing values as ""."""
    values = column.astype(object).map(lambda v: "" if _is_missing(v) else str(v))
    return pd.Series(values.to_numpy(dtype=object), index=column.index, name=column.name, dtype=object)


def _is_text_like(column: pd.Series) -> bool:
    dtype = column.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or (pd.api.types.is_object_dtype(dtype) and not pd.api.types.is_numeric_dtype(pd.to_numeric(column, errors="coerce").dropna()))
    )


def _as_numeric(column: pd.Series, name: str) -> tuple[pd.Series, Any]:
    """``column`` as floats, and the first present value that is not a number (None if there is none)."""
    dtype = column.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        raise DataError(
            f"column {name!r} holds dates, but the model was trained on numbers in it; pass the numbers it was trained on"
        )
    if pd.api.types.is_timedelta64_dtype(dtype):
        return column.dt.total_seconds().astype(float), None
    if pd.api.types.is_complex_dtype(dtype):
        raise DataError(f"Complex data not supported: column {name!r} holds complex numbers; split it into real and imaginary parts")
    if pd.api.types.is_bool_dtype(dtype):
        return column.astype(float), None
    if isinstance(dtype, pd.CategoricalDtype):
        column = column.astype(object)
    elif not pd.api.types.is_numeric_dtype(dtype) and not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        raise DataError(f"column {name!r} has dtype {dtype}, which is not supported; convert it to numbers or strings")
    if not pd.api.types.is_numeric_dtype(column.dtype):
        return as_numbers(column)
    return column.astype(float), None


def as_numbers(column: pd.Series) -> tuple[pd.Series, Any]:
    """Values of an object or string column as floats (strings of numbers count), NaN where a value is
    not a number; and the first such value (None if there is none)."""
    values = np.full(len(column), np.nan)
    first_bad = None
    for index, value in enumerate(column.to_numpy(dtype=object)):
        if _is_missing(value):
            continue
        try:
            values[index] = float(value.strip() if isinstance(value, (str, bytes)) else value)
        except (TypeError, ValueError, OverflowError):
            if first_bad is None:
                first_bad = value
    return pd.Series(values, index=column.index, name=column.name), first_bad


def _as_category(column: pd.Series, name: str) -> pd.Series:
    values = column.astype(object) if isinstance(column.dtype, pd.CategoricalDtype) else column
    if pd.api.types.is_object_dtype(values.dtype):
        odd = [v for v in values.dropna().head(1000) if isinstance(v, (list, dict, set, tuple, bytes))]
        if odd:
            fix = "decode them to strings" if isinstance(odd[0], bytes) else "flatten it into plain columns"
            raise DataError(f"column {name!r} holds {type(odd[0]).__name__} values; {fix}")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        raise DataError(f"column {name!r} holds dates; convert it to numbers or strings first")
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        values = values.astype(float)
    strings = values.map(lambda v: None if _is_missing(v) else _label_text(v))
    return pd.Series(pd.Categorical(strings), index=column.index, name=name)


def _label_text(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
