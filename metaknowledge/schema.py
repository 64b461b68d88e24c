"""The tables of a knowledge base, the same on SQLite and PostgreSQL, and the steps that upgrade older bases.

Tables:

- ``kb_meta``: what this database is (``format``) and its ``schema_version``;
- ``tasks``: one row per dataset/task (name, source — corpus, openml or user —,
  OpenML ids, task type, metric, sizes, a content fingerprint);
- ``meta_features``: per task and extractor version, a JSON object of values
  (values of different versions are never mixed);
- ``configs``: learner, parameters (JSON), search-space version, canonical hash;
- ``runs``: task, configuration, metric, fold scores, mean, fit seconds,
  status, error, time, engine version, origin (builder, fit, openml) and the
  host that ran it.

A base of an older schema is upgraded in place, one numbered step at a time,
the first time it is opened for writing (:data:`MIGRATIONS`); read-only
openers read it as it is.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)

FORMAT = "automl-knowledge-base"
SCHEMA_VERSION = 2  # 2: runs.host, the machine that ran each run (contributors of a shared base)
TABLES = ("tasks", "meta_features", "configs", "runs")

# Upgrades: the columns (table, column, SQL type) that schema N added; a base of schema N - 1 gets them in place.
ADDED_COLUMNS: dict[int, tuple[tuple[str, str, str], ...]] = {
    2: (("runs", "host", "TEXT NOT NULL DEFAULT ''"),),
}
MIGRATIONS: dict[int, tuple[str, ...]] = {
    version: tuple(f"ALTER TABLE {table} ADD COLUMN {column} {kind}" for table, column, kind in added)
    for version, added in ADDED_COLUMNS.items()
}

_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite numbers rows itself only for INTEGER PRIMARY KEY

metadata = MetaData()

kb_meta = Table(
    "kb_meta", metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

tasks = Table(
    "tasks", metadata,
    Column("task_id", _ID, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("source", Text, nullable=False),
    Column("task_type", Text),
    Column("metric", Text),
    Column("n_rows", Integer),
    Column("n_features", Integer),
    Column("n_classes", Integer),
    Column("openml_task_id", Integer),
    Column("openml_dataset_id", Integer),
    Column("fingerprint", Text),
    Column("status", Text, nullable=False, server_default=text("'ok'")),
    Column("error", Text, nullable=False, server_default=text("''")),
    Column("created", Double, nullable=False),
)

meta_features = Table(
    "meta_features", metadata,
    Column("task_id", _ID, ForeignKey("tasks.task_id"), primary_key=True),
    Column("version", Text, primary_key=True),
    Column("source", Text, primary_key=True, server_default=text("'automl'")),
    Column("features", Text, nullable=False),
    Column("seconds", Double),
)

configs = Table(
    "configs", metadata,
    Column("config_id", Text, primary_key=True),
    Column("learner", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("space_version", Text, nullable=False, server_default=text("''")),
)

runs = Table(
    "runs", metadata,
    Column("run_id", _ID, primary_key=True, autoincrement=True),
    Column("run_key", Text, nullable=False, unique=True),
    Column("task_id", _ID, ForeignKey("tasks.task_id"), nullable=False),
    Column("config_id", Text, ForeignKey("configs.config_id"), nullable=False),
    Column("metric", Text, nullable=False),
    Column("fold_scores", Text, nullable=False, server_default=text("'[]'")),
    Column("score", Double),
    Column("fit_seconds", Double),
    Column("status", Text, nullable=False),
    Column("error", Text, nullable=False, server_default=text("''")),
    Column("origin", Text, nullable=False, server_default=text("''")),
    Column("created", Double, nullable=False),
    Column("engine_version", Text, nullable=False, server_default=text("''")),
    Column("host", Text, nullable=False, server_default=text("''")),
    Index("runs_by_task", "task_id", "config_id"),
)

RUN_COLUMNS = tuple(c.name for c in runs.columns if c.name != "run_id")


def columns_at(table: Table, version: int) -> list[str]:
    """The columns ``table`` has in a base of schema ``version`` (a read-only opener reads older bases as they
    are)."""
    added = {column: since for since, columns in ADDED_COLUMNS.items() for name, column, _ in columns
             if name == table.name}
    return [c.name for c in table.columns if added.get(c.name, 1) <= version]
