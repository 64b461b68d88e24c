"""The prepared knowledge: the shipped knowledge's state ships ready, so a first fit on a fresh machine fits no
warm starter; the cache serves later processes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from automl.knowledge import prepared
from tests.knowledge_builders import synthetic_knowledge, write_knowledge


def test_the_shipped_state_was_fitted_by_this_code_from_the_shipped_knowledge():
    """Fails after the shipped base or the fitting code changed: run `python -m automl.knowledge.prepared`."""
    import pickle

    with open(prepared.SHIPPED_STATE, "rb") as handle:
        signature, state = pickle.load(handle)
    assert signature == prepared.shipped_signature(), "stale: run python -m automl.knowledge.prepared"
    assert isinstance(state, prepared.PreparedKnowledge) and not state.empty
    assert state.tasks_per_kind["classification"] >= 100 and state.tasks_per_kind["regression"] >= 90


def test_a_fresh_machine_fits_nothing_to_start_warm(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOML_SHIPPED_KB")  # the shipped knowledge, as a user has it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(prepared, "_in_process", {})

    def refuse(cls, knowledge):
        raise AssertionError("a first fit on a fresh machine must not fit the warm starters")

    monkeypatch.setattr(prepared.PreparedKnowledge, "fit", classmethod(refuse))
    state = prepared.prepared_knowledge(tmp_path / "no-base-yet.sqlite")
    assert not state.empty and len(state.starter("nearest").suggest({}, "binary", k=3)) == 3
    assert list((tmp_path / "empty-cache" / "automl" / "warm").glob("*.pkl"))  # the next process reads the cache


def test_a_first_fit_here_against_a_base_that_holds_searches_starts_from_the_shipped_state(tmp_path, monkeypatch):
    """A new machine meeting a team's base: a fit with a budget fits nothing; the whole knowledge is prepared in the
    background, and the next fit finds it ready."""
    import pickle

    monkeypatch.delenv("AUTOML_SHIPPED_KB")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "new-machine"))
    monkeypatch.setenv(prepared.REFRESH_ENV, "1")
    monkeypatch.setattr(prepared, "_in_process", {})
    kb = tmp_path / "team.sqlite"
    write_knowledge(kb, synthetic_knowledge(n_tasks=12))
    real_fit = prepared.PreparedKnowledge.fit
    monkeypatch.setattr(prepared.PreparedKnowledge, "fit", classmethod(lambda cls, k: pytest.fail("fitted in the fit")))
    with open(prepared.SHIPPED_STATE, "rb") as handle:
        shipped = pickle.load(handle)[1]
    served = prepared.prepared_knowledge(kb, affordable=1.5)
    assert served.n_runs == shipped.n_runs  # the shipped state, without the team's runs yet
    ready = prepared.cache_dir() / "warm" / f"{prepared.knowledge_key(kb)}.pkl"
    deadline = time.monotonic() + 300
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ready.exists(), "the background refresh wrote nothing"
    monkeypatch.setattr(prepared, "_in_process", {})
    monkeypatch.setattr(prepared.PreparedKnowledge, "fit", real_fit)
    later = prepared.prepared_knowledge(kb, affordable=1.5)
    assert later.n_runs > shipped.n_runs  # the next fit knows the team's searches


def test_a_user_base_or_held_out_tasks_mean_the_shipped_state_does_not_apply(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOML_SHIPPED_KB")
    base = tmp_path / "kb.sqlite"
    assert prepared._shipped_state(base) is not None
    base.write_bytes(b"not empty")
    assert prepared._shipped_state(base) is None  # the user's runs must be fitted in
    monkeypatch.setenv(prepared.EXCLUDE_ENV, "adult")
    assert prepared._shipped_state(tmp_path / "none.sqlite") is None
    monkeypatch.delenv(prepared.EXCLUDE_ENV)
    monkeypatch.setenv("AUTOML_SHIPPED_KB", "none")
    assert prepared._shipped_state(tmp_path / "none.sqlite") is None


def test_a_small_budget_uses_the_knowledge_as_prepared_before_the_latest_searches(tmp_path, monkeypatch, capsys):
    from automl.cli import main

    monkeypatch.setattr(prepared, "_in_process", {})
    fits = []
    real_fit = prepared.PreparedKnowledge.fit
    monkeypatch.setattr(prepared.PreparedKnowledge, "fit", classmethod(lambda cls, k: fits.append(1) or real_fit(k)))
    kb = tmp_path / "kb.sqlite"
    write_knowledge(kb, synthetic_knowledge(n_tasks=12))
    assert prepared.prepared_knowledge(kb, stale_ok=True).tasks_per_kind["classification"] == 12 and len(fits) == 1
    write_knowledge(kb, synthetic_knowledge(n_tasks=16, seed=1))  # a later search wrote back: 4 more tasks
    monkeypatch.setattr(prepared, "_in_process", {})  # a new process
    stale = prepared.prepared_knowledge(kb, stale_ok=True)
    assert stale.tasks_per_kind["classification"] == 12 and len(fits) == 1  # nothing fitted inside a small budget
    assert main(["kb", "refresh", "--kb", str(kb)]) == 0 and len(fits) == 2
    assert "now knows 16 tasks" in capsys.readouterr().out
    monkeypatch.setattr(prepared, "_in_process", {})
    assert prepared.prepared_knowledge(kb, stale_ok=True).tasks_per_kind["classification"] == 16 and len(fits) == 2


def test_a_base_that_grew_is_prepared_in_the_background_while_the_state_before_serves(tmp_path, monkeypatch):
    monkeypatch.setenv(prepared.REFRESH_ENV, "1")
    monkeypatch.setattr(prepared, "_in_process", {})
    kb = tmp_path / "kb.sqlite"
    write_knowledge(kb, synthetic_knowledge(n_tasks=12))
    first = prepared.prepared_knowledge(kb)
    assert first.fit_seconds > 0
    write_knowledge(kb, synthetic_knowledge(n_tasks=16, seed=1))  # another writer grew the base
    monkeypatch.setattr(prepared, "_in_process", {})
    # a budget that cannot afford what preparing took: the state before serves, the current one is prepared apart
    served = prepared.prepared_knowledge(kb, affordable=first.fit_seconds / 10)
    assert served.tasks_per_kind["classification"] == 12
    ready = prepared.cache_dir() / "warm" / f"{prepared.knowledge_key(kb)}.pkl"
    deadline = time.monotonic() + 180
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ready.exists(), "the background refresh wrote nothing"
    assert not list(ready.parent.glob("*.refreshing"))  # and gave its lock back
    monkeypatch.setattr(prepared, "_in_process", {})
    monkeypatch.setattr(prepared.PreparedKnowledge, "fit", classmethod(lambda cls, k: pytest.fail("fitted again")))
    assert prepared.prepared_knowledge(kb).tasks_per_kind["classification"] == 16  # the next fit finds it ready


def test_the_warm_start_learns_from_the_newest_of_a_large_bases_own_tasks(monkeypatch):
    """A team's base grows without end; what a fit loads is bounded: every corpus task, and the newest
    ``MAX_USER_TASKS`` of the user's own per task type."""
    knowledge = synthetic_knowledge(n_tasks=12)
    users = knowledge.tasks["name"].isin([f"t{i}" for i in range(8)])
    knowledge.tasks = knowledge.tasks.assign(source=np.where(users, "user", "corpus"),
                                             created=np.arange(len(knowledge.tasks), dtype=float))
    bounded = knowledge.newest_of_source("user", 3)
    assert sorted(bounded.tasks["name"]) == sorted(["t5", "t6", "t7", "t8", "t9", "t10", "t11"])
    assert set(bounded.runs["task"]) == set(bounded.tasks["name"])  # their runs go with them
    monkeypatch.setattr(prepared, "MAX_USER_TASKS", 3)
    monkeypatch.setattr(prepared, "load_knowledge", lambda kb: knowledge)
    assert sorted(prepared.knowledge_for(None).tasks["name"]) == sorted(bounded.tasks["name"])
