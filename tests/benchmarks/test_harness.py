"""The peer benchmark: scoring on hand-made results, and a tiny end-to-end run."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from benchmarks import peers
from benchmarks.protocol import add_scores
from benchmarks.runner import Job, Knowledge, _child_environment, child_cache_home, run_job
from tests.conftest import PMLB


def rows(records):
    base = {"seed": 0, "budget": 10.0, "wall_seconds": 5.0, "status": "ok"}
    return pd.DataFrame([{**base, **r} for r in records])


def test_normalised_scores_run_from_constant_to_best():
    results = rows([
        {"system": "a", "dataset": "d", "task": "binary", "value": 0.9, "const_value": 0.5},
        {"system": "b", "dataset": "d", "task": "binary", "value": 0.7, "const_value": 0.5},
        {"system": "const", "dataset": "d", "task": "binary", "value": 0.5, "const_value": 0.5},
    ])
    scored = add_scores(results).set_index("system")
    assert scored.loc["a", "normalized"] == 1.0 and scored.loc["b", "normalized"] == pytest.approx(0.5)
    assert scored.loc["const", "normalized"] == 0.0
    assert list(scored["rank"]) == [1.0, 2.0, 3.0]


def test_lower_is_better_metrics_are_flipped_and_ties_share_a_rank():
    results = rows([
        {"system": "a", "dataset": "d", "task": "regression", "value": 1.0, "const_value": 3.0},
        {"system": "b", "dataset": "d", "task": "regression", "value": 2.0, "const_value": 3.0},
        {"system": "c", "dataset": "d", "task": "regression", "value": 2.0, "const_value": 3.0},
    ])
    scored = add_scores(results).set_index("system")
    assert scored.loc["a", "normalized"] == 1.0 and scored.loc["b", "normalized"] == pytest.approx(0.5)
    assert scored.loc["b", "rank"] == scored.loc["c", "rank"] == 2.5


def test_failures_and_overruns_score_zero_with_the_worst_rank():
    results = rows([
        {"system": "good", "dataset": "d", "task": "binary", "value": 0.8, "const_value": 0.5},
        {"system": "slow", "dataset": "d", "task": "binary", "value": 0.95, "const_value": 0.5, "wall_seconds": 11.5},
        {"system": "broken", "dataset": "d", "task": "binary", "value": np.nan, "const_value": 0.5, "status": "failed"},
        {"system": "fixed", "dataset": "d", "task": "binary", "value": 0.7, "const_value": 0.5, "wall_seconds": 30.0},
    ])
    scored = add_scores(results, budget_free=frozenset({"fixed"})).set_index("system")
    assert scored.loc["slow", "status"] == "overrun" and scored.loc["slow", "normalized"] == 0.0
    assert scored.loc["broken", "normalized"] == 0.0
    assert scored.loc["slow", "rank"] == scored.loc["broken", "rank"] == 4.0
    assert scored.loc["good", "normalized"] == 1.0  # the overrun's better value does not count as the best
    assert scored.loc["fixed", "status"] == "ok"  # systems without a budget cannot overrun it
    assert "11.5 s, more than 10 % over its 10 s budget" in scored.loc["slow", "error"]


def test_the_summary_leaves_the_overrun_of_systems_without_a_budget_blank():
    from benchmarks.report import system_table

    results = rows([
        {"system": "tuned", "dataset": "d", "task": "binary", "value": 0.8, "const_value": 0.5, "wall_seconds": 10.5,
         "n_trials": 9},
        {"system": "fixed", "dataset": "d", "task": "binary", "value": 0.7, "const_value": 0.5, "wall_seconds": 30.0,
         "n_trials": 1},
    ])
    table = system_table(add_scores(results, frozenset({"fixed"})), frozenset({"fixed"})).set_index("system")
    assert table.loc["tuned", "max_overrun_pct"] == pytest.approx(5.0)
    assert np.isnan(table.loc["fixed", "max_overrun_pct"])


def test_warm_and_cold_are_paired_by_dataset_and_seed_within_and_across_budgets():
    from benchmarks.report import paired_table

    records = []
    for seed, (warm10, cold10, cold30) in enumerate([(0.9, 0.7, 0.9), (0.8, 0.8, 0.85)]):
        for system, budget, value in (("ours", 10.0, warm10), ("ours_cold", 10.0, cold10), ("ours_cold", 30.0, cold30),
                                      ("const", 10.0, 0.5)):
            records.append({"system": system, "dataset": "d", "task": "binary", "seed": seed, "budget": budget,
                            "value": value, "const_value": 0.5})
    table = paired_table(add_scores(rows(records))).set_index(["ours", "ours_cold"])
    same = table.loc[("10 s", "10 s")]
    assert (same["pairs"], same["wins"], same["losses"], same["ties"]) == (2, 1, 0, 1)
    assert same["mean difference"] == pytest.approx((1.0 - 0.5 + 0.0) / 2)  # seed 0: 0.9 vs 0.7 on a 0.5..0.9 scale
    across = table.loc[("10 s", "30 s")]  # one scale over both budgets: seed 1's best is cold at 30 s
    assert (across["wins"], across["losses"], across["ties"]) == (0, 1, 1)
    assert ("30 s", "10 s") not in table.index  # a larger warm budget is never set against a smaller cold one
    assert same["datasets won / lost"] == "1 / 0 of 1"  # the dataset's mean over the two seeds favours ours


def test_one_field_ranks_every_system_and_budget_together_and_fixed_models_once():
    from benchmarks.report import field_table

    records = []
    for system, budget, value in (("ours", 10.0, 0.9), ("ours", 30.0, 0.95), ("peer", 30.0, 0.92), ("peer", 10.0, 0.8),
                                  ("fixed", 10.0, 0.85), ("fixed", 30.0, 0.85)):
        records.append({"system": system, "dataset": "d", "task": "binary", "budget": budget, "value": value,
                        "const_value": 0.5, "wall_seconds": budget * 0.9})
    records.append({"system": "late", "dataset": "d", "task": "binary", "budget": 10.0, "value": 0.99,
                    "const_value": 0.5, "wall_seconds": 20.0})  # twice its budget: a failure, the worst rank
    field = field_table(add_scores(rows(records), frozenset({"fixed"})), frozenset({"fixed"})).set_index("entry")
    assert list(field.index) == ["ours 30 s", "peer 30 s", "ours 10 s", "fixed", "peer 10 s", "late 10 s"]
    assert field.loc["ours 10 s", "field_rank"] == 3 and field.loc["late 10 s", "field_rank"] == 6


def test_a_tiny_run_end_to_end(tmp_path):
    if not (PMLB / "prnn_crabs.tsv.gz").exists():
        pytest.skip(f"corpus not found under {PMLB}")
    out = tmp_path / "bench"
    argv = ["--data", str(PMLB), "--names", "prnn_crabs", "1027_ESL", "--systems", "const", "hgb_default", "ours_cold",
            "--budgets", "2", "--out", str(out), "--quiet"]
    table = peers.main(argv).set_index("system")
    assert set(table.index) == {"const", "hgb_default", "ours_cold"}
    assert table.loc["const", "norm_all"] == 0.0 and table.loc["ours_cold", "failures"] == 0
    assert table.loc["ours_cold", "norm_all"] > 0.5
    for name in ("raw.csv", "results.csv", "summary.md", "score_vs_budget.png"):
        assert (out / name).exists()
    raw = pd.read_csv(out / "raw.csv")
    assert len(raw) == 6
    peers.main(argv)  # resumed: nothing is run twice
    assert len(pd.read_csv(out / "raw.csv")) == 6


def test_zero_shot_says_not_available_without_knowledge_and_jobs_run_in_parallel(tmp_path):
    if not (PMLB / "prnn_crabs.tsv.gz").exists():
        pytest.skip(f"corpus not found under {PMLB}")
    out = tmp_path / "bench"
    argv = ["--data", str(PMLB), "--names", "prnn_crabs", "1027_ESL", "--systems", "const", "ours_zeroshot",
            "--budgets", "2", "--kb", "none", "--hold-out", "--jobs", "2", "--out", str(out), "--quiet"]
    peers.main(argv)
    raw = pd.read_csv(out / "raw.csv").set_index(["system", "dataset"])
    assert len(raw) == 4
    assert set(raw.loc["ours_zeroshot", "status"]) == {"not_available"}
    assert raw.loc["ours_zeroshot", "value"].isna().all()  # never a made-up number
    assert "no task histories" in raw.loc[("ours_zeroshot", "prnn_crabs"), "error"]


def test_series_children_find_their_base_where_a_new_user_would_and_peers_keep_a_private_one(tmp_path):
    series = _child_environment(tmp_path, Knowledge(shipped="none", default_path=True))
    assert "AUTOML_KB" not in series  # the autouse fixture set it in this process: the child must not inherit it
    assert (series["XDG_CACHE_HOME"] == str(child_cache_home(tmp_path))
            and child_cache_home(tmp_path).is_relative_to(tmp_path.resolve()))
    assert _child_environment(tmp_path)["AUTOML_KB"] == str(tmp_path / "benchmark-kb.sqlite")


def tiny_dataset(directory, name: str = "tiny", n: int = 120) -> str:
    """A small binary task in the PMLB layout (so these tests need no corpus); returns the directory."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.integers(0, 3, size=n)})
    frame["target"] = ((frame["a"] + frame["c"] + rng.normal(scale=0.5, size=n)) > 1).astype(int)
    frame.to_csv(directory / f"{name}.tsv.gz", sep="\t", index=False)
    features = [{"name": "a", "type": "continuous"}, {"name": "b", "type": "continuous"},
                {"name": "c", "type": "categorical"}]
    (directory / f"{name}.yaml").write_text(yaml.safe_dump({"task": "classification", "features": features}))
    return str(directory)


