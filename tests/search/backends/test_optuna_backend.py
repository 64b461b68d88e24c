"""The Optuna backend: storages, pruners compared within one learner, studies resumed from SQLite and refused for
other data."""

from __future__ import annotations

import optuna
import pytest
from optuna.pruners import HyperbandPruner, MedianPruner, SuccessiveHalvingPruner
from optuna.storages import InMemoryStorage, JournalStorage, RDBStorage

from automl.data.dataset import load_dataset
from automl.errors import ConfigError
from automl.search.backends.base import SearchPlan
from automl.search.backends.optuna_backend import (
    OptunaBackend,
    PerLearnerPruner,
    make_pruner,
    open_study,
    resolve_storage,
)
from automl.search.budget import Budget
from automl.search.evaluation import Evaluator, Resampling
from automl.search.metrics import get_metric
from searchspaces import Config, get_learner, joint_space, register_learner, unregister_learner
from searchspaces.space import LEARNER_KEY
from tests.misbehaving import misbehaving_learner


def test_no_storage_means_in_memory_and_a_ready_storage_is_used_as_it_is():
    assert resolve_storage(None) is None
    ready = InMemoryStorage()
    assert resolve_storage(ready) is ready


def test_a_path_becomes_an_sqlite_database_in_a_folder_made_for_it(tmp_path):
    path = tmp_path / "new" / "folder" / "study.db"
    storage = resolve_storage(path)
    assert isinstance(storage, RDBStorage) and path.parent.is_dir()
    optuna.create_study(storage=storage, study_name="s")
    assert path.exists()
    assert isinstance(resolve_storage(f"sqlite:///{tmp_path / 'url.db'}"), RDBStorage)  # a database URL


@pytest.mark.parametrize("suffix", [".log", ".journal", ".jsonl"])
def test_a_log_path_becomes_a_journal_file(tmp_path, suffix):
    assert isinstance(resolve_storage(str(tmp_path / f"study{suffix}")), JournalStorage)


def test_a_storage_of_another_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="storage must be a path, a database URL or an Optuna storage, got int"):
        resolve_storage(42)


def test_pruners_by_name_compare_trials_of_one_learner():
    assert make_pruner(None) is None and make_pruner("none") is None
    for name, kind in [("auto", MedianPruner), ("median", MedianPruner), ("sha", SuccessiveHalvingPruner),
                       ("hyperband", HyperbandPruner)]:
        pruner = make_pruner(name)
        assert isinstance(pruner, PerLearnerPruner) and isinstance(pruner.base, kind)
    own = MedianPruner(n_startup_trials=1)
    assert make_pruner(own).base is own
    with pytest.raises(ConfigError, match="pruner must be one of .*'hyperband'.*got 'early'"):
        make_pruner("early")


def _run_trials(study: optuna.Study, learner: str, values: list[float]) -> None:
    for value in values:
        study.enqueue_trial({LEARNER_KEY: learner})
        trial = study.ask({LEARNER_KEY: optuna.distributions.CategoricalDistribution(["fast", "slow"])})
        trial.report(value, 0)
        study.tell(trial, value)


def _should_prune(study: optuna.Study, learner: str, value: float) -> bool:
    study.enqueue_trial({LEARNER_KEY: learner})
    trial = study.ask({LEARNER_KEY: optuna.distributions.CategoricalDistribution(["fast", "slow"])})
    assert trial.params[LEARNER_KEY] == learner
    trial.report(value, 0)
    return trial.should_prune()


def test_a_trial_is_pruned_only_against_trials_of_its_own_learner():
    """A loss of 10 is poor next to the fast learner's 1s, but usual for the slow learner: not pruned."""
    study = optuna.create_study(direction="minimize", pruner=make_pruner(MedianPruner(n_startup_trials=1)))
    _run_trials(study, "fast", [1.0, 1.0, 1.0])
    _run_trials(study, "slow", [10.0, 10.0, 10.0])
    assert not _should_prune(study, "slow", 10.0)
    assert _should_prune(study, "slow", 20.0)
    assert _should_prune(study, "fast", 10.0)
    plain = optuna.create_study(direction="minimize", pruner=MedianPruner(n_startup_trials=1))
    _run_trials(plain, "fast", [1.0, 1.0, 1.0, 1.0])
    _run_trials(plain, "slow", [10.0, 10.0, 10.0])
    assert _should_prune(plain, "slow", 10.0)  # what comparing across learners would do


