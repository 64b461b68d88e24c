"""The knowledge base: which configuration scored what on which task.

One SQLite file (no server), safe with several processes writing at once
(write-ahead log, waits on locks rather than failing). Tables:

- ``tasks``: one row per dataset/task (name, source — corpus, openml or user —,
  OpenML ids, task type, metric, sizes, a content fingerprint);
- ``meta_features``: per task and extractor version, a JSON object of values
  (values of different versions are never mixed);
- ``configs``: learner, parameters (JSON), search-space version, canonical hash;
- ``runs``: task, configuration, metric, fold scores, mean, fit seconds,
  status, error, time, engine version, origin (builder, fit, openml).

A file that is not such a base (corrupt, another program's, or from a newer
schema) is refused with a clear error and never modified.

>>> kb = KnowledgeBase("kb.sqlite")                                   # doctest: +SKIP
>>> kb.score_matrix("roc_auc")  # tasks x configurations              # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaknowledge.snapshot import Knowledge
from searchspaces import Config

FORMAT = "automl-knowledge-base"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 120_000
TABLES = ("tasks", "meta_features", "configs", "runs")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kb_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    task_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    task_type TEXT,
    metric TEXT,
    n_rows INTEGER,
    n_features INTEGER,
    n_classes INTEGER,
    openml_task_id INTEGER,
    openml_dataset_id INTEGER,
    fingerprint TEXT,
    status TEXT NOT NULL DEFAULT 'ok',
    error TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta_features (
    task_id INTEGER NOT NULL REFERENCES tasks(task_id),
    version TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'automl',
    features TEXT NOT NULL,
    seconds REAL,
    PRIMARY KEY (task_id, version, source)
);
CREATE TABLE IF NOT EXISTS configs (
    config_id TEXT PRIMARY KEY,
    learner TEXT NOT NULL,
    params TEXT NOT NULL,
    space_version TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY,
    run_key TEXT NOT NULL UNIQUE,
    task_id INTEGER NOT NULL REFERENCES tasks(task_id),
    config_id TEXT NOT NULL REFERENCES configs(config_id),
    metric TEXT NOT NULL,
    fold_scores TEXT NOT NULL DEFAULT '[]',
    score REAL,
    fit_seconds REAL,
    status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    origin TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    engine_version TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_by_task ON runs (task_id, config_id);
"""


class KnowledgeBaseError(Exception):
    """The file is not a usable knowledge base; the message says why and what to do."""


@dataclass
class Run:
    """One evaluation of a configuration on a task, as stored."""

    config: Config
    metric: str
    score: float | None
    status: str = "ok"
    fold_scores: list[float] = field(default_factory=list)
    fit_seconds: float = 0.0
    error: str = ""
    origin: str = ""
    created: float = field(default_factory=time.time)
    engine_version: str = ""
    space_version: str = ""


def _run_key(task_name: str, run: Run) -> str:
    text = json.dumps([task_name, run.config.key(), run.metric, run.origin, round(run.created, 6), run.engine_version])
    return hashlib.sha1(text.encode()).hexdigest()


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


