"""Keep trials in an SQLite file: a second run (or a run after Ctrl-C or a crash) resumes the search.

Run: python examples/resume_search.py
"""

import os
import tempfile
from pathlib import Path

import automl

BUDGET = float(os.environ.get("AUTOML_EXAMPLE_BUDGET", 10))

if __name__ == "__main__":
    storage = Path(tempfile.mkdtemp()) / "search.db"
    first = automl.fit("sklearn:breast_cancer", storage=storage, time_budget=BUDGET, verbose=0)
    print(f"first run: {len(first.leaderboard())} trials, best {first.best_score_:.4f}")
    second = automl.fit("sklearn:breast_cancer", storage=storage, time_budget=BUDGET, verbose=0)
    print(f"second run: {len(second.leaderboard())} trials (the first run's included), best {second.best_score_:.4f}")
    assert len(second.leaderboard()) > len(first.leaderboard())
