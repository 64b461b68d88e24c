"""Meta-features: a fixed-length numeric description of a dataset.

Groups (each feature is named ``<group>.<name>``):

- ``simple``: sizes, ratios, class balance, missing and categorical shares;
- ``stat``: skewness, kurtosis, correlations, dispersion of numeric columns,
  summarised over columns by mean, spread and quantiles;
- ``info``: class entropy, attribute entropies and mutual information with the
  target (numeric columns and regression targets discretised into quantile bins);
- ``landmark``: cross-validated accuracy (R² for regression) of fast models —
  1-nearest-neighbour, a decision stump, naive Bayes, LDA (ridge for
  regression) — on a subsample;
- ``pca``: how concentrated the variance is.

Extraction is deterministic for a given ``seed``, robust to missing values,
categorical and constant columns and one-row classes. Large data is
subsampled: statistics use at most ``MAX_ROWS_STATS`` rows and
``MAX_COLUMNS`` columns, landmarkers and PCA at most ``MAX_ROWS_MODELS`` rows.
A feature that does not apply (e.g. class entropy for regression) is NaN.
Stored values carry :data:`EXTRACTOR_VERSION`; bump it whenever any feature's
definition changes, so values of different definitions are never mixed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_score
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

EXTRACTOR_VERSION = "mf-1"
MAX_ROWS_STATS = 5_000
MAX_ROWS_MODELS = 1_000
MAX_COLUMNS = 100
MAX_LEVELS = 10  # one-hot columns kept per categorical feature for the model-based groups
BINS = 10
LANDMARK_FOLDS = 3


def _summary(prefix: str, values: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation, min, quartiles and max of finite ``values``."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    names = ("mean", "std", "min", "q25", "q50", "q75", "max")
    if values.size == 0:
        return {f"{prefix}_{n}": np.nan for n in names}
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    numbers = (values.mean(), values.std(), values.min(), q25, q50, q75, values.max())
    return {f"{prefix}_{n}": float(v) for n, v in zip(names, numbers)}


def _rows(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))


def _entropy(counts: np.ndarray) -> float:
    counts = counts[counts > 0].astype(float)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _discretise(column: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Integer codes: quantile bins for numbers (NaN gets its own code)."""
    codes = np.full(column.shape[0], bins, dtype=int)
    finite = np.isfinite(column)
    if finite.any():
        edges = np.unique(np.quantile(column[finite], np.linspace(0, 1, bins + 1)[1:-1]))
        codes[finite] = np.searchsorted(edges, column[finite], side="right")
    return codes


def _mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    joint = np.bincount(a * (b.max() + 1) + b)
    return _entropy(np.bincount(a)) + _entropy(np.bincount(b)) - _entropy(joint)


def simple_features(X: pd.DataFrame, y: np.ndarray, task: str, categorical: Sequence[str]) -> dict[str, float]:
    n, p = X.shape
    cats = [c for c in X.columns if c in set(categorical)]
    missing = X.isna().to_numpy()
    levels = np.array([X[c].nunique(dropna=True) for c in cats], dtype=float)
    out = {
        "n_rows": n,
        "log_n_rows": np.log(n),
        "n_features": p,
        "log_n_features": np.log(p),
        "n_numeric": p - len(cats),
        "n_categorical": len(cats),
        "categorical_share": len(cats) / p,
        "dimensionality": p / n,
        "log_dimensionality": np.log(p / n),
        "missing_share": missing.mean(),
        "rows_with_missing_share": missing.any(axis=1).mean(),
        "features_with_missing_share": missing.any(axis=0).mean(),
        "categorical_levels_mean": levels.mean() if levels.size else 0.0,
        "categorical_levels_max": levels.max() if levels.size else 0.0,
        "onehot_width": levels.sum() + (p - len(cats)),
        "is_binary": float(task == "binary"),
        "is_multiclass": float(task == "multiclass"),
        "is_regression": float(task == "regression"),
    }
    if task == "regression":
        out.update(n_classes=0.0, class_share_min=np.nan, class_share_max=np.nan, class_imbalance=np.nan)
    else:
        counts = np.bincount(y.astype(int))
        counts = counts[counts > 0]
        out.update(
            n_classes=float(len(counts)),
            class_share_min=counts.min() / n,
            class_share_max=counts.max() / n,
            class_imbalance=counts.min() / counts.max(),
        )
    return {f"simple.{k}": float(v) for k, v in out.items()}


