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
from automl.ensemble import Ensemble, Member
from automl.errors import DataError, ModelFileError
from automl.evaluation import TrialResult
from automl.leaderboard import make_leaderboard
from automl.metrics import get_metric
from automl.task import TaskInfo
from automl.warm import WarmStart
from searchspaces import Config

log = logging.getLogger(__name__)

FILE_FORMAT = "automl-model"
META_FILE_FORMAT = "automl-meta-model"  # automl.meta_model.MetaModel.save
FILE_VERSION = 3  # 3: the Ensemble is weighted; 2: equal weights; 1: a single pipeline


@dataclass
class SearchSummary:
    """How the search went, for reports and ``automl info``.

    ``seconds`` is the whole call; of it, ``prepare_seconds`` went to reading
    the data, meta-features and the warm start, ``search_seconds`` to the
    search and ``final_seconds`` to fitting the final model (the rest is
    overhead). ``warm_start`` holds what meta-knowledge suggested and where it
    came from (None for a cold start).
    """

    backend: str
    n_trials: int
    seconds: float
    interrupted: bool = False
    refit_rows: int = 0
    refit_note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    time_budget: float | None = None
    prepare_seconds: float = 0.0
    search_seconds: float = 0.0
    final_seconds: float = 0.0
    warm_start: WarmStart | None = None


class AutoModel:
    """A tuned model: configurations chosen by the search, fitted on the training data.

    The final model is a weighted average of configurations chosen by
    ensemble selection on the trials' out-of-fold predictions (``members_``,
    up to ``fit``'s ``ensemble_size``; see :mod:`automl.ensemble`).
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
    def members_(self) -> list[Member]:
        """The configurations whose weighted average the model predicts, each with its weight, heaviest first."""
        return self.ensemble.members

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
        """Every trial: rank, learner, CV score, fit time, status, origin, parameters, and its weight in the model.

        ``weight`` is the configuration's share of the final model's average
        (0 for trials it does not hold); ``in_model`` says whether it holds it.
        A configuration tried twice shows its weight on each row.
        """
        board = make_leaderboard(self.results, get_metric(self.metric, self.task.task))
        weights = {member.config.key(): member.weight for member in self.members_}
        keys = [Config(learner, params).key() for learner, params in zip(board["learner"], board["params"])]
        board["weight"] = [round(weights.get(key, 0.0), 4) for key in keys]
        board["in_model"] = [key in weights for key in keys]
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
        members = self.members_
        if len(members) > 1:
            shares = ", ".join(f"{m.config.learner} {m.weight:.2f}" for m in members)
            model = f"ensemble of {len(members)}: {shares}"
        else:
            model = members[0].config.learner
        return (
            f"AutoModel({self.task.task}, {model}, best cv {self.metric}={score}, "
            f"{self.summary.n_trials} trials in {self.summary.seconds:.1f} s)"
        )


def load(path: str | Path) -> AutoModel:
    """Read a model written by :meth:`AutoModel.save` (or a meta-learned one, by ``MetaModel.save``)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelFileError(f"no such model file: {str(path)!r}")
    try:
        payload = joblib.load(path)
    except Exception as error:
        raise ModelFileError(f"{str(path)!r} is not a model saved by automl ({type(error).__name__}: {error})") from None
    if isinstance(payload, dict) and payload.get("format") == META_FILE_FORMAT:
        return payload["model"]  # a MetaModel (automl.meta_model), written by MetaModel.save
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
