"""The final model's pipelines compiled to NumPy for a few rows at a time: the lean prediction path.

A fitted ``Pipeline([ColumnTransformer, model])`` spends milliseconds on one
row in pandas typing and scikit-learn's checks, more than most models take to
predict. :class:`LeanPipeline` applies the same fitted preprocessing (ordinal
codes, one-hot columns with rare levels grouped, median imputation, scaling)
to a :class:`~automl.pipeline.row_encoder.RowEncoder`'s float matrix with lookup tables
and array arithmetic, then asks the model with scikit-learn's input checks off
(LightGBM through its booster). A pipeline holding anything else (text
features, a custom transformer) is not compiled, and predicts the usual way.
:meth:`AutoModel.predict` takes this path for small inputs, and a trial's
single-row latency is timed along it (:meth:`Evaluator._footprint`), so serving
limits see what users will get; tests check both paths give the same predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from automl.pipeline.preprocessing import MISSING_CATEGORY
from automl.pipeline.probabilities import aligned_proba
from automl.pipeline.row_encoder import RowEncoder


@dataclass(frozen=True)
class Part:
    """One block of the transformer's output: ``columns`` of the encoded matrix turned into ``width`` numbers each."""

    kind: str  # "numeric", "ordinal" or "onehot"
    columns: tuple[int, ...]
    tables: tuple[np.ndarray, ...] = ()  # per categorical column, rows: missing, unseen, then each level's output
    fill: np.ndarray | None = None  # numeric: the imputed value per column (None: no imputation)
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None


class LeanPipeline:
    """A fitted pipeline applied to encoded rows with NumPy (see the module docstring)."""

    def __init__(self, parts: list[Part], model: Any):
        self.parts = parts
        self.model = model

    @classmethod
    def compile(cls, pipeline: Any, encoder: RowEncoder) -> LeanPipeline | None:
        """The lean form of ``pipeline`` for rows encoded by ``encoder``; None when some step cannot be compiled."""
        if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
            return None
        transformer = pipeline.steps[0][1]
        if not isinstance(transformer, ColumnTransformer):
            return None
        position = {name: index for index, name in enumerate(encoder.columns)}
        parts = []
        for name, step, columns in transformer.transformers_:
            if name == "remainder" or step == "drop":
                continue
            if any(column not in position for column in columns):
                return None
            part = _compile_step(step, [position[c] for c in columns], encoder)
            if part is None:
                return None
            parts.append(part)
        return cls(parts, pipeline.steps[1][1])

    def transform(self, encoded: np.ndarray) -> np.ndarray:
        """The model's input for encoded rows, as the pipeline's transformer makes it."""
        blocks = []
        for part in self.parts:
            values = encoded[:, part.columns]
            if part.kind == "numeric":
                if part.fill is not None:
                    values = np.where(np.isnan(values), part.fill, values)
                if part.mean is not None:
                    values = (values - part.mean) / part.scale
                blocks.append(values)
            else:
                index = np.where(np.isnan(values), 0, values + 2).astype(int)
                blocks.extend(table[index[:, i]] for i, table in enumerate(part.tables))
        return np.column_stack([b.reshape(len(encoded), -1) for b in blocks]) if blocks else np.empty((len(encoded), 0))

    def predict_values(self, encoded: np.ndarray) -> np.ndarray:
        """Regression predictions."""
        features = self.transform(encoded)
        booster = getattr(self.model, "booster_", None)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            if booster is not None:
                return np.asarray(booster.predict(features, num_threads=1), dtype=float).ravel()
            return np.asarray(self.model.predict(features), dtype=float).ravel()

    def predict_proba(self, encoded: np.ndarray, n_classes: int) -> np.ndarray:
        """Class probabilities, one column per class of the task."""
        features = self.transform(encoded)
        booster = getattr(self.model, "booster_", None)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            if booster is None:
                return aligned_proba(self.model, features, n_classes)
            raw = np.asarray(booster.predict(features, num_threads=1), dtype=float)
        proba = np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw
        full = np.zeros((len(features), n_classes))
        full[:, np.asarray(self.model.classes_).astype(int)] = proba
        return full


