"""A repository of predictions: each pool candidate's out-of-fold predictions on each corpus task.

Histories say what a configuration scored; they cannot say what it adds to an
ensemble, nor what a search of a given budget would have ended with. For that
the predictions themselves are kept (as TabRepo does): for one candidate pool
per task kind, every candidate is cross-validated on every corpus task on the
histories' fixed 3-fold split (rows capped, seed 0), and its out-of-fold
predictions are stored as float32 beside its seconds. :mod:`automl.knowledge.replay`
replays searches on them, and :mod:`automl.knowledge.portfolio` learns from
those replays the ordered lists of configurations that ship.

The repository lives outside the installed package (``automl kb build
--predictions --out DIR``): one compressed file per task, written when the task
is done, so an interrupted build resumes with the next task. Only what is
learned from it ships.

>>> repo = PredictionRepository("predictions")          # doctest: +SKIP
>>> task = repo.load("analcatdata_boxing1")             # doctest: +SKIP
>>> task.predictions.shape                              # (candidates, rows, outputs)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from automl.data.dataset import Dataset, load_dataset
from automl.data.sources import dataset_name
from automl.knowledge.build import corpus_files, evaluate_configs
from automl.search.evaluation import Evaluator, Resampling
from automl.search.metrics import get_metric
from metaknowledge.histories import KINDS, Histories
from metaknowledge.shipped import shipped_knowledge
from searchspaces import Config, get_learner, resolve_learners

POOL_SPACE = "with_boosters"  # the pool covers the default learners and XGBoost and CatBoost
POOL_SIZE = 48  # candidates per task kind
PER_LEARNER = 10  # at most this many of one learner among the candidates picked by rank
SLOW_SECONDS = 15.0  # a history candidate whose 90th percentile of seconds (3,000 rows) passes this is left out
REPOSITORY_ROWS = 1_000
REPOSITORY_FOLDS = 3
TRIAL_TIME_LIMIT = 30.0


@dataclass
class TaskPredictions:
    """One task's candidates, their out-of-fold predictions and their costs.

    ``predictions[i]`` holds candidate ``config_ids[i]``'s predictions on the
    validation rows (probabilities, or values in one column), NaN where it
    failed; ``y`` is the encoded target on those rows; ``seconds`` its fit and
    predict time over all folds on ``rows`` sampled rows (NaN where it failed).
    """

    name: str
    task_type: str
    metric: str
    n_rows: int  # the task's rows, before sampling
    n_features: int
    rows: int  # the rows the candidates were cross-validated on
    config_ids: list[str]
    predictions: np.ndarray  # float32 (candidates, validation rows, outputs)
    y: np.ndarray
    seconds: np.ndarray  # float (candidates,)
    status: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return KINDS[self.task_type]

    def ok(self) -> np.ndarray:
        """Which candidates have predictions."""
        return np.isfinite(self.seconds) & np.isfinite(self.predictions).all(axis=(1, 2))

    def save(self, path: Path) -> None:
        meta = {key: getattr(self, key) for key in
                ("name", "task_type", "metric", "n_rows", "n_features", "rows", "config_ids", "status")}
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, predictions=self.predictions.astype(np.float32), y=self.y,
                            seconds=self.seconds, meta=np.array(json.dumps(meta)))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> TaskPredictions:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(**meta, predictions=data["predictions"], y=data["y"], seconds=data["seconds"])


class PredictionRepository:
    """A directory of :class:`TaskPredictions` files and the candidate pools they were built with."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory).expanduser()

    def pool(self, kind: str, size: int = POOL_SIZE) -> list[Config]:
        """The candidate pool of ``kind`` (``size`` candidates), fixed in the directory on first use so a resumed
        build reuses it."""
        path = self.directory / f"pool-{kind}.json"
        if path.exists():
            return [Config.from_dict(c) for c in json.loads(path.read_text())]
        self.directory.mkdir(parents=True, exist_ok=True)
        configs = candidate_pool(kind, size)
        path.write_text(json.dumps([c.to_dict() for c in configs], indent=1))
        return configs

    def configs(self, kind: str) -> dict[str, Config]:
        return {c.key(): c for c in self.pool(kind)}

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.npz"

    def names(self) -> list[str]:
        return sorted(p.name[: -len(".npz")] for p in self.directory.glob("*.npz") if not p.name.endswith(".tmp.npz"))

    def load(self, name: str) -> TaskPredictions:
        return TaskPredictions.load(self.path(name))

    def tasks(self, kind: str | None = None) -> list[TaskPredictions]:
        loaded = [self.load(name) for name in self.names()]
        return [task for task in loaded if kind is None or task.kind == kind]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob("*") if p.is_file())


