"""Meta-learned learning rates: which learning rate suits a neural learner on a new task.

The knowledge base's neural histories (``automl kb build --neural``) hold, for
each corpus task, a few architectures each trained at a sweep of learning
rates. From them, :class:`LearningRatePrior` learns to predict the best
learning rate (as ``log10``) from the task's meta-features and the
architecture (depth, width, normalisation, residual connections, dropout,
batch size). The search then centres its learning-rate range on the
prediction (:meth:`LearningRatePrior.centred`), while a share of its samples
still come from the full range, so a wrong prediction costs little.

>>> prior = LearningRatePrior().fit(knowledge)                     # doctest: +SKIP
>>> prior.predict(meta_features, {"n_layers": 2, "width_1": 128, ...})  # doctest: +SKIP
0.0031
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.histories import LOWER_IS_BETTER, NEURAL_LEARNERS
from metaknowledge.snapshot import Knowledge
from metaknowledge.warmstart import MetaFeatureScaler
from searchspaces import SearchSpace

RATE = "learning_rate"
NORMS = ("none", "batch", "layer")
MIN_EXAMPLES = 10
DEFAULT_DECADES = 0.5  # the prior spans the prediction times / divided by 10 ** 0.5 (about 3x either way)


def architecture_features(params: Mapping[str, Any]) -> list[float]:
    """What about an architecture (and its training) plausibly moves the best learning rate."""
    depth = int(params.get("n_layers", 1))
    widths = [float(params.get(f"width_{i}", 64)) for i in range(1, depth + 1)]
    norm = params.get("norm", "none")
    return [
        float(depth),
        math.log2(max(1.0, float(np.mean(widths)))),
        *[float(norm == n) for n in NORMS],
        float(bool(params.get("residual", False))),
        float(params.get("dropout", 0.0)),
        math.log2(float(params.get("batch_size", 128))),
    ]


def _architecture_key(params: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in sorted(params.items()) if k != RATE}, default=str)


def best_learning_rates(knowledge: Knowledge) -> pd.DataFrame:
    """Per (task, architecture) of the neural histories: the learning rate that scored best.

    Columns: ``task``, ``architecture`` (its parameters but the rate),
    ``log_rate`` (log10 of the best rate), ``rates`` (how many were tried).
    """
    configs = knowledge.configs
    if configs.empty:
        return pd.DataFrame(columns=["task", "architecture", "log_rate", "rates"])
    neural = configs[configs["learner"].isin(NEURAL_LEARNERS)]
    runs = knowledge.successful_runs()
    runs = runs[runs["config_id"].isin(neural["config_id"]) & runs["score"].notna()]
    if runs.empty:
        return pd.DataFrame(columns=["task", "architecture", "log_rate", "rates"])
    params = {row.config_id: json.loads(row.params) for row in neural.itertuples()}
    rows = []
    for (task, metric), group in runs.groupby(["task", "metric"]):
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        by_architecture: dict[str, list[tuple[float, float]]] = {}
        for run in group.itertuples():
            p = params[run.config_id]
            if RATE in p:
                by_architecture.setdefault(_architecture_key(p), []).append((sign * float(run.score), float(p[RATE])))
        for architecture, scored in by_architecture.items():
            if len({rate for _, rate in scored}) >= 3:
                best = max(scored)[1]
                rows.append({"task": task, "architecture": architecture, "log_rate": math.log10(best),
                             "rates": len(scored)})
    return pd.DataFrame(rows, columns=["task", "architecture", "log_rate", "rates"])


class LearningRatePrior:
    """Gradient-boosted trees from (meta-features, architecture) to the best log10 learning rate."""

    def __init__(self, max_iter: int = 100, seed: int = 0):
        self.max_iter = max_iter
        self.seed = seed
        self.model: Any = None

    @property
    def fitted(self) -> bool:
        return self.model is not None

    def fit(self, knowledge: Knowledge) -> LearningRatePrior:
        """Learn from the neural histories; with fewer than ten examples, stay unfitted (no prior)."""
        return self.fit_examples(best_learning_rates(knowledge), knowledge.meta_feature_table(EXTRACTOR_VERSION))

    def fit_examples(self, examples: pd.DataFrame, meta_table: pd.DataFrame) -> LearningRatePrior:
        """Learn from prepared examples (leave-one-dataset-out evaluation calls this directly)."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        examples = examples[examples["task"].isin(meta_table.index)]
        self.model = None
        if len(examples) < MIN_EXAMPLES:
            return self
        self.scaler = MetaFeatureScaler(meta_table)
        meta = self.scaler.transform(meta_table.loc[examples["task"]]).to_numpy()
        architectures = np.array([architecture_features(json.loads(a)) for a in examples["architecture"]])
        self.model = HistGradientBoostingRegressor(max_iter=self.max_iter, learning_rate=0.05, min_samples_leaf=5,
                                                   random_state=self.seed)
        with threadpool_limits(1):
            self.model.fit(np.hstack([meta, architectures]), examples["log_rate"].to_numpy())
        self.range = (float(examples["log_rate"].min()), float(examples["log_rate"].max()))
        return self

    def predict(self, meta_features: Mapping[str, float], params: Mapping[str, Any]) -> float:
        """The predicted best learning rate for this task and architecture."""
        if self.model is None:
            raise RuntimeError("the learning-rate prior has no neural histories to learn from; fit it on a knowledge "
                               "base built with `automl kb build --neural`")
        row = np.hstack([self.scaler.vector(meta_features), architecture_features(params)])[None, :]
        log_rate = float(np.clip(self.model.predict(row)[0], *self.range))
        return 10.0**log_rate

    def centred(self, space: SearchSpace, meta_features: Mapping[str, float], params: Mapping[str, Any] | None = None,
                decades: float = DEFAULT_DECADES) -> SearchSpace:
        """``space`` with its learning-rate range centred on the prediction (for ``params``, else its default)."""
        rate = self.predict(meta_features, params if params is not None else space.default())
        points = [{RATE: rate * 10**-decades}, {RATE: rate * 10**decades}]
        points = [{RATE: min(max(p[RATE], space[RATE].low), space[RATE].high)} for p in points]
        return space.narrowed(points, margin=0.0)
