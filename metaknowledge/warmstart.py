"""Warm starters: from a new dataset's meta-features to the configurations that start its search.

Every warm starter learns from normalised task histories (see
:mod:`metaknowledge.histories`) and ranks a pool of configurations for a new
task. Several approaches stand side by side, chosen by leave-one-dataset-out
measurement (``benchmarks/warmstart.py``):

- :class:`NearestDatasets` (auto-sklearn): the tasks closest in scaled
  meta-feature space, and the configurations that did best on them;
- :class:`GreedyPortfolio` (auto-sklearn 2.0, AutoGluon): configurations that
  together do best across all tasks, independent of the new one;
- :class:`LearnedRanker`: gradient-boosted trees over (meta-features,
  configuration) predicting the normalised score, so it can also rank
  configurations nobody has run;
- :class:`Blend`: the rank-average of several of these.

>>> starter = NearestDatasets().fit(knowledge)                        # doctest: +SKIP
>>> starter.suggest(meta_features, "binary", k=5)                     # doctest: +SKIP
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.histories import KINDS, NEURAL_LEARNERS, Histories
from metaknowledge.snapshot import Knowledge
from searchspaces import Config, SearchSpace, get_learner, learner_names

CLIP = 5.0


@dataclass(frozen=True)
class Suggestion:
    """A configuration to try, the method that proposed it, and how much it preferred it (higher first)."""

    config: Config
    method: str
    score: float


class MetaFeatureScaler:
    """Robust scaling of meta-features: (x - median) / IQR, missing as the median, clipped."""

    def __init__(self, table: pd.DataFrame):
        numeric = table.astype(float).replace([np.inf, -np.inf], np.nan)
        keep = numeric.columns[numeric.notna().mean() > 0.5]
        self.columns = list(keep)
        self.median = numeric[keep].median()
        spread = numeric[keep].quantile(0.75) - numeric[keep].quantile(0.25)
        self.spread = spread.where(spread > 1e-12, numeric[keep].std().where(lambda s: s > 1e-12, 1.0))

    def transform(self, table: pd.DataFrame) -> pd.DataFrame:
        values = table.reindex(columns=self.columns).astype(float).replace([np.inf, -np.inf], np.nan)
        scaled = ((values - self.median) / self.spread).fillna(0.0).clip(-CLIP, CLIP)
        return scaled

    def vector(self, meta_features: Mapping[str, float]) -> np.ndarray:
        return self.transform(pd.DataFrame([dict(meta_features)])).to_numpy()[0]


_last_scaled: list[tuple[pd.DataFrame, MetaFeatureScaler | None, pd.DataFrame]] = []


def scaled_meta_table(meta_table: pd.DataFrame) -> tuple[MetaFeatureScaler | None, pd.DataFrame]:
    """The scaler of ``meta_table`` and the table scaled by it, made once per table and shared by every starter
    fitted on it: a prepared state of many starters then holds one scaled table, not one each (at 10,000 tasks,
    tens of megabytes fewer to load)."""
    if _last_scaled and _last_scaled[0][0] is meta_table:
        return _last_scaled[0][1], _last_scaled[0][2]
    scaler = MetaFeatureScaler(meta_table) if len(meta_table) else None
    scaled = scaler.transform(meta_table) if scaler is not None else meta_table
    _last_scaled[:] = [(meta_table, scaler, scaled)]
    return scaler, scaled


def starter_learners() -> set[str]:
    """The learners whose histories warm starters learn from: every registered one but the neural ones."""
    return set(learner_names()) - set(NEURAL_LEARNERS)


def prepared(knowledge: Knowledge) -> tuple[dict[str, Histories], pd.DataFrame]:
    """What every warm starter learns from: histories per task kind, and the meta-feature table."""
    learners = starter_learners()
    histories = {kind: Histories.from_knowledge(knowledge, kind, learners) for kind in ("classification", "regression")}
    return histories, knowledge.meta_feature_table(EXTRACTOR_VERSION)


class WarmStarter(ABC):
    """``fit(knowledge)``, then ``suggest(meta_features, task_type, k)`` -> ranked suggestions."""

    name = "warm"

    def fit(self, knowledge: Knowledge) -> WarmStarter:
        """Learn from every task of the knowledge base that has our meta-features."""
        return self.fit_histories(*prepared(knowledge))

    def fit_histories(self, histories: Mapping[str, Histories], meta_table: pd.DataFrame) -> WarmStarter:
        """Learn from prepared histories (leave-one-out evaluation calls this directly)."""
        self.histories = dict(histories)
        self.scaler, self.meta = scaled_meta_table(meta_table)
        self._fit()
        return self

    def _fit(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Extra learning beyond the histories (default: none)."""

    def suggest(
        self,
        meta_features: Mapping[str, float],
        task_type: str,
        k: int = 10,
        learners: Collection[str] | None = None,
        candidates: Sequence[Config] | None = None,
    ) -> list[Suggestion]:
        """The ``k`` configurations to try first, best first.

        ``learners`` limits them to some learners; ``candidates`` to a given
        pool (by default: every configuration in the histories of this kind).
        """
        kind = KINDS[task_type]
        history = self.histories.get(kind)
        if history is None or not history.configs:  # (a base of searches alone has its tasks' own best only)
            return []
        pool = list(candidates) if candidates is not None else list(history.configs.values())
        if learners is not None:
            pool = [c for c in pool if c.learner in set(learners)]
        if not pool:
            return []
        scores = self._scores(meta_features, task_type, pool)
        order = sorted(range(len(pool)), key=lambda i: (-scores[i], i))
        seen: set[str] = set()
        ranked = []
        for i in order:
            if pool[i].key() not in seen and np.isfinite(scores[i]):
                seen.add(pool[i].key())
                ranked.append(Suggestion(pool[i], self.name, float(scores[i])))
        return ranked[:k]

    @abstractmethod
    def _scores(self, meta_features: Mapping[str, float], task_type: str, pool: list[Config]) -> np.ndarray:
        """A preference score per pool configuration (higher first; NaN: no opinion)."""

    def _query(self, meta_features: Mapping[str, float]) -> np.ndarray:
        return self.scaler.vector(meta_features) if self.scaler is not None else np.zeros(0)


