"""Task histories in the form warm starters learn from: normalised score matrices.

Raw scores are not comparable across tasks (an AUC of 0.8 may be the best on
one task and poor on another; some metrics are better low), so each task's
scores are normalised among its own candidates: 1 = the task's best
configuration, 0 = its median one, worse than the median clipped to 0. This
is also how warm-start suggestions are judged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaknowledge.snapshot import Knowledge
from searchspaces import Config

# Metrics whose lower values are better; every other metric is better high.
# (tests/knowledge/test_warmstart.py checks this agrees with automl.search.metrics.)
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mse", "mae", "root_mean_squared_error", "mean_absolute_error"})
KINDS = {"binary": "classification", "multiclass": "classification", "regression": "regression"}
# Swept over learning rates by `automl kb build --neural`: the learning-rate model learns from their histories, the
# configuration warm starters do not (a different candidate design, which would shift every task's normalisation).
NEURAL_LEARNERS = ("mlp",)


def normalise(scores: pd.Series, metric: str) -> pd.Series:
    """One task's scores mapped to [0, 1]: 1 = best, 0 = median or worse."""
    frame = pd.DataFrame([scores.to_numpy()], index=["task"], columns=scores.index)
    return normalise_rows(frame, pd.Series({"task": metric})).iloc[0].rename(scores.name)


def normalise_rows(scores: pd.DataFrame, metrics: pd.Series) -> pd.DataFrame:
    """Each row (a task's scores, NaN where not run) normalised as :func:`normalise` does, in one pass."""
    values = scores.to_numpy(dtype=float, copy=True)
    if values.size == 0:
        return scores.astype(float)
    flip = metrics.reindex(scores.index).isin(LOWER_IS_BETTER).to_numpy()
    values[flip] *= -1
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        best = np.nanmax(values, axis=1, keepdims=True)
        median = np.nanmedian(values, axis=1, keepdims=True)
        spread = best - median
        tied = spread <= 1e-12
        out = np.where(tied, (values >= best - 1e-12).astype(float),
                       np.clip((values - median) / np.where(tied, 1.0, spread), 0.0, None))
    out[np.isnan(values) | ~np.isfinite(best)] = np.nan
    return pd.DataFrame(out, index=scores.index, columns=scores.columns)


@dataclass
class Histories:
    """Normalised scores (tasks x configurations) of one task kind, and what is known about the rows and columns.

    The raw mean scores and each task's metric are kept too, so that the histories of some learners only
    (:meth:`of_learners`) are normalised among those learners' configurations alone.
    """

    kind: str
    normalised: pd.DataFrame  # index: task name, columns: config id
    task_types: pd.Series  # task name -> binary / multiclass / regression
    configs: dict[str, Config]
    scores: pd.DataFrame  # the raw mean scores, shaped as ``normalised``
    metrics: pd.Series  # task name -> metric

    @classmethod
    def from_knowledge(cls, knowledge: Knowledge, kind: str, learners: set[str] | None = None) -> Histories:
        """Histories of every task of ``kind`` in ``knowledge`` (foreign and unknown learners left out)."""
        tasks = knowledge.tasks
        tasks = tasks[tasks["task_type"].map(KINDS) == kind]
        configs = {cid: c for cid, c in knowledge.configs_by_id().items() if learners is None or c.learner in learners}
        runs = knowledge.successful_runs()
        runs = runs[runs["task"].isin(tasks["name"]) & runs["config_id"].isin(configs.keys())]
        metric_of = tasks.set_index("name")["metric"]
        runs = runs[runs["metric"] == runs["task"].map(metric_of)]
        mean = runs.groupby(["task", "config_id"])["score"].mean().unstack()
        mean.index.name = "task"
        task_types = tasks.set_index("name")["task_type"].reindex(mean.index)
        return cls.of_scores(kind, mean, task_types, {cid: configs[cid] for cid in mean.columns},
                             metric_of.reindex(mean.index))

    @classmethod
    def of_scores(cls, kind: str, scores: pd.DataFrame, task_types: pd.Series, configs: dict[str, Config],
                  metrics: pd.Series) -> Histories:
        """Histories of raw mean ``scores`` (tasks x config ids), normalised per task among these columns."""
        normalised = normalise_rows(scores, metrics)
        normalised.index.name = "task"
        return cls(kind, normalised, task_types, configs, scores, metrics)

    def learners(self) -> set[str]:
        """The learners with at least one configuration in these histories."""
        return {config.learner for config in self.configs.values()}

    def of_learners(self, learners: set[str]) -> Histories:
        """The histories of ``learners``' configurations only, each task normalised among them.

        A search over some learners should learn from how those compare with each other: a learner it will
        not run would otherwise move every task's best and median, and take portfolio places.
        """
        kept = [cid for cid in self.scores.columns if self.configs[cid].learner in learners]
        scores = self.scores[kept].dropna(how="all")
        return Histories.of_scores(self.kind, scores, self.task_types.reindex(scores.index),
                                   {cid: self.configs[cid] for cid in kept}, self.metrics.reindex(scores.index))

    def without(self, task: str) -> Histories:
        return Histories(self.kind, self.normalised.drop(index=task, errors="ignore"),
                         self.task_types.drop(task, errors="ignore"), self.configs,
                         self.scores.drop(index=task, errors="ignore"), self.metrics.drop(task, errors="ignore"))

    def mean_score(self) -> pd.Series:
        """Each configuration's average normalised score over the tasks that ran it (best first)."""
        return self.normalised.mean(axis=0).sort_values(ascending=False)


def best_of_first(order: list[str], normalised_row: pd.Series, ks: tuple[int, ...]) -> dict[int, float]:
    """The best normalised score among the first k configurations of ``order``, for each k."""
    known = [normalised_row.get(cid, np.nan) for cid in order]
    out = {}
    for k in ks:
        head = [v for v in known[:k] if np.isfinite(v)]
        out[k] = float(max(head)) if head else 0.0
    return out
