"""Where knowledge lives: the base shipped with the package, and the user's own.

The shipped base is a Parquet export inside the package (``metaknowledge/data``),
built from the PMLB corpus; see ``metaknowledge/data/BUILD.md`` for how. The
user's base is an SQLite file that every ``fit`` appends to: by default in the
user cache directory, or wherever ``AUTOML_KB`` (or ``fit(kb=...)``) points.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from metaknowledge.snapshot import Knowledge
from metaknowledge.store import TABLES, KnowledgeBase, read_export

SHIPPED = Path(__file__).parent / "data"
KB_ENV = "AUTOML_KB"
SHIPPED_ENV = "AUTOML_SHIPPED_KB"  # another export directory to use instead, or "none"


def shipped_directory() -> Path | None:
    """Where the shipped knowledge is read from (``$AUTOML_SHIPPED_KB`` overrides; ``none`` disables it)."""
    override = os.environ.get(SHIPPED_ENV)
    if override is not None:
        return None if override.strip().lower() in ("", "none") else Path(override).expanduser()
    return SHIPPED


def shipped_knowledge() -> Knowledge:
    """The knowledge shipped with the package (empty if this install has none)."""
    directory = shipped_directory()
    if directory is None or not all((directory / f"{table}.parquet").exists() for table in TABLES):
        return Knowledge.empty()
    return Knowledge(**read_export(directory))


def cache_dir() -> Path:
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "automl"


def user_kb_path(explicit: str | Path | None = None) -> Path:
    """The user's knowledge base: ``explicit``, else ``$AUTOML_KB``, else the cache directory."""
    if explicit is not None:
        return Path(explicit).expanduser()
    if os.environ.get(KB_ENV):
        return Path(os.environ[KB_ENV]).expanduser()
    return cache_dir() / "kb.sqlite"


def load_knowledge(user_kb: str | Path | None = None, include_shipped: bool = True) -> Knowledge:
    """The shipped knowledge and the user's, read together."""
    parts = [shipped_knowledge()] if include_shipped else []
    path = user_kb_path(user_kb)
    if path.exists():
        parts.append(KnowledgeBase(path, readonly=True).snapshot())
    return Knowledge.combine(parts)
