"""Per-learner preprocessing: imputation, categorical encoding, scaling, text features.

The transformer is built from a learner's :class:`~searchspaces.Preprocessing`
and the feature schema, and is fitted inside every fold (never on validation
rows), so nothing leaks. Its output is a dense float matrix with the natively
categorical columns first, which is what :attr:`BuildContext.categorical_mask`
describes. Free-text columns (the columns of the data that are neither
categorical nor numeric, see :mod:`automl.data.column_kinds`) become TF-IDF
components (:class:`~automl.data.text_features.TextFeatures`) for every learner.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from automl.data.text_features import TextFeatures
from searchspaces import Preprocessing

MAX_NATIVE_CATEGORIES = 250  # HistGradientBoosting bins categories into at most 255 bins
MAX_ONEHOT_CATEGORIES = 32  # rarer levels are grouped into one "infrequent" column
MISSING_CATEGORY = "(missing)"


def _ordinal(missing: float | int) -> OrdinalEncoder:
    return OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=missing, encoded_missing_value=missing, dtype=np.float64
    )


def native_categorical(X: pd.DataFrame, categorical: tuple[str, ...]) -> list[str]:
    """Categorical columns few-valued enough for native categorical splits."""
    return [c for c in categorical if X[c].nunique(dropna=True) <= MAX_NATIVE_CATEGORIES]


def text_columns(X: pd.DataFrame, categorical: tuple[str, ...]) -> list[str]:
    """Free-text columns: neither categorical nor numeric (the data layer keeps text as strings)."""
    return [
        c for c in X.columns
        if c not in set(categorical) and not pd.api.types.is_numeric_dtype(X[c].dtype)
        and not pd.api.types.is_bool_dtype(X[c].dtype)
    ]


def make_preprocessor(spec: Preprocessing, X: pd.DataFrame,
                      categorical: tuple[str, ...]) -> tuple[ColumnTransformer, int]:
    """An unfitted transformer for ``spec``, and how many leading output columns are native categoricals."""
    cats = [c for c in X.columns if c in set(categorical)]
    text = text_columns(X, categorical)
    numeric = [c for c in X.columns if c not in set(categorical) and c not in set(text)]
    parts: list[tuple[str, object, list[str]]] = []
    n_native = 0
    if spec.categorical == "native":
        native = native_categorical(X, tuple(cats))
        n_native = len(native)
        if native:
            parts.append(("native", _ordinal(np.nan), native))
        rest = [c for c in cats if c not in native]
        if rest:
            parts.append(("codes", _ordinal(np.nan), rest))
    elif spec.categorical == "ordinal" and cats:
        parts.append(("codes", _ordinal(-1), cats))
    elif cats:
        onehot = OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=MAX_ONEHOT_CATEGORIES, sparse_output=False
        )
        parts.append(("onehot", make_pipeline(SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY), onehot),
                      cats))
    if numeric:
        steps = []
        if spec.impute:
            steps.append(SimpleImputer(strategy="median", keep_empty_features=True))
        if spec.scale:
            steps.append(StandardScaler())
        parts.append(("numeric", make_pipeline(*steps) if steps else "passthrough", numeric))
    for index, column in enumerate(text):
        branch = make_pipeline(TextFeatures(), StandardScaler()) if spec.scale else make_pipeline(TextFeatures())
        parts.append((f"text{index}", branch, [column]))
    transformer = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False)
    return transformer, n_native
