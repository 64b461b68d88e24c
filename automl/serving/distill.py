"""Distillation: one compact model trained to reproduce the final model's predictions.

An ensemble of boosted models, forests and networks wins on accuracy and
loses on serving cost. :func:`distill` trains a single small LightGBM or linear
model (the *student*) on what the final model (the *teacher*) predicts:

- on **augmented rows**: the training rows and perturbed copies of them
  (numeric cells moved by a little noise, categorical cells swapped with
  another row's), labelled by the teacher, so the student also learns the
  teacher's function between the training rows (Buciluǎ et al. 2006);
- on **soft targets**: the teacher's class probabilities, not its labels
  (cross-entropy against them; Hinton et al. 2015), or its predicted values
  for regression.

The student's hyperparameters are searched (Optuna's TPE over a compact
LightGBM space, :data:`STUDENT_SPACE`, translated by the same
:mod:`searchspaces.to_optuna` as the main search) on how closely it follows
the teacher on rows held out of its training; the most compact of the
configurations within :data:`FIDELITY_TOLERANCE` of the best is kept. A linear
student (:mod:`automl.serving.linear_student`) is fitted too, and the one that follows
the teacher more closely on the held-out rows is refitted on all rows, where
the budget allows. It predicts through a :class:`~automl.pipeline.row_encoder.RowEncoder`: a
single row costs a fraction of a millisecond.

>>> student = model.distill(X_train, y_train, time_budget=20)  # doctest: +SKIP
>>> student.report.fidelity, student.predict(X_new)             # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import optuna
import pandas as pd

from automl.data.schema import FeatureSchema
from automl.data.task import TaskInfo
from automl.data.truth import encoded_truth
from automl.errors import ConfigError, DataError
from automl.model_file import TaskModel
from automl.pipeline.lean import LeanPipeline
from automl.pipeline.row_encoder import RowEncoder
from automl.search.ensemble import Ensemble
from automl.search.metrics import get_metric
from automl.search.optuna_setup import quiet_optuna
from automl.serving.export import ExportReport, Servable, export_onnx, require_format
from automl.serving.linear_student import fit_linear_student, linear_scores, refit
from automl.serving.onnx.members import student_member
from searchspaces import SearchSpace
from searchspaces.params import Categorical, Float, Int
from searchspaces.to_optuna import suggest

log = logging.getLogger(__name__)

STUDENTS = ("auto", "lightgbm", "linear")  # auto: whichever of the two follows the teacher more closely
STUDENT_SPACE = SearchSpace(
    (
        Int("n_estimators", 16, 400, log=True, default=100),
        Int("num_leaves", 4, 63, log=True, default=15),
        Int("min_child_samples", 2, 64, log=True, default=10),
        Float("learning_rate", 0.02, 0.5, log=True, default=0.1),
        Float("colsample_bytree", 0.5, 1.0, default=1.0),
        Float("reg_lambda", 1e-8, 10.0, log=True, default=1e-8),
        # linear models in the leaves: a few leaves then follow a smooth or linear teacher, which plain trees step along
        Categorical("linear_tree", (False, True), default=False),
    ),
    name="student_lightgbm",
)
ROWS_PER_SECOND = 4_000  # distillation rows per second of budget, at most (the student trains on them many times)
MAX_ROWS = 200_000
MIN_COPIES = 1
MAX_COPIES = 10
LABEL_SHARE = 0.2  # of the budget for the teacher to label the augmented rows
SEARCH_SHARE = 0.6  # ... for the student's search; the rest for its final fit
HOLDOUT_SHARE = 0.2  # of the training rows (with their copies) held out to measure the student's fidelity and score
LINEAR_SHARE = 0.25  # of the search's time for the linear student, when both kinds are tried
FIDELITY_TOLERANCE = 0.005  # the smallest student within this much of the best validation loss is chosen
NOISE_SCALE = 0.1  # numeric noise, in standard deviations of the column
PERTURB_SHARE = 0.5  # of a copy's numeric cells moved
SWAP_SHARE = 0.15  # of a copy's categorical cells taken from another row
IMPORTANCE_ROWS = 500  # held-out rows an ignored column's importance is measured on, at most
IGNORED_MATTERS = 0.01  # an ignored column moving the model's predictions on more than this share of rows is warned of


@dataclass(frozen=True)
class DistillReport:
    """How the student was made and how closely it follows the teacher, on training rows it never saw.

    ``fidelity`` is the share of held-out rows where the student predicts the
    teacher's label (classification) or the R² of its predictions against the
    teacher's (regression); ``score`` and ``teacher_score`` are the student's
    and the teacher's values of the task's metric on the same rows against the
    true target (the teacher was fitted on them: its figure is in-sample).
    """

    student: str
    params: dict[str, Any]
    rows: int
    augmented_rows: int
    fidelity: float
    fidelity_name: str
    score: float
    teacher_score: float
    metric: str
    trials: int
    seconds: float
    # columns the teacher reads and the student cannot (free text), each with the share of held-out rows whose
    # teacher prediction changes when that column is shuffled (``ignored_importance``)
    ignored: tuple[tuple[str, float], ...] = ()

    def describe_ignored(self) -> str:
        """The columns the student leaves out, in words ("" when it reads every column the model reads)."""
        return "; ".join(f"it does not read text column {name!r}, which moves the model's predictions on "
                         f"{share:.0%} of rows when shuffled" for name, share in self.ignored)


class Teacher(Protocol):
    """What distillation needs of the model it distills (an :class:`automl.model.AutoModel`)."""

    ensemble: Ensemble
    schema: FeatureSchema
    task: TaskInfo


class DistilledModel(TaskModel):
    """A compact student of an :class:`~automl.model.AutoModel`: a LightGBM or linear model behind a lean row
    encoder."""

    kind = "student"

    def __init__(self, encoder: RowEncoder, model: Any, base_score: np.ndarray, task: TaskInfo, report: DistillReport):
        self.encoder = encoder
        self.model = model  # a LightGBM booster, or a linear student (automl.serving.linear_student)
        self.base_score = base_score  # the raw score the boosting started from (LightGBM does not keep a custom one)
        self.task = task
        self.report = report

    def _raw(self, X: Any) -> np.ndarray:
        encoded = self.encoder.encode(X)
        if not len(encoded):
            width = 1 if self.task.task != "multiclass" else self.task.n_classes
            return np.empty((0, width))
        return student_scores(self.model, self.base_score, encoded)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per class of ``classes_``."""
        if self.task.task == "regression":
            raise AttributeError("predict_proba is only available for classification models")
        return _probabilities(self._raw(X), self.task.task)

    def predict(self, X: Any) -> np.ndarray:
        """Labels (original values) or regression predictions for the rows of ``X``."""
        if self.task.task == "regression":
            return self._raw(X)[:, 0]
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X: Any, y: Any, metric: str | None = None) -> float:
        """The value of ``metric`` (default: the search metric) on ``(X, y)``."""
        raw = self._raw(X)
        return get_metric(metric or self.metric, self.task.task)(encoded_truth(self.task, y, len(raw)),
                                                                 _as_prediction(raw, self.task.task))

    def export(self, path: str | Path, format: str = "onnx", X: Any = None) -> ExportReport:
        """Write the student as one ONNX graph (see :meth:`AutoModel.export`), checked on the rows ``X``.

        The student keeps no training rows: pass them (without the target).

        >>> print(student.export("student.onnx", X=X_train).describe())  # doctest: +SKIP
        """

        require_format(format)
        if X is None:
            raise ConfigError("export checks the graph on rows the student predicts, which it does not keep: "
                              "pass them, student.export(path, X=X_train)")
        prepared = self.encoder.schema.prepare(X)
        task = self.task.task
        n_classes = len(self.task.classes) if task != "regression" else 0
        member = student_member(self.model, self.base_score, task, n_classes)
        servable = Servable([member], np.ones(1), [repr(self)], self.encoder, task != "regression", n_classes,
                            list(self.task.classes) if task != "regression" else [])

        def reference(rows: pd.DataFrame) -> np.ndarray:
            encoded = self.encoder.encode_prepared(rows)
            return _as_prediction(student_scores(self.model, self.base_score, encoded), task)

        return export_onnx(servable, path, prepared, reference, format)

    def __repr__(self) -> str:
        report = self.report
        if report.student == "linear":
            shape = f"linear, penalty {report.params['alpha']:g}"
        else:
            shape = f"lightgbm {report.params.get('n_estimators')} trees x {report.params.get('num_leaves')} leaves"
        note = f"; ignores {', '.join(repr(name) for name, _ in report.ignored)}" if report.ignored else ""
        return (f"DistilledModel({self.task.task}, {shape}, {report.fidelity_name} {report.fidelity:.4f} to its "
                f"teacher{note})")


