"""The knowledge base: storage, concurrency, bad files, export and merge, the corpus builder, write-back."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import psycopg
import pytest

import automl
from automl.cli.commands import main
from automl.knowledge import writeback
from automl.knowledge.build import build_knowledge_base
from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.shipped import cache_dir
from metaknowledge.snapshot import Knowledge
from metaknowledge.store import KnowledgeBase, KnowledgeBaseError, Run
from searchspaces import Config
from tests.conftest import ROOT, pmlb_path

FIXTURES = ROOT / "tests" / "fixtures"


def some_runs(n: int, seed: int = 0, origin: str = "test") -> list[Run]:
    rng = np.random.default_rng(seed)
    return [
        Run(Config("knn", {"n_neighbors": int(k), "p": 2, "weights": "uniform"}), "roc_auc", float(rng.uniform()),
            origin=origin)
        for k in rng.integers(1, 100, n)
    ]


def test_tasks_runs_and_the_score_matrix(kb_location):
    kb = KnowledgeBase(kb_location)
    kb.add_task("a", "corpus", "binary", "roc_auc", 100, 5, 2)
    kb.add_task("b", "corpus", "binary", "roc_auc", 200, 3, 2)
    shared = Config("linear", {"C": 1.0, "class_weight": None})
    kb.add_runs("a", [Run(shared, "roc_auc", 0.8),
                      Run(Config("knn", {"n_neighbors": 5, "p": 2, "weights": "uniform"}), "roc_auc", 0.7)])
    kb.add_runs("b", [Run(shared, "roc_auc", 0.9), Run(shared, "roc_auc", None, status="timeout", error="slow")])
    matrix = kb.score_matrix("roc_auc")
    assert matrix.shape == (2, 2) and matrix.loc["b", shared.key()] == 0.9
    assert np.isnan(matrix.loc["b"].drop(shared.key())).all()
    assert kb.evaluated_configs("a") == {shared.key(),
                                         Config("knn", {"n_neighbors": 5, "p": 2, "weights": "uniform"}).key()}
    assert len(kb.runs(task="b")) == 2
    with pytest.raises(KeyError, match="add_task"):
        kb.add_runs("missing", [Run(shared, "roc_auc", 0.5)])


def test_the_same_run_is_stored_once(kb_location):
    kb = KnowledgeBase(kb_location)
    kb.add_task("a", "corpus")
    runs = some_runs(5)
    assert kb.add_runs("a", runs) == 5
    assert kb.add_runs("a", runs) == 0


def test_meta_features_are_kept_per_version(kb_location):
    kb = KnowledgeBase(kb_location)
    kb.add_task("a", "corpus")
    kb.set_meta_features("a", "v1", {"x": 1.0, "y": float("nan")})
    kb.set_meta_features("a", "v2", {"x": 2.0})
    snapshot = kb.snapshot()
    assert (snapshot.meta_feature_table("v1").loc["a", "x"] == 1.0
            and np.isnan(snapshot.meta_feature_table("v1").loc["a", "y"]))
    assert snapshot.meta_feature_table("v2").loc["a", "x"] == 2.0
    assert kb.has_meta_features("a", "v2") and not kb.has_meta_features("a", "v3")


def _writer(path: str, worker: int) -> None:
    kb = KnowledgeBase(path)
    kb.add_task(f"task-{worker}", "corpus")
    for start in range(0, 1000, 50):  # many small transactions, interleaved with the other writers
        kb.add_runs(f"task-{worker}", some_runs(50, seed=worker * 1000 + start, origin=f"w{worker}-{start}"))


def test_four_processes_writing_at_once_lose_nothing(kb_location):
    path = kb_location
    KnowledgeBase(path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    counts = KnowledgeBase(path).runs().groupby("task").size()
    assert counts.to_dict() == {f"task-{w}": 1000 for w in range(4)}


def test_a_corrupt_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "kb.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(KnowledgeBaseError, match="not a readable SQLite"):
        KnowledgeBase(path)
    assert path.read_bytes() == before


def test_another_programs_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    before = path.read_bytes()
    with pytest.raises(KnowledgeBaseError, match="another program"):
        KnowledgeBase(path)
    assert path.read_bytes() == before


def _execute(location: str, statement: str) -> None:
    """Run one statement on the base's database directly (as another program would)."""
    if "://" in location:
        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute(statement)
    else:
        with sqlite3.connect(location) as conn:
            conn.execute(statement)