def test_the_runner_records_a_systems_own_clock_when_it_gives_one(tmp_path, monkeypatch):
    from benchmarks.protocol import constant_prediction
    from benchmarks.systems import SYSTEMS, Output, System

    def self_timed(split, budget, seed):
        return Output(constant_prediction(split), wall_seconds=1.25)

    monkeypatch.setitem(SYSTEMS, "self_timed", System("self_timed", self_timed))
    data = tiny_dataset(tmp_path)
    assert run_job(Job("self_timed", "tiny", 0, 5.0, data))["wall_seconds"] == 1.25
    measured = run_job(Job("const", "tiny", 0, 5.0, data))  # no clock of its own: the runner's
    assert measured["status"] == "ok" and 0 <= measured["wall_seconds"] != 1.25


def test_autogluon_without_its_python_is_not_available_and_says_how_to_set_it_up(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOML_AUTOGLUON_PYTHON", str(tmp_path / "nowhere" / "bin" / "python"))
    row = run_job(Job("autogluon", "tiny", 0, 5.0, tiny_dataset(tmp_path)))
    assert row["status"] == "not_available"
    assert "no Python for AutoGluon at" in row["error"]
    assert "python3 -m venv .venv-autogluon && .venv-autogluon/bin/pip install torch==2.13.0" in row["error"]
    assert "autogluon.tabular[all]==1.6.3" in row["error"] and "AUTOML_AUTOGLUON_PYTHON" in row["error"]
    from benchmarks.report import versions

    assert "autogluon" not in versions()
    # AutoGluon's start-up and overruns are measured, not killed: its hard limit leaves a minute more
    assert Job("autogluon", "tiny", 0, 10.0, "").hard_limit == Job("const", "tiny", 0, 10.0, "").hard_limit + 60


def test_autogluon_missing_from_the_python_given_is_not_available(tmp_path, monkeypatch):
    if importlib.util.find_spec("autogluon") is not None:
        pytest.skip("this Python has AutoGluon")
    # runs benchmarks/autogluon_child.py, which cannot import it
    monkeypatch.setenv("AUTOML_AUTOGLUON_PYTHON", sys.executable)
    row = run_job(Job("autogluon", "tiny", 0, 5.0, tiny_dataset(tmp_path)))
    assert row["status"] == "not_available"
    assert "AutoGluon cannot be imported" in row["error"] and "python3 -m venv .venv-autogluon" in row["error"]


@pytest.mark.slow
def test_autogluon_fits_a_tiny_split_in_its_own_venv_on_its_own_clock(tmp_path, monkeypatch):
    import tempfile

    from benchmarks.protocol import load_split, score
    from benchmarks.systems import autogluon, autogluon_version

    if autogluon_version() is None:
        pytest.skip("AutoGluon's venv is not set up (see the README's benchmark notes)")
    split = load_split(tiny_dataset(tmp_path), "tiny", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its temporary folder goes, to see it removed
    output = autogluon(split, 5.0, 0)
    assert output.prediction.shape == (len(split.y_test), 2)
    assert np.allclose(output.prediction.sum(axis=1), 1.0)
    assert score(split, output.prediction)[0] > 0.7
    assert output.n_trials >= 1 and 0 < output.wall_seconds and output.incumbent_seconds <= output.wall_seconds
    assert not list(tmp_path.glob("automl-autogluon-*"))


def test_late_runs_are_also_scored_as_if_they_had_ended_in_time():
    from benchmarks.report import overrun_table

    records = [{"system": "peer", "dataset": "d", "task": "binary", "value": 0.95, "const_value": 0.5,
                "wall_seconds": 20.0},
               {"system": "ours", "dataset": "d", "task": "binary", "value": 0.9, "const_value": 0.5,
                "wall_seconds": 9.0}]
    table = overrun_table(add_scores(rows(records))).set_index("system")
    assert list(table.index) == ["peer"]  # only systems that ran late
    assert table.loc["peer", "norm_all as scored"] == 0.0
    # past the best in-time run
    assert table.loc["peer", "norm_all with late results kept"] == pytest.approx(0.45 / 0.4)


def test_learner_value_credits_the_learner_that_wins_and_no_other():
    from benchmarks.learner_value import learner_value, markdown
    from tests.knowledge_builders import synthetic_knowledge

    knowledge = synthetic_knowledge()  # linear models win the wide tasks, forests the narrow ones
    forests = knowledge.configs.loc[knowledge.configs["learner"] == "random_forest", "config_id"]
    knowledge.runs.loc[knowledge.runs["config_id"].isin(forests), "score"] = 0.1  # now forests never win
    table = learner_value(knowledge, "classification").set_index("learner")
    assert table.loc["linear", "tasks_won"] == 1.0 and table.loc["linear", "loss_without"] > 0.5
    assert table.loc["random_forest", "tasks_won"] == 0.0 and table.loc["random_forest", "loss_without"] == 0.0
    assert "| linear | 4 | 100.0% |" in markdown([table.reset_index()])