def distill(teacher: Teacher, X: Any = None, y: Any = None, *, time_budget: float = 30.0, student: str = "auto",
            seed: int = 0) -> DistilledModel:
    """A compact student trained on ``teacher``'s predictions for the training rows ``X`` and perturbed copies of them.

    Without ``X``, the rows the teacher was fitted on, which a model returned by
    ``fit`` keeps in memory (a saved and loaded one does not: pass them). ``y``
    (the true target of ``X``) is optional: with it, the report gives the
    student's own score on rows held out of its training. ``student``:
    ``"lightgbm"`` (its leaves may hold linear models where those follow the teacher more closely), ``"linear"``
    (a logistic regression on the soft targets, or a ridge regression of the values:
    :mod:`automl.serving.linear_student`) or ``"auto"`` (the default: both, keeping the one closer to the teacher
    on held-out rows). See the module docstring.
    """
    started = time.monotonic()
    if student not in STUDENTS:
        raise ConfigError(f"student must be one of {STUDENTS}, got {student!r}")
    if isinstance(time_budget, bool) or not isinstance(time_budget, (int, float)) or not time_budget > 0:
        raise ConfigError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
    task = teacher.task
    if X is None:
        kept = getattr(teacher, "training_rows", None)
        if kept is None:
            raise ConfigError("this model does not hold its training rows (a loaded model does not keep them): "
                              "pass them, model.distill(X_train, y_train)")
        prepared, y = kept
    else:
        prepared = teacher.schema.prepare(X)
    if len(prepared) < 10:
        raise DataError(f"distillation needs the training rows (at least 10), got {len(prepared)}")
    target = None if y is None else encoded_truth(task, y, len(prepared))
    rng = np.random.default_rng(seed)
    encoder = RowEncoder.fit(teacher.schema, prepared)
    holdout = rng.random(len(prepared)) < HOLDOUT_SHARE
    copies = _copies(teacher, prepared, time_budget)
    train_rows, train_targets = _labelled(teacher, encoder, prepared.loc[~holdout], copies, rng)
    valid_rows, valid_targets = _labelled(teacher, encoder, prepared.loc[holdout], copies, rng)
    search_seconds = max(0.5, SEARCH_SHARE * time_budget - (time.monotonic() - started))
    fitter = _StudentFitter(task.task, task.n_classes, encoder.categorical_indices, seed)
    candidates = []
    if student in ("auto", "linear"):  # first: it is quick, and what is left of the time goes to the tree search
        seconds = search_seconds * (LINEAR_SHARE if student == "auto" else 1.0)
        candidates.append(_linear(encoder, train_rows, train_targets, valid_rows, valid_targets, task.task, seconds))
    if student in ("auto", "lightgbm"):
        search_seconds = max(0.5, SEARCH_SHARE * time_budget - (time.monotonic() - started))
        candidates.append(fitter.search(train_rows, train_targets, valid_rows, valid_targets, search_seconds))
    candidates = [candidate for candidate in candidates if candidate is not None]
    if not candidates:
        raise ConfigError("a linear student cannot leave out a class the model never predicts: use student='lightgbm'")
    chosen = min(candidates, key=lambda candidate: candidate.loss)
    params, model, base = chosen.params, chosen.model, chosen.base
    held = encoder.encode_prepared(prepared.loc[holdout])
    originals = holdout.sum()
    student_raw = student_scores(model, base, held)
    teacher_out = valid_targets[:originals]
    fidelity, fidelity_name = _fidelity(task.task, student_raw, teacher_out)
    metric = get_metric(task.metric, task.task)
    score = teacher_score = math.nan
    if target is not None and originals:
        truth = target[holdout]
        score = metric(truth, _as_prediction(student_raw, task.task))
        teacher_score = metric(truth, teacher_out if task.task != "regression" else teacher_out[:, 0])
    all_rows = np.vstack([train_rows, valid_rows])
    all_targets = np.vstack([train_targets, valid_targets])
    # the student serves from all rows, where the budget leaves time to fit it again on them
    if time.monotonic() - started + chosen.seconds * len(all_rows) / len(train_rows) <= time_budget:
        if chosen.kind == "linear":
            model = refit(model, params["alpha"], all_rows, all_targets, task.task)
        else:
            model, base = fitter.fit(params, all_rows, all_targets)
    ignored = tuple((name, ignored_importance(teacher, prepared.loc[holdout], name, rng))
                    for name in prepared.columns if name not in encoder.columns)
    report = DistillReport(
        student=chosen.kind, params=params, rows=len(prepared), augmented_rows=len(all_rows) - len(prepared),
        fidelity=fidelity, fidelity_name=fidelity_name, score=score, teacher_score=teacher_score, metric=metric.name,
        trials=sum(candidate.trials for candidate in candidates), seconds=time.monotonic() - started,
        ignored=ignored,
    )
    log.info("distilled into %s %s: %s %.4f", chosen.kind, params, fidelity_name, fidelity)
    if any(share > IGNORED_MATTERS for _, share in ignored):
        warnings.warn(f"the student cannot follow the model everywhere: {report.describe_ignored()}. A student reads "
                      "numbers, categories and dates, not free text; serve the model itself where that column "
                      "matters", UserWarning, stacklevel=3)
    return DistilledModel(encoder, model, base, task, report)


