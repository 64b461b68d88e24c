"""Task histories in the form warm starters learn from: normalised score matrices.

Raw scores are not comparable across tasks (an AUC of 0.8 may be the best on
one task and poor on another; some metrics are better low), so each task's
scores are normalised among its own candidates: 1 = the task's best
configuration, 0 = its median one, worse than the median clipped to 0. This
is also how warm-start suggestions are judged.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

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
MIN_SHARED_TASKS = 2  # a configuration that fewer tasks of a kind ran is kept only among its task's best ...
SHARED_SHARE = 0.01  # ... as is one that fewer than this share of them ran (a chance repeat among many searches) ...
OWN_BEST = 3  # ... of which each task keeps this many


def shared_configs(ids: pd.Index, n_tasks: int) -> np.ndarray:
    """Which of ``ids`` (the config id of each run of ``n_tasks`` tasks, one per task and configuration) belong
    to configurations shared across tasks: run on at least ``MIN_SHARED_TASKS`` of them and ``SHARED_SHARE``.

    >>> shared_configs(pd.Index(["a", "a", "b"]), 2).tolist()
    [True, True, False]
    """
    counts = ids.value_counts()
    least = max(MIN_SHARED_TASKS, int(np.ceil(SHARED_SHARE * n_tasks)))
    return ids.isin(counts.index[counts >= least])


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

    The matrix holds the configurations that several tasks ran (the corpus's candidates, portfolio members,
    defaults). A configuration only one task ran (a search's own samples) is kept only among that task's best
    (``own``, long form: ``OWN_BEST`` per task): without that, a base of many users' searches would grow as
    tasks x configurations, where now it grows with the tasks alone.
    """

    kind: str
    normalised: pd.DataFrame  # index: task name, columns: config id
    task_types: pd.Series  # task name -> binary / multiclass / regression
    configs: dict[str, Config]
    scores: pd.DataFrame  # the raw mean scores, shaped as ``normalised``
    metrics: pd.Series  # task name -> metric
    own: pd.DataFrame = field(default_factory=lambda: _own_frame([]))  # task, config_id, score, normalised

    @classmethod
    def from_knowledge(cls, knowledge: Knowledge, kind: str, learners: set[str] | None = None) -> Histories:
        """Histories of every task of ``kind`` in ``knowledge`` (foreign and unknown learners left out)."""
        tasks = knowledge.tasks
        tasks = tasks[tasks["task_type"].map(KINDS) == kind]
        learner_of = knowledge.configs.set_index("config_id")["learner"]
        if learners is not None:
            learner_of = learner_of[learner_of.isin(learners)]
        runs = knowledge.successful_runs()
        runs = runs[runs["task"].isin(tasks["name"]) & runs["config_id"].isin(learner_of.index)]
        metric_of = tasks.set_index("name")["metric"]
        runs = runs[runs["metric"] == runs["task"].map(metric_of)]
        mean = runs.groupby(["task", "config_id"])["score"].mean()
        return cls.of_long(kind, mean, tasks.set_index("name")["task_type"], knowledge.configs_by_id, metric_of)

    @classmethod
    def of_long(cls, kind: str, mean: pd.Series, task_types: pd.Series,
                configs_of: Callable[[Collection[str]], dict[str, Config]], metrics: pd.Series) -> Histories:
        """Histories of raw mean scores in long form (index: task, config_id), each task normalised among all its
        configurations, then split into the shared matrix and each task's own best. ``configs_of(ids)``: the
        configurations of those ids (only the kept ones are read)."""
        if mean.empty:
            return cls.of_scores(kind, pd.DataFrame(index=pd.Index([], name="task"), dtype=float),
                                 task_types.iloc[:0], {}, metrics.iloc[:0])
        all_tasks = pd.Index(sorted(set(mean.index.get_level_values("task"))), name="task")
        normalised = normalise_long(mean, metrics)
        ids = mean.index.get_level_values("config_id")
        shared = shared_configs(ids, len(all_tasks))
        scores = mean[shared].unstack().reindex(all_tasks)
        matrix = normalised[shared].unstack().reindex(index=all_tasks, columns=scores.columns)
        own = _own_frame([mean[~shared], normalised[~shared]])
        kept = [*scores.columns, *own["config_id"]]
        configs = configs_of(kept)
        return cls(kind, matrix, task_types.reindex(all_tasks), {cid: configs[cid] for cid in kept}, scores,
                   metrics.reindex(all_tasks), own)

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
        """The histories of ``learners``' configurations only, each task normalised among them (among the
        configurations kept: the shared ones and the task's own best).

        A search over some learners should learn from how those compare with each other: a learner it will
        not run would otherwise move every task's best and median, and take portfolio places.
        """
        long = pd.concat([self.scores.stack(), self.own.set_index(["task", "config_id"])["score"]])
        long = long[np.array([self.configs[cid].learner in learners for cid in long.index.get_level_values(1)],
                             dtype=bool)]
        long.index.names = ["task", "config_id"]
        if long.empty:
            return Histories.of_scores(self.kind, self.scores.iloc[:0, :0], self.task_types.iloc[:0], {},
                                       self.metrics.iloc[:0])
        own_ids = set(self.own["config_id"])
        shared = ~long.index.get_level_values("config_id").isin(own_ids)
        normalised = normalise_long(long, self.metrics)
        scores = long[shared].unstack()
        tasks = pd.Index(sorted(set(long.index.get_level_values("task"))), name="task")
        own = _own_frame([long[~shared], normalised[~shared]], best=None)
        return Histories(self.kind, normalised[shared].unstack().reindex(index=tasks, columns=scores.columns),
                         self.task_types.reindex(tasks),
                         {cid: self.configs[cid] for cid in [*scores.columns, *own["config_id"]]},
                         scores.reindex(tasks), self.metrics.reindex(tasks), own)

    def without(self, task: str) -> Histories:
        return Histories(self.kind, self.normalised.drop(index=task, errors="ignore"),
                         self.task_types.drop(task, errors="ignore"), self.configs,
                         self.scores.drop(index=task, errors="ignore"), self.metrics.drop(task, errors="ignore"),
                         self.own[self.own["task"] != task])

    def normalised_row(self, task: str) -> pd.Series:
        """One task's normalised scores: the shared configurations', then its own best."""
        own = self.own[self.own["task"] == task]
        row = self.normalised.loc[task]
        return pd.concat([row, pd.Series(own["normalised"].to_numpy(), index=own["config_id"])]) if len(own) else row

    def long(self, tasks: list[str]) -> pd.Series:
        """The normalised scores of ``tasks`` in long form (task, config id), shared and own alike, known ones only."""
        own = self.own[self.own["task"].isin(tasks)].set_index(["task", "config_id"])["normalised"]
        return pd.concat([self.normalised.loc[tasks].stack().dropna(), own])

    def mean_score(self) -> pd.Series:
        """Each configuration's average normalised score over the tasks that ran it (best first)."""
        return self.normalised.mean(axis=0).sort_values(ascending=False)


