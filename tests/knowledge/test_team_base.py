"""A team's shared knowledge base and study on one PostgreSQL server, written by a search on a two-node Ray cluster
and read by a fit from another process with a home folder of its own (marked ``ray``: minutes of start-ups)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import automl
from metaknowledge.store import KnowledgeBase
from tests.conftest import ROOT, pmlb_path
from tests.ray_cluster import local_cluster  # before ray: it sets the session's auth token

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

# A colleague's process: its own home and cache folder, the team's base and study by URL.
COLLEAGUE = """
import json, sys
import pandas as pd
import automl
frame = pd.read_csv(sys.argv[1], sep="\\t").sample(frac=0.8, random_state=1)
model = automl.fit(frame, target="target", time_budget=None, n_trials=int(sys.argv[3]), warm_start=3,
                   learners=["linear", "knn"], storage=sys.argv[2], study_name=sys.argv[4], verbose=0)
record = model.summary.warm_start
print(json.dumps({"neighbours": [n.name for n in record.neighbours] if record else [],
                  "trials": len(model.leaderboard())}))
"""


def test_a_cluster_search_writes_the_team_base_once_and_a_colleague_starts_from_it(postgres, tmp_path):
    url = postgres.new_database("team")  # one database holds the team's knowledge base and its studies
    data = pmlb_path("prnn_crabs")
    with local_cluster(worker_nodes=1, cpus_per_node=1) as cluster:  # the file, read as the CLI reads it below
        model = automl.fit(str(data), time_budget=None, n_trials=6, backend="ray",
                           address=cluster.address, storage=url, study_name="crabs", kb=url, warm_start=3,
                           learners=["linear", "knn"], verbose=0)
    board = model.leaderboard()
    assert set(board["node"]) == {"127.0.0.2", "127.0.0.3"}  # the trials ran on both nodes

    base = KnowledgeBase(url, readonly=True)
    runs = base.runs()
    (first_task,) = base.tasks()["name"]
    assert len(runs) == len(board) and not runs.duplicated(["config_id", "created"]).any()  # written once
    assert base.info()["contributors"]  # and by whom

    env = dict(os.environ, PYTHONPATH=str(ROOT), AUTOML_KB=url, HOME=str(tmp_path / "colleague"),
               XDG_CACHE_HOME=str(tmp_path / "colleague" / ".cache"))
    done = subprocess.run([sys.executable, "-c", COLLEAGUE, str(data), url, "4", "crabs-colleague"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["neighbours"][:1] == [first_task]  # the colleague's warm start came from the team's first search
    assert len(KnowledgeBase(url, readonly=True).tasks()) == 2

    # The cluster's study is on the server too: the search resumes from another machine (process and home).
    resumed = subprocess.run([sys.executable, "-m", "automl.cli", "fit", str(data), "--storage", url, "--study",
                              "crabs", "--trials", "2", "--time", "120", "--learners", "linear", "knn", "-q",
                              "--out", str(tmp_path / "resumed.pkl")], env=env, capture_output=True, text=True,
                             timeout=600, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(automl.load(tmp_path / "resumed.pkl").leaderboard()) == len(board) + 2
    assert postgres.password not in resumed.stdout + resumed.stderr
