"""An in-memory view of one or more knowledge bases, for learning from them.

The shipped base (Parquet files inside the package) and the user's own base
(SQLite) are read into one :class:`Knowledge`, which answers the questions a
warm starter asks: the meta-features of every task, and the task x
configuration score matrix.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from searchspaces import Config


@dataclass
class Knowledge:
    """The four tables of a knowledge base (see :mod:`metaknowledge.store`), task ids replaced by names."""

    tasks: pd.DataFrame
    meta_features: pd.DataFrame
    configs: pd.DataFrame
    runs: pd.DataFrame

    @classmethod
    def combine(cls, parts: Iterable[Knowledge]) -> Knowledge:
        """One view of several bases; a task or configuration present in several appears once."""
        parts = list(parts)
        if not parts:
            return cls.empty()

        def stack(name: str, keys: list[str]) -> pd.DataFrame:
            frames = [getattr(p, name) for p in parts if len(getattr(p, name))]
            if not frames:
                return getattr(parts[0], name).iloc[:0]
            return pd.concat(frames, ignore_index=True).drop_duplicates(subset=keys, keep="first")

        return cls(
            tasks=stack("tasks", ["name"]),
            meta_features=stack("meta_features", ["task", "version", "source"]),
            configs=stack("configs", ["config_id"]),
            runs=stack("runs", ["run_key"]),
        )

    @classmethod
    def empty(cls) -> Knowledge:
        return cls(
            tasks=pd.DataFrame(columns=["name", "source", "task_type", "metric", "n_rows", "n_features", "n_classes",
                                        "status"]),
            meta_features=pd.DataFrame(columns=["task", "version", "source", "features", "seconds"]),
            configs=pd.DataFrame(columns=["config_id", "learner", "params", "space_version"]),
            runs=pd.DataFrame(columns=["run_key", "task", "config_id", "metric", "fold_scores", "score", "fit_seconds",
                                       "status", "error", "origin", "created", "engine_version", "host"]),
        )

    def without_tasks(self, names: Iterable[str]) -> Knowledge:
        """The same knowledge with some tasks removed (for leave-one-out evaluation)."""
        drop = set(names)
        return Knowledge(
            tasks=self.tasks[~self.tasks["name"].isin(drop)],
            meta_features=self.meta_features[~self.meta_features["task"].isin(drop)],
            configs=self.configs,
            runs=self.runs[~self.runs["task"].isin(drop)],
        )

    def newest_of_source(self, source: str, per_kind: int) -> Knowledge:
        """The same knowledge with at most ``per_kind`` tasks of ``source`` per task type (the newest), and every
        task of another source: a bound on what is learned from a base that grows without end."""
        mine = self.tasks[self.tasks["source"] == source]
        dropped = [name for _, group in mine.groupby(mine["task_type"].fillna(""))
                   for name in group.sort_values("created", ascending=False)["name"].iloc[per_kind:]]
        return self.without_tasks(dropped) if dropped else self

    def meta_feature_table(self, version: str, source: str = "automl") -> pd.DataFrame:
        """Tasks x meta-features of one extractor version (index: task name)."""
        rows = self.meta_features[(self.meta_features["version"] == version) & (self.meta_features["source"] == source)]
        frame = pd.DataFrame([json.loads(f) for f in rows["features"]], index=list(rows["task"]), dtype=float)
        frame.index.name = "task"
        return frame.sort_index()

    def successful_runs(self, metric: str | None = None) -> pd.DataFrame:
        runs = self.runs[(self.runs["status"] == "ok") & self.runs["score"].notna()]
        if metric is not None:
            runs = runs[runs["metric"] == metric]
        task_types = self.tasks.set_index("name")["task_type"]
        return runs.assign(task_type=runs["task"].map(task_types))

    def score_matrix(self, metric: str | None = None, task_type: str | None = None) -> pd.DataFrame:
        """Tasks x configurations: mean score of successful runs (NaN where none)."""
        runs = self.successful_runs(metric)
        if task_type is not None:
            runs = runs[runs["task_type"] == task_type]
        return runs.pivot_table(index="task", columns="config_id", values="score", aggfunc="mean")

    def config(self, config_id: str) -> Config:
        row = self.configs[self.configs["config_id"] == config_id].iloc[0]
        return Config(row["learner"], json.loads(row["params"]))

    def configs_by_id(self, ids: Collection[str] | None = None) -> dict[str, Config]:
        """The configurations (of ``ids`` only, if given) by id."""
        rows = self.configs if ids is None else self.configs[self.configs["config_id"].isin(set(ids))]
        return {row.config_id: Config(row.learner, json.loads(row.params)) for row in rows.itertuples()}

    def info(self) -> dict[str, Any]:
        """Counts for ``automl kb info``."""
        per_task = self.runs.groupby("task")["config_id"].nunique()
        ok_tasks = self.tasks[self.tasks["status"] == "ok"] if "status" in self.tasks else self.tasks
        return {
            "tasks": int(len(self.tasks)),
            "tasks_by_source": {str(k): int(v) for k, v in self.tasks["source"].value_counts().items()},
            "tasks_by_type": {str(k): int(v) for k, v in ok_tasks["task_type"].value_counts().items()},
            "failed_tasks": int(len(self.tasks) - len(ok_tasks)),
            "configurations": int(len(self.configs)),
            "runs": int(len(self.runs)),
            "successful_runs": int((self.runs["status"] == "ok").sum()),
            "configurations_per_task": {
                "min": int(per_task.min()) if len(per_task) else 0,
                "median": float(np.median(per_task)) if len(per_task) else 0.0,
                "max": int(per_task.max()) if len(per_task) else 0,
            },
            "tasks_with_100_or_more": int((per_task >= 100).sum()),
            "meta_feature_versions": {str(k): int(v) for k, v in self.meta_features["version"].value_counts().items()},
            "contributors": self.contributors(),
        }

    def contributors(self) -> dict[str, dict[str, Any]]:
        """Per host that wrote runs (the shipped corpus runs have none): tasks, runs and the last write, newest
        first; what a team's shared base shows in ``automl kb info``."""
        if "host" not in self.runs:
            return {}
        written = self.runs[self.runs["host"].fillna("").astype(str) != ""]
        by_host = written.groupby("host").agg(tasks=("task", "nunique"), runs=("run_key", "size"),
                                              last=("created", "max")).sort_values("last", ascending=False)
        return {str(host): {"tasks": int(row.tasks), "runs": int(row.runs),
                            "last_write": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.last))}
                for host, row in by_host.iterrows()}
