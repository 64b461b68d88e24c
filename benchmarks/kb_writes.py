"""How fast many processes write one knowledge base at once, on SQLite and on PostgreSQL.

Each writer is a process of its own that adds a task and then writes its runs
in transactions of ``--batch`` runs (a search writes its trials back in one),
as fits on several cores or machines do. The figure is runs written per second
of wall time, all writers together, from the moment they all stand ready
(their imports done) to the last commit; each setting is checked to end with
every run once.

The PostgreSQL server is a fresh one started on 127.0.0.2 for the benchmark
(Debian's server programs, as the tests start it: ``tests/postgres_server.py``),
with a new database for each setting.

    python -m benchmarks.kb_writes --writers 1 4 16 --runs 500
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import pandas as pd

from metaknowledge.store import KnowledgeBase, Run
from searchspaces import Config
from tests.postgres_server import postgres_server

OUT = Path(__file__).resolve().parent / "results" / "knowledge_base"


def _runs(writer: int, start: int, count: int) -> list[Run]:
    return [Run(Config("knn", {"n_neighbors": writer * 1_000_000 + i}), "roc_auc", 0.5, origin=f"writer-{writer}",
                created=1.0 + i, fit_seconds=0.1, fold_scores=[0.5, 0.5, 0.5])
            for i in range(start, start + count)]


def _writer(location: str, writer: int, runs: int, batch: int, ready, go) -> None:
    kb = KnowledgeBase(location)
    kb.add_task(f"task-{writer}", "user", "binary", "roc_auc", 1000, 10, 2)
    batches = [_runs(writer, start, min(batch, runs - start)) for start in range(0, runs, batch)]
    ready.release()
    go.wait()
    for chunk in batches:
        kb.add_runs(f"task-{writer}", chunk)


def throughput(location: str, writers: int, runs: int, batch: int) -> float:
    """Runs per second for ``writers`` processes writing ``runs`` each to the (empty) base at ``location``."""
    KnowledgeBase(location)
    context = multiprocessing.get_context("spawn")
    ready, go = context.Semaphore(0), context.Event()
    processes = [context.Process(target=_writer, args=(location, w, runs, batch, ready, go)) for w in range(writers)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.acquire(timeout=300)
    started = time.perf_counter()
    go.set()
    for process in processes:
        process.join(timeout=1800)
        if process.exitcode != 0:
            raise RuntimeError(f"a writer failed (exit code {process.exitcode})")
    seconds = time.perf_counter() - started
    written = KnowledgeBase(location, readonly=True).runs()
    if len(written) != writers * runs or written.duplicated(["config_id"]).any():
        raise RuntimeError(f"{len(written)} runs stored, {writers * runs} written")
    return writers * runs / seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--runs", type=int, default=500, help="runs per writer (default 500)")
    parser.add_argument("--batch", type=int, default=25, help="runs per transaction (default 25)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    rows = []
    with postgres_server() as server, tempfile.TemporaryDirectory() as folder:
        for writers in args.writers:
            for store in ("sqlite", "postgresql"):
                if store == "sqlite":
                    location = str(Path(folder) / f"kb-{writers}.sqlite")
                else:
                    location = server.new_database(f"writes_{writers}")
                rate = throughput(location, writers, args.runs, args.batch)
                rows.append({"store": store, "writers": writers, "runs": writers * args.runs, "batch": args.batch,
                             "runs_per_second": round(rate)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows).pivot(index="writers", columns="store", values="runs_per_second")
    save_table(args.out, "writes", rows, table, f"Runs written per second, all writers together ({args.runs} runs "
                                                f"per writer, {args.batch} per transaction)")


def save_table(out: Path, name: str, rows: list[dict], table: pd.DataFrame, caption: str) -> None:
    """Write the measurements (``NAME.csv``) and their table under its caption (``NAME.md``), and print the table."""
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(f"{caption}:\n\n{table.to_markdown()}\n")
    print(table.to_markdown())


if __name__ == "__main__":
    main()
