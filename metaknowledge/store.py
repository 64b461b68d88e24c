"""The knowledge base: which configuration scored what on which task.

One interface, two kinds of store (:mod:`metaknowledge.location`):

- an SQLite file, the embedded default (no server): safe with several
  processes writing at once (write-ahead log; a writer waits on the lock
  rather than failing; readers never block writers);
- a PostgreSQL server (``postgresql://USER:PASSWORD@HOST:PORT/DATABASE``),
  which a team and every node of a cluster write to at once.

The tables and their upgrades are in :mod:`metaknowledge.schema`. A file or
database that is not such a base (corrupt, another program's, or from a newer
schema) is refused with a clear error and never modified. Passwords never
appear in what the base says about itself (:func:`~metaknowledge.location.mask_secrets`).

>>> kb = KnowledgeBase("kb.sqlite")                                   # doctest: +SKIP
>>> kb = KnowledgeBase("postgresql://team:secret@db:5432/automl")     # doctest: +SKIP
>>> kb.score_matrix("roc_auc")  # tasks x configurations              # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.exc import DBAPIError

from metaknowledge import schema, sql
from metaknowledge.location import LocationError, database_url, file_path, mask_secrets
from metaknowledge.schema import FORMAT, SCHEMA_VERSION, TABLES
from metaknowledge.snapshot import Knowledge
from searchspaces import Config

__all__ = ["FORMAT", "SCHEMA_VERSION", "TABLES", "KnowledgeBase", "KnowledgeBaseError", "Run", "read_export"]

WRITE_ATTEMPTS = 5  # a PostgreSQL write that lost a deadlock or a serialisation race is tried again
_RETRIED_CODES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_SCHEMA_LOCK = 72_640_213  # the advisory lock that serialises creating and upgrading a PostgreSQL base


class KnowledgeBaseError(Exception):
    """The file or server is not a usable knowledge base; the message says why and what to do.

    A failure of the database itself keeps the driver's own words (``reason``, without any password) and its
    SQLSTATE code (``sqlstate``: what tells a lost race, tried again, from the rest).
    """

    def __init__(self, message: str, reason: str = "", sqlstate: str | None = None):
        super().__init__(message)
        self.reason, self.sqlstate = reason or message, sqlstate


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
    host: str = field(default_factory=socket.gethostname)


def _run_key(task_name: str, run: Run) -> str:
    text_ = json.dumps([task_name, run.config.key(), run.metric, run.origin, round(run.created, 6), run.engine_version])
    return hashlib.sha1(text_.encode()).hexdigest()


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


class KnowledgeBase:
    """A knowledge base in an SQLite file or on a PostgreSQL server (see the module docstring)."""

    def __init__(self, location: str | Path, readonly: bool = False):
        try:
            self.url = database_url(location)
        except LocationError as error:
            raise KnowledgeBaseError(str(error)) from None
        self.path = None if self.url else file_path(location)
        self.location = mask_secrets(str(location)) if self.url else str(self.path)  # to show: no password
        self.readonly = readonly
        if self.path is not None:
            if readonly and not self.path.exists():
                raise KnowledgeBaseError(f"no knowledge base at {self.location!r}")
            if not readonly:
                self._make_folder()
        self.version = self._check_or_create()

    def _make_folder(self) -> None:
        """Create the folder the base lives in: on a fresh machine the cache folder does not exist yet."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise KnowledgeBaseError(f"cannot create the folder of the knowledge base {self.location!r}: "
                                     f"{error}") from None

    @property
    def on_server(self) -> bool:
        """True for a base on a database server (shared), False for an SQLite file."""
        return self.url is not None

    # -- opening ---------------------------------------------------------
    def _engine(self) -> Engine:
        if self.path is not None:
            return sql.sqlite_engine(self.path, self.readonly)
        try:
            return sql.server_engine(self.url)
        except ImportError:
            raise KnowledgeBaseError("a knowledge base on PostgreSQL needs its driver: "
                                     "pip install 'automl-engine[postgres]'") from None

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[Connection]:
        """A connection in one transaction: committed when the block ends, rolled back if it raises."""
        if write and self.readonly:
            raise KnowledgeBaseError(f"{self.location!r} was opened read-only")
        try:
            with self._engine().connect() as conn:
                if self.path is not None:  # the driver leaves transactions to us: a writer takes the lock first
                    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
                yield conn
                conn.commit()
        except DBAPIError as error:
            raise self._error(error) from None

    def _write(self, work) -> Any:
        """Run ``work(conn)`` in a write transaction, again where PostgreSQL lost a deadlock or race to another
        writer (its transaction was rolled back whole, so nothing is written twice)."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self._db(write=True) as conn:
                    return work(conn)
            except KnowledgeBaseError as error:
                if error.sqlstate not in _RETRIED_CODES or attempt == WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _error(self, error: DBAPIError) -> KnowledgeBaseError:
        """A clear error for a failure of the driver (its first line), without the password of the URL."""
        original = error.orig
        reason = mask_secrets((str(original).strip().splitlines() or [type(original).__name__])[0])
        return KnowledgeBaseError(f"the knowledge base {self.location!r} failed: {reason}", reason,
                                  getattr(original, "sqlstate", None))

    def _check_or_create(self) -> int:
        """The schema version of the base, after creating it (new) or upgrading it (older, opened for writing)."""
        exists = self.path is None or (self.path.exists() and self.path.stat().st_size > 0)
        try:
            with self._db() as conn:
                names = set(inspect(conn).get_table_names())
                meta = dict(conn.execute(select(schema.kb_meta.c.key, schema.kb_meta.c.value)).all()) \
                    if "kb_meta" in names else {}
        except KnowledgeBaseError as error:
            if self.path is None:
                raise KnowledgeBaseError(f"cannot open the knowledge base {self.location!r}: {error.reason}; check "
                                         "the server's address, the user and the password") from None
            raise KnowledgeBaseError(
                f"{self.location!r} is not a readable SQLite knowledge base ({error.reason}); "
                "it was left untouched. Point kb= at another file, or move this one away."
            ) from None
        # A file is the base's alone; a database may hold other programs' tables too (a team's Optuna studies).
        ours = names if self.path is not None else names & {"kb_meta", *TABLES}
        if exists and ours and meta.get("format") != FORMAT:
            what = "an SQLite file" if self.path is not None else "a database"
            raise KnowledgeBaseError(
                f"{self.location!r} is {what} of another program (tables {sorted(ours)[:5]}); "
                "it was left untouched. Point kb= at another one."
            )
        version = int(meta.get("schema_version", SCHEMA_VERSION))
        if version > SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"{self.location!r} was written by a newer version of automl (schema {version}, "
                f"this one reads up to {SCHEMA_VERSION}); upgrade automl to use it"
            )
        if meta and (version == SCHEMA_VERSION or self.readonly):
            return version
        if self.readonly:
            raise KnowledgeBaseError(f"{self.location!r} is empty; it is not a knowledge base")
        if self.path is not None and not meta:
            with self._engine().connect() as conn:  # outside a transaction: only there does SQLite switch journals
                conn.exec_driver_sql("PRAGMA journal_mode = WAL")
        return self._write(self._create_or_upgrade)

    def _create_or_upgrade(self, conn: Connection) -> int:
        """Create the tables of a new base, or apply the upgrades an older one lacks (one opener at a time)."""
        if self.path is None:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        names = set(inspect(conn).get_table_names())
        meta = dict(conn.execute(select(schema.kb_meta.c.key, schema.kb_meta.c.value)).all()) \
            if "kb_meta" in names else {}
        if not meta:
            schema.metadata.create_all(conn)
            conn.execute(sql.insert_ignoring(conn, schema.kb_meta),
                         [{"key": "format", "value": FORMAT}, {"key": "schema_version", "value": str(SCHEMA_VERSION)}])
            return SCHEMA_VERSION
        version = int(meta["schema_version"])
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in schema.MIGRATIONS[step]:
                conn.exec_driver_sql(statement)
        conn.execute(schema.kb_meta.update().where(schema.kb_meta.c.key == "schema_version"),
                     {"value": str(SCHEMA_VERSION)})
        return SCHEMA_VERSION

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
        return self._write(lambda conn: sql.upsert_task(conn, name, values))

    def task_id(self, name: str) -> int | None:
        with self._db() as conn:
            return sql.find_task(conn, name)

    def tasks(self, source: str | None = None) -> pd.DataFrame:
        """All tasks (one row each), optionally of one source."""
        query = select(schema.tasks).order_by(schema.tasks.c.name)
        if source is not None:
            query = query.where(schema.tasks.c.source == source)
        with self._db() as conn:
            return pd.read_sql_query(query, conn)

    # -- meta-features ---------------------------------------------------
    def set_meta_features(
        self, task: str, version: str, values: Mapping[str, float], source: str = "automl", seconds: float | None = None
    ) -> None:
        """Store a task's meta-features under an extractor version (replacing that version's)."""
        features = json.dumps({k: _finite(v) for k, v in values.items()}, sort_keys=True)

        def write(conn: Connection) -> None:
            row = {"task_id": sql.require_task(conn, task), "version": version, "source": source, "features": features,
                   "seconds": seconds}
            statement = sql.dialect_insert(conn, schema.meta_features).values(row)
            conn.execute(statement.on_conflict_do_update(
                index_elements=["task_id", "version", "source"],
                set_={"features": statement.excluded.features, "seconds": statement.excluded.seconds}))

        self._write(write)

    def has_meta_features(self, task: str, version: str, source: str = "automl") -> bool:
        m, t = schema.meta_features, schema.tasks
        query = select(m.c.task_id).join(t, t.c.task_id == m.c.task_id).where(
            t.c.name == task, m.c.version == version, m.c.source == source)
        with self._db() as conn:
            return conn.execute(query).first() is not None

    # -- runs ------------------------------------------------------------
    def add_runs(self, task: str, runs: Iterable[Run]) -> int:
        """Append runs of one task (duplicates ignored); returns how many were new."""
        runs = list(runs)
        if not runs:
            return 0
        configs = sorted({r.config.key(): {"config_id": r.config.key(), "learner": r.config.learner,
                                           "params": json.dumps(dict(r.config.params), sort_keys=True),
                                           "space_version": r.space_version} for r in runs}.items())

        def write(conn: Connection) -> int:
            task_id = sql.require_task(conn, task)
            # In one order in every writer, so that two writers adding the same configurations cannot deadlock.
            conn.execute(sql.insert_ignoring(conn, schema.configs), [row for _, row in configs])
            rows = sorted(({
                "run_key": _run_key(task, r), "task_id": task_id, "config_id": r.config.key(), "metric": r.metric,
                "fold_scores": json.dumps([_finite(v) for v in r.fold_scores]), "score": _finite(r.score),
                "fit_seconds": r.fit_seconds, "status": r.status, "error": r.error, "origin": r.origin,
                "created": r.created, "engine_version": r.engine_version, "host": r.host,
            } for r in runs), key=lambda row: row["run_key"])
            return sql.insert_counting(conn, schema.runs, rows, self.version)

        return self._write(write)

    def evaluated_configs(self, task: str, origin: str | None = None) -> set[str]:
        """Hashes of the configurations already run on ``task`` (for resuming)."""
        r, t = schema.runs, schema.tasks
        query = select(r.c.config_id).distinct().join(t, t.c.task_id == r.c.task_id).where(t.c.name == task)
        if origin is not None:
            query = query.where(r.c.origin == origin)
        with self._db() as conn:
            return set(conn.execute(query).scalars())

    def runs(self, task: str | None = None, metric: str | None = None) -> pd.DataFrame:
        """Runs joined with their task name, learner and parameters, in the order they were written.

        The order is made here, not by the database: asked to order by run,
        a planner may walk the whole runs table in that order to find one
        task's few runs (a third of a second at a million runs), where the
        task's index finds them at once.
        """
        r, t, c = schema.runs, schema.tasks, schema.configs
        query = (
            select(r.c.run_id, t.c.name.label("task"), t.c.task_type, r.c.config_id, c.c.learner, c.c.params,
                   r.c.metric, r.c.score, r.c.fold_scores, r.c.fit_seconds, r.c.status, r.c.error, r.c.origin,
                   r.c.created, r.c.engine_version, self._host(r))
            .join(t, t.c.task_id == r.c.task_id).join(c, c.c.config_id == r.c.config_id)
        )
        if task is not None:
            query = query.where(t.c.name == task)
        if metric is not None:
            query = query.where(r.c.metric == metric)
        with self._db() as conn:
            frame = pd.read_sql_query(query, conn)
        return frame.sort_values("run_id", kind="stable").drop(columns="run_id").reset_index(drop=True)

    def _host(self, runs_table):
        """The runs' host column, or an empty one in a base older than it (read-only openers do not upgrade)."""
        return runs_table.c.host if "host" in schema.columns_at(schema.runs, self.version) \
            else text("'' AS host")

    def configs(self) -> pd.DataFrame:
        with self._db() as conn:
            return pd.read_sql_query(select(schema.configs).order_by(schema.configs.c.config_id), conn)

    def fixed_value(self, key: str, make: Callable[[], str]) -> str:
        """The text stored in the base under ``key``, or ``make()`` stored there first: a value fixed on first use
        (a build's candidate set, so that a resumed build reuses it), the same for every writer."""

        def write(conn: Connection) -> str:
            meta = schema.kb_meta
            found = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
            if found is None:
                conn.execute(sql.insert_ignoring(conn, meta).values(key=key, value=make()))
                found = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
            return found

        return self._write(write)

    def revision(self) -> tuple[int, int, int]:
        """What identifies the current contents cheaply: the newest run and task, and how many meta-features are
        stored (these only grow; a new value means new knowledge)."""
        query = text("SELECT (SELECT max(run_id) FROM runs), (SELECT max(task_id) FROM tasks), "
                     "(SELECT count(*) FROM meta_features)")
        with self._db() as conn:
            return tuple(int(value or 0) for value in conn.execute(query).one())

    def snapshot(self) -> Knowledge:
        """The whole base in memory (see :class:`~metaknowledge.snapshot.Knowledge`)."""
        return Knowledge(**self.tables())

    def score_matrix(self, metric: str | None = None, task_type: str | None = None) -> pd.DataFrame:
        """Tasks x configurations: mean score of successful runs (NaN where none)."""
        return self.snapshot().score_matrix(metric, task_type)

    def info(self) -> dict[str, Any]:
        """What the base holds, for ``automl kb info``: where it is (no password), and the counts of
        :meth:`Knowledge.info`, contributors by host among them."""
        return {"path": self.location, "store": "postgresql" if self.on_server else "sqlite",
                **self.snapshot().info()}

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table as a DataFrame, with task names instead of ids (for export and merge)."""
        r, t, m = schema.runs, schema.tasks, schema.meta_features
        run_columns = [r.c[name] for name in schema.columns_at(r, self.version) if name not in ("run_id", "task_id")]
        with self._db() as conn:
            tasks = pd.read_sql_query(select(t).order_by(t.c.task_id), conn)
            meta = pd.read_sql_query(
                select(t.c.name.label("task"), m.c.version, m.c.source, m.c.features, m.c.seconds)
                .join(t, t.c.task_id == m.c.task_id), conn)
            configs = pd.read_sql_query(select(schema.configs), conn)
            runs = pd.read_sql_query(
                select(r.c.run_key, t.c.name.label("task"), *[c for c in run_columns if c.name != "run_key"])
                .join(t, t.c.task_id == r.c.task_id).order_by(r.c.run_id), conn)
        if "host" not in runs:
            runs["host"] = ""
        return {"tasks": tasks.drop(columns=["task_id"]), "meta_features": meta, "configs": configs, "runs": runs}

    def add_tables(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, int]:
        """Merge tables in the form :meth:`tables` returns; existing rows are kept."""

        def write(conn: Connection) -> dict[str, int]:
            added = dict.fromkeys(TABLES, 0)
            ids: dict[str, int] = {}
            for row in tables["tasks"].to_dict("records"):
                existed = sql.find_task(conn, row["name"]) is not None
                values = {k: _sql_value(v) for k, v in row.items() if k in schema.tasks.c and k not in
                          ("name", "created", "task_id")}
                ids[row["name"]] = sql.upsert_task(conn, row["name"], values)
                added["tasks"] += not existed
            meta = [{"task_id": ids[row["task"]], "version": row["version"], "source": row["source"],
                     "features": row["features"], "seconds": _sql_value(row["seconds"])}
                    for row in tables["meta_features"].to_dict("records")]
            added["meta_features"] = sql.insert_counting(conn, schema.meta_features, meta, self.version)
            configs = [{k: row[k] for k in ("config_id", "learner", "params", "space_version")}
                       for row in tables["configs"].to_dict("records")]
            added["configs"] = sql.insert_counting(conn, schema.configs, configs, self.version)
            runs = [{
                "run_key": row["run_key"], "task_id": ids[row["task"]], "config_id": row["config_id"],
                "metric": row["metric"], "fold_scores": row["fold_scores"], "score": _sql_value(row["score"]),
                "fit_seconds": _sql_value(row["fit_seconds"]), "status": row["status"], "error": row["error"],
                "origin": row["origin"], "created": row["created"], "engine_version": row["engine_version"],
                "host": _sql_value(row.get("host")) or "",
            } for row in tables["runs"].to_dict("records")]
            added["runs"] = sql.insert_counting(conn, schema.runs, runs, self.version)
            return added

        return self._write(write)

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
