"""What kind of everyday column a feature is: a date, free text, an ID, or plain.

Tables as people keep them hold columns that are neither numbers nor a few
category labels: dates (``signup_date``), free text (``review``) and row
identifiers (``customer_id``). Used as they are, dates are rejected, text
becomes a category with one level per row and IDs let a model memorise rows.
This module decides, from the training data alone, which columns are which:

- a **date** column (``datetime64``, time zone or not, or strings that nearly
  all parse as dates) becomes numbers: year, month, day, day of week, hour
  (only if some value has a time of day) and days since the earliest training
  value; :class:`DateColumn` keeps that origin, so new rows are turned into
  the same numbers;
- a **text** column (strings of several words or long ones, most of them
  distinct) becomes TF-IDF components fitted inside every fold
  (:mod:`automl.data.text_features`);
- an **ID** column (a distinct value on almost every row: integers that
  number the rows, or short strings) is dropped.

Columns the user declared categorical are left as they are. Each decision is
recorded as a :class:`ColumnNote`, which the model shows (``column_notes``,
``automl info``).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from automl.data.text_features import MAX_TERMS, N_COMPONENTS

log = logging.getLogger(__name__)

DATE_SHARE = 0.95  # share of distinct non-missing values that must parse as dates
DATE_SAMPLE = 500  # distinct values tried when deciding whether strings are dates
DATE_YEARS = (1678, 2262)  # what pandas can represent; a parsed year outside is a misreading ("1-2" as year 1)
TEXT_MIN_LENGTH = 20.0  # mean characters of a text value ...
TEXT_MIN_WORDS = 3.0  # ... or mean words
TEXT_MIN_SHARE = 0.5  # distinct values per non-missing value
TEXT_MIN_DISTINCT = 30
ID_MIN_ROWS = 20
ID_MIN_SHARE = 0.95  # distinct values per row
ID_DENSE_RANGE = 3.0  # integers spanning at most this many times their count number rows
ID_MAX_LENGTH = 20.0  # mean characters of a string ID

_DATE_SHAPE = re.compile(r"\d{4}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_ID_NAME = re.compile(r"(^|[^a-z0-9])(id|ids|uuid|guid|key|idx|index)$")


@dataclass(frozen=True)
class ColumnNote:
    """What the engine did with one input column, and why.

    ``action`` is ``"date"`` (turned into numeric parts), ``"text"`` (TF-IDF
    components), ``"dropped"`` (an ID-like column) or ``"infinite"``
    (infinite values read as missing); ``detail`` says what came out.
    """

    column: str
    action: str
    detail: str

    def __str__(self) -> str:
        return f"{self.column}: {self.action} -> {self.detail}"


@dataclass(frozen=True)
class DateColumn:
    """How one date column becomes numbers; fitted on the training data.

    ``origin`` is the earliest training value (UTC, no time zone), or None
    when no value was a date; ``outputs`` name the derived columns, in the
    order of :data:`DATE_PARTS` (``hour`` only when ``hour`` is True).
    """

    name: str
    origin: pd.Timestamp | None
    hour: bool
    outputs: tuple[str, ...]

    def parts(self, column: pd.Series) -> dict[str, pd.Series]:
        """The derived numeric columns for ``column``; a value that is not a date gives NaN in each."""
        stamps = parse_dates(column)
        values = [stamps.dt.year, stamps.dt.month, stamps.dt.day, stamps.dt.day_of_week]
        if self.hour:
            values.append(stamps.dt.hour + stamps.dt.minute / 60 + stamps.dt.second / 3600)
        if self.origin is None:
            values.append(pd.Series(np.nan, index=column.index))
        else:
            values.append((stamps - self.origin) / pd.Timedelta(days=1))
        return {name: value.astype(float) for name, value in zip(self.outputs, values)}

    def describe(self) -> str:
        parts = "year, month, day, weekday (0 = Monday, 6 = Sunday)" + (", hour" if self.hour else "")
        since = "(no date seen)" if self.origin is None else _short_stamp(self.origin)
        return f"{parts}, days since {since}"


@dataclass(frozen=True)
class ColumnPlan:
    """What each training column is: the categorical ones, dates, text, dropped IDs, and the notes saying so.

    Columns in none of these are numeric.
    """

    categorical: tuple[str, ...]
    dates: tuple[DateColumn, ...]
    text: tuple[str, ...]
    dropped: tuple[str, ...]
    notes: tuple[ColumnNote, ...]


def plan_columns(X: pd.DataFrame, declared: set[str], looks_categorical: Callable[[pd.Series], bool]) -> ColumnPlan:
    """Decide, from the training features ``X``, what each column is.

    Columns in ``declared`` (the user's categorical ones) stay categorical; then
    a column is a date, text, an ID (dropped, with a warning, unless that
    would leave no feature at all), categorical if ``looks_categorical`` says
    so, or else numeric.
    """
    categorical: list[str] = []
    text: list[str] = []
    dropped: list[str] = []
    dates: list[DateColumn] = []
    notes: list[ColumnNote] = []
    taken = set(X.columns)
    for name in X.columns:
        column = X[name]
        if name in declared:
            categorical.append(name)
        elif is_date_column(column):
            date = fit_date_column(name, column, taken)
            dates.append(date)
            notes.append(ColumnNote(name, "date", date.describe()))
        elif is_text_column(column):
            text.append(name)
            notes.append(ColumnNote(name, "text", f"TF-IDF of up to {MAX_TERMS} words, {N_COMPONENTS} SVD components "
                                                  "(fitted per fold)"))
        elif len(dropped) < X.shape[1] - 1 and is_id_column(name, column):
            dropped.append(name)
            notes.append(ColumnNote(name, "dropped",
                                    f"ID-like: {column.nunique()} distinct values in {len(column)} rows"))
        elif looks_categorical(column):
            categorical.append(name)
    if dropped:
        message = (f"dropped ID-like column(s) {dropped[:10]}: a distinct value on almost every row, "
                   "nothing to generalise from")
        log.warning(message)
        warnings.warn(message, UserWarning, stacklevel=4)
    for note in notes:
        log.info("column %s", note)
    return ColumnPlan(tuple(categorical), tuple(dates), tuple(text), tuple(dropped), tuple(notes))


def parse_dates(column: pd.Series) -> pd.Series:
    """``column`` as UTC timestamps without a time zone; NaT where a value is missing or not a date."""
    dtype = column.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        stamps = column
        if getattr(dtype, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        return stamps
    values = column.astype(object)
    present = values.notna()
    result = pd.Series(pd.NaT, index=column.index, dtype="datetime64[us]")
    if not present.any():
        return result
    text = values[present].map(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = _to_datetime(text, None)
        bad = parsed.isna()
        if bad.any():
            parsed[bad] = _to_datetime(text[bad], "mixed")
    parsed = parsed.where((parsed.dt.year >= DATE_YEARS[0]) & (parsed.dt.year <= DATE_YEARS[1]))
    result[present] = parsed.astype("datetime64[us]")
    return result


def _to_datetime(values: pd.Series, format: str | None) -> pd.Series:
    """``pd.to_datetime`` that never raises: anything it cannot read is NaT."""
    try:
        return pd.to_datetime(values, format=format, errors="coerce", utc=True).dt.tz_localize(None)
    except (ValueError, TypeError, OverflowError):
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")


def is_date_column(column: pd.Series) -> bool:
    """A ``datetime64`` column, or strings nearly all of which read as dates (numbers alone never do)."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return True
    if not _is_string_column(column):
        return False
    values = pd.Series(column.dropna().astype(str).unique()[:DATE_SAMPLE])
    if len(values) < 2:
        return False
    if pd.to_numeric(values, errors="coerce").notna().mean() > 1 - DATE_SHARE:
        return False  # numbers or years alone
    if values.str.contains(_DATE_SHAPE).mean() < DATE_SHARE:
        return False
    return parse_dates(values).notna().mean() >= DATE_SHARE


def fit_date_column(name: str, column: pd.Series, taken: set[str]) -> DateColumn:
    """The :class:`DateColumn` for training values ``column``; ``taken`` holds column names already in use."""
    stamps = parse_dates(column)
    valid = stamps.dropna()
    origin = valid.min() if len(valid) else None
    hour = bool(len(valid)) and bool((valid != valid.dt.normalize()).any())
    suffixes = ["year", "month", "day", "weekday"] + (["hour"] if hour else []) + ["days"]
    outputs = []
    for suffix in suffixes:
        output = f"{name}.{suffix}"
        while output in taken:
            output += "_"
        taken.add(output)
        outputs.append(output)
    return DateColumn(name=name, origin=origin, hour=hour, outputs=tuple(outputs))


def is_text_column(column: pd.Series) -> bool:
    """Strings of several words or long ones, most of them distinct (free text, not category labels)."""
    if not _is_string_column(column):
        return False
    values = column.dropna().astype(str)
    if len(values) == 0:
        return False
    distinct = values.nunique()
    if distinct < TEXT_MIN_DISTINCT or distinct / len(values) <= TEXT_MIN_SHARE:
        return False
    return bool(values.str.len().mean() > TEXT_MIN_LENGTH or values.str.split().str.len().mean() >= TEXT_MIN_WORDS)


def is_id_column(name: str, column: pd.Series) -> bool:
    """A distinct value on almost every row: integers that number the rows (or a column named like an ID),
    or short strings. Float measurements with fractions and free text are never IDs."""
    n = len(column)
    try:
        if n < ID_MIN_ROWS or column.nunique(dropna=True) < ID_MIN_SHARE * n:
            return False
    except TypeError:  # unhashable values (lists, dicts): not an ID, and the typing reports them
        return False
    if pd.api.types.is_bool_dtype(column.dtype):
        return False
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.dropna().to_numpy(dtype=float)
        if not np.all(np.isfinite(values)) or not np.all(np.mod(values, 1) == 0):
            return False
        dense = values.max() - values.min() + 1 <= ID_DENSE_RANGE * len(values)
        return bool(dense or _named_like_id(name))
    if _is_string_column(column):
        values = column.dropna().astype(str)
        if pd.to_numeric(values, errors="coerce").notna().all():
            return is_id_column(name, pd.to_numeric(values))
        return bool(values.str.len().mean() <= ID_MAX_LENGTH and not is_text_column(column))
    return False


def _named_like_id(name: str) -> bool:
    return bool(_ID_NAME.search(name.lower()) or re.search(r"[a-z](Id|ID)$", name))


def _is_string_column(column: pd.Series) -> bool:
    """Strings (object, ``str`` or category dtype) rather than numbers."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return not pd.api.types.is_numeric_dtype(dtype.categories.dtype)
    if pd.api.types.is_object_dtype(dtype):
        sample = column.dropna().head(1000)
        return len(sample) > 0 and all(isinstance(v, str) for v in sample)
    return pd.api.types.is_string_dtype(dtype)


def _short_stamp(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.strftime("%Y-%m-%d %H:%M:%S")
