"""XGBoost and CatBoost, each registered when its package is installed.

Both are strong gradient-boosting libraries that AutoGluon ensembles beside
LightGBM: XGBoost grows depth-wise trees (a different bias from LightGBM's
leaf-wise ones), CatBoost symmetric trees with ordered boosting and its own
target statistics for categorical columns, which often do best on small,
noisy data. Ranges follow FLAML's published spaces where it has them.
Defaults are the libraries' own, except CatBoost's: its 1,000 iterations at an
automatic learning rate take seconds per fold even on small data, so its
default is 500 iterations at a learning rate of 0.08 (AutoGluon also departs
from CatBoost's defaults, to 0.05 with early stopping).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from searchspaces.learner import BuildContext, Learner, Preprocessing
from searchspaces.params import Float, Int
from searchspaces.space import SearchSpace

BOTH = frozenset({"classification", "regression"})


class ContiguousLabels(BaseEstimator):
    """A classifier fitted on labels renumbered 0..k-1, answering in the original labels.

    XGBoost requires class labels ``0..k-1``; a cross-validation fold can lack
    a class (labels ``{0, 2, 3}``), which it refuses. ``classes_`` holds the
    original labels, so the engine aligns probabilities as for any learner.
    """

    def __init__(self, estimator: Any):
        self.estimator = estimator

    def fit(self, X: Any, y: Any) -> ContiguousLabels:
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.estimator.fit(X, codes)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class IntegerCategories(BaseEstimator):
    """An estimator given its leading ``n_categorical`` columns as integer codes (missing: -1).

    CatBoost reads categorical columns only as integers or strings; the
    engine's native preprocessing gives them as float codes with NaN for
    missing or unseen levels.
    """

    def __init__(self, estimator: Any, n_categorical: int):
        self.estimator = estimator
        self.n_categorical = n_categorical

    def _frame(self, X: Any) -> pd.DataFrame:
        frame = pd.DataFrame(np.asarray(X, dtype=float))
        for column in range(self.n_categorical):
            frame[column] = frame[column].fillna(-1).astype(np.int64)
        return frame

    def fit(self, X: Any, y: Any) -> IntegerCategories:
        self.estimator.fit(self._frame(X), y, cat_features=list(range(self.n_categorical)))
        if hasattr(self.estimator, "classes_"):
            self.classes_ = np.asarray(self.estimator.classes_)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator.predict_proba(self._frame(X))

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.estimator.predict(self._frame(X))).ravel()


def _xgboost(params: dict[str, Any], ctx: BuildContext) -> Any:
    import xgboost

    categorical = any(ctx.categorical_mask)
    types = ["c" if is_cat else "q" for is_cat in ctx.categorical_mask] if categorical else None
    common = dict(n_jobs=1, random_state=ctx.seed, tree_method="hist", enable_categorical=categorical,
                  feature_types=types, device="cuda" if ctx.device == "cuda" else "cpu", **params)
    if ctx.task == "regression":
        return xgboost.XGBRegressor(**common)
    return ContiguousLabels(xgboost.XGBClassifier(**common))


XGBOOST = Learner(
    name="xgboost",
    tasks=BOTH,
    space=SearchSpace(
        (
            Int("n_estimators", 8, 2000, log=True, default=100, low_cost=8),
            Int("max_depth", 1, 12, default=6, low_cost=3),
            Float("learning_rate", 0.005, 1.0, log=True, default=0.3),
            Float("min_child_weight", 0.01, 100.0, log=True, default=1.0),
            Float("subsample", 0.5, 1.0, default=1.0),
            Float("colsample_bytree", 0.3, 1.0, default=1.0),
            Float("reg_lambda", 1e-3, 100.0, log=True, default=1.0),
            Float("reg_alpha", 1e-8, 10.0, log=True, default=1e-8),
        ),
        name="xgboost",
    ),
    build=_xgboost,
    preprocessing=Preprocessing(categorical="native", impute=False),
    gpu=True,
    cost=1.5,
    description="XGBoost gradient boosting, depth-wise trees (native categorical and missing-value support)",
)


def _catboost(params: dict[str, Any], ctx: BuildContext) -> Any:
    import catboost

    cls = catboost.CatBoostRegressor if ctx.task == "regression" else catboost.CatBoostClassifier
    model = cls(thread_count=1, random_seed=ctx.seed, verbose=0, allow_writing_files=False, **params)
    n_categorical = sum(ctx.categorical_mask)
    return IntegerCategories(model, n_categorical) if n_categorical else model


CATBOOST = Learner(
    name="catboost",
    tasks=BOTH,
    space=SearchSpace(
        (
            Int("iterations", 16, 1000, log=True, default=500, low_cost=32),
            Float("learning_rate", 0.01, 0.5, log=True, default=0.08),
            Int("depth", 2, 8, default=6, low_cost=4),
            Float("l2_leaf_reg", 0.1, 30.0, log=True, default=3.0),
            Float("random_strength", 0.01, 10.0, log=True, default=1.0),
        ),
        name="catboost",
    ),
    build=_catboost,
    preprocessing=Preprocessing(categorical="native", impute=False),
    cost=8.0,
    description="CatBoost gradient boosting, symmetric trees (ordered target statistics for categorical columns)",
)


def available(package: str) -> bool:
    """Whether ``package`` (``xgboost`` or ``catboost``) can be imported."""
    try:
        __import__(package)
    except ImportError:
        return False
    return True
