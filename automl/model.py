"""The result of a search: a fitted model with its leaderboard.

>>> import automl
>>> from sklearn.datasets import load_iris
>>> model = automl.fit(load_iris(as_frame=True), time_budget=5, verbose=0)  # doctest: +SKIP
>>> model.predict(X_new)                                                    # doctest: +SKIP
>>> model.save("iris.pkl"); automl.load("iris.pkl")                         # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.data.column_kinds import ColumnNote
from automl.data.schema import FeatureSchema
from automl.data.task import TaskInfo
from automl.data.truth import encoded_truth
from automl.errors import ConfigError, DataError, ExportError
from automl.model_file import SavedModel, TaskModel, read_model
from automl.pipeline.lean import LeanPipeline
from automl.pipeline.row_encoder import LEAN_ROWS, RowEncoder
from automl.reporting.importance import feature_groups, permutation_importance
from automl.reporting.report import write_report
from automl.search.ensemble import Ensemble, Member
from automl.search.evaluation import TrialResult, sample_rows
from automl.search.leaderboard import make_leaderboard
from automl.search.metrics import get_metric
from automl.serving.distill import distill
from automl.serving.export import ExportReport, Servable, export_onnx, require_format
from searchspaces import Config


@dataclass(frozen=True)
class SuggestedConfig:
    """A configuration the warm start suggested, and the method that proposed it."""

    config: Config
    method: str


@dataclass(frozen=True)
class NearDataset:
    """A known dataset near the searched one: its distance in scaled meta-features (0: identical), and each
    suggestion it has a history for, with its normalised score there (1: its best known configuration)."""

    name: str
    distance: float
    scores: tuple[tuple[Config, float], ...] = ()


@dataclass(frozen=True)
class WarmStartRecord:
    """What the warm start suggested and where it came from, as plain data (what a model file keeps of it)."""

    method: str
    seconds: float
    trusted: bool
    extrapolating: bool
    suggestions: tuple[SuggestedConfig, ...]
    neighbours: tuple[NearDataset, ...] = ()

    @classmethod
    def of(cls, warm: Any) -> WarmStartRecord:
        """The record of a warm start (:class:`automl.knowledge.warm_start.WarmStart`, or one an old file holds)."""
        return cls(warm.method, float(warm.seconds), bool(warm.trusted), bool(warm.extrapolating),
                   tuple(SuggestedConfig(s.config, s.method) for s in warm.suggestions),
                   tuple(NearDataset(n.name, float(n.distance), tuple(n.scores)) for n in warm.neighbours))


@dataclass
class SearchSummary:
    """How the search went, for reports and ``automl info``.

    ``seconds`` is the whole call; of it, ``prepare_seconds`` went to reading
    the data and planning the search's start (the nearest datasets' priors,
    where a portfolio leads, are planned during the search), ``search_seconds`` to the
    search and ``final_seconds`` to fitting the final model (the rest is
    overhead). ``warm_start`` holds what meta-knowledge suggested and where it
    came from (None for a cold start). ``feature_importance`` is the
    out-of-fold permutation importance measured when ``fit`` wrote a report
    (see :mod:`automl.reporting.importance`), kept so that a later report shows it.
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
    warm_start: WarmStartRecord | None = None
    predict_ms: float = math.nan  # the final model's single-row latency, measured when fit had serving limits
    model_mb: float = math.nan  # ... and its pickled size
    feature_importance: pd.DataFrame | None = None  # out-of-fold permutation importance, when fit wrote a report


