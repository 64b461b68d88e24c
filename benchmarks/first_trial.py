"""How soon the first trial starts once the data is ready, and how far a whole fit runs past its budget.

Each fit runs in a fresh process, on data already read into a DataFrame (the
timing starts when ``fit`` has typed it: the moment ``load_dataset`` returns)
and ends when the first trial is handed to a worker. The whole call is timed
against its budget too. Everything else is the engine as a user runs it:
the warm start from the shipped knowledge, writing back to a private base.

    python -m benchmarks.first_trial --budgets 3 10 --names validation
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks.datasets import LISTS
from benchmarks.peers import DEFAULT_DATA

OUT = Path(__file__).resolve().parent / "results" / "first_trial"
ROOT = Path(__file__).resolve().parents[1]
# The start of a child process that marks when the data is ready ("ready" in marks); the rest marks the first trial.
DATA_READY = """
import json, os, sys, time, warnings
warnings.simplefilter("ignore")
import pandas as pd
import automl, automl.engine as engine
from automl.search import worker
marks = {}
load = engine.load_dataset
def timed_load(*args, **kwargs):
    dataset = load(*args, **kwargs)
    marks.setdefault("ready", time.perf_counter())
    return dataset
engine.load_dataset = timed_load
"""
CHILD = DATA_READY + """
submit = worker.WorkerPool.submit
def timed_submit(self, *args, **kwargs):
    marks.setdefault("first", time.perf_counter())
    return submit(self, *args, **kwargs)
worker.WorkerPool.submit = timed_submit
frame = pd.read_csv(sys.argv[1], sep="\\t")
started = time.perf_counter()
model = automl.fit(frame, target="target", time_budget=float(sys.argv[2]), verbose=0)
seconds = time.perf_counter() - started
print(json.dumps({"first_trial_ms": 1000 * (marks["first"] - marks["ready"]), "seconds": seconds,
                  "trials": model.summary.n_trials,
                  "warm_start": model.summary.warm_start.method if model.summary.warm_start else ""}))
"""


def measure(path: Path, budget: float, kb: Path) -> dict:
    env = dict(os.environ, AUTOML_KB=str(kb), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(budget)], env=env, capture_output=True,
                          text=True, timeout=budget * 10 + 120)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--names", nargs="+", default=["validation"])
    parser.add_argument("--budgets", nargs="+", type=float, default=[3.0, 10.0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    names = [n for name in args.names for n in LISTS.get(name, [name])]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for budget in args.budgets:
            for name in names:
                row = {"dataset": name, "budget": budget, **measure(args.data / f"{name}.tsv.gz", budget,
                                                                    Path(work) / "kb.sqlite")}
                rows.append(row)
                print(json.dumps(row))
    table = pd.DataFrame(rows)
    table["over_budget_pct"] = 100 * (table["seconds"] / table["budget"] - 1)
    summary = table.groupby("budget").agg(
        fits=("dataset", "size"), first_trial_ms_median=("first_trial_ms", "median"),
        first_trial_ms_max=("first_trial_ms", "max"), over_50ms=("first_trial_ms", lambda s: int((s > 50).sum())),
        seconds_max=("seconds", "max"), over_budget_pct_max=("over_budget_pct", "max"),
        over_5pct=("over_budget_pct", lambda s: int((s > 5).sum())), trials_median=("trials", "median"))
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "fits.csv", index=False)
    (args.out / "summary.md").write_text(summary.reset_index().to_markdown(index=False, floatfmt=".3g") + "\n")
    print(summary.to_string())
    return summary


if __name__ == "__main__":
    main()
