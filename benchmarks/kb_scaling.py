"""Whether the warm start's read cost stays small as the knowledge base grows (10,000 tasks, 1,000,000 runs).

A synthetic base like a team's after years of fits: each task holds runs of
configurations shared across tasks (portfolio members, defaults) and of its
own (a search's samples), with meta-features, half of the tasks classification
and half regression. For each size and store (SQLite, PostgreSQL), a fresh
process fits a corpus dataset against it and the time from "data ready" to
"first trial starts" is measured, and to the nearest datasets' priors being
planned while that trial runs (the process stops there), in the three
situations a user meets:

- ``first fit here``: no cache on this machine yet (the shipped state serves
  while the whole knowledge is prepared in the background, whose seconds are
  reported as ``background_prepare_seconds``);
- ``base unchanged``: the knowledge as prepared before;
- ``base grew``: another writer added a task since (a team's usual case).

    python -m benchmarks.kb_scaling --sizes 227:34000 10000:1000000 --budget 30
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from benchmarks.first_trial import DATA_READY
from benchmarks.kb_writes import save_table
from benchmarks.peers import DEFAULT_DATA
from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.shipped import shipped_knowledge
from metaknowledge.store import KnowledgeBase
from searchspaces import Config, get_learner, space_learners
from tests.postgres_server import postgres_server

OUT = Path(__file__).resolve().parent / "results" / "knowledge_base"
ROOT = Path(__file__).resolve().parents[1]
SHARED_CONFIGS = 200  # the pool of configurations that many tasks run
SHARED_PER_TASK = 40  # of each task's runs, these come from the pool; the rest are its own
CHUNK_TASKS = 250  # tasks written per transaction while building
SITUATIONS = ("first fit here", "base unchanged", "base grew")
CHILD = DATA_READY + """
import signal
from automl.knowledge.fit_knowledge import FitKnowledge
submit = worker.WorkerPool.submit
def timed_submit(self, *args, **kwargs):
    marks.setdefault("first", time.perf_counter())
    return submit(self, *args, **kwargs)
worker.WorkerPool.submit = timed_submit
settle = FitKnowledge.settle
def timed_settle(self, plan):
    settle(self, plan)
    print(json.dumps({"first_trial_ms": 1000 * (marks["first"] - marks["ready"]),
                      "priors_ready_ms": 1000 * (time.perf_counter() - marks["ready"]),
                      "warm_start": self.warm.method if self.warm else ""}), flush=True)
    os.killpg(0, signal.SIGKILL)  # the fit and its trial's worker: what was to be measured is measured
