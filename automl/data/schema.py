"""The feature schema: the input columns a model was trained on, and how each becomes a typed feature.

Feature columns end up either numeric (``float64``) or categorical (pandas
``category`` of strings, so that ``1``, ``1.0`` and ``"1"`` read alike at fit
and predict time), or free text (strings, turned into numbers per fold by the
preprocessing). Date columns become numeric parts, ID-like columns are dropped
and infinite values read as missing (:mod:`automl.data.column_kinds` decides which
column is which). :class:`FeatureSchema` records all of it, so new data at
predict time is prepared exactly the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse

from automl.data.column_kinds import ColumnNote, DateColumn
from automl.data.task import plain_label
from automl.errors import DataError

SCHEMA_ATTR = "automl_schema"  # DataFrame.attrs key: the schema a table of features was prepared by


MAX_MAGNITUDE = 1e150  # larger values overflow when squared (variances, squared errors): as good as infinite


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
        frame = as_frame(X, self.names, self.inputs).rename(columns=str)
        check_unique_columns(frame)
        if prepared_by(frame) == self:  # features this schema made already (rows of dataset.X)
            features, cleaning = typed_features(frame, feature_level(self), training=False)
            cleaning.warn(stacklevel=5)
            return features
        missing = [n for n in self.inputs if n not in frame.columns]
        if missing:
            raise DataError(
                f"the data lacks {len(missing)} column(s) the model was trained on: {missing[:10]}. "
                f"Expected columns: {list(self.inputs)[:20]}"
            )
        features, cleaning = typed_features(frame, self, training=False)
        cleaning.warn(stacklevel=5)  # the caller of AutoModel.predict
        return features


def prepared_by(frame: pd.DataFrame) -> FeatureSchema | None:
    """The schema that made ``frame``, when it is a table of features from :func:`load_dataset` (its ``X``,
    or rows of it), so that ``fit(dataset.X, dataset.y)`` and ``predict(dataset.X)`` mean the raw data again."""
    schema = frame.attrs.get(SCHEMA_ATTR)
    if isinstance(schema, FeatureSchema) and tuple(frame.columns) == schema.features:
        return schema
    return None


def feature_level(schema: FeatureSchema) -> FeatureSchema:
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
            examples = ", ".join(f"{name!r} (e.g. {plain_label(value)!r})"
                                 for name, value in list(self.unreadable.items())[:10])
            warnings.warn(
                f"values that are not numbers read as missing in numeric column(s) {examples}", UserWarning,
                stacklevel=stacklevel
            )

    def noted(self, schema: FeatureSchema) -> FeatureSchema:
        """``schema`` with a note for each column whose infinite values were read as missing."""
        notes = [
            ColumnNote(name, "infinite", f"{count} infinite (or beyond {MAX_MAGNITUDE:g}) value(s) read as missing")
            for name, count in self.infinite.items()
        ]
        return replace(schema, notes=schema.notes + tuple(notes)) if notes else schema


def as_frame(X: Any, names: Sequence[str] | None = None, narrower: Sequence[str] | None = None) -> pd.DataFrame:
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
        raise DataError(f"Reshape your data: X must be 2-D (rows x features), "
                        f"got an array of shape {array.shape}{hint}")
    if names is not None and len(names) == array.shape[1]:
        columns = list(names)
    elif narrower is not None and len(narrower) == array.shape[1]:  # without the columns the model ignores
        columns = list(narrower)
    else:
        if names is not None:
            raise DataError(f"X has {array.shape[1]} features, but automl is expecting {len(names)} features as input, "
                            "as in training")
        columns = [f"x{i}" for i in range(array.shape[1])]
    return pd.DataFrame(array, columns=columns)


def check_unique_columns(frame: pd.DataFrame) -> None:
    if frame.columns.duplicated().any():
        dups = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise DataError(f"duplicate column names {dups[:10]}: rename them so every column is unique")


def clean_labels(y: pd.Series) -> pd.Series:
    """Labels of one comparable type (numbers or strings), so they can be sorted."""
    values = y.astype(object) if isinstance(y.dtype, pd.CategoricalDtype) else y
    kinds = {type(v) for v in values}
    if len(kinds) > 1 and not all(issubclass(k, (int, float, np.number, bool, np.bool_)) for k in kinds):
        try:
            return values.astype(str)
        except UnicodeDecodeError:  # bytes that are not UTF-8
            return values.map(str)
    if (pd.api.types.is_float_dtype(values) and np.all(np.isfinite(values))
            and np.all(np.mod(values.to_numpy(), 1) == 0)):
        return values.astype(np.int64)
    return values


def typed_features(X: pd.DataFrame, schema: FeatureSchema, *, training: bool) -> tuple[pd.DataFrame, _Cleaning]:
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
                    raise DataError(f"column {name!r} mixes numbers with values like {bad!r}; "
                                    "clean it or mark it categorical")
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


def is_text_like(column: pd.Series) -> bool:
    dtype = column.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or (pd.api.types.is_object_dtype(dtype)
            and not pd.api.types.is_numeric_dtype(pd.to_numeric(column, errors="coerce").dropna()))
    )


def _as_numeric(column: pd.Series, name: str) -> tuple[pd.Series, Any]:
    """``column`` as floats, and the first present value that is not a number (None if there is none)."""
    dtype = column.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        raise DataError(
            f"column {name!r} holds dates, but the model was trained on numbers in it; "
            "pass the numbers it was trained on"
        )
    if pd.api.types.is_timedelta64_dtype(dtype):
        return column.dt.total_seconds().astype(float), None
    if pd.api.types.is_complex_dtype(dtype):
        raise DataError(f"Complex data not supported: column {name!r} holds complex numbers; "
                        "split it into real and imaginary parts")
    if pd.api.types.is_bool_dtype(dtype):
        return column.astype(float), None
    if isinstance(dtype, pd.CategoricalDtype):
        column = column.astype(object)
    elif not pd.api.types.is_numeric_dtype(dtype) and not (pd.api.types.is_object_dtype(dtype)
                                                           or pd.api.types.is_string_dtype(dtype)):
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
