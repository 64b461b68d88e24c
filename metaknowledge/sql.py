"""How the knowledge base talks to its two stores: connections to an SQLite file or a PostgreSQL server, and the
few statements whose SQL differs between them (insert-or-ignore, upsert), written once for both.

:class:`metaknowledge.store.KnowledgeBase` is the interface; this module is its plumbing.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool

from metaknowledge import schema

BUSY_TIMEOUT_MS = 120_000  # an SQLite writer waits this long for the lock rather than failing
_engines: dict[tuple[str, int], Engine] = {}  # one connection pool per server and process


def sqlite_engine(path: Path, readonly: bool) -> Engine:
    """An engine on one SQLite file: a connection per use (nothing held open between uses), transactions begun
    by :meth:`KnowledgeBase._db` itself (so that a writer takes the write lock before it reads)."""

    def connect() -> sqlite3.Connection:
        if readonly:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
        else:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    return create_engine("sqlite://", creator=connect, poolclass=NullPool)


def server_engine(url: str) -> Engine:
    """The engine of one database server in this process (a small pool, made afresh in a forked child)."""
    key = (url, os.getpid())
    if key not in _engines:
        _engines[key] = create_engine(url, pool_size=2, max_overflow=8, pool_pre_ping=True,
                                      connect_args={"connect_timeout": 10, "application_name": "automl"})
    return _engines[key]


def dialect_insert(conn: Connection, table):
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def insert_ignoring(conn: Connection, table):
    """INSERT that leaves rows already there (by any unique key) as they are."""
    return dialect_insert(conn, table).on_conflict_do_nothing()


def insert_counting(conn: Connection, table, rows: list[dict], version: int) -> int:
    """Insert ``rows`` that are not there yet; how many were new."""
    if not rows:
        return 0
    columns = set(schema.columns_at(table, version))
    rows = [{k: v for k, v in row.items() if k in columns} for row in rows]
    key = next(iter(table.primary_key.columns))
    statement = insert_ignoring(conn, table).returning(key)
    return len(conn.execute(statement, rows).all())


def find_task(conn: Connection, name: str) -> int | None:
    row = conn.execute(select(schema.tasks.c.task_id).where(schema.tasks.c.name == name)).first()
    return None if row is None else int(row[0])


def require_task(conn: Connection, task: str) -> int:
    found = find_task(conn, task)
    if found is None:
        raise KeyError(f"no task named {task!r} in the knowledge base; add it with add_task first")
    return found


def upsert_task(conn: Connection, name: str, values: Mapping[str, Any]) -> int:
    """Insert the task, or update the values given (not None) of the one of that name; its id. Safe when several
    writers add the same task at once."""
    conn.execute(insert_ignoring(conn, schema.tasks).values(name=name, created=time.time(), **values))
    updates = {k: v for k, v in values.items() if v is not None}
    if updates:
        conn.execute(schema.tasks.update().where(schema.tasks.c.name == name).values(**updates))
    return find_task(conn, name)
