"""What the warm start costs a fit's budget on a fresh machine, and on the fit after it.

Each dataset gets a machine of its own (an empty home and cache folder), and two
``automl.fit`` calls of ``--budget`` seconds in fresh processes, as a user's
first two runs: the first finds no cache (the shipped prepared state serves),
the second finds the user's base changed by the first fit's write-back. For
each it prints the seconds spent before the search (reading the data,
meta-features, the warm start), the warm start's planning alone, the whole
call and the trials run.

    python -m benchmarks.first_fit --budget 3 --names breast_cancer cmc 1027_ESL
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

from benchmarks.datasets import VALIDATION
from benchmarks.peers import DEFAULT_DATA

OUT = Path(__file__).resolve().parent / "results" / "first_fit"
ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, warnings
warnings.simplefilter("ignore")
import automl
model = automl.fit(sys.argv[1], time_budget=float(sys.argv[2]), verbose=0)
s = model.summary
print(json.dumps({"prepare_s": s.prepare_seconds, "warm_start_s": s.warm_start.seconds if s.warm_start else None,
                  "seconds": s.seconds, "trials": s.n_trials}))
"""


def measure(path: Path, budget: float) -> list[dict]:
    """The two fits of one dataset on a fresh machine: first (empty cache), then second (after the write-back)."""
    with tempfile.TemporaryDirectory() as home:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AUTOML_")}
        env.update(HOME=home, XDG_CACHE_HOME=str(Path(home) / "cache"), PYTHONPATH=str(ROOT))
        rows = []
        for fit in ("first", "second"):
            done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(budget)], env=env, capture_output=True,
                                  text=True, timeout=budget * 10 + 120)
            if done.returncode != 0:
                raise RuntimeError(f"{path.name}: {done.stderr[-500:]}")
            rows.append({"dataset": path.name.removesuffix(".tsv.gz"), "fit": fit, **json.loads(done.stdout)})
        return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--names", nargs="+", default=VALIDATION[:10])
    parser.add_argument("--budget", type=float, default=3.0)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    rows = [row for name in args.names for row in measure(Path(args.data) / f"{name}.tsv.gz", args.budget)]
    frame = pd.DataFrame(rows)
    summary = frame.groupby("fit")[["prepare_s", "warm_start_s", "seconds", "trials"]].agg(["median", "max"]).round(3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "raw.csv", index=False)
    text = (f"# The warm start's cost to a {args.budget:g} s fit, first and second fit on a fresh machine\n\n"
            f"{len(args.names)} datasets: {', '.join(args.names)}.\n\n{summary.to_markdown()}\n")
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