def normalise_long(mean: pd.Series, metrics: pd.Series) -> pd.Series:
    """:func:`normalise_rows` on scores in long form (index: task, config_id): 1 = the task's best, 0 = its median
    or worse."""
    values = mean.to_numpy(dtype=float, copy=True)
    tasks = mean.index.get_level_values("task")
    values[metrics.reindex(tasks).isin(LOWER_IS_BETTER).to_numpy()] *= -1
    grouped = pd.Series(values, index=mean.index).groupby(level="task")
    best, median = grouped.transform("max").to_numpy(), grouped.transform("median").to_numpy()
    spread = best - median
    tied = spread <= 1e-12
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(tied, (values >= best - 1e-12).astype(float),
                       np.clip((values - median) / np.where(tied, 1.0, spread), 0.0, None))
    return pd.Series(out, index=mean.index)


def _own_frame(parts: list[pd.Series], best: int | None = OWN_BEST) -> pd.DataFrame:
    """Each task's own configurations (``parts``: their raw and normalised scores in long form), its ``best`` best
    (all with None), as rows of task, config_id, score, normalised."""
    if not parts or parts[0].empty:
        return pd.DataFrame({"task": pd.Series(dtype=str), "config_id": pd.Series(dtype=str),
                             "score": pd.Series(dtype=float), "normalised": pd.Series(dtype=float)})
    raw, normalised = parts
    frame = pd.DataFrame({"task": raw.index.get_level_values("task"), "config_id": raw.index.get_level_values(1),
                          "score": raw.to_numpy(), "normalised": normalised.to_numpy()})
    frame = frame.sort_values(["task", "normalised"], ascending=[True, False], kind="stable")
    return (frame.groupby("task").head(best) if best is not None else frame).reset_index(drop=True)


def best_of_first(order: list[str], normalised_row: pd.Series, ks: tuple[int, ...]) -> dict[int, float]:
    """The best normalised score among the first k configurations of ``order``, for each k."""
    known = [normalised_row.get(cid, np.nan) for cid in order]
    out = {}
    for k in ks:
        head = [v for v in known[:k] if np.isfinite(v)]
        out[k] = float(max(head)) if head else 0.0
    return out