def ignored_importance(teacher: Teacher, rows: pd.DataFrame, column: str, rng: np.random.Generator) -> float:
    """The share of ``rows`` (at most ``IMPORTANCE_ROWS``) whose teacher prediction changes when ``column`` is
    shuffled among them: its label for classification, for regression a move of more than a tenth of the
    predictions' spread."""
    rows = rows.iloc[:IMPORTANCE_ROWS]
    if len(rows) < 2:
        return 0.0
    shuffled = rows.copy()
    shuffled[column] = rows[column].to_numpy()[rng.permutation(len(rows))]
    before, after = _teacher_output(teacher, rows), _teacher_output(teacher, shuffled)
    if teacher.task.task == "regression":
        spread = float(np.std(before)) or 1.0
        return float(np.mean(np.abs(after[:, 0] - before[:, 0]) > 0.1 * spread))
    return float(np.mean(np.argmax(after, axis=1) != np.argmax(before, axis=1)))


def student_scores(model: Any, base: np.ndarray, encoded: np.ndarray) -> np.ndarray:
    """A student's raw scores (log-odds, logits or values; one column per output) for encoded rows."""
    if isinstance(model, LeanPipeline):
        return linear_scores(model, encoded) + base
    return model.predict(encoded, raw_score=True, num_threads=1).reshape(len(encoded), -1) + base