FitKnowledge.settle = timed_settle
frame = pd.read_csv(sys.argv[1], sep="\\t")
automl.fit(frame, target="target", time_budget=float(sys.argv[2]), verbose=0)
"""

def _configs(kind: str, count: int, rng: np.random.Generator) -> list[Config]:
    learners = list(space_learners("default"))
    out = []
    while len(out) < count:
        name = learners[int(rng.integers(len(learners)))]
        try:
            learner = get_learner(name, kind)
        except KeyError:
            continue
        out.append(Config(name, learner.space.sample(rng)))
    return out


def build_base(location: str, tasks: int, runs: int, seed: int = 0) -> None:
    """Fill the (empty) base at ``location`` with ``tasks`` synthetic tasks and ``runs`` runs in all, written in
    chunks of ``CHUNK_TASKS`` tasks through :meth:`KnowledgeBase.add_tables` (a merge's bulk path: a million runs
    in minutes, where one run at a time would take the better part of an hour)."""
    rng = np.random.default_rng(seed)
    kb = KnowledgeBase(location)
    meta = shipped_knowledge().meta_feature_table(EXTRACTOR_VERSION)
    pools = {kind: _configs(kind, SHARED_CONFIGS, rng) for kind in ("classification", "regression")}
    per_task = runs // tasks
    with tqdm(total=tasks, desc=f"synthetic base ({tasks} tasks)", unit="task") as bar:
        for first in range(0, tasks, CHUNK_TASKS):
            kb.add_tables(_synthetic_tables(range(first, min(tasks, first + CHUNK_TASKS)), per_task, pools, meta, rng))
            bar.update(min(tasks, first + CHUNK_TASKS) - first)


def _synthetic_tables(indexes: range, per_task: int, pools: dict[str, list[Config]], meta: pd.DataFrame,
                      rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """The tables (as :meth:`KnowledgeBase.tables` gives them) of the synthetic tasks ``indexes``."""
    tasks, features, configs, runs = [], [], {}, []
    now = time.time()
    for index in indexes:
        kind = "classification" if index % 2 == 0 else "regression"
        task_type, metric = ("binary", "roc_auc") if kind == "classification" else ("regression", "rmse")
        name = f"user/synthetic-{index:05d}"
        tasks.append({"name": name, "source": "user", "task_type": task_type, "metric": metric,
                      "n_rows": int(rng.integers(100, 100_000)), "n_features": int(rng.integers(2, 200)),
                      "n_classes": 2 if kind == "classification" else 0})
        row = meta.iloc[int(rng.integers(len(meta)))]
        features.append({"task": name, "version": EXTRACTOR_VERSION, "source": "automl", "seconds": None,
                         "features": json.dumps({k: float(v) * float(rng.lognormal(0, 0.1))
                                                 for k, v in row.items() if np.isfinite(v)}, sort_keys=True)})
        shared = [pools[kind][int(i)] for i in rng.choice(SHARED_CONFIGS, SHARED_PER_TASK, replace=False)]
        base = float(rng.uniform(0.6, 0.9))
        for i, config in enumerate(shared + _configs(kind, per_task - SHARED_PER_TASK, rng)):
            key = config.key()
            configs[key] = {"config_id": key, "learner": config.learner, "space_version": "",
                            "params": json.dumps(dict(config.params), sort_keys=True)}
            runs.append({"run_key": f"{name}/{i}", "task": name, "config_id": key, "metric": metric,
                         "fold_scores": "[]", "score": base + float(rng.normal(0, 0.05)),
                         "fit_seconds": float(rng.uniform(0.1, 5)), "status": "ok", "error": "", "origin": "",
                         "created": now + i * 1e-3, "engine_version": "", "host": f"worker-{index % 7}"})
    return {"tasks": pd.DataFrame(tasks), "meta_features": pd.DataFrame(features),
            "configs": pd.DataFrame(list(configs.values())), "runs": pd.DataFrame(runs)}


def first_trial_ms(location: str, cache: Path, data: Path, budget: float) -> dict[str, float]:
    """Milliseconds from data ready to the first trial (``first_trial_ms``) and to the nearest datasets' priors
    planned while it runs (``priors_ready_ms``), for a fresh process fitting ``data`` against the base."""
    env = dict(os.environ, AUTOML_KB=location, XDG_CACHE_HOME=str(cache), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("AUTOML_SHIPPED_KB", None)
    done = subprocess.run([sys.executable, "-c", CHILD, str(data), str(budget)], env=env, capture_output=True,
                          text=True, timeout=3600, start_new_session=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"the fit did not reach its first trial: {done.stderr[-2000:]}")
    timing = json.loads(lines[-1])
    return {key: float(timing[key]) for key in ("first_trial_ms", "priors_ready_ms")}


def wait_for_refresh(cache: Path, timeout: float = 3600.0) -> float:
    """Seconds until no background preparation of the knowledge runs any more in the cache folder ``cache``."""
    started = time.perf_counter()
    while list((cache / "automl" / "warm").glob("*.refreshing")):
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"the background preparation in {cache} took more than {timeout:.0f} s")
        time.sleep(0.5)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["227:34000", "10000:1000000"], help="TASKS:RUNS, each")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--dataset", default="analcatdata_germangss",
                        help="the corpus dataset fitted (default analcatdata_germangss)")
    parser.add_argument("--budget", type=float, default=30.0, help="the fit's budget in seconds (default 30)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    data = args.data / f"{args.dataset}.tsv.gz"
    rows = []
    with postgres_server() as server, tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            tasks, runs = (int(part) for part in size.split(":"))
            for store in args.stores:
                location = (str(Path(folder) / f"kb-{tasks}.sqlite") if store == "sqlite"
                            else server.new_database(f"scale_{tasks}"))
                started = time.perf_counter()
                build_base(location, tasks, runs)
                built = time.perf_counter() - started
                cache = Path(folder) / f"cache-{store}-{tasks}"
                timings = {SITUATIONS[0]: first_trial_ms(location, cache, data, args.budget)}
                prepared = wait_for_refresh(cache)  # the first fit left the preparation to a background process
                timings[SITUATIONS[1]] = first_trial_ms(location, cache, data, args.budget)
                KnowledgeBase(location).add_task("user/another-writer", "user", "binary", "roc_auc")
                timings[SITUATIONS[2]] = first_trial_ms(location, cache, data, args.budget)
                wait_for_refresh(cache)
                for situation, ms in timings.items():
                    rows.append({"store": store, "tasks": tasks, "runs": runs, "situation": situation,
                                 **{key: round(value, 1) for key, value in ms.items()},
                                 "build_seconds": round(built, 1), "background_prepare_seconds": round(prepared, 1)})
                    print(rows[-1], flush=True)
    table = pd.DataFrame(rows).pivot_table(index=["store", "situation"], columns="runs",
                                           values=["first_trial_ms", "priors_ready_ms"])
    save_table(args.out, "scaling", rows, table,
               f"Milliseconds from data ready to the first trial (first_trial_ms) and to the nearest datasets' "
               f"priors, planned while the first trial runs (priors_ready_ms), fitting {args.dataset} with a "
               f"{args.budget:g} s budget against synthetic bases of each size (columns: runs)")


if __name__ == "__main__":
    main()
