"""Knowledge made up for tests: tasks whose 'width' meta-feature decides whether linear models or forests win."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.snapshot import Knowledge
from metaknowledge.store import KnowledgeBase
from searchspaces import Config

LINEAR = [Config("linear", {"C": c, "class_weight": None}) for c in (0.01, 0.1, 1.0, 10.0)]
FOREST = [Config("random_forest", {"n_estimators": n, "max_features": "sqrt", "min_samples_leaf": 1, "bootstrap": True,
                                   "criterion": "gini"}) for n in (16, 64, 256)]


def synthetic_knowledge(n_tasks: int = 24, seed: int = 0) -> Knowledge:
    """Tasks whose 'width' meta-feature decides whether linear models or forests win."""
    rng = np.random.default_rng(seed)
    tasks, meta, runs = [], [], []
    for i in range(n_tasks):
        name = f"t{i}"
        wide = i % 2 == 0
        tasks.append(_task(name, n_rows=100, n_features=5))
        meta.append(_meta(name, {"width": (5.0 if wide else -5.0) + rng.normal(), "noise": rng.normal()}))
        for config in LINEAR + FOREST:
            good = (config.learner == "linear") == wide
            score = 0.9 if good else 0.6
            if config.learner == "linear":
                score += 0.01 * np.log10(config.params["C"])  # stronger C is slightly better
            runs.append(_run(name, config, score + rng.normal(scale=0.002)))
    return _knowledge(tasks, meta, LINEAR + FOREST, runs)


def write_knowledge(path, knowledge: Knowledge) -> None:
    """Store a Knowledge snapshot as an SQLite knowledge base."""
    tables = {
        "tasks": knowledge.tasks.assign(
            openml_task_id=None, openml_dataset_id=None, fingerprint=None, error="", created=0.0
        ),
        "meta_features": knowledge.meta_features,
        "configs": knowledge.configs,
        "runs": knowledge.runs,
    }
    KnowledgeBase(path).add_tables(tables)


def same_everywhere(scored: list[tuple[Config, float]], n_tasks: int = 12, seed: int = 0) -> Knowledge:
    """Binary tasks on each of which every configuration of ``scored`` reached its score (plus a little noise), in
    0.1 s a trial: what the warm start suggests then is the ranking of ``scored``, whatever the new data."""
    rng = np.random.default_rng(seed)
    tasks, meta, runs = [], [], []
    for i in range(n_tasks):
        name = f"s{i}"
        tasks.append(_task(name, n_rows=200, n_features=3))
        meta.append(_meta(name, {"noise": rng.normal()}))
        for config, score in scored:
            runs.append(_run(name, config, score + rng.normal(scale=0.002)))
    return _knowledge(tasks, meta, [config for config, _ in scored], runs)


def _task(name: str, n_rows: int, n_features: int) -> dict:
    return {"name": name, "source": "corpus", "task_type": "binary", "metric": "roc_auc", "n_rows": n_rows,
            "n_features": n_features, "n_classes": 2, "status": "ok"}


def _meta(name: str, features: dict[str, float]) -> dict:
    return {"task": name, "version": EXTRACTOR_VERSION, "source": "automl", "seconds": 0.1,
            "features": json.dumps(features)}


def _run(name: str, config: Config, score: float) -> dict:
    """A successful run of ``config`` on task ``name``, of 0.1 s."""
    return {"run_key": f"{name}-{config.key()}", "task": name, "config_id": config.key(), "metric": "roc_auc",
            "fold_scores": "[]", "score": score, "fit_seconds": 0.1, "status": "ok", "error": "", "origin": "test",
            "created": 0.0, "engine_version": ""}


def _knowledge(tasks: list[dict], meta: list[dict], configs: list[Config], runs: list[dict]) -> Knowledge:
    rows = [{"config_id": c.key(), "learner": c.learner, "params": json.dumps(dict(c.params)), "space_version": ""}
            for c in configs]
    return Knowledge(pd.DataFrame(tasks), pd.DataFrame(meta), pd.DataFrame(rows), pd.DataFrame(runs))