class NearestDatasets(WarmStarter):
    """The best configurations of the most similar tasks (distance-weighted average of their normalised scores)."""

    name = "nearest"

    def __init__(self, n_neighbors: int = 8):
        self.n_neighbors = n_neighbors

    def neighbours(self, meta_features: Mapping[str, float], task_type: str) -> list[tuple[str, float]]:
        """The known tasks nearest to ``meta_features`` (in scaled meta-feature space), nearest first, with
        distances."""
        history = self.histories.get(KINDS[task_type])
        tasks = [] if history is None else [t for t in history.normalised.index if t in self.meta.index]
        if not tasks:
            return []
        distance = np.sqrt(((self.meta.loc[tasks].to_numpy() - self._query(meta_features)) ** 2).sum(axis=1))
        nearest = np.argsort(distance)[: self.n_neighbors]
        return [(str(tasks[i]), float(distance[i])) for i in nearest]

    def _scores(self, meta_features, task_type, pool):
        history = self.histories[KINDS[task_type]]
        found = self.neighbours(meta_features, task_type)
        if not found:
            return np.full(len(pool), np.nan)
        weights = 1.0 / (np.array([d for _, d in found]) + 1e-3)
        columns = [c.key() for c in pool]
        values = np.array([history.normalised_row(name).reindex(columns).to_numpy() for name, _ in found])
        known = np.isfinite(values)
        weighted = np.where(known, values, 0.0) * weights[:, None]
        total = (known * weights[:, None]).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, weighted.sum(axis=0) / total, np.nan)


class GreedyPortfolio(WarmStarter):
    """Configurations chosen greedily to maximise the mean (over tasks) of the best normalised score so far."""

    name = "portfolio"

    def __init__(self, size: int = 32):
        self.size = size

    def _fit(self) -> None:
        self.order: dict[str, list[str]] = {}
        for kind, history in self.histories.items():
            matrix = history.normalised.fillna(0.0)
            chosen: list[str] = []
            best = np.zeros(len(matrix))
            for _ in range(min(self.size, matrix.shape[1])):
                gains = np.maximum(matrix.to_numpy(), best[:, None]).mean(axis=0)
                gains[[matrix.columns.get_loc(c) for c in chosen]] = -np.inf
                pick = int(np.argmax(gains))
                chosen.append(matrix.columns[pick])
                best = np.maximum(best, matrix.iloc[:, pick].to_numpy())
            rest = [c for c in history.mean_score().index if c not in chosen]
            self.order[kind] = chosen + rest

    def _scores(self, meta_features, task_type, pool):
        order = self.order.get(KINDS[task_type], [])
        position = {cid: i for i, cid in enumerate(order)}
        return np.array([-float(position[c.key()]) if c.key() in position else np.nan for c in pool])


def config_encoding(kind: str) -> ConfigEncoder:
    return ConfigEncoder([get_learner(name, kind) for name in learner_names(kind)])


class ConfigEncoder:
    """A configuration as a fixed-length vector: learner one-hot, then every parameter in [0, 1] (-1 when inactive)."""

    def __init__(self, learners: list):
        self.learners = [learner.name for learner in learners]
        self.spaces: dict[str, SearchSpace] = {learner.name: learner.space for learner in learners}
        self.slots = [(learner, p.name) for learner in self.learners for p in self.spaces[learner]]

    def encode(self, configs: Sequence[Config]) -> np.ndarray:
        out = np.full((len(configs), len(self.learners) + len(self.slots)), -1.0)
        out[:, : len(self.learners)] = 0.0
        for row, config in enumerate(configs):
            if config.learner not in self.spaces:
                continue
            out[row, self.learners.index(config.learner)] = 1.0
            space = self.spaces[config.learner]
            for column, (learner, name) in enumerate(self.slots, start=len(self.learners)):
                if learner == config.learner and name in config.params:
                    try:
                        out[row, column] = space[name].to_unit(config.params[name])
                    except (ValueError, TypeError):
                        pass
        return out