def test_a_stored_study_is_reopened_and_one_for_other_data_or_metric_is_refused(tmp_path):
    storage = resolve_storage(tmp_path / "study.db")
    auc, accuracy = get_metric("roc_auc", "binary"), get_metric("accuracy", "binary")
    marks = {"dataset": "abc", "space": "s1", "metric": auc.name}
    study = open_study(storage, "mine", None, None, auc, marks)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert {k: study.user_attrs[k] for k in marks} == marks
    _run_trials(study, "fast", [0.8])
    again = open_study(storage, "mine", None, None, auc, marks)
    assert [t.value for t in again.trials] == [0.8]
    with pytest.raises(ConfigError, match="already holds a study named 'mine' for a different dataset"):
        open_study(storage, "mine", None, None, auc, {**marks, "dataset": "xyz"})
    with pytest.raises(ConfigError, match="different metric"):
        open_study(storage, "mine", None, None, accuracy, {**marks, "metric": accuracy.name})
    named = open_study(None, None, None, None, auc, marks)  # no name given: one made from the marks
    assert "abc" in named.study_name and auc.name in named.study_name


def test_bad_backend_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="n_jobs must be a positive whole number"):
        OptunaBackend(n_jobs=0)
    with pytest.raises(ConfigError, match="pruner must be one of"):
        OptunaBackend(pruner="early")
    with pytest.raises(ConfigError, match="sampler must be"):
        OptunaBackend(sampler="grid")


def test_a_search_run_again_on_the_same_sqlite_storage_resumes_with_its_trials_kept(small_binary, tmp_path):
    X, y = small_binary
    learner = get_learner("linear", "classification")
    evaluator = Evaluator(load_dataset(X, y), get_metric(None, "binary"), {"linear": learner}, Resampling("cv", 3))
    plan = SearchPlan(space=joint_space({"linear": learner.space}), initial=[(learner.default_config(), "default")])
    storage = tmp_path / "search.db"

    first_seen = []
    first = OptunaBackend(storage=storage, study_name="resumed", pruner=None).run(
        plan, evaluator, Budget(None, max_trials=2), first_seen.append)
    assert len(first) == 2 and all(r.ok and not r.resumed for r in first) and first_seen == first
    assert first[0].origin == "default"

    second_seen = []
    backend = OptunaBackend(storage=str(storage), study_name="resumed", pruner=None)
    second = backend.run(plan, evaluator, Budget(None, max_trials=1), second_seen.append)
    assert [r.resumed for r in second] == [True, True, False]  # the stored trials first, then one new one
    assert [r.number for r in second[:2]] == [r.number for r in first] and second[2].number > first[1].number
    assert [r.value for r in second[:2]] == pytest.approx([r.value for r in first]) and second_seen == second
    stored = optuna.load_study(study_name="resumed", storage=f"sqlite:///{storage}")
    assert {r.number for r in second} <= {t.number for t in stored.trials}  # the new trial was written too
    assert not backend.interrupted


def test_a_stored_study_holds_true_states_no_waiting_trial_and_no_timeout_scored(small_binary, tmp_path):
    """A search that ends before its initial configurations ran leaves none of them waiting in the study, and a
    trial stopped at its time limit is stored as failed (as pruned it would show the score of its unfinished folds,
    maybe above the best)."""
    X, y = small_binary
    register_learner(misbehaving_learner(("ok", "sleep")), replace=True)
    try:
        learners = {name: get_learner(name, "classification") for name in ("misbehaving", "linear", "knn", "hgb")}
        evaluator = Evaluator(load_dataset(X, y), get_metric(None, "binary"), learners, Resampling("cv", 3))
        initial = [(Config("misbehaving", {"mode": "sleep"}), "user")]
        initial += [(learner.default_config(), "default") for learner in learners.values()]
        plan = SearchPlan(space=joint_space({name: learner.space for name, learner in learners.items()}),
                          initial=initial)
        storage = tmp_path / "states.db"
        results = OptunaBackend(storage=storage, study_name="states", pruner=None).run(
            plan, evaluator, Budget(None, max_trials=3, trial_time_limit=1.0), lambda result: None)
    finally:
        unregister_learner("misbehaving")
    assert [r.status for r in results][:1] == ["timeout"] and len(results) == 3
    study = optuna.load_study(study_name="states", storage=f"sqlite:///{storage}")
    assert not study.get_trials(states=(optuna.trial.TrialState.WAITING,))  # 5 initial, 3 run: none left waiting
    timed_out = [t for t in study.trials if t.user_attrs.get("status") == "timeout"]
    assert len(timed_out) == 1 and timed_out[0].state == optuna.trial.TrialState.FAIL and timed_out[0].value is None