def test_a_base_from_a_newer_schema_is_refused(kb_location):
    KnowledgeBase(kb_location)
    _execute(kb_location, "UPDATE kb_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(KnowledgeBaseError, match="newer version"):
        KnowledgeBase(kb_location)


def test_a_database_with_other_programs_tables_holds_a_base_beside_them(postgres):
    """A team's database may hold its Optuna studies too; a table of our name that is not ours is refused."""
    url = postgres.new_database("shared_with_optuna")
    _execute(url, "CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)")
    kb = KnowledgeBase(url)
    kb.add_task("a", "corpus")
    assert KnowledgeBase(url, readonly=True).tasks()["name"].tolist() == ["a"]
    other = postgres.new_database("someone_elses_runs")
    _execute(other, "CREATE TABLE runs (id INTEGER)")
    with pytest.raises(KnowledgeBaseError, match="another program") as refused:
        KnowledgeBase(other)
    assert postgres.password not in str(refused.value)


def test_an_older_base_is_read_as_it_is_and_upgraded_when_written(tmp_path):
    """A copy of a base written by the previous schema (1, before runs knew their host)."""
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURES / "kb" / "schema1.sqlite", path)
    before = path.read_bytes()
    old = KnowledgeBase(path, readonly=True)
    assert old.version == 1 and len(old.runs()) == 23 and set(old.runs()["host"]) == {""}
    assert path.read_bytes() == before  # reading changed nothing
    upgraded = KnowledgeBase(path)
    assert upgraded.version == 2
    task = upgraded.tasks()["name"].iloc[0]
    assert upgraded.add_runs(task, some_runs(3)) == 3
    runs = KnowledgeBase(path, readonly=True).runs()
    assert len(runs) == 26 and (runs["host"] != "").sum() == 3
    assert upgraded.info()["contributors"][runs["host"].iloc[-1]]["runs"] == 3


def test_export_import_and_merge(tmp_path, kb_location):
    first = KnowledgeBase(kb_location)
    first.add_task("a", "corpus", "binary", "roc_auc", 10, 2, 2)
    first.set_meta_features("a", "v1", {"x": 1.0})
    first.add_runs("a", some_runs(7, seed=1))
    second = KnowledgeBase(tmp_path / "second.sqlite")
    second.add_task("b", "user", "binary", "roc_auc", 20, 2, 2)
    second.add_runs("b", some_runs(3, seed=2))

    exported = first.export(tmp_path / "export")
    copy = KnowledgeBase(tmp_path / "copy.sqlite")
    assert copy.import_export(exported)["runs"] == 7
    assert copy.import_export(exported)["runs"] == 0  # importing twice adds nothing
    added = copy.merge(second)
    assert added["tasks"] == 1 and added["runs"] == 3
    info = copy.info()
    assert info["tasks"] == 2 and info["runs"] == 10
    assert copy.snapshot().meta_feature_table("v1").loc["a", "x"] == 1.0


def test_combined_knowledge_drops_duplicates(kb_location):
    kb = KnowledgeBase(kb_location)
    kb.add_task("a", "corpus")
    kb.add_runs("a", some_runs(4))
    both = Knowledge.combine([kb.snapshot(), kb.snapshot()])
    assert len(both.runs) == 4 and len(both.tasks) == 1
    assert len(both.without_tasks(["a"]).runs) == 0


