"""How long a known configuration takes to evaluate on a new dataset, from the seconds it took on past tasks.

A warm start that suggests a 500-tree forest first can spend a 10-second
budget on two trials; knowing each suggestion's likely cost lets the search
keep the good suggestions it can afford. The model is deliberately simple and
fitted in milliseconds::

    log(seconds) = own_cost[config] + row_slope[learner] * log(rows) + feature_slope[learner] * log(features)

one intercept per configuration (its cost on a typical task) and slopes per
learner (forests barely slow down from 100 to 3000 rows, kernel SVMs do),
fitted by least squares on every recorded run. On the corpus knowledge base
this explains 60 % of the within-configuration variance; a prediction is
typically within a factor of two, which is enough to tell a 0.1-second
configuration from a 5-second one.

Slopes fitted on small data understate how costs grow far beyond it (a
forest's fixed overheads dominate at 3,000 rows, its trees at 30,000): past
the rows the histories were measured on, costs grow at least in proportion
to the rows.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from metaknowledge.snapshot import Knowledge
from searchspaces import Config

MIN_SECONDS = 1e-3  # recorded times below this are timer noise
MIN_RUNS_FOR_SLOPES = 30  # a learner with fewer timed runs gets the slopes of all learners together


class CostModel:
    """Predicts a configuration's trial seconds (all folds) on a dataset of a given size."""

    def __init__(self) -> None:
        self.own_cost: dict[str, float] = {}
        self.slopes: dict[str, tuple[float, float]] = {}  # learner -> (rows, features) slopes of log seconds
        self.shared_slopes = (1.0, 0.0)
        self.largest_rows: int | None = None  # the most rows a recorded run was evaluated on

    @property
    def fitted(self) -> bool:
        return bool(self.own_cost)

    def fit(self, knowledge: Knowledge, rows_cap: int | None = None, kept: Collection[str] | None = None) -> CostModel:
        """Learn from every run with a recorded time; ``rows_cap``: rows the histories were evaluated on at most.

        Every run teaches the slopes; the own cost of a configuration is kept for those of ``kept`` only, if
        given (the ones a warm start can suggest), so that the model does not grow with every search's samples.
        """
        runs = knowledge.runs[["task", "config_id", "fit_seconds"]].dropna()
        sizes = knowledge.tasks.set_index("name")[["n_rows", "n_features"]]
        runs = runs.join(sizes, on="task").dropna()
        learner_of = knowledge.configs.set_index("config_id")["learner"]
        runs = runs[(runs["fit_seconds"] > 0) & runs["config_id"].isin(learner_of.index)]
        rows = runs["n_rows"].clip(upper=rows_cap) if rows_cap else runs["n_rows"]
        self.largest_rows = int(rows.max()) if len(rows) else None
        frame = pd.DataFrame({
            "config": runs["config_id"].to_numpy(),
            "learner": runs["config_id"].map(learner_of).to_numpy(),
            "rows": np.log(rows.clip(lower=1).to_numpy(dtype=float)),
            "features": np.log(runs["n_features"].clip(lower=1).to_numpy(dtype=float)),
            "seconds": np.log(runs["fit_seconds"].clip(lower=MIN_SECONDS).to_numpy(dtype=float)),
        })
        if frame.empty:
            return self
        centred = (frame[["rows", "features", "seconds"]]
                   - frame.groupby("config")[["rows", "features", "seconds"]].transform("mean"))
        self.shared_slopes = _slopes(centred, self.shared_slopes)
        for learner, index in frame.groupby("learner").groups.items():
            if len(index) >= MIN_RUNS_FOR_SLOPES:
                self.slopes[str(learner)] = _slopes(centred.loc[index], self.shared_slopes)
        row_slope, feature_slope = np.array([self._slopes_of(name) for name in frame["learner"]]).T
        own = frame["seconds"] - row_slope * frame["rows"] - feature_slope * frame["features"]
        if kept is not None:
            own = own[frame["config"].isin(set(kept)).to_numpy()]
        self.own_cost = {str(cid): float(v) for cid, v in own.groupby(frame["config"]).mean().items()}
        return self

    def _slopes_of(self, learner: str) -> tuple[float, float]:
        return self.slopes.get(learner, self.shared_slopes)

    def predict(self, config: Config, n_rows: int, n_features: int) -> float | None:
        """Expected seconds for one trial of ``config`` on ``n_rows`` x ``n_features``; None if never seen."""
        own = self.own_cost.get(config.key())
        if own is None:
            return None
        row_slope, feature_slope = self._slopes_of(config.learner)
        rows = max(n_rows, 1)
        within = min(rows, self.largest_rows or rows)  # the part of the rows the fitted slopes have seen
        seconds = np.exp(own + row_slope * np.log(within) + feature_slope * np.log(max(n_features, 1)))
        return float(seconds * (rows / within) ** max(row_slope, 1.0))


def _slopes(centred: pd.DataFrame, fallback: tuple[float, float]) -> tuple[float, float]:
    """Least-squares slopes of centred log seconds on centred log rows and log features."""
    slopes, *_ = np.linalg.lstsq(centred[["rows", "features"]].to_numpy(), centred["seconds"].to_numpy(), rcond=None)
    return ((float(slopes[0]), float(slopes[1])) if np.all(np.isfinite(slopes)) and np.abs(slopes).sum() > 0
            else fallback)