def _linear(encoder: RowEncoder, X: np.ndarray, targets: np.ndarray, X_valid: np.ndarray, valid_targets: np.ndarray,
            task: str, seconds: float) -> _Candidate | None:
    started = time.monotonic()
    fitted = fit_linear_student(encoder, X, targets, X_valid, valid_targets, task,
                                lambda raw, teacher: _fidelity_loss(task, raw, teacher), seconds)
    if fitted is None:
        return None
    student, alpha, loss, tried = fitted
    n_outputs = np.atleast_2d(student.model.coef_).shape[0]
    return _Candidate("linear", {"alpha": alpha}, student, np.zeros(n_outputs), loss,
                      (time.monotonic() - started) / tried, tried)


def _copies(teacher: Teacher, prepared: pd.DataFrame, time_budget: float) -> int:
    """How many perturbed copies of each row the budget affords: the teacher must label them in its share of it."""
    sample = prepared.iloc[: min(len(prepared), 500)]
    started = time.monotonic()
    _teacher_output(teacher, sample)
    per_row = (time.monotonic() - started) / len(sample)
    affordable = LABEL_SHARE * time_budget / max(per_row, 1e-7)
    rows = min(affordable, ROWS_PER_SECOND * time_budget, MAX_ROWS)
    return int(np.clip(rows / len(prepared) - 1, MIN_COPIES, MAX_COPIES))


