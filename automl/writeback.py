"""Writing a finished search back to the user's knowledge base.

Every ``fit`` (unless ``remember=False``) appends its dataset's meta-features
and its trials to the user's base, so the next search on a similar task starts
smarter. The task is named after the data's content, so fitting the same data
again adds to the same task. A base that cannot be written (corrupt, read-only,
locked for too long) costs a warning, never the user's model.
"""

from __future__ import annotations

import logging
from pathlib import Path

from automl.data import Dataset
from automl.evaluation import OK, TrialResult
from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.shipped import user_kb_path
from metaknowledge.store import KnowledgeBase, KnowledgeBaseError, Run

log = logging.getLogger(__name__)

USER_SOURCE = "user"
FIT_ORIGIN = "fit"


def task_name(dataset: Dataset) -> str:
    return f"user/{dataset.name}-{dataset.fingerprint()[:10]}"


def remember(
    dataset: Dataset,
    metric: str,
    results: list[TrialResult],
    meta_features: dict[str, float] | None,
    kb: str | Path | None = None,
) -> Path | None:
    """Append the search to the user's base; returns its path, or None if it could not be written."""
    from automl import __version__

    path = user_kb_path(kb)
    fresh = [r for r in results if not r.resumed]  # resumed trials were written by the fit that ran them
    try:
        base = KnowledgeBase(path)
        name = task_name(dataset)
        base.add_task(
            name, USER_SOURCE, dataset.task, metric, len(dataset.X), dataset.X.shape[1], len(dataset.classes),
            fingerprint=dataset.fingerprint(),
        )
        if meta_features is not None:
            base.set_meta_features(name, EXTRACTOR_VERSION, meta_features)
        base.add_runs(
            name,
            [
                Run(
                    config=r.config, metric=metric, score=r.value if r.status == OK else None,
                    status=r.status, fold_scores=list(r.fold_values), fit_seconds=r.fit_seconds,
                    error=r.error, origin=r.origin if r.origin.startswith("warm") else FIT_ORIGIN,
                    engine_version=__version__,
                )
                for r in fresh
            ],
        )
    except (KnowledgeBaseError, OSError) as error:
        log.warning("could not write this search to the knowledge base at %s: %s", path, error)
        return None
    except Exception as error:  # sqlite3 errors (locked, disk full) must not lose the model
        log.warning("could not write this search to the knowledge base at %s: %s: %s", path, type(error).__name__, error)
        return None
    return path