def candidate_pool(kind: str, size: int = POOL_SIZE) -> list[Config]:
    """About ``size`` candidates: every learner's low-cost point and default, then the history's best by mean rank.

    The ranked ones come from the shipped histories of the pool's learners,
    at most ``PER_LEARNER`` per learner, leaving out those that were slow.
    """
    learners = resolve_learners(kind, space=POOL_SPACE)
    pool: list[Config] = []
    for learner in learners:
        for config in (learner.low_cost_config(), learner.default_config()):
            if config not in pool:
                pool.append(config)
    knowledge = shipped_knowledge()
    histories = Histories.from_knowledge(knowledge, kind, learners={learner.name for learner in learners})
    if histories.normalised.empty:  # no shipped histories (switched off): the learners' own points alone
        return pool[:size]
    runs = knowledge.successful_runs()
    slow = runs.groupby("config_id")["fit_seconds"].quantile(0.9) > SLOW_SECONDS
    mean_rank = histories.normalised.rank(axis=1, ascending=False).mean(axis=0).sort_values()
    per_learner = pd.Series([c.learner for c in pool]).value_counts().to_dict()
    for config_id in mean_rank.index:
        config = histories.configs[config_id]
        if len(pool) >= size:
            break
        if slow.get(config_id, False) or config in pool or per_learner.get(config.learner, 0) >= PER_LEARNER:
            continue
        pool.append(config)
        per_learner[config.learner] = per_learner.get(config.learner, 0) + 1
    return pool


@dataclass
class RepositoryReport:
    tasks_added: int = 0
    tasks_skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    size_bytes: int = 0
    seconds: float = 0.0


def build_prediction_repository(
    directory: str | Path, datasets: str | Path, names: Sequence[str] | None = None, max_rows: int = REPOSITORY_ROWS,
    jobs: int = 1, trial_time_limit: float = TRIAL_TIME_LIMIT, progress: bool = True, pool_size: int = POOL_SIZE,
) -> RepositoryReport:
    """Cross-validate each kind's pool on every corpus dataset, storing out-of-fold predictions; resumable.

    ``pool_size`` sizes the pools when the directory has none yet (a resumed build keeps its pools).
    """
    started = time.monotonic()
    repo = PredictionRepository(directory)
    files = corpus_files(datasets, names)
    report = RepositoryReport()
    done = set(repo.names())
    bar = tqdm(files, desc="kb build --predictions", unit="task", disable=not progress, smoothing=0.05)
    for path in bar:
        name = dataset_name(path)
        if name in done:
            report.tasks_skipped += 1
            continue
        bar.set_postfix_str(name)
        try:
            dataset = load_dataset(path)
        except Exception as error:  # a broken corpus file must not stop the build
            report.failed[name] = f"{type(error).__name__}: {error}"
            continue
        _predict_task(repo, name, dataset, max_rows, jobs, trial_time_limit, pool_size).save(repo.path(name))
        report.tasks_added += 1
    report.size_bytes = repo.size_bytes()
    report.seconds = time.monotonic() - started
    return report


def _predict_task(repo: PredictionRepository, name: str, dataset: Dataset, max_rows: int, jobs: int,
                  trial_time_limit: float, pool_size: int) -> TaskPredictions:
    pool = repo.pool(dataset.kind, pool_size)
    learners = {c.learner: get_learner(c.learner, dataset.kind) for c in pool}
    metric = get_metric(None, dataset.task)
    evaluator = Evaluator(dataset, metric, learners, Resampling("cv", n_folds=REPOSITORY_FOLDS), seed=0,
                          max_rows=max_rows)
    width = 1 if dataset.task == "regression" else len(dataset.classes)
    predictions = np.full((len(pool), len(evaluator.validation_rows), width), np.nan, dtype=np.float32)
    seconds = np.full(len(pool), np.nan)
    status = [""] * len(pool)
    index = {c.key(): i for i, c in enumerate(pool)}
    for result in evaluate_configs(evaluator, pool, jobs, trial_time_limit):
        i = index[result.config.key()]
        status[i] = result.status
        if result.ok and result.predictions is not None:
            predictions[i] = result.predictions
            seconds[i] = result.fit_seconds
    return TaskPredictions(name, dataset.task, metric.name, len(dataset.X), dataset.X.shape[1],
                           len(evaluator.rows), [c.key() for c in pool], predictions,
                           evaluator.validation_target, seconds, status)
