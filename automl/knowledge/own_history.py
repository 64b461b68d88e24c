"""What earlier searches on this very data found, from the user's knowledge base: configurations that timed out or
failed on it must not come back for it, and the seconds the others took are known, not predicted.

Every ``fit`` writes its trials back under a task named after the data's content
(:func:`automl.knowledge.writeback.task_name`), so a fit of the same data again
finds them here in one query, without refitting anything.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from automl.data.dataset import Dataset
from automl.knowledge.writeback import task_name
from automl.search.evaluation import OK, PRUNED
from metaknowledge.shipped import holds_anything, user_kb
from metaknowledge.store import KnowledgeBase, KnowledgeBaseError
from searchspaces import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OwnHistory:
    """The configurations that timed out, failed or crashed on this data (``failed``, by key), and the longest a
    trial of each one that succeeded took on it (``seconds``, by key)."""

    failed: frozenset[str] = frozenset()
    seconds: Mapping[str, float] = field(default_factory=dict)

    def allows(self, config: Config) -> bool:
        """Whether ``config`` may run again on this data: it did not time out or fail on it before."""
        return config.key() not in self.failed


NO_HISTORY = OwnHistory()


def own_history(dataset: Dataset, kb: str | Path | None = None) -> OwnHistory:
    """What the user's knowledge base (``kb``, or the default one) holds of earlier searches on ``dataset``.

    A base that cannot be read is no history: the search goes on without it.
    """
    location = user_kb(kb)
    if not holds_anything(location):
        return NO_HISTORY
    try:
        runs = KnowledgeBase(location, readonly=True).runs(task=task_name(dataset))
    except (KnowledgeBaseError, sqlite3.Error, OSError) as error:
        log.debug("no history of this data: %s", error)
        return NO_HISTORY
    if runs.empty:
        return NO_HISTORY
    failed = runs[~runs["status"].isin((OK, PRUNED))]  # pruned: stopped for a poor score, not for its cost
    finished = runs[(runs["status"] == OK) & runs["fit_seconds"].notna()]
    seconds = finished.groupby("config_id")["fit_seconds"].max()
    return OwnHistory(frozenset(failed["config_id"]), {str(key): float(value) for key, value in seconds.items()})
