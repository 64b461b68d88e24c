"""Where knowledge lives: the base shipped with the package, and the user's own.

The shipped base is a Parquet export inside the package (``metaknowledge/data``),
built from the PMLB corpus; see ``metaknowledge/data/BUILD.md`` for how. The
user's base is what every ``fit`` appends to: an SQLite file in the user cache
directory by default, or wherever ``AUTOML_KB`` (or ``fit(kb=...)``) points,
a file or a team's PostgreSQL server (``postgresql://USER:PASSWORD@HOST:PORT/DB``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from metaknowledge.location import database_url, file_path
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


def user_kb(explicit: str | Path | None = None) -> Path | str:
    """The user's knowledge base: ``explicit``, else ``$AUTOML_KB``, else the cache directory; the path of a file,
    or the URL (a str) of a database server."""
    chosen = explicit if explicit is not None else os.environ.get(KB_ENV) or None
    if chosen is None:
        return cache_dir() / "kb.sqlite"
    return str(chosen) if database_url(chosen) else file_path(chosen)


def holds_anything(location: Path | str) -> bool:
    """Whether the user's base may hold knowledge: a file that exists and is not empty, or any server (which only
    opening it tells)."""
    if isinstance(location, str):
        return True
    try:
        return location.stat().st_size > 0
    except OSError:
        return False


def load_knowledge(kb: str | Path | None = None, include_shipped: bool = True) -> Knowledge:
    """The shipped knowledge and the user's, read together."""
    parts = [shipped_knowledge()] if include_shipped else []
    location = user_kb(kb)
    if holds_anything(location):
        parts.append(KnowledgeBase(location, readonly=not isinstance(location, str)).snapshot())
    return Knowledge.combine(parts)