def _labelled(teacher: Teacher, encoder: RowEncoder, prepared: pd.DataFrame, copies: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``prepared`` and ``copies`` perturbed copies of it, encoded, with the teacher's outputs (originals first)."""
    frames = [prepared] + [_perturbed(prepared, encoder, rng) for _ in range(copies)]
    rows = pd.concat(frames, ignore_index=True)
    return encoder.encode_prepared(rows), _teacher_output(teacher, rows)


def _perturbed(prepared: pd.DataFrame, encoder: RowEncoder, rng: np.random.Generator) -> pd.DataFrame:
    """A copy of ``prepared`` with some numeric cells moved by noise and some categorical cells from other rows."""
    copy = prepared.copy()
    n = len(copy)
    for name, mapping in zip(encoder.columns, encoder.codes):
        column = copy[name]
        if mapping is None:
            values = column.to_numpy(dtype=float, copy=True)
            spread = np.nanstd(values) if np.isfinite(values).any() else 0.0
            moved = rng.random(n) < PERTURB_SHARE
            values[moved] += rng.normal(0.0, NOISE_SCALE * spread, moved.sum())
            copy[name] = values
        else:
            swapped = np.flatnonzero(rng.random(n) < SWAP_SHARE)
            if len(swapped):
                donors = rng.integers(0, n, len(swapped))
                codes = column.cat.codes.to_numpy().copy()
                codes[swapped] = codes[donors]
                copy[name] = pd.Categorical.from_codes(codes, dtype=column.dtype)
    return copy


def _teacher_output(teacher: Teacher, prepared: pd.DataFrame) -> np.ndarray:
    """The teacher's class probabilities, or its values as one column, for prepared rows."""
    if teacher.task.task == "regression":
        return np.asarray(teacher.ensemble.predict(prepared), dtype=float).reshape(-1, 1)
    return teacher.ensemble.predict_proba(prepared, teacher.task.n_classes)


class _StudentFitter:
    """Trains a LightGBM student on the teacher's outputs: squared error on values, cross-entropy on probabilities."""

    def __init__(self, task: str, n_classes: int, categorical: list[int], seed: int):
        self.task, self.n_classes, self.categorical, self.seed = task, n_classes, categorical, seed

    def fit(self, params: dict[str, Any], X: np.ndarray, targets: np.ndarray) -> tuple[Any, np.ndarray]:
        import lightgbm

        options = {
            "num_leaves": params["num_leaves"], "min_data_in_leaf": params["min_child_samples"],
            "learning_rate": params["learning_rate"], "feature_fraction": params["colsample_bytree"],
            "lambda_l2": params["reg_lambda"], "num_threads": 1, "verbose": -1, "seed": self.seed,
            "deterministic": True, "force_row_wise": True, "linear_tree": bool(params.get("linear_tree", False)),
        }
        if self.task == "regression":
            base = np.array([float(np.mean(targets))])
            label, init = targets[:, 0], None
            options["objective"] = "regression"
        elif self.task == "binary":
            share = float(np.clip(np.mean(targets[:, 1]), 1e-6, 1 - 1e-6))
            base = np.array([math.log(share / (1 - share))])
            label, init = targets[:, 1], np.full(len(X), base[0])
            options["objective"] = "cross_entropy"
        else:
            base = np.log(np.clip(targets.mean(axis=0), 1e-6, None))
            label, init = np.zeros(len(X)), np.tile(base, (len(X), 1))
            options.update(objective=_soft_multiclass(targets), num_class=self.n_classes)
        if self.task == "regression":
            label = label - base[0]
        data = lightgbm.Dataset(X, label=label, init_score=init, categorical_feature=self.categorical or "auto",
                                free_raw_data=False)
        booster = lightgbm.train(options, data, num_boost_round=params["n_estimators"])
        # from its text alone: the custom objective (a closure over the targets) stays out of the saved student
        return lightgbm.Booster(model_str=booster.model_to_string()), base

    def search(self, X: np.ndarray, targets: np.ndarray, X_valid: np.ndarray, valid_targets: np.ndarray,
               seconds: float) -> _Candidate:
        """The most compact configuration of :data:`STUDENT_SPACE` within tolerance of the best fidelity found in
        time, with its model. A trial starts only if one as long as the longest so far would end in time."""
        deadline = time.monotonic() + seconds
        fitted: dict[int, tuple[Any, np.ndarray, float, float]] = {}
        longest = 0.0
        with quiet_optuna():
            study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=self.seed))
            study.enqueue_trial(STUDENT_SPACE.default())
            while not fitted or time.monotonic() + longest < deadline:
                trial = study.ask()
                params = suggest(trial, STUDENT_SPACE)
                started = time.monotonic()
                booster, base = self.fit(params, X, targets)
                took = time.monotonic() - started
                longest = max(longest, took)
                raw = booster.predict(X_valid, raw_score=True, num_threads=1).reshape(len(X_valid), -1) + base
                loss = _fidelity_loss(self.task, raw, valid_targets)
                fitted[trial.number] = (booster, base, loss, took)
                study.tell(trial, loss)
        done = [t for t in study.trials if t.value is not None]
        best = min(t.value for t in done)
        close = [t for t in done if t.value <= best + FIDELITY_TOLERANCE * max(abs(best), 1e-12) + 1e-12]
        chosen = min(close, key=lambda t: (t.params["n_estimators"] * t.params["num_leaves"], t.value))
        return _Candidate("lightgbm", dict(chosen.params), *fitted[chosen.number], trials=len(done))


