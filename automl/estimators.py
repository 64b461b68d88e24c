"""scikit-learn estimators around the engine: ``AutoMLClassifier``, ``AutoMLRegressor``.

They follow scikit-learn's contract (parameters stored in ``__init__``, ``fit``
returns ``self``, fitted state ends in ``_``), so they work inside
``cross_val_score``, ``Pipeline`` and ``GridSearchCV``. Unlike ``automl.fit``
they are silent by default (``verbose=0``), as scikit-learn estimators are.
``score`` keeps scikit-learn's meaning (accuracy, R²); the search metric is
``metric``.

>>> from sklearn.model_selection import cross_val_score
>>> from automl import AutoMLClassifier
>>> cross_val_score(AutoMLClassifier(time_budget=10), X, y, cv=3)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from automl.engine import fit_with_options
from automl.options import FitOptions
from metaknowledge.location import mask_secrets


class _AutoMLEstimator(BaseEstimator):
    """Shared parameters and plumbing; see the module docstring."""

    _task = "classification"

    def __init__(
        self,
        time_budget: float | None = 60.0,
        metric: str | None = None,
        n_trials: int | None = None,
        learners: list[str] | None = None,
        space: str | None = None,
        categorical: list[Any] | None = None,
        resampling: str = "auto",
        n_folds: int | None = None,
        trial_time_limit: float | None = None,
        memory_limit: float | None = None,
        n_jobs: int = 1,
        storage: Any = None,
        study_name: str | None = None,
        pruner: Any = "auto",
        seed: int = 0,
        warm_start: bool | int = True,
        ensemble_size: int = 5,
        final_fit: str = "auto",
        remember: bool = True,
        kb: str | None = None,
        verbose: int = 0,
    ):
        self.time_budget = time_budget
        self.metric = metric
        self.n_trials = n_trials
        self.learners = learners
        self.space = space
        self.categorical = categorical
        self.resampling = resampling
        self.n_folds = n_folds
        self.trial_time_limit = trial_time_limit
        self.memory_limit = memory_limit
        self.n_jobs = n_jobs
        self.storage = storage
        self.study_name = study_name
        self.pruner = pruner
        self.seed = seed
        self.warm_start = warm_start
        self.ensemble_size = ensemble_size
        self.final_fit = final_fit
        self.remember = remember
        self.kb = kb
        self.verbose = verbose

    def fit(self, X: Any, y: Any) -> _AutoMLEstimator:
        """Search and refit on ``(X, y)``; returns ``self``."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        self.model_ = fit_with_options(X, y, FitOptions.build(task=self._task, **self.get_params()))
        self.n_features_in_ = len(self.model_.schema.names)
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.best_config_ = self.model_.best_config_
        self.best_score_ = self.model_.best_score_
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict(X)

    def leaderboard(self) -> pd.DataFrame:
        """The search's leaderboard (see :meth:`AutoModel.leaderboard`)."""
        check_is_fitted(self, "model_")
        return self.model_.leaderboard()

    def __getstate__(self) -> dict[str, Any]:
        """What a pickle of the estimator keeps: everything but the password of a database URL (``kb``, ``storage``),
        which is masked; an unpickled estimator fits again once it is given again (or taken from ``PGPASSWORD``)."""
        state = dict(super().__getstate__())  # a copy: the estimator itself keeps its parameters
        for name in ("kb", "storage"):
            if isinstance(state.get(name), str):
                state[name] = mask_secrets(state[name])
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.non_deterministic = self.time_budget is not None and self.n_trials is None
        return tags


class AutoMLClassifier(ClassifierMixin, _AutoMLEstimator):
    """A classifier whose learner and hyperparameters are found by search."""

    _task = "classification"

    def fit(self, X: Any, y: Any) -> AutoMLClassifier:
        super().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(X)


class AutoMLRegressor(RegressorMixin, _AutoMLEstimator):
    """A regressor whose learner and hyperparameters are found by search."""

    _task = "regression"