def _compile_step(step: Any, columns: list[int], encoder: RowEncoder) -> Part | None:
    if step == "passthrough" or (isinstance(step, FunctionTransformer) and step.func is None):  # fitted passthrough
        return Part("numeric", tuple(columns))
    steps = step.steps if isinstance(step, Pipeline) else [(None, step)]
    estimators = [s for _, s in steps]
    if all(isinstance(s, (SimpleImputer, StandardScaler)) for s in estimators):
        return _numeric(estimators, columns)
    if len(estimators) == 1 and isinstance(estimators[0], OrdinalEncoder):
        return _ordinal(estimators[0], columns, encoder)
    if (len(estimators) == 2 and isinstance(estimators[0], SimpleImputer) and isinstance(estimators[1], OneHotEncoder)
            and estimators[0].fill_value == MISSING_CATEGORY and estimators[1].drop is None
            and len(estimators[1].categories_) == len(columns)):  # the imputer drops columns it saw no value in
        return _onehot(estimators[1], columns, encoder)
    return None


def _numeric(estimators: list[Any], columns: list[int]) -> Part | None:
    fill = mean = scale = None
    for estimator in estimators:
        if isinstance(estimator, SimpleImputer):
            if estimator.strategy not in ("median", "mean", "most_frequent") or mean is not None:
                return None
            fill = np.asarray(estimator.statistics_, dtype=float)
        else:
            mean = np.asarray(estimator.mean_ if estimator.with_mean else np.zeros(len(columns)), dtype=float)
            scale = np.asarray(estimator.scale_ if estimator.with_std else np.ones(len(columns)), dtype=float)
    if fill is not None and (len(fill) != len(columns) or np.isnan(fill).any()):
        return None
    return Part("numeric", tuple(columns), fill=fill, mean=mean, scale=scale)


def _levels(encoder: RowEncoder, column: int) -> list[str] | None:
    mapping = encoder.codes[column]
    if mapping is None:
        return None
    return [level for level, _ in sorted(mapping.items(), key=lambda item: item[1])]


def _ordinal(step: OrdinalEncoder, columns: list[int], encoder: RowEncoder) -> Part | None:
    tables = []
    for index, column in enumerate(columns):
        levels = _levels(encoder, column)
        if levels is None or step.handle_unknown != "use_encoded_value":
            return None
        known = {str(c): code for code, c in enumerate(step.categories_[index]) if isinstance(c, str)}
        missing = step.encoded_missing_value
        unseen = step.unknown_value
        tables.append(np.array([missing, unseen] + [known.get(level, unseen) for level in levels], dtype=float))
    return Part("ordinal", tuple(columns), tuple(tables))


def _onehot(step: OneHotEncoder, columns: list[int], encoder: RowEncoder) -> Part | None:
    tables = []
    infrequent_all = getattr(step, "infrequent_categories_", [None] * len(columns))
    for index, column in enumerate(columns):
        levels = _levels(encoder, column)
        if levels is None:
            return None
        categories = [str(c) for c in step.categories_[index]]
        infrequent = {str(c) for c in (infrequent_all[index] if infrequent_all[index] is not None else [])}
        frequent = [c for c in categories if c not in infrequent]
        slots = {c: i for i, c in enumerate(frequent)}
        width = len(frequent) + (1 if infrequent else 0)
        rare = len(frequent) if infrequent else None  # unseen and rare levels share the grouped column, if any
        slot_of = [slots.get(level, rare) for level in [MISSING_CATEGORY, None, *levels]]
        tables.append(np.stack([_one_hot(width, slot) for slot in slot_of]))
    return Part("onehot", tuple(columns), tuple(tables))


def _one_hot(width: int, slot: int | None) -> np.ndarray:
    """A row of ``width`` zeros with a one at ``slot`` (none when ``slot`` is None)."""
    out = np.zeros(width)
    if slot is not None:
        out[slot] = 1.0
    return out
