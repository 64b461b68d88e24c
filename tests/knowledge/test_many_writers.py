"""Many processes writing one knowledge base at once, on SQLite and on PostgreSQL: nothing lost, nothing doubled,
and a writer killed mid-transaction harms no one."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time

import psycopg

from metaknowledge.store import KnowledgeBase, Run
from searchspaces import Config

WRITERS = 16
RUNS_PER_WRITER = 500
BATCH = 25  # runs per transaction: a search writes its trials in one


def _runs(writer: int, start: int, count: int) -> list[Run]:
    return [Run(Config("knn", {"n_neighbors": writer * 10_000 + i}), "roc_auc", 0.5 + i / 1e6,
                origin=f"writer-{writer}", created=1.0 + i)
            for i in range(start, start + count)]


def _write(location: str, writer: int, shared_task: bool) -> None:
    kb = KnowledgeBase(location)
    task = "shared" if shared_task else f"task-{writer}"
    kb.add_task(task, "user", "binary", "roc_auc")
    for start in range(0, RUNS_PER_WRITER, BATCH):
        kb.add_runs(task, _runs(writer, start, BATCH))


def _write_forever(location: str, ready) -> None:
    """Large transactions without end, until killed."""
    kb = KnowledgeBase(location)
    kb.add_task("doomed", "user")
    ready.set()
    start = 0
    while True:
        kb.add_runs("doomed", _runs(99, start, 2000))
        start += 2000


def _start(target, *args) -> multiprocessing.Process:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    return process


def test_sixteen_writers_at_once_end_with_every_run_once(kb_location):
    KnowledgeBase(kb_location)
    writers = [_start(_write, kb_location, w, w % 2 == 0) for w in range(WRITERS)]  # half of them on one task
    for writer in writers:
        writer.join(timeout=600)
        assert writer.exitcode == 0
    runs = KnowledgeBase(kb_location, readonly=True).runs()
    assert len(runs) == WRITERS * RUNS_PER_WRITER
    assert not runs.duplicated(["config_id", "origin"]).any()
    assert runs.groupby("origin").size().eq(RUNS_PER_WRITER).all()
    assert len(KnowledgeBase(kb_location).tasks()) == 1 + WRITERS // 2


def test_a_writer_killed_mid_transaction_leaves_the_base_whole_and_the_others_unharmed(kb_location):
    KnowledgeBase(kb_location)
    ready = multiprocessing.get_context("spawn").Event()
    doomed = _start(_write_forever, kb_location, ready)
    assert ready.wait(120)
    others = [_start(_write, kb_location, w, False) for w in range(3)]
    time.sleep(3)  # the doomed writer is inside one of its transactions most of the time
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.join(timeout=30)
    for writer in others:
        writer.join(timeout=600)
        assert writer.exitcode == 0
    kb = KnowledgeBase(kb_location)
    runs = kb.runs()
    assert runs[runs["task"] != "doomed"].groupby("task").size().eq(RUNS_PER_WRITER).all()
    assert (runs["task"] == "doomed").sum() % 2000 == 0  # whole transactions, never part of one
    assert kb.add_runs("doomed", _runs(98, 0, 10)) == 10  # no lock left behind
    if "://" not in kb_location:
        with sqlite3.connect(kb_location) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_open_read_does_not_hold_up_writers(kb_location):
    """A reader in the middle of a long read (its transaction open) does not stop another process from writing
    (the write-ahead log on SQLite, row versions on PostgreSQL)."""
    KnowledgeBase(kb_location).add_task("read", "user")
    if "://" in kb_location:
        reader = psycopg.connect(kb_location)
    else:
        reader = sqlite3.connect(kb_location, isolation_level=None)
        reader.execute("BEGIN")
    try:
        assert reader.execute("SELECT count(*) FROM runs").fetchone() == (0,)  # the read transaction is open
        writer = _start(_write, kb_location, 1, False)
        writer.join(timeout=120)
        assert writer.exitcode == 0
    finally:
        reader.close()
    assert len(KnowledgeBase(kb_location, readonly=True).runs(task="task-1")) == RUNS_PER_WRITER
