"""Running each (system, dataset, seed, budget) in its own process, resumably.

A job runs ``python -m benchmarks.runner`` in a child process with every
thread pool limited to one thread, under a hard wall limit of
``budget * 1.5 + 60`` seconds (plus a system's ``extra_seconds``: AutoGluon
starts a Python of its own), so a hung or crashing peer cannot stop the run:
its row records the error. A system that reports its own ``wall_seconds``
(AutoGluon, timed inside its own process after its imports) is recorded with
them instead of the runner's clock. Rows are appended to ``raw.csv`` as jobs finish;
a rerun skips the jobs already there. Several jobs may run at once
(``jobs=``): every system is single-threaded, so two jobs on two cores do
not slow each other down.

The children read a private, empty user knowledge base (an ``AUTOML_KB`` file,
or the default path inside a cache directory of their own), and the shipped
knowledge or the one given by :class:`Knowledge` settings, so a held-out
evaluation can remove the benchmark's own datasets from what the engine knows.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from benchmarks.limits import SINGLE_THREAD, hard_limit
from benchmarks.protocol import constant_prediction, load_split, score
from benchmarks.systems import SYSTEMS, NotAvailable

RAW_COLUMNS = [
    "system", "dataset", "task", "seed", "budget", "status", "metric", "value", "readable", "const_value",
    "wall_seconds", "n_trials", "incumbent_seconds", "error",
]
KEY = ["system", "dataset", "seed", "budget"]


@dataclass
class Job:
    system: str
    dataset: str
    seed: int
    budget: float
    data_dir: str

    @property
    def hard_limit(self) -> float:
        """The wall limit of this job's child: see :func:`benchmarks.limits.hard_limit`, with the system's
        ``extra_seconds``."""
        system = SYSTEMS.get(self.system)
        return hard_limit(self.budget, system.extra_seconds if system else 0.0)


def run_job(job: Job) -> dict:
    """Run one job in this process (the child side); returns its raw row."""

    row = {k: v for k, v in asdict(job).items() if k != "data_dir"}
    split = load_split(job.data_dir, job.dataset, job.seed)
    row.update(task=split.task, metric=split.metric, const_value=score(split, constant_prediction(split))[0])
    system = SYSTEMS[job.system]
    for package in system.imports:  # a user's budget is for the fit, not for importing the library
        importlib.import_module(package)
    started = time.monotonic()
    try:
        output = system.run(split, job.budget, job.seed)
        measured = time.monotonic() - started
        row["wall_seconds"] = measured if output.wall_seconds is None else output.wall_seconds  # the system's own clock
        row["value"], row["readable"] = score(split, output.prediction)
        row.update(status="ok", n_trials=output.n_trials, incumbent_seconds=output.incumbent_seconds, error="")
    except NotAvailable as reason:
        row.update(status="not_available", error=str(reason), wall_seconds=time.monotonic() - started)
    except Exception as error:  # a peer may fail in any way; the row records it
        row.update(status="failed", error=f"{type(error).__name__}: {error}", wall_seconds=time.monotonic() - started)
        traceback.print_exc()
    return row


@dataclass(frozen=True)
class Knowledge:
    """What the engine may know in the children: a knowledge base to read instead of the shipped one, minus
    held-out tasks.

    ``default_path``: the children find their user knowledge base where a new user's ``fit`` does, in the cache
    directory (which starts out missing), with that directory moved into the work folder; otherwise they use a
    private ``AUTOML_KB`` file there. Either way, never the user's own base.
    """

    shipped: str | None = None  # an export directory (automl kb export), or "none"; None keeps the shipped knowledge
    hold_out: tuple[str, ...] = ()
    default_path: bool = False


def child_cache_home(work: Path) -> Path:
    """The cache root of children run with ``Knowledge(default_path=True)``; their base is ``automl/kb.sqlite`` in
    it."""
    return work.resolve() / "cache"


def _child_environment(work: Path, knowledge: Knowledge = Knowledge()) -> dict:
    env = dict(os.environ, **SINGLE_THREAD)
    if knowledge.default_path:  # metaknowledge.shipped.cache_dir() reads these, not HOME, on Linux and Windows
        env.pop("AUTOML_KB", None)
        env["XDG_CACHE_HOME"] = env["LOCALAPPDATA"] = str(child_cache_home(work))
    else:
        env["AUTOML_KB"] = str(work / "benchmark-kb.sqlite")
    if knowledge.shipped:
        none = knowledge.shipped.strip().lower() == "none"
        env["AUTOML_SHIPPED_KB"] = "none" if none else str(Path(knowledge.shipped).resolve())
    if knowledge.hold_out:
        env["AUTOML_KB_EXCLUDE"] = ",".join(knowledge.hold_out)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_in_child(job: Job, work: Path, knowledge: Knowledge = Knowledge()) -> dict:
    """Run ``job`` in a child process under its hard limit."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.runner", json.dumps(asdict(job))],
            capture_output=True, text=True, timeout=job.hard_limit, env=_child_environment(work, knowledge),
        )
    except subprocess.TimeoutExpired:
        return {**_blank(job), "status": "timeout", "wall_seconds": time.monotonic() - started,
                "error": f"killed at the hard limit of {job.hard_limit:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return {**_blank(job), "status": "failed", "wall_seconds": time.monotonic() - started,
                "error": f"crashed: {tail[0]}"}
    return json.loads(lines[-1])


def _blank(job: Job) -> dict:
    return {"system": job.system, "dataset": job.dataset, "seed": job.seed, "budget": job.budget}


def run_all(
    jobs: list[Job], raw_path: Path, progress: bool = True, parallel: int = 1, knowledge: Knowledge = Knowledge()
) -> pd.DataFrame:
    """Run every job not yet in ``raw_path`` (``parallel`` at a time), appending rows as they finish."""
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if raw_path.exists():
        existing = pd.read_csv(raw_path)
        done = set(map(tuple, existing[KEY].astype(str).to_numpy()))
    todo = [j for j in jobs if (j.system, j.dataset, str(j.seed), str(float(j.budget))) not in done]
    expected = sum(j.budget if j.budget else 5 for j in todo) + 3 * len(todo)
    lock = threading.Lock()
    with tqdm(total=round(expected), desc="benchmark", unit="s", disable=not progress) as bar:

        def run_one(job: Job) -> None:
            row = run_in_child(job, raw_path.parent, knowledge)
            with lock:
                frame = pd.DataFrame([{c: row.get(c) for c in RAW_COLUMNS}])
                frame.to_csv(raw_path, mode="a", header=not raw_path.exists(), index=False)
                bar.set_postfix_str(f"{job.system} {job.dataset} {job.budget:g}s")
                bar.update(round(job.budget + 3))

        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            list(pool.map(run_one, todo))
    return pd.read_csv(raw_path)


if __name__ == "__main__":
    result = run_job(Job(**json.loads(sys.argv[1])))
    print(json.dumps(result, default=float), flush=True)