def statistical_features(numeric: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if numeric.shape[1]:
            spread = np.nanstd(numeric, axis=0)
            varying = numeric[:, spread > 0]
            out["constant_share"] = float(np.mean(spread == 0))
            out["integer_share"] = float(np.mean([np.all(np.mod(c[np.isfinite(c)], 1) == 0) for c in numeric.T]))
        else:
            varying = numeric
            out["constant_share"] = out["integer_share"] = np.nan
        skew = sps.skew(varying, axis=0, nan_policy="omit") if varying.shape[1] else np.array([])
        kurt = sps.kurtosis(varying, axis=0, nan_policy="omit") if varying.shape[1] else np.array([])
        out.update(_summary("skewness", np.asarray(skew)))
        out.update(_summary("kurtosis", np.asarray(kurt)))
        mean = np.nanmean(varying, axis=0) if varying.shape[1] else np.array([])
        sd = np.nanstd(varying, axis=0) if varying.shape[1] else np.array([])
        out.update(_summary("variation", np.where(np.abs(mean) > 1e-12, sd / np.abs(mean), np.nan)))
        filled = np.where(np.isfinite(varying), varying, np.nanmedian(varying, axis=0)) if varying.shape[1] else varying
        if filled.shape[1] >= 2:
            corr = np.abs(np.corrcoef(filled, rowvar=False))
            upper = corr[np.triu_indices_from(corr, k=1)]
            out["abs_correlation_mean"] = float(np.nanmean(upper))
            out["abs_correlation_max"] = float(np.nanmax(upper))
        else:
            out["abs_correlation_mean"] = out["abs_correlation_max"] = np.nan
        if task == "regression":
            out["target_skewness"] = float(sps.skew(y))
            out["target_kurtosis"] = float(sps.kurtosis(y))
            out["target_variation"] = float(np.std(y) / abs(np.mean(y))) if abs(np.mean(y)) > 1e-12 else np.nan
            target_corr = [abs(np.corrcoef(c, y)[0, 1]) for c in filled.T] if filled.shape[1] else []
            out.update(_summary("target_correlation", np.asarray(target_corr)))
        else:
            out["target_skewness"] = out["target_kurtosis"] = out["target_variation"] = np.nan
            out.update(_summary("target_correlation", np.array([])))
    return {f"stat.{k}": float(v) for k, v in out.items()}


def information_features(codes: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    target = _discretise(y.astype(float)) if task == "regression" else y.astype(int)
    class_entropy = _entropy(np.bincount(target))
    n_levels = len(np.unique(target))
    entropies = np.array([_entropy(np.bincount(c)) for c in codes.T])
    mutual = np.array([_mutual_information(c, target) for c in codes.T])
    mean_mi = float(mutual.mean()) if mutual.size else np.nan
    mean_h = float(entropies.mean()) if entropies.size else np.nan
    out = {
        "class_entropy": class_entropy,
        "class_entropy_normalised": class_entropy / np.log2(n_levels) if n_levels > 1 else 0.0,
        "equivalent_attributes": class_entropy / mean_mi if mean_mi and mean_mi > 1e-12 else np.nan,
        "noise_signal_ratio": (mean_h - mean_mi) / mean_mi if mean_mi and mean_mi > 1e-12 else np.nan,
    }
    out.update(_summary("attribute_entropy", entropies))
    out.update(_summary("mutual_information", mutual))
    return {f"info.{k}": float(v) for k, v in out.items()}


def _landmark(model, X: np.ndarray, y: np.ndarray, scoring: str, seed: int) -> float:
    folds = KFold(min(LANDMARK_FOLDS, len(y)), shuffle=True, random_state=seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(np.nanmean(cross_val_score(model, X, y, cv=folds, scoring=scoring, error_score=np.nan)))
    except ValueError:
        return np.nan


def landmark_features(design: np.ndarray, y: np.ndarray, task: str, seed: int) -> dict[str, float]:
    if task == "regression":
        models = {
            "nn1": KNeighborsRegressor(n_neighbors=1),
            "stump": DecisionTreeRegressor(max_depth=1, random_state=seed),
            "tree3": DecisionTreeRegressor(max_depth=3, random_state=seed),
            "linear": Ridge(alpha=1.0),
            "naive_bayes": None,
        }
        scoring = "r2"
    else:
        models = {
            "nn1": KNeighborsClassifier(n_neighbors=1),
            "stump": DecisionTreeClassifier(max_depth=1, random_state=seed),
            "tree3": DecisionTreeClassifier(max_depth=3, random_state=seed),
            "linear": LinearDiscriminantAnalysis(),
            "naive_bayes": GaussianNB(),
        }
        scoring = "accuracy"
    out = {name: (np.nan if model is None else _landmark(model, design, y, scoring, seed))
           for name, model in models.items()}
    return {f"landmark.{k}": float(v) for k, v in out.items()}


def pca_features(design: np.ndarray) -> dict[str, float]:
    if design.shape[1] < 2 or design.shape[0] < 3:
        return {"pca.components_95_share": np.nan, "pca.first_ratio": np.nan, "pca.first_skewness": np.nan}
    centred = design - design.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    ratio = variance / variance.sum() if variance.sum() > 0 else np.zeros_like(variance)
    needed = int(np.searchsorted(np.cumsum(ratio), 0.95) + 1)
    projection = centred @ vt[0]
    return {
        "pca.components_95_share": needed / design.shape[1],
        "pca.first_ratio": float(ratio[0]),
        "pca.first_skewness": float(sps.skew(projection)) if np.std(projection) > 0 else 0.0,
    }


def _design_matrix(X: pd.DataFrame, categorical: Sequence[str]) -> np.ndarray:
    """Standardised numeric columns (median-imputed) and one-hot of frequent levels."""
    parts = []
    for name in X.columns:
        column = X[name]
        if name in categorical:
            top = column.value_counts().index[:MAX_LEVELS]
            parts.append(np.stack([(column == level).to_numpy(dtype=float) for level in top], axis=1) if len(top)
                         else np.zeros((len(X), 0)))
        else:
            values = column.to_numpy(dtype=float)
            values = np.where(np.isfinite(values), values, np.nanmedian(values) if np.isfinite(values).any() else 0.0)
            sd = values.std()
            parts.append(((values - values.mean()) / sd if sd > 0 else values * 0.0)[:, None])
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(X), 0))


def extract(
    X: pd.DataFrame, y: np.ndarray, task: str, categorical: Sequence[str] = (), seed: int = 0
) -> dict[str, float]:
    """All meta-features of a dataset (``y`` encoded as ``0..C-1`` for classification)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    text = [c for c in X.columns if c not in set(categorical) and not pd.api.types.is_numeric_dtype(X[c].dtype)]
    if text:  # free text (automl.data.column_kinds): described as a categorical column of its distinct values
        X = X.assign(**{c: X[c].astype("category") for c in text})
    categorical = [c for c in X.columns if c in set(categorical) or c in set(text)]
    features = simple_features(X, y, task, categorical)
    columns = list(X.columns)
    if len(columns) > MAX_COLUMNS:
        columns = [columns[i] for i in np.sort(rng.choice(len(columns), MAX_COLUMNS, replace=False))]
    stats_rows = _rows(len(X), MAX_ROWS_STATS, rng)
    sample, y_sample = X.iloc[stats_rows][columns], y[stats_rows]
    numeric_names = [c for c in columns if c not in categorical]
    numeric = sample[numeric_names].to_numpy(dtype=float) if numeric_names else np.zeros((len(sample), 0))
    features.update(statistical_features(numeric, y_sample, task))
    codes = np.column_stack(
        [
            sample[c].cat.codes.to_numpy() + 1 if c in categorical else _discretise(sample[c].to_numpy(dtype=float))
            for c in columns
        ]
    ).astype(int)
    features.update(information_features(codes, y_sample, task))
    model_rows = _rows(len(sample), MAX_ROWS_MODELS, rng)
    design = _design_matrix(sample.iloc[model_rows], categorical)
    features.update(landmark_features(design, y_sample[model_rows], task, seed))
    features.update(pca_features(design))
    return features
