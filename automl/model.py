"""The result of a search: a fitted model with its leaderboard.

>>> import automl
>>> from sklearn.datasets import load_iris
>>> model = automl.fit(load_iris(as_frame=True), time_budget=5, verbose=0)  # doctest: +SKIP
>>> model.predict(X_new)                                                    # doctest: +SKIP
>>> model.save("iris.pkl"); automl.load("iris.pkl")                         # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from automl.data import FeatureSchema, clean_labels
from automl.ensemble import Ensemble
from automl.errors import DataError, ModelFileError
from automl.evaluation import TrialResult
from automl.leaderboard import make_leaderboard
from automl.metrics import get_metric
from automl.task import TaskInfo
from searchspaces import Config

log = logging.getLogger(__name__)

FILE_FORMAT = "automl-model"
FILE_VERSION = 2  # 2: the model is an Ensemble (version 1 held a single pipeline)


@dataclass
class SearchSummary:
    """How the search went, for reports and ``automl info``."""

    backend: str
    n_trials: int
    seconds: float
    interrupted: bool = False
    refit_rows: int = 0
    refit_note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class AutoModel:
    """A tuned model: the best configuration fitted on the training data.

    On cross-validated searches, the configurations whose scores are within
    noise of the best are fitted too and their predictions averaged
    (``members_``, up to ``fit``'s ``ensemble_size``; see :mod:`automl.ensemble`).
    ``predict`` returns labels (classification) or values (regression);
    ``predict_proba`` one column per class, in the order of ``classes_``;
    ``score`` the search metric (or another by name) in its own units, so
    for RMSE or log loss lower is better.
    """

    def __init__(
        self,
        ensemble: Ensemble,
        schema: FeatureSchema,
        task: TaskInfo,
        results: list[TrialResult],
        best: TrialResult,
        summary: SearchSummary,
    ):
        self.ensemble = ensemble
        self.schema = schema
        self.task = task
        self.results = results
        self.best = best
        self.summary = summary

    @property
    def metric(self) -> str:
        return self.task.metric

    @property
    def classes_(self) -> np.ndarray:
        if self.task.task == "regression":
            raise AttributeError("a regression model has no classes_")
        return np.asarray(self.task.classes)

    @property
    def best_config_(self) -> Config:
        """The configuration that was refitted."""
        return self.best.config

    @property
    def members_(self) -> list[Config]:
        """The configurations whose averaged predictions the model makes, the best first."""
        return list(self.ensemble.configs)

    @property
    def best_score_(self) -> float | None:
        """Its cross-validation score on the search metric."""
        return self.best.value

    def _features(self, X: Any) -> pd.DataFrame:
        return self.schema.prepare(X)

    def predict(self, X: Any) -> np.ndarray:
        """Labels (original values) or regression predictions for the rows of ``X``."""
        features = self._features(X)
        if self.task.task == "regression":
            return self.ensemble.predict(features)
        return self.classes_[np.argmax(self.predict_proba(features), axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per class of ``classes_``."""
        if self.task.task == "regression":
            raise AttributeError("predict_proba is only available for classification models")
        features = self._features(X)
        return self.ensemble.predict_proba(features, len(self.task.classes))

    def score(self, X: Any, y: Any, metric: str | None = None) -> float:
        """The value of ``metric`` (default: the search metric) on ``(X, y)``."""
        chosen = get_metric(metric or self.metric, self.task.task)
        y_true = pd.Series(np.ravel(np.asarray(y)))
        if len(y_true) != len(X):
            raise DataError(f"X has {len(X)} rows but y has {len(y_true)}")
        if self.task.task == "regression":
            return chosen(y_true.to_numpy(dtype=float), self.predict(X))
        labels = clean_labels(y_true).to_numpy()
        unknown = set(labels.tolist()) - set(self.classes_.tolist())
        if unknown:
            raise DataError(f"y holds labels the model never saw in training: {sorted(map(str, unknown))[:5]}")
        return chosen(np.searchsorted(self.classes_, labels), self.predict_proba(X))

    def leaderboard(self) -> pd.DataFrame:
        """Every trial: rank, learner, CV score, fit time, status, origin, parameters, and whether the model holds it."""
        board = make_leaderboard(self.results, get_metric(self.metric, self.task.task))
        members = {config.key() for config in self.ensemble.configs}
        board["in_model"] = [Config(learner, params).key() in members for learner, params in zip(board["learner"], board["params"])]
        return board

    def save(self, path: str | Path) -> Path:
        """Write the model to ``path`` (a pickle: load only files you trust)."""
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "engine": _engine_version(),
            "sklearn": sklearn.__version__,
            "model": self,
        }
        joblib.dump(payload, path, compress=3)
        return path

    def __repr__(self) -> str:
        score = "n/a" if self.best.value is None else f"{self.best.value:.4f}"
        averaged = f" averaged with {len(self.ensemble) - 1} more" if len(self.ensemble) > 1 else ""
        return (
            f"AutoModel({self.task.task}, {self.best.config.learner}{averaged}, cv {self.metric}={score}, "
            f"{self.summary.n_trials} trials in {self.summary.seconds:.1f} s)"
        )


def load(path: str | Path) -> AutoModel:
    """Read a model written by :meth:`AutoModel.save`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelFileError(f"no such model file: {str(path)!r}")
    try:
        payload = joblib.load(path)
    except Exception as error:
        raise ModelFileError(f"{str(path)!r} is not a model saved by automl ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise ModelFileError(f"{str(path)!r} is not a model saved by automl (save one with model.save(path))")
    if payload.get("version", 0) > FILE_VERSION:
        raise ModelFileError(
            f"{str(path)!r} was saved by a newer automl (file format {payload['version']}); upgrade automl to read it"
        )
    if payload.get("sklearn") != sklearn.__version__:
        log.warning(
            "model saved with scikit-learn %s, loaded with %s: predictions may differ",
            payload.get("sklearn"),
            sklearn.__version__,
        )
    model = payload["model"]
    if payload.get("version", 0) < 2:  # a single pipeline: the ensemble of one it stands for
        model.ensemble = Ensemble([model.__dict__.pop("pipeline")], [model.best.config])
    return model


def _engine_version() -> str:
    from automl import __version__

    return __version__