class LearnedRanker(WarmStarter):
    """Gradient-boosted trees predicting a configuration's normalised score from (meta-features, configuration)."""

    name = "ranker"

    def __init__(self, max_iter: int = 300, seed: int = 0):
        self.max_iter = max_iter
        self.seed = seed

    def _fit(self) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.models, self.encoders = {}, {}
        for kind, history in self.histories.items():
            tasks = [t for t in history.normalised.index if t in self.meta.index]
            if not tasks:
                continue
            encoder = config_encoding(kind)
            ids = list(history.configs)
            encoded = dict(zip(ids, encoder.encode([history.configs[c] for c in ids])))
            long = history.long(tasks)
            meta = self.meta.loc[long.index.get_level_values(0)].to_numpy()
            configs = np.stack([encoded[c] for c in long.index.get_level_values(1)])
            model = HistGradientBoostingRegressor(max_iter=self.max_iter, learning_rate=0.05, random_state=self.seed)
            with threadpool_limits(1):  # OpenMP threads on busy cores cost ten times more than they give
                model.fit(np.hstack([meta, configs]), long.to_numpy())
            self.models[kind], self.encoders[kind] = model, encoder

    def _scores(self, meta_features, task_type, pool):
        kind = KINDS[task_type]
        if kind not in self.models:
            return np.full(len(pool), np.nan)
        configs = self.encoders[kind].encode(pool)
        query = np.repeat(self._query(meta_features)[None, :], len(pool), axis=0)
        return self.models[kind].predict(np.hstack([query, configs]))


class Blend(WarmStarter):
    """The average rank of several warm starters (each fitted on the same knowledge)."""

    def __init__(self, parts: Sequence[WarmStarter], weights: Sequence[float] | None = None):
        self.parts = list(parts)
        self.weights = list(weights) if weights is not None else [1.0] * len(self.parts)
        self.name = "+".join(p.name for p in self.parts)

    def fit_histories(self, histories, meta_table):
        for part in self.parts:
            part.fit_histories(histories, meta_table)
        return super().fit_histories(histories, meta_table)

    @classmethod
    def of_fitted(cls, parts: Sequence[WarmStarter], weights: Sequence[float] | None = None) -> Blend:
        """A blend of parts already fitted on the same knowledge (nothing is refitted)."""
        blend = cls(parts, weights)
        blend.histories = parts[0].histories
        blend.scaler, blend.meta = parts[0].scaler, parts[0].meta
        return blend

    def _scores(self, meta_features, task_type, pool):
        total = np.zeros(len(pool))
        for part, weight in zip(self.parts, self.weights):
            scores = part._scores(meta_features, task_type, pool)
            ranks = pd.Series(scores).rank(ascending=False, na_option="bottom").to_numpy()
            total += weight * (1.0 - ranks / len(pool))
        return total


def priors(suggestions: Sequence[Suggestion], kind: str, margin: float = 0.15) -> dict[str, SearchSpace]:
    """Per learner, the region of its space the suggested configurations occupy (widened by ``margin``)."""
    by_learner: dict[str, list[dict]] = {}
    for suggestion in suggestions:
        by_learner.setdefault(suggestion.config.learner, []).append(dict(suggestion.config.params))
    return {learner: get_learner(learner, kind).space.narrowed(points, margin)
            for learner, points in by_learner.items()}


def led_by(lead: Sequence[Suggestion], rest: Sequence[Suggestion]) -> list[Suggestion]:
    """``lead``, then ``rest`` without the configurations ``lead`` holds: one starter's best pick ahead of another's
    list."""
    first = [s.config for s in lead]
    return list(lead) + [s for s in rest if s.config not in first]


METHODS = {
    "nearest": NearestDatasets,
    "portfolio": GreedyPortfolio,
    "ranker": LearnedRanker,
    "nearest+portfolio": lambda: Blend([NearestDatasets(), GreedyPortfolio()]),
    "nearest+ranker": lambda: Blend([NearestDatasets(), LearnedRanker()]),
    "nearest+portfolio+ranker": lambda: Blend([NearestDatasets(), GreedyPortfolio(), LearnedRanker()]),
}


def make_warm_starter(method: str) -> WarmStarter:
    """A fresh warm starter by method name (see :data:`METHODS`)."""
    if method not in METHODS:
        raise ValueError(f"unknown warm-start method {method!r}; choose one of {sorted(METHODS)}")
    return METHODS[method]()