def test_builder_evaluates_candidates_resumes_and_records_broken_datasets(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, stored_as in (("prnn_crabs", "prnn_crabs"), ("1096_FacultySalaries", "salaries_0.5_v1.2")):
        for suffix in (".tsv.gz", ".yaml"):
            shutil.copy(pmlb_path(name).with_name(name + suffix), corpus / (stored_as + suffix))
    (corpus / "broken.tsv.gz").write_bytes(b"not gzip at all")
    shutil.copy(corpus / "prnn_crabs.yaml", corpus / "broken.yaml")
    (corpus / "index.csv").write_text("name,rows\nprnn_crabs,200\n")  # no yaml: a listing, not a dataset
    path = tmp_path / "kb.sqlite"
    report = build_knowledge_base(path, corpus, n_configs=8, folds=2, trial_time_limit=30, progress=False)
    assert report.datasets == 2 and report.runs_added == 16 and list(report.failed_datasets) == ["broken"]
    kb = KnowledgeBase(path)
    tasks = kb.tasks().set_index("name")
    assert tasks.loc["broken", "status"] == "load_failed" and tasks.loc["prnn_crabs", "task_type"] == "binary"
    assert tasks.loc["salaries_0.5_v1.2", "task_type"] == "regression"  # dots in a name are part of it
    assert kb.has_meta_features("prnn_crabs", EXTRACTOR_VERSION)
    matrix = kb.score_matrix("roc_auc")
    assert matrix.notna().sum(axis=1).loc["prnn_crabs"] >= 7
    again = build_knowledge_base(path, corpus, n_configs=8, folds=2, trial_time_limit=30, progress=False)
    assert again.runs_added == 0 and again.skipped_pairs == 16  # resumed: nothing evaluated twice


def test_a_build_for_some_learners_keeps_their_candidates_when_one_dataset_resumes_with_fewer(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("prnn_crabs", "analcatdata_creditscore"):
        for suffix in (".tsv.gz", ".yaml"):
            shutil.copy(pmlb_path(name).with_name(name + suffix), corpus / (name + suffix))
    path = tmp_path / "kb.sqlite"
    build_knowledge_base(path, corpus, names=["analcatdata_creditscore"], n_configs=4, folds=2, progress=False,
                         learners=["linear", "knn"])
    kb = KnowledgeBase(path)
    knn = [(cid,) for cid in kb.runs().query("learner == 'knn'")["config_id"]]
    with sqlite3.connect(path) as conn:  # as if a build had stopped after the linear runs of the first dataset
        conn.executemany("DELETE FROM runs WHERE config_id = ?", knn)
    build_knowledge_base(path, corpus, n_configs=4, folds=2, progress=False, learners=["linear", "knn"])
    runs = kb.runs()
    assert runs.groupby("task")["learner"].apply(set).to_dict() == {
        "analcatdata_creditscore": {"linear", "knn"}, "prnn_crabs": {"linear", "knn"}}
    assert runs.groupby("task").size().to_dict() == {"analcatdata_creditscore": 4, "prnn_crabs": 4}


def test_fit_writes_its_search_back_unless_told_not_to(tmp_path, small_binary):
    X, y = small_binary
    kb_path = tmp_path / "mine.sqlite"
    automl.fit(X, y, n_trials=3, time_budget=None, kb=kb_path, verbose=0, learners=["linear", "knn"])
    kb = KnowledgeBase(kb_path)
    tasks = kb.tasks()
    assert list(tasks["source"]) == ["user"] and len(kb.runs()) == 3
    assert kb.has_meta_features(tasks["name"][0], EXTRACTOR_VERSION)
    automl.fit(X, y, n_trials=2, time_budget=None, kb=kb_path, verbose=0, learners=["linear", "knn"])
    assert len(KnowledgeBase(kb_path).tasks()) == 1 and len(KnowledgeBase(kb_path).runs()) == 5  # same data, same task
    automl.fit(X, y, n_trials=2, time_budget=None, kb=kb_path, remember=False, verbose=0, learners=["linear"])
    assert len(KnowledgeBase(kb_path).runs()) == 5


def test_an_unwritable_base_costs_a_warning_not_the_model(tmp_path, small_binary, caplog, monkeypatch):
    X, y = small_binary
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"garbage" * 50)
    monkeypatch.setattr(writeback, "_warned", False)  # the console warning comes once per process
    with pytest.warns(RuntimeWarning, match="could not write this search"):
        model = automl.fit(X, y, n_trials=2, time_budget=None, kb=bad, verbose=0, learners=["linear"])
    assert model.predict(X).shape == (len(y),)
    assert "could not write this search" in caplog.text
    assert bad.read_bytes() == b"garbage" * 50


def fresh_machine(monkeypatch, tmp_path) -> Path:
    """A new user's machine: no AUTOML_KB, and a cache folder that does not exist yet; returns where the base goes."""
    monkeypatch.delenv("AUTOML_KB")  # set by the autouse fixture
    for variable in ("XDG_CACHE_HOME", "LOCALAPPDATA"):  # Linux and Windows
        monkeypatch.setenv(variable, str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # macOS caches under the home folder
    return cache_dir() / "kb.sqlite"


def test_fit_and_the_cli_write_to_the_default_base_on_a_fresh_machine(tmp_path, monkeypatch, small_binary, capsys):
    kb_path = fresh_machine(monkeypatch, tmp_path)
    assert kb_path.is_relative_to(tmp_path) and not kb_path.parent.exists()
    X, y = small_binary
    automl.fit(X, y, n_trials=2, time_budget=None, verbose=0, learners=["linear"])
    argv = ["fit", "sklearn:breast_cancer", "--trials", "2", "--learners", "linear", "-q", "--out",
            str(tmp_path / "m.pkl")]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["kb", "info"]) == 0
    out = capsys.readouterr().out
    assert "is empty" not in out and str(kb_path) in out
    assert '"user": 2' in out and '"runs": 4' in out  # both searches, as tasks of the user's base


WRITE_TWICE = """
import numpy as np, automl
X = np.random.default_rng(0).normal(size=(60, 3))
y = (X[:, 0] > 0).astype(int)
for _ in range(2):
    print(automl.fit(X, y, n_trials=1, time_budget=None, verbose=0, learners=["linear"]).predict(X).shape)
"""


def test_a_failed_write_back_warns_once_on_the_console_and_keeps_the_model(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AUTOML_KB", str(blocker / "kb.sqlite"))
    done = subprocess.run(
        [sys.executable, "-c", WRITE_TWICE], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(60,)", "(60,)"]  # both models came back
    assert done.stderr.count("could not write this search") == 1
    for hint in (str(blocker / "kb.sqlite"), "AUTOML_KB", "kb=", "remember=False"):
        assert hint in done.stderr


def test_kb_cli_build_info_export_merge(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for suffix in (".tsv.gz", ".yaml"):
        shutil.copy(pmlb_path("prnn_crabs").with_name("prnn_crabs" + suffix), corpus / ("prnn_crabs" + suffix))
    kb = tmp_path / "kb.sqlite"
    assert main(["kb", "build", "--datasets", str(corpus), "--configs", "7", "--folds", "2", "--kb", str(kb)]) == 0
    assert main(["kb", "info", "--kb", str(kb)]) == 0
    assert '"runs": 7' in capsys.readouterr().out
    assert main(["kb", "export", "--kb", str(kb), "--out", str(tmp_path / "export")]) == 0
    assert main(["kb", "merge", str(tmp_path / "export"), "--kb", str(tmp_path / "merged.sqlite")]) == 0
    assert len(KnowledgeBase(tmp_path / "merged.sqlite").runs()) == 7
    assert main(["kb", "info", "--kb", str(tmp_path / "nothing.sqlite")]) == 2


def test_what_one_machine_learned_alone_merges_into_the_teams_server_base(tmp_path, postgres, capsys):
    mine = KnowledgeBase(tmp_path / "mine.sqlite")
    mine.add_task("user/churn", "user", "binary", "roc_auc", 2000, 8, 2)
    mine.set_meta_features("user/churn", "v1", {"rows": 2000.0})
    mine.add_runs("user/churn", some_runs(6))
    team = postgres.new_database("team_merge")
    assert main(["kb", "merge", str(tmp_path / "mine.sqlite"), "--kb", team]) == 0
    assert main(["kb", "merge", str(tmp_path / "mine.sqlite"), "--kb", team]) == 0  # twice: nothing doubled
    assert main(["kb", "info", "--kb", team]) == 0
    shown = capsys.readouterr().out
    assert '"runs": 6' in shown and '"store": "postgresql"' in shown and postgres.password not in shown
    assert KnowledgeBase(team).snapshot().meta_feature_table("v1").loc["user/churn", "rows"] == 2000.0