@dataclass(frozen=True)
class _Candidate:
    """A student a search chose: its kind and parameters, its model fitted on the search's rows with its raw score's
    starting point, its fidelity loss on the held-out rows, one fit's seconds, and how many were tried."""

    kind: str
    params: dict[str, Any]
    model: Any
    base: np.ndarray
    loss: float
    seconds: float
    trials: int


def _soft_multiclass(targets: np.ndarray):
    """LightGBM's objective for cross-entropy against probabilities: softmax minus the targets, and its curvature."""

    def objective(raw: np.ndarray, data: Any) -> tuple[np.ndarray, np.ndarray]:
        probabilities = _softmax(raw)
        return probabilities - targets, np.maximum(probabilities * (1 - probabilities), 1e-6)

    return objective


def _softmax(raw: np.ndarray) -> np.ndarray:
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _probabilities(raw: np.ndarray, task: str) -> np.ndarray:
    if task == "binary":
        positive = 1.0 / (1.0 + np.exp(-raw[:, 0]))
        return np.column_stack([1 - positive, positive])
    return _softmax(raw)


def _as_prediction(raw: np.ndarray, task: str) -> np.ndarray:
    return raw[:, 0] if task == "regression" else _probabilities(raw, task)


def _fidelity_loss(task: str, raw: np.ndarray, targets: np.ndarray) -> float:
    """How far the student is from the teacher: squared error on values, cross-entropy against its probabilities."""
    if task == "regression":
        return float(np.mean((raw[:, 0] - targets[:, 0]) ** 2))
    probabilities = np.clip(_probabilities(raw, task), 1e-12, 1.0)
    return float(-np.mean(np.sum(targets * np.log(probabilities), axis=1)))


def _fidelity(task: str, raw: np.ndarray, targets: np.ndarray) -> tuple[float, str]:
    """The share of rows where the student predicts the teacher's label, or R² against the teacher's values."""
    if not len(raw):
        return math.nan, "agreement" if task != "regression" else "r2"
    if task == "regression":
        residual = np.sum((raw[:, 0] - targets[:, 0]) ** 2)
        total = np.sum((targets[:, 0] - targets[:, 0].mean()) ** 2)
        return float(1 - residual / total) if total > 0 else float(residual == 0), "r2"
    return float(np.mean(np.argmax(_probabilities(raw, task), axis=1) == np.argmax(targets, axis=1))), "agreement"