class KnowledgeBase:
    """A knowledge base in one SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path).expanduser()
        self.readonly = readonly
        if readonly and not self.path.exists():
            raise KnowledgeBaseError(f"no knowledge base at {str(self.path)!r}")
        if not readonly:
            self._make_folder()
        self._check_or_create()

    def _make_folder(self) -> None:
        """Create the folder the base lives in: on a fresh machine the cache folder does not exist yet."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise KnowledgeBaseError(f"cannot create the folder of the knowledge base {str(self.path)!r}: "
                                     f"{error}") from None

    # -- opening ---------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        else:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if write and self.readonly:
            raise KnowledgeBaseError(f"{str(self.path)!r} was opened read-only")
        conn = self._connect()
        try:
            if write:
                conn.execute("BEGIN IMMEDIATE")
            yield conn
            if write:
                conn.commit()
        except BaseException:
            if write:
                conn.rollback()
            raise
        finally:
            conn.close()

    def _check_or_create(self) -> None:
        exists = self.path.exists() and self.path.stat().st_size > 0
        try:
            with self._db() as conn:
                names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                meta = dict(conn.execute("SELECT key, value FROM kb_meta")) if "kb_meta" in names else {}
        except sqlite3.DatabaseError as error:
            raise KnowledgeBaseError(
                f"{str(self.path)!r} is not a readable SQLite knowledge base ({error}); "
                "it was left untouched. Point kb= at another file, or move this one away."
            ) from None
        if exists and names and meta.get("format") != FORMAT:
            raise KnowledgeBaseError(
                f"{str(self.path)!r} is an SQLite file of another program (tables {sorted(names)[:5]}); "
                "it was left untouched. Point kb= at another file."
            )
        version = int(meta.get("schema_version", SCHEMA_VERSION))
        if version > SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"{str(self.path)!r} was written by a newer version of automl (schema {version}, "
                f"this one reads up to {SCHEMA_VERSION}); upgrade automl to use it"
            )
        if not meta:
            if self.readonly:
                raise KnowledgeBaseError(f"{str(self.path)!r} is empty; it is not a knowledge base")
            conn = self._connect()
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
                conn.execute("INSERT OR IGNORE INTO kb_meta VALUES ('format', ?)", (FORMAT,))
                conn.execute("INSERT OR IGNORE INTO kb_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                conn.commit()
            finally:
                conn.close()

    # -- tasks -----------------------------------------------------------
    def add_task(
        self,
        name: str,
        source: str,
        task_type: str | None = None,
        metric: str | None = None,
        n_rows: int | None = None,
        n_features: int | None = None,
        n_classes: int | None = None,
        openml_task_id: int | None = None,
        openml_dataset_id: int | None = None,
        fingerprint: str | None = None,
        status: str = "ok",
        error: str = "",
    ) -> int:
        """Insert or update a task by name; returns its id."""
        values = {
            "source": source, "task_type": task_type, "metric": metric, "n_rows": n_rows,
            "n_features": n_features, "n_classes": n_classes, "openml_task_id": openml_task_id,
            "openml_dataset_id": openml_dataset_id, "fingerprint": fingerprint, "status": status, "error": error,
        }
        with self._db(write=True) as conn:
            return self._upsert_task(conn, name, values)

    @staticmethod
    def _upsert_task(conn: sqlite3.Connection, name: str, values: Mapping[str, Any]) -> int:
        row = conn.execute("SELECT task_id FROM tasks WHERE name = ?", (name,)).fetchone()
        if row is None:
            columns = ["name", "created", *values]
            cursor = conn.execute(
                f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                (name, time.time(), *values.values()),
            )
            return int(cursor.lastrowid)
        updates = {k: v for k, v in values.items() if v is not None}
        if updates:
            assignments = ", ".join(f"{k} = ?" for k in updates)
            conn.execute(f"UPDATE tasks SET {assignments} WHERE task_id = ?", (*updates.values(), row[0]))
        return int(row[0])

    def task_id(self, name: str) -> int | None:
        with self._db() as conn:
            row = conn.execute("SELECT task_id FROM tasks WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def tasks(self, source: str | None = None) -> pd.DataFrame:
        """All tasks (one row each), optionally of one source."""
        query, args = "SELECT * FROM tasks", ()
        if source is not None:
            query, args = query + " WHERE source = ?", (source,)
        with self._db() as conn:
            return pd.read_sql_query(query + " ORDER BY name", conn, params=args)

    # -- meta-features ---------------------------------------------------
    def set_meta_features(
        self, task: str, version: str, values: Mapping[str, float], source: str = "automl", seconds: float | None = None
    ) -> None:
        """Store a task's meta-features under an extractor version (replacing that version's)."""
        clean = {k: _finite(v) for k, v in values.items()}
        with self._db(write=True) as conn:
            task_id = self._require_task(conn, task)
            conn.execute(
                "INSERT OR REPLACE INTO meta_features VALUES (?, ?, ?, ?, ?)",
                (task_id, version, source, json.dumps(clean, sort_keys=True), seconds),
            )

    def has_meta_features(self, task: str, version: str, source: str = "automl") -> bool:
        with self._db() as conn:
            row = conn.execute(
                "SELECT 1 FROM meta_features m JOIN tasks t USING (task_id) "
                "WHERE t.name = ? AND m.version = ? AND m.source = ?",
                (task, version, source),
            ).fetchone()
        return row is not None

    # -- runs ------------------------------------------------------------
    @staticmethod
    def _require_task(conn: sqlite3.Connection, task: str) -> int:
        row = conn.execute("SELECT task_id FROM tasks WHERE name = ?", (task,)).fetchone()
        if row is None:
            raise KeyError(f"no task named {task!r} in the knowledge base; add it with add_task first")
        return int(row[0])

    def add_runs(self, task: str, runs: Iterable[Run]) -> int:
        """Append runs of one task (duplicates ignored); returns how many were new."""
        runs = list(runs)
        if not runs:
            return 0
        with self._db(write=True) as conn:
            task_id = self._require_task(conn, task)
            conn.executemany(
                "INSERT OR IGNORE INTO configs VALUES (?, ?, ?, ?)",
                [(r.config.key(), r.config.learner, json.dumps(dict(r.config.params), sort_keys=True), r.space_version)
                 for r in runs],
            )
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO runs (run_key, task_id, config_id, metric, fold_scores, score, fit_seconds, "
                "status, error, origin, created, engine_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        _run_key(task, r), task_id, r.config.key(), r.metric,
                        json.dumps([_finite(v) for v in r.fold_scores]), _finite(r.score), r.fit_seconds,
                        r.status, r.error, r.origin, r.created, r.engine_version,
                    )
                    for r in runs
                ],
            )
            return conn.total_changes - before

    def evaluated_configs(self, task: str, origin: str | None = None) -> set[str]:
        """Hashes of the configurations already run on ``task`` (for resuming)."""
        query = "SELECT DISTINCT r.config_id FROM runs r JOIN tasks t USING (task_id) WHERE t.name = ?"
        args: tuple = (task,)
        if origin is not None:
            query, args = query + " AND r.origin = ?", (task, origin)
        with self._db() as conn:
            return {r[0] for r in conn.execute(query, args)}

    def runs(self, task: str | None = None, metric: str | None = None) -> pd.DataFrame:
        """Runs joined with their task name, learner and parameters."""
        query = (
            "SELECT t.name AS task, t.task_type, r.config_id, c.learner, c.params, r.metric, r.score, "
            "r.fold_scores, r.fit_seconds, r.status, r.error, r.origin, r.created, r.engine_version "
            "FROM runs r JOIN tasks t USING (task_id) JOIN configs c USING (config_id)"
        )
        clauses, args = [], []
        if task is not None:
            clauses.append("t.name = ?")
            args.append(task)
        if metric is not None:
            clauses.append("r.metric = ?")
            args.append(metric)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._db() as conn:
            return pd.read_sql_query(query + " ORDER BY r.run_id", conn, params=args)

    def configs(self) -> pd.DataFrame:
        with self._db() as conn:
            return pd.read_sql_query("SELECT * FROM configs ORDER BY config_id", conn)

    def snapshot(self) -> Knowledge:
        """The whole base in memory (see :class:`~metaknowledge.snapshot.Knowledge`)."""
        return Knowledge(**self.tables())

    def score_matrix(self, metric: str | None = None, task_type: str | None = None) -> pd.DataFrame:
        """Tasks x configurations: mean score of successful runs (NaN where none)."""
        return self.snapshot().score_matrix(metric, task_type)

    def info(self) -> dict[str, Any]:
        """What the base holds, for ``automl kb info``."""
        return {"path": str(self.path), **self.snapshot().info()}

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table as a DataFrame, with task names instead of ids (for export and merge)."""
        with self._db() as conn:
            tasks = pd.read_sql_query("SELECT * FROM tasks ORDER BY task_id", conn)
            meta = pd.read_sql_query(
                "SELECT t.name AS task, m.version, m.source, m.features, m.seconds "
                "FROM meta_features m JOIN tasks t USING (task_id)", conn
            )
            configs = pd.read_sql_query("SELECT * FROM configs", conn)
            runs = pd.read_sql_query(
                "SELECT r.run_key, t.name AS task, r.config_id, r.metric, r.fold_scores, r.score, r.fit_seconds, "
                "r.status, r.error, r.origin, r.created, r.engine_version FROM runs r JOIN tasks t USING (task_id)",
                conn
            )
        return {"tasks": tasks.drop(columns=["task_id"]), "meta_features": meta, "configs": configs, "runs": runs}

    def add_tables(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, int]:
        """Merge tables in the form :meth:`tables` returns; existing rows are kept."""
        added = dict.fromkeys(TABLES, 0)
        with self._db(write=True) as conn:
            ids: dict[str, int] = {}
            for row in tables["tasks"].to_dict("records"):
                existed = conn.execute("SELECT 1 FROM tasks WHERE name = ?", (row["name"],)).fetchone()
                values = {k: _sql_value(v) for k, v in row.items() if k not in ("name", "created")}
                ids[row["name"]] = self._upsert_task(conn, row["name"], values)
                added["tasks"] += existed is None
            for row in tables["meta_features"].to_dict("records"):
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO meta_features VALUES (?, ?, ?, ?, ?)",
                    (ids[row["task"]], row["version"], row["source"], row["features"], _sql_value(row["seconds"])),
                )
                added["meta_features"] += cursor.rowcount
            for row in tables["configs"].to_dict("records"):
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO configs VALUES (?, ?, ?, ?)",
                    (row["config_id"], row["learner"], row["params"], row["space_version"]),
                )
                added["configs"] += cursor.rowcount
            for row in tables["runs"].to_dict("records"):
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO runs (run_key, task_id, config_id, metric, fold_scores, score, fit_seconds, "
                    "status, error, origin, created, engine_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        row["run_key"], ids[row["task"]], row["config_id"], row["metric"], row["fold_scores"],
                        _sql_value(row["score"]), _sql_value(row["fit_seconds"]), row["status"], row["error"],
                        row["origin"], row["created"], row["engine_version"],
                    ),
                )
                added["runs"] += cursor.rowcount
        return added

    def merge(self, other: KnowledgeBase) -> dict[str, int]:
        """Add everything of ``other`` that this base lacks."""
        return self.add_tables(other.tables())

    def export(self, directory: str | Path) -> Path:
        """Write every table as a Parquet file into ``directory``."""
        directory = Path(directory).expanduser()
        directory.mkdir(parents=True, exist_ok=True)
        for name, frame in self.tables().items():
            frame.to_parquet(directory / f"{name}.parquet", index=False, compression="zstd")
        return directory

    def import_export(self, directory: str | Path) -> dict[str, int]:
        """Merge a directory written by :meth:`export`."""
        return self.add_tables(read_export(directory))


def read_export(directory: str | Path) -> dict[str, pd.DataFrame]:
    """The tables of an exported base, as DataFrames."""
    directory = Path(directory).expanduser()
    missing = [t for t in TABLES if not (directory / f"{t}.parquet").exists()]
    if missing:
        raise KnowledgeBaseError(f"{str(directory)!r} is not an exported knowledge base: it lacks {missing}")
    return {t: pd.read_parquet(directory / f"{t}.parquet") for t in TABLES}


def _sql_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
