"""The evaluation protocol of ../shared/BENCHMARK.md: splits, metrics, scores, ranks.

Outer split: ``train_test_split(test_size=0.25, random_state=seed)``, stratified
for classification. Metric per task: ROC AUC (binary), log loss (multiclass),
RMSE (regression); accuracy or R² is recorded beside it. Normalised score per
dataset: 0 = the constant predictor, 1 = the best test result of any system in
the same run (over all its budgets, so budgets are comparable), lower-is-better
metrics flipped. A failure, or a run more than 10 % over its budget, scores 0
and takes the worst rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.model_selection import train_test_split

from automl.search.metrics import get_metric

TEST_SIZE = 0.25
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
READABLE = {"binary": "accuracy", "multiclass": "accuracy", "regression": "r2"}
OVERRUN_TOLERANCE = 0.10
CATEGORICAL_TYPES = {"categorical", "nominal"}


@dataclass
class Split:
    """One dataset split for one seed, as every system sees it."""

    name: str
    task: str  # binary, multiclass or regression
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    categorical: list[str]
    classes: np.ndarray  # every label of the dataset, sorted: the columns of a probability prediction

    @property
    def kind(self) -> str:
        return "regression" if self.task == "regression" else "classification"

    @property
    def metric(self) -> str:
        return METRIC[self.task]


def load_split(directory: str | Path, name: str, seed: int) -> Split:
    """Read ``NAME.tsv.gz`` and ``NAME.yaml`` from a PMLB-layout directory and split them."""
    directory = Path(directory)
    frame = pd.read_csv(directory / f"{name}.tsv.gz", sep="\t")
    meta = yaml.safe_load((directory / f"{name}.yaml").read_text())
    y = frame.pop("target").to_numpy()
    categorical = [str(f["name"]) for f in meta.get("features", []) if str(f.get("type")).lower() in CATEGORICAL_TYPES]
    if meta["task"] == "regression":
        task, stratify, classes = "regression", None, np.array([])
        y = y.astype(float)
    else:
        classes = np.unique(y)
        task = "binary" if len(classes) == 2 else "multiclass"
        counts = np.unique(y, return_counts=True)[1]
        stratify = y if counts.min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        frame, y, test_size=TEST_SIZE, random_state=seed, stratify=stratify
    )
    return Split(name, task, X_train.reset_index(drop=True), X_test.reset_index(drop=True), y_train, y_test,
                 categorical, classes)


def align_proba(proba: np.ndarray, model_classes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Probabilities over ``model_classes`` as columns over all of ``classes``."""
    full = np.zeros((len(proba), len(classes)))
    full[:, np.searchsorted(classes, model_classes)] = proba
    return full


def constant_prediction(split: Split) -> np.ndarray:
    """Training class priors, or the training mean, for every test row."""
    if split.task == "regression":
        return np.full(len(split.y_test), float(np.mean(split.y_train)))
    priors = np.array([(split.y_train == c).mean() for c in split.classes])
    return np.tile(priors, (len(split.y_test), 1))


def score(split: Split, prediction: np.ndarray) -> tuple[float, float]:
    """The task's metric and the readable one (accuracy or R²) on the test part."""
    if split.task == "regression":
        y = split.y_test.astype(float)
    else:
        y = np.searchsorted(split.classes, split.y_test)
    metric = get_metric(METRIC[split.task], split.task)(y, prediction)
    readable = get_metric(READABLE[split.task], split.task)(y, prediction)
    return metric, readable


def greater_is_better(task: str) -> bool:
    return get_metric(METRIC[task], task).greater_is_better


def add_scores(results: pd.DataFrame, budget_free: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Add ``failed``, ``normalized`` and ``rank`` columns (see the module docstring).

    ``results`` has one row per (system, dataset, seed, budget) with columns
    ``status``, ``value``, ``const_value``, ``task``, ``wall_seconds`` and ``budget``.
    Rows of systems that were not available are left out of scoring. Systems in
    ``budget_free`` take no budget (fixed models), so they cannot overrun one.
    """
    frame = results.copy()
    scored = frame["status"].isin(["ok", "failed", "timeout", "overrun"])
    overrun = (frame["wall_seconds"] > frame["budget"] * (1 + OVERRUN_TOLERANCE)) & ~frame["system"].isin(budget_free)
    late = scored & (frame["status"] == "ok") & overrun
    frame.loc[late, "status"] = "overrun"
    frame["error"] = frame["error"].astype(object) if "error" in frame else ""
    frame.loc[late, "error"] = [f"took {w:.1f} s, more than {100 * OVERRUN_TOLERANCE:.0f} % over its {b:g} s budget"
                                for w, b in zip(frame.loc[late, "wall_seconds"], frame.loc[late, "budget"])]
    frame["failed"] = scored & (frame["status"] != "ok")
    sign = np.where(frame["task"].map(greater_is_better), 1.0, -1.0)
    signed = sign * frame["value"].astype(float)
    frame["signed"] = signed.where(~frame["failed"] & scored)
    frame["signed_const"] = sign * frame["const_value"].astype(float)
    best = frame[scored].groupby(["dataset", "seed"])["signed"].transform("max")
    frame["best_signed"] = best.reindex(frame.index)
    gap = frame["best_signed"] - frame["signed_const"]
    normalized = (frame["signed"] - frame["signed_const"]) / gap.where(gap.abs() > 1e-12)
    frame["normalized"] = normalized.where(~frame["failed"], 0.0).fillna(0.0).where(scored)
    frame["rank"] = np.nan
    for _, group in frame[scored].groupby(["dataset", "seed", "budget"]):
        worst = float(len(group))
        ranks = group["signed"].rank(ascending=False, method="average")
        frame.loc[group.index, "rank"] = ranks.where(~group["failed"], worst)
    return frame.drop(columns=["signed", "signed_const", "best_signed"])
