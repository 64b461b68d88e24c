"""Scoring one configuration: resampling, per-fold preprocessing, staged fits.

The :class:`Evaluator` holds the training data and the splits, and turns a
:class:`~searchspaces.Config` into a :class:`TrialResult`. It never decides
*what* to evaluate or *for how long*; the worker that runs it enforces limits,
and the backend chooses configurations.

Intermediate scores (for pruners) are reported as ``report(step, value)``:
an iterative learner first reports its first-fold score after each training
stage (steps ``1..S``; for neural learners, step k is epoch k), then every
learner reports the running mean after each further fold (for neural
learners, at steps past the largest number of epochs). So trials of the same
learner are always compared at equal cost.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from automl.data.dataset import Dataset
from automl.pipeline.footprint import latency_ms, serialized_mb
from automl.pipeline.lean import LeanPipeline
from automl.pipeline.preprocessing import make_preprocessor
from automl.pipeline.probabilities import aligned_proba
from automl.pipeline.row_encoder import RowEncoder
from automl.search.metrics import Metric
from searchspaces import BuildContext, Config, Learner

log = logging.getLogger(__name__)

OK, FAILED, TIMEOUT, PRUNED, CRASHED = "ok", "failed", "timeout", "pruned", "crashed"
UNVALIDATED = "unvalidated"  # fitted without being scored: the stand-in when no trial finished in time
CACHE_LIMIT_BYTES = 512 * 2**20  # preprocessed folds kept per worker, at most

Reporter = Callable[[int, float], bool]  # (step, value) -> stop now?


class Pruned(Exception):
    """Raised inside an evaluation when the pruner says stop."""


@dataclass
class TrialResult:
    """What happened to one configuration."""

    config: Config
    status: str
    value: float | None = None  # mean validation score over folds
    fold_values: list[float] = field(default_factory=list)
    fit_seconds: float = 0.0  # time spent fitting and predicting, all folds
    error: str = ""
    origin: str = "search"  # who proposed the configuration
    number: int = -1  # the trial's number in its study
    wall_seconds: float = 0.0  # as seen by the backend, limits included
    finished_at: float = 0.0  # seconds since the search started
    node: str = ""  # where it ran (Ray backends)
    gpus: str = ""  # the GPUs it held, if any (Ray backends)
    resumed: bool = False  # loaded from storage, not run by this search
    # single-row prediction latency of its first fold's pipeline (automl.pipeline.footprint)
    predict_ms: float = math.nan
    model_mb: float = math.nan  # that pipeline's serialized size
    # Out-of-fold predictions on the evaluator's validation rows (probabilities or values), for ensemble
    # selection; kept in memory only, never stored (see :attr:`Evaluator.validation_rows`).
    predictions: np.ndarray | None = field(default=None, repr=False)
    # The fitted pipeline of each fold, where the search asked for them (a bagged final model averages them instead
    # of refitting); in memory only, like the predictions.
    fold_models: list[Pipeline] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == OK and self.value is not None and bool(np.isfinite(self.value))

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data, without its predictions."""
        data = {key: value for key, value in self.__dict__.items() if key not in ("predictions", "fold_models")}
        data["config"] = self.config.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialResult:
        data = dict(data)
        data["config"] = Config.from_dict(data["config"])
        return cls(**data)


