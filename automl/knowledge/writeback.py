"""Writing a finished search back to the user's knowledge base.

Every ``fit`` (unless ``remember=False``) appends its dataset's meta-features
and its trials to the user's base, so the next search on a similar task starts
smarter. The task is named after the data's content, so fitting the same data
again adds to the same task. A base that cannot be written (corrupt, read-only,
locked for too long) costs a warning, never the user's model: logged every time,
and shown on the console once per process.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from automl._version import __version__
from automl.data.dataset import Dataset
from automl.search.evaluation import OK, TrialResult
from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.location import mask_secrets
from metaknowledge.shipped import user_kb
from metaknowledge.store import KnowledgeBase, KnowledgeBaseError, Run

log = logging.getLogger(__name__)

USER_SOURCE = "user"
FIT_ORIGIN = "fit"
_warned = False  # whether this process has already said on the console that write-back failed


def task_name(dataset: Dataset) -> str:
    return f"user/{dataset.name}-{dataset.fingerprint()[:10]}"


def remember(
    dataset: Dataset,
    metric: str,
    results: list[TrialResult],
    meta_features: dict[str, float] | None,
    kb: str | Path | None = None,
) -> Path | str | None:
    """Append the search to the user's base; returns where it is (a path or a URL), or None if it could not be
    written."""
    path = user_kb(kb)
    fresh = [r for r in results if not r.resumed]  # resumed trials were written by the fit that ran them
    try:
        _write(KnowledgeBase(path), dataset, metric, fresh, meta_features, __version__)
    except (KnowledgeBaseError, OSError) as error:
        _report_failure(path, str(error))
        return None
    except Exception as error:  # sqlite3 errors (locked, disk full) must not lose the model
        _report_failure(path, f"{type(error).__name__}: {error}")
        return None
    return path


def remember_meta_features(dataset: Dataset, meta_features: dict[str, float], kb: str | Path | None = None) -> None:
    """Add the meta-features of a task :func:`remember` wrote without them (a fit too short to pay for them first)."""
    path = user_kb(kb)
    try:
        KnowledgeBase(path).set_meta_features(task_name(dataset), EXTRACTOR_VERSION, meta_features)
    except Exception as error:  # as in remember: the model matters more
        _report_failure(path, f"{type(error).__name__}: {error}")


def _write(
    base: KnowledgeBase, dataset: Dataset, metric: str, results: list[TrialResult],
    meta_features: dict[str, float] | None, engine_version: str,
) -> None:
    """Add the task (named after the data's content), its meta-features and these trials to ``base``."""
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
                engine_version=engine_version,
            )
            for r in results
        ],
    )


def _report_failure(path: Path | str, reason: str) -> None:
    """Log every failure, and say so on the console once per process.

    Logging is quiet by default, so a log line alone would leave the engine
    silently never learning; one console warning is enough to be seen without
    repeating on every ``fit`` of a loop.
    """
    global _warned
    path, reason = mask_secrets(str(path)), mask_secrets(reason)
    log.warning("could not write this search to the knowledge base at %s: %s", path, reason)
    if _warned:
        return
    _warned = True
    warnings.warn(
        f"automl could not write this search to your knowledge base at {path} ({reason}), so later searches "
        f"will not learn from it. Point AUTOML_KB (or fit(kb=...)) at a file in a writable folder, or pass "
        f"remember=False to stop writing back. This warning is shown once per process.",
        RuntimeWarning,
        stacklevel=2,
    )
