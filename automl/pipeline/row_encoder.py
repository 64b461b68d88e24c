"""A lean prediction path: raw rows to a float matrix in plain Python and NumPy, without per-column pandas work.

:meth:`FeatureSchema.prepare` types every column with pandas, which costs
milliseconds for a single row, more than a compact model takes to predict.
A :class:`RowEncoder` is fitted on the prepared training features and turns
new rows into one float matrix the way a tree model reads them: numeric
columns as floats (missing, unparseable or infinite values as NaN) and
categorical columns as integer codes of the training levels (missing: NaN;
a level unseen in training: -1, which LightGBM also reads as missing). For a
schema of plain numeric and categorical columns given a frame whose columns
are in training order (or a NumPy array) it reads the values directly;
otherwise (dates, text, reordered columns) it takes the full
:meth:`~automl.data.schema.FeatureSchema.prepare` path first, so both paths agree.

>>> import pandas as pd
>>> from automl.data.dataset import load_dataset
>>> data = load_dataset(pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6], "c": list("xyxyxy"), "y": [0, 1] * 3}), target="y")
>>> encoder = RowEncoder.fit(data.schema, data.X)
>>> encoder.encode(pd.DataFrame({"a": [2.5], "c": ["y"]})).tolist()
[[2.5, 1.0]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from automl.data.schema import MAX_MAGNITUDE, FeatureSchema

PLAIN_TYPES = (str, int, float, bool, np.number, np.bool_)  # cell values the lean path reads itself
UNSEEN = -1.0  # the code of a categorical level the training data did not hold
# mixed-type batches up to this many rows are encoded cell by cell; larger ones by pandas, column by column
LEAN_ROWS = 64


@dataclass(frozen=True)
class RowEncoder:
    """The prepared features as a float matrix: which columns, which are categorical, and each one's level codes."""

    schema: FeatureSchema
    columns: tuple[str, ...]  # the prepared feature columns encoded, in order (text columns left out)
    codes: tuple[dict[str, int] | None, ...]  # per column: level -> code for a categorical one, None for a numeric one

    @classmethod
    def fit(cls, schema: FeatureSchema, prepared: pd.DataFrame) -> RowEncoder:
        """The encoder of ``prepared`` (the typed training features :meth:`FeatureSchema.prepare` returns)."""
        text = set(getattr(schema, "text", ()))
        columns = tuple(c for c in prepared.columns if c not in text)
        codes = []
        for name in columns:
            column = prepared[name]
            if isinstance(column.dtype, pd.CategoricalDtype):
                codes.append({str(level): index for index, level in enumerate(column.cat.categories)})
            else:
                codes.append(None)
        return cls(schema, columns, tuple(codes))

    @property
    def categorical_indices(self) -> list[int]:
        """Positions of the categorical columns in the encoded matrix."""
        return [i for i, mapping in enumerate(self.codes) if mapping is not None]

    @property
    def _plain(self) -> bool:
        """Whether raw input columns are the prepared ones (no dates, text or dropped columns to handle)."""
        schema = self.schema
        return not (getattr(schema, "dates", ()) or getattr(schema, "text", ()) or getattr(schema, "dropped", ())) and (
            tuple(schema.names) == self.columns
        )

    def encode(self, X: Any) -> np.ndarray:
        """Raw rows (a DataFrame, a 2-D array, or a mapping of column to value for one row) as a float matrix.

        Values the full path would warn about or refuse (text in a numeric
        column, infinities, nested values) take the full path, so they are
        reported as they would be.
        """
        if isinstance(X, dict):
            X = pd.DataFrame([X])
        if self._plain:
            values = _direct_values(X, self.columns)
            if values is not None and (len(values) <= LEAN_ROWS or values.dtype.kind in "fiub"):
                encoded = self._encode_values(values)
                if encoded is not None:
                    return encoded
        return self.encode_prepared(self.schema.prepare(X))

    def encode_prepared(self, prepared: pd.DataFrame) -> np.ndarray:
        """Prepared features (typed by :meth:`FeatureSchema.prepare`) as a float matrix."""
        out = np.empty((len(prepared), len(self.columns)))
        for index, (name, mapping) in enumerate(zip(self.columns, self.codes)):
            column = prepared[name]
            if mapping is None:
                out[:, index] = column.to_numpy(dtype=float, na_value=np.nan)
            else:
                labels = column.astype(object).to_numpy()
                out[:, index] = [mapping.get(label, UNSEEN) if isinstance(label, str) else np.nan for label in labels]
        out[np.isinf(out)] = np.nan
        return out

    def _encode_values(self, values: np.ndarray) -> np.ndarray | None:
        """Raw values in training column order as the matrix, or None when one needs the full path."""
        if values.dtype.kind in "fiub" and not self.categorical_indices:
            out = values.astype(float)
            return out if np.all(np.abs(out[~np.isnan(out)]) <= MAX_MAGNITUDE) else None
        out = np.empty(values.shape)
        for row in range(values.shape[0]):
            for index, mapping in enumerate(self.codes):
                value = values[row, index]
                if not isinstance(value, PLAIN_TYPES) and value is not None:
                    return None
                if mapping is not None:
                    out[row, index] = _code(mapping, _level(value))
                    continue
                number = _number(value)
                if (math.isnan(number) and not _missing(value)) or abs(number) > MAX_MAGNITUDE:
                    return None
                out[row, index] = number
        return out


def _direct_values(X: Any, columns: tuple[str, ...]) -> np.ndarray | None:
    """The raw values in training column order without pandas typing, or None where that cannot be done safely."""
    if isinstance(X, pd.DataFrame):
        if tuple(map(str, X.columns)) != columns:
            return None
        return X.to_numpy()
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == len(columns):
        return X
    return None  # the full path checks the input and says what is wrong with it


def _code(mapping: dict[str, int], level: str | None) -> float:
    return math.nan if level is None else mapping.get(level, UNSEEN)


def _number(value: Any) -> float:
    """A numeric cell as a float (NaN when it is not a number)."""
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def _level(value: Any) -> str | None:
    """A categorical cell as the training level it reads as ("1" for 1.0), None when missing."""
    if _missing(value):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