@dataclass(frozen=True)
class Resampling:
    """``cv`` with ``n_folds`` folds, or a single ``holdout`` of ``fraction``."""

    kind: str = "cv"
    n_folds: int = 5
    fraction: float = 0.2

    @property
    def training_share(self) -> float:
        """The rows one evaluation trains on, in all its splits, as a multiple of the rows: K - 1 for K folds."""
        return 1.0 - self.fraction if self.kind == "holdout" else float(self.n_folds - 1)

    def splits(self, y: np.ndarray, classification: bool, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        index = np.arange(len(y))
        stratify = classification and np.min(np.unique(y, return_counts=True)[1]) >= 2
        if self.kind == "holdout":
            train, valid = train_test_split(
                index, test_size=self.fraction, random_state=seed, stratify=y if stratify else None
            )
            return [(np.sort(train), np.sort(valid))]
        if stratify:
            n_folds = max(2, min(self.n_folds, int(np.min(np.unique(y, return_counts=True)[1]))))
            splitter: Any = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        else:
            splitter = KFold(min(self.n_folds, len(y)), shuffle=True, random_state=seed)
        return list(splitter.split(index, y))


def choose_resampling(n_rows: int, requested: str = "auto", n_folds: int | None = None) -> Resampling:
    """Cross-validation on small data (more folds the smaller), holdout on large."""
    if requested not in ("auto", "cv", "holdout"):
        raise ValueError(f"resampling must be 'auto', 'cv' or 'holdout', got {requested!r}")
    if requested == "holdout" or (requested == "auto" and n_folds is None and n_rows > 20_000):
        return Resampling("holdout", fraction=0.2 if n_rows <= 100_000 else 0.1)
    if n_folds is None:
        n_folds = 5 if n_rows <= 1_000 else 3
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    return Resampling("cv", n_folds=n_folds)


def sample_rows(y: np.ndarray, size: int | None, seed: int, classification: bool) -> np.ndarray:
    """``size`` row indices of ``y`` (all of them when ``size`` is None or larger), sorted.

    Stratified by class where the classes allow it: each needs two rows, and
    both the sample and the rows left out need room for one of each class (a
    sample of 492 of 506 rows cannot stratify 18 classes).
    """
    n = len(y)
    if size is None or n <= size:
        return np.arange(n)
    stratify = None
    if classification:
        counts = np.unique(y, return_counts=True)[1]
        if counts.min() >= 2 and min(size, n - size) >= len(counts):
            stratify = y
    rows, _ = train_test_split(np.arange(n), train_size=size, random_state=seed, stratify=stratify)
    return np.sort(rows)


class Evaluator:
    """Scores configurations on fixed splits of fixed data."""

    def __init__(
        self,
        dataset: Dataset,
        metric: Metric,
        learners: Mapping[str, Learner],
        resampling: Resampling,
        seed: int = 0,
        max_rows: int | None = None,
    ):
        self.dataset = dataset
        self.metric = metric
        self.learners = dict(learners)
        self.resampling = resampling
        self.seed = seed
        self.y = dataset.encoded_target()
        self.n_classes = len(dataset.classes)
        self.rows = self._search_rows(max_rows)
        self.splits = [
            (self.rows[train], self.rows[valid])
            for train, valid in resampling.splits(self.y[self.rows], dataset.kind == "classification", seed)
        ]
        # Every row some fold validates on, in order: out-of-fold predictions are aligned with these.
        self.validation_rows = np.unique(np.concatenate([valid for _, valid in self.splits]))
        self._cache: dict[tuple[Any, int], tuple[Any, np.ndarray, np.ndarray, int]] = {}
        self._cache_bytes = 0
        self._transformer_ms_cache: dict[tuple[Any, int], float] = {}
        self.device = "cpu"  # where learners that can use a GPU should train (set by the backend's worker)

    def _search_rows(self, max_rows: int | None) -> np.ndarray:
        """The rows trials are evaluated on: all of them, or a stratified sample of ``max_rows``."""
        return sample_rows(self.y, max_rows, self.seed, self.dataset.kind == "classification")

    @property
    def n_train_rows(self) -> int:
        """Training rows of one fold: what fold fit times are measured on."""
        return len(self.splits[0][0])

    def learner(self, name: str) -> Learner:
        try:
            return self.learners[name]
        except KeyError:
            raise KeyError(f"learner {name!r} is not part of this search; "
                           f"it searches {sorted(self.learners)}") from None

    def _prepared(self, learner: Learner, fold: int) -> tuple[Any, np.ndarray, np.ndarray, int]:
        """Preprocessing fitted on a fold's training part, cached per (preprocessing, fold)."""
        key = (learner.preprocessing, fold)
        if key in self._cache:
            return self._cache[key]
        train, valid = self.splits[fold]
        X = self.dataset.X
        transformer, n_native = make_preprocessor(learner.preprocessing, X, self.dataset.categorical)
        X_train = transformer.fit_transform(X.iloc[train], self.y[train])
        X_valid = transformer.transform(X.iloc[valid])
        entry = (transformer, X_train, X_valid, n_native)
        size = X_train.nbytes + X_valid.nbytes
        if self._cache_bytes + size <= CACHE_LIMIT_BYTES:
            self._cache[key] = entry
            self._cache_bytes += size
        return entry

    def _footprint(self, learner: Learner, fold: int, model: Any, X_valid: np.ndarray) -> tuple[float, float]:
        """The single-row latency (ms) and pickled size (MB) of the fold's pipeline, timed along the path the final
        model will take for one row: the lean one (:mod:`automl.pipeline.lean`) where the pipeline compiles to it,
        else the row's typing by the schema, the preprocessing (measured once per preprocessing) and the model."""
        transformer = self._prepared(learner, fold)[0]
        row = self.dataset.X.iloc[self.splits[fold][1][:1]]
        try:
            lean = LeanPipeline.compile(Pipeline([("prepare", transformer), ("model", model)]), self._row_encoder)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if lean is not None:
                    predict_ms = latency_ms(lambda: self._lean_predict(lean, self._row_encoder.encode(row)))
                else:
                    predict_ms = self._transformer_ms(learner.preprocessing, fold, transformer, row) + latency_ms(
                        lambda: self.predict(model, X_valid[:1]))
            return predict_ms, serialized_mb(transformer) + serialized_mb(model)
        except Exception as error:  # a figure we could not measure is unknown, not a failed trial
            log.debug("footprint of %s not measured: %s", learner.name, error)
            return math.nan, math.nan

    def _lean_predict(self, lean: LeanPipeline, encoded: np.ndarray) -> np.ndarray:
        if self.dataset.task == "regression":
            return lean.predict_values(encoded)
        return lean.predict_proba(encoded, self.n_classes)

    def _transformer_ms(self, preprocessing: Any, fold: int, transformer: Any, row: Any) -> float:
        """The latency of typing ``row`` by the schema and ``transformer``-ing it, measured once per (preprocessing,
        fold)."""
        key = (preprocessing, fold)
        if key not in self._transformer_ms_cache:
            schema = self.dataset.schema
            self._transformer_ms_cache[key] = latency_ms(lambda: transformer.transform(schema.prepare(row)))
        return self._transformer_ms_cache[key]

    @cached_property
    def _row_encoder(self) -> RowEncoder:
        return RowEncoder.fit(self.dataset.schema, self.dataset.X)

    def _context(self, n_rows: int, n_features: int, n_native: int) -> BuildContext:
        return BuildContext(
            task=self.dataset.task,
            n_rows=n_rows,
            n_features=n_features,
            categorical_mask=tuple([True] * n_native + [False] * (n_features - n_native)),
            seed=self.seed,
            device=self.device,
        )

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        """Probabilities (classification) or values (regression)."""
        if self.dataset.task == "regression":
            return np.asarray(model.predict(X), dtype=float).ravel()
        return aligned_proba(model, X, self.n_classes)

    def _score(self, model: Any, X: np.ndarray, y: np.ndarray) -> float:
        return self.metric(y, self._checked_prediction(model, X))

    def _checked_prediction(self, model: Any, X: np.ndarray) -> np.ndarray:
        prediction = self.predict(model, X)
        if not np.all(np.isfinite(prediction)):
            raise ValueError("the model predicted non-finite values")
        return prediction

    @property
    def validation_target(self) -> np.ndarray:
        """The encoded target on :attr:`validation_rows`: what out-of-fold predictions are scored against."""
        return self.y[self.validation_rows]

    def evaluate(self, config: Config, report: Reporter | None = None, keep_models: bool = False) -> TrialResult:
        """Cross-validate (or hold out) ``config``; failures become a failed result.

        A successful result carries its out-of-fold predictions (on
        :attr:`validation_rows`), from which the final model's ensemble is
        chosen, and with ``keep_models`` its fold pipelines.
        """
        started = time.perf_counter()
        values: list[float] = []
        width = 1 if self.dataset.task == "regression" else self.n_classes
        predictions = np.full((len(self.validation_rows), width), np.nan, dtype=np.float32)
        fold_models: list[Pipeline] = []
        try:
            learner = self.learner(config.learner)
            problems = learner.space.problems(dict(config.params))
            if problems:
                raise ValueError(f"invalid configuration for {config.learner}: {'; '.join(problems)}")
            step = 0
            for fold, (train, valid) in enumerate(self.splits):
                _, X_train, X_valid, n_native = self._prepared(learner, fold)
                context = self._context(len(train), X_train.shape[1], n_native)
                model = learner.build(dict(config.params), context)
                y_train, y_valid = self.y[train], self.y[valid]
                staged = fold == 0 and report is not None and learner.staging is not None
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if staged:

                        def on_score(value: float) -> None:
                            nonlocal step
                            step += 1
                            if report(step, value):
                                raise Pruned()

                        self._staged_fit(model, learner, config, X_train, y_train, X_valid, y_valid, on_score)
                        # epochs vary by trial: fold steps start past the most there can be
                        if learner.staging.callback:
                            step = max(step, int(getattr(learner.space[learner.staging.param], "high", step)))
                    else:
                        model.fit(X_train, y_train)
                    prediction = self._checked_prediction(model, X_valid)
                predictions[np.searchsorted(self.validation_rows, valid)] = prediction.reshape(len(valid), width)
                if keep_models:
                    fold_models.append(Pipeline([("preprocess", self._prepared(learner, fold)[0]), ("model", model)]))
                if fold == 0:
                    footprint = self._footprint(learner, fold, model, X_valid)
                values.append(self.metric(y_valid, prediction))
                if report is not None and not staged:
                    step += 1
                    if report(step, float(np.nanmean(values))) and fold < len(self.splits) - 1:
                        raise Pruned()
            mean = float(np.nanmean(values)) if not np.all(np.isnan(values)) else float("nan")
            if not np.isfinite(mean):
                raise ValueError(f"the metric {self.metric.name} is undefined on every fold")
            predict_ms, model_mb = footprint
            return TrialResult(config, OK, mean, values, time.perf_counter() - started, predictions=predictions,
                               predict_ms=predict_ms, model_mb=model_mb, fold_models=fold_models or None)
        except Pruned:
            value = float(np.nanmean(values)) if values else None
            return TrialResult(config, PRUNED, value, values, time.perf_counter() - started)
        except MemoryError:
            return TrialResult(config, FAILED, None, values, time.perf_counter() - started,
                               error="MemoryError: memory limit exceeded")
        except Exception as error:  # an untrusted learner may raise anything
            log.debug("trial %s failed:\n%s", config, traceback.format_exc())
            return TrialResult(config, FAILED, None, values, time.perf_counter() - started,
                               error=f"{type(error).__name__}: {error}")

    def _staged_fit(self, model: Any, learner: Learner, config: Config, X_train, y_train, X_valid, y_valid,
                    on_score: Callable[[float], None]) -> None:
        """Fit an iterative model, passing its validation score to ``on_score`` as it trains.

        ``on_score`` raises :class:`Pruned` to stop the trial, from inside the
        estimator's ``fit`` when the estimator calls back.
        """
        assert learner.staging is not None
        score = partial(self._score, X=X_valid, y=y_valid)
        if learner.staging.callback:
            model.set_params(**{learner.staging.callback: lambda step, fitted: on_score(score(fitted))})
            try:
                model.fit(X_train, y_train)
            finally:
                model.set_params(**{learner.staging.callback: None})
            on_score(score(model))  # the estimator may have gone back to its best epoch
            return
        full = config.params[learner.staging.param]
        model.set_params(warm_start=True)
        for fraction in learner.staging.fractions:
            model.set_params(**{learner.staging.param: max(1, int(round(full * fraction)))})
            model.fit(X_train, y_train)
            on_score(score(model))

    def fit_final(self, config: Config, max_rows: int | None = None) -> Pipeline:
        """Fit ``config`` on all training rows (or a stratified sample of ``max_rows``)."""
        return self.fit_rows(config, sample_rows(self.y, max_rows, self.seed, self.dataset.kind == "classification"))

    def fit_rows(self, config: Config, rows: np.ndarray) -> Pipeline:
        """Fit ``config`` (its preprocessing and its model) on the training rows ``rows`` (positions).

        The pipeline takes feature frames like the dataset's ``X``: how the
        final model is fitted, and how a report refits a configuration on one
        split's training part to judge it on the rest.
        """
        learner = self.learner(config.learner)
        X = self.dataset.X.iloc[rows]
        transformer, n_native = make_preprocessor(learner.preprocessing, self.dataset.X, self.dataset.categorical)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X_train = transformer.fit_transform(X, self.y[rows])
            model = learner.build(dict(config.params), self._context(len(rows), X_train.shape[1], n_native))
            model.fit(X_train, self.y[rows])
        return Pipeline([("preprocess", transformer), ("model", model)])