class AutoModel(TaskModel):
    """A tuned model: configurations chosen by the search, fitted on the training data.

    The final model is a weighted average of configurations chosen by
    ensemble selection on the trials' out-of-fold predictions (``members_``,
    up to ``fit``'s ``ensemble_size``; see :mod:`automl.search.ensemble`).
    ``predict`` returns labels (classification) or values (regression);
    ``predict_proba`` one column per class, in the order of ``classes_``;
    ``score`` the search metric (or another by name) in its own units, so
    for RMSE or log loss lower is better.
    """

    kind = "model"

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
    def best_config_(self) -> Config:
        """The configuration that was refitted."""
        return self.best.config

    @property
    def members_(self) -> list[Member]:
        """The configurations whose weighted average the model predicts, each with its weight, heaviest first."""
        return self.ensemble.members

    @property
    def column_notes(self) -> list[ColumnNote]:
        """What was done to which input column: dates turned into numbers, text into TF-IDF components,
        ID-like columns dropped, infinite values read as missing (empty for a model saved before notes)."""
        return list(getattr(self.schema, "notes", ()))

    @property
    def best_score_(self) -> float | None:
        """Its cross-validation score on the search metric."""
        return self.best.value

    def _features(self, X: Any) -> pd.DataFrame:
        return self.schema.prepare(X)

    def predict(self, X: Any) -> np.ndarray:
        """Labels (original values) or regression predictions for the rows of ``X``."""
        lean = self._lean_prediction(X)
        if lean is not None:
            return lean if self.task.task == "regression" else self.classes_[np.argmax(lean, axis=1)]
        features = self._features(X)
        if self.task.task == "regression":
            return self.ensemble.predict(features) if len(features) else np.empty(0)
        return self.classes_[np.argmax(self._proba(features), axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per class of ``classes_``."""
        if self.task.task == "regression":
            raise AttributeError("predict_proba is only available for classification models")
        lean = self._lean_prediction(X)
        return lean if lean is not None else self._proba(self._features(X))

    def _lean_prediction(self, X: Any) -> np.ndarray | None:
        """Probabilities or values through the compiled pipelines (:mod:`automl.pipeline.lean`) for a few rows;
        None where that path does not apply (many rows, a pipeline it cannot compile, a model saved without it)."""
        encoder = getattr(self, "row_encoder", None)
        if encoder is None or not hasattr(X, "__len__") or not 0 < len(X) <= LEAN_ROWS:
            return None
        cached = self.__dict__.get("_lean_members")
        if cached is None or cached[0] is not self.ensemble:
            members = [LeanPipeline.compile(p, encoder) for p in self.ensemble.pipelines]
            cached = self._lean_members = (self.ensemble, None if None in members else members)
        members = cached[1]
        if members is None:
            return None
        encoded = encoder.encode(X)
        if self.task.task == "regression":
            return self.ensemble.combine([m.predict_values(encoded) for m in members])
        return self.ensemble.combine([m.predict_proba(encoded, len(self.task.classes)) for m in members])

    def _proba(self, features: pd.DataFrame) -> np.ndarray:
        """Probabilities for features already prepared by the schema (no rows: an empty answer)."""
        if not len(features):
            return np.empty((0, len(self.task.classes)))
        return self.ensemble.predict_proba(features, len(self.task.classes))

    def score(self, X: Any, y: Any, metric: str | None = None) -> float:
        """The value of ``metric`` (default: the search metric) on ``(X, y)``."""
        chosen = get_metric(metric or self.metric, self.task.task)
        features = self._features(X)
        return chosen(self._truth(y, len(features)), self._prediction(features))

    def _prediction(self, features: pd.DataFrame) -> np.ndarray:
        """What metrics take, for features already prepared: class probabilities, or values for a regression."""
        if self.task.task == "regression":
            return self.ensemble.predict(features) if len(features) else np.empty(0)
        return self._proba(features)

    def _truth(self, y: Any, n_rows: int) -> np.ndarray:
        """``y`` as metrics take it (class codes in the order of ``classes_``, or values), checked against ``n_rows``
        rows of X."""
        return encoded_truth(self.task, y, n_rows)

    def distill(self, X: Any = None, y: Any = None, *, time_budget: float = 30.0, student: str = "auto",
                seed: int = 0) -> Any:
        """A compact single model trained to reproduce this one's predictions: see
        :func:`automl.serving.distill.distill`.

        Without ``X``, the training rows, which the model returned by ``fit``
        keeps in memory (a loaded model does not: pass them, with ``y`` for the
        student's own score).

        >>> student = model.distill(time_budget=20)   # doctest: +SKIP
        >>> student.report.fidelity, student.predict(X_new)  # doctest: +SKIP
        """

        return distill(self, X, y, time_budget=time_budget, student=student, seed=seed)

    def __getstate__(self) -> dict[str, Any]:
        """What is saved: not the training rows kept for :meth:`distill`, nor the trials' out-of-fold predictions."""
        state = self.__dict__.copy()
        state.pop("training_rows", None)
        state.pop("_lean_members", None)  # compiled again on first use
        state["results"] = [replace(r, predictions=None, fold_models=None)
                            if r.predictions is not None or r.fold_models is not None else r for r in self.results]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Read a saved model, bringing an older file's contents up to date."""
        if "pipeline" in state:  # file version 1: a single pipeline, the ensemble of one it stands for
            state["ensemble"] = Ensemble([state.pop("pipeline")], [state["best"].config])
        summary = state.get("summary")
        warm = getattr(summary, "warm_start", None)
        if warm is not None and not isinstance(warm, WarmStartRecord):  # files before 0.2 pickled the WarmStart itself
            summary.warm_start = WarmStartRecord.of(warm)
        self.__dict__.update(state)

    def feature_importance(self, X: Any, y: Any, n_repeats: int = 5, seed: int = 0,
                           max_rows: int | None = None) -> pd.DataFrame:
        """Permutation importance of each input column on the rows ``(X, y)``, in the search metric.

        ``importance`` is how much the metric gets worse when the column's
        values are shuffled (positive: useful, for losses too), averaged over
        ``n_repeats`` shuffles, with its ``std``; one row per input column,
        most important first. Pass rows the model was not trained on (a
        held-out test set): on its training rows a model may owe much to noise.
        ``max_rows`` draws a (stratified) sample of the rows to save time.
        """

        features = self._features(X)
        truth = self._truth(y, len(features))
        if max_rows is not None and len(features) > max_rows:
            rows = sample_rows(truth, max_rows, seed, self.task.task != "regression")
            features, truth = features.iloc[rows], truth[rows]
        frame = permutation_importance(self._prediction, features, truth, get_metric(self.metric, self.task.task),
                                       feature_groups(self.schema, list(features.columns)), n_repeats, seed)
        frame.attrs.update(source="held-out rows", rows=len(features), metric=self.metric)
        return frame

    def report(self, path: str | Path, X: Any = None, y: Any = None) -> Path:
        """Write an HTML report of the search to ``path`` (one self-contained file); returns its path.

        With held-out rows ``(X, y)`` it shows the model's feature importance
        on them; without, the out-of-fold importance measured when ``fit``
        wrote a report, if any. See :mod:`automl.reporting.report`.
        """

        if (X is None) != (y is None):
            raise DataError("pass both X and y (held-out rows and their target) to show feature importance, or neither")
        return write_report(self, path, data=None if X is None else (X, y))

    def leaderboard(self) -> pd.DataFrame:
        """Every trial: rank, learner, CV score, fit time, status, origin, parameters, and its weight in the model.

        ``weight`` is the configuration's share of the final model's average
        (0 for trials it does not hold); ``in_model`` says whether it holds it,
        and ``final_fit`` how: ``"refit"`` on the training rows, or
        ``"bagged"``, its fold models from the search averaged, with
        ``"+stacked"`` where a stacking layer combines the members (empty for
        trials it does not hold). A configuration tried twice shows these on each row.
        """
        board = make_leaderboard(self.results, get_metric(self.metric, self.task.task))
        members = {member.config.key(): member for member in self.members_}
        keys = [Config(learner, params).key() for learner, params in zip(board["learner"], board["params"])]
        board["weight"] = [round(members[key].weight, 4) if key in members else 0.0 for key in keys]
        board["in_model"] = [key in members for key in keys]
        board["final_fit"] = [members[key].fit + ("+stacked" if members[key].stacked else "") if key in members else ""
                              for key in keys]
        board.attrs["column_notes"] = [str(note) for note in self.column_notes]
        return board

    def export(self, path: str | Path, format: str = "onnx", X: Any = None) -> ExportReport:
        """Write the model as one ONNX graph (and ``path.json``, its input encoding), checked in onnxruntime.

        The check runs the graph on the training rows (kept by ``fit``; a
        loaded model needs rows passed as ``X``, without the target) and
        compares it with the model's own probabilities or values; see
        :mod:`automl.serving.export` for the input encoding and the tolerance. A member
        that cannot be exported raises :class:`~automl.errors.ExportError`
        naming it and saying why.

        >>> print(model.export("model.onnx").describe())  # doctest: +SKIP
        wrote model.onnx (3 members, one graph) and model.onnx.json; checked in onnxruntime on 569 training rows: ...
        """
        require_format(format)
        if self.ensemble.stacked:
            raise ExportError("this model combines its members with a stacking layer, which the ONNX export does "
                              "not write yet: fit it with final_fit='refit' (members averaged by their weights) to "
                              "export it")
        if X is not None:
            prepared = self.schema.prepare(X)
        elif getattr(self, "training_rows", None) is not None:
            prepared = self.training_rows[0]
        else:
            raise ConfigError("export checks the graph on the training rows, which a loaded model does not keep: "
                              "pass them, model.export(path, X=X_train)")
        encoder = getattr(self, "row_encoder", None) or RowEncoder.fit(self.schema, prepared)
        ensemble = self.ensemble
        classification = self.task.task != "regression"
        n_classes = len(self.task.classes) if classification else 0
        servable = Servable(ensemble.pipelines, ensemble.shares,
                            [c.describe() for c in ensemble.configs], encoder, classification, n_classes,
                            list(self.task.classes) if classification else [], ensemble.prior,
                            float(ensemble.prior_share))

        def reference(rows: pd.DataFrame) -> np.ndarray:
            return ensemble.predict_proba(rows, n_classes) if classification else ensemble.predict(rows)

        return export_onnx(servable, path, prepared, reference, format)

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


def load(path: str | Path) -> SavedModel:
    """Read a model written by :meth:`AutoModel.save`, its distilled student's ``save``, or ``MetaModel.save``.

    Model files are pickles: load only files you trust (``export`` writes ONNX, the format to hand to others).
    """
    return read_model(path)
