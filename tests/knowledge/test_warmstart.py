"""Warm starters learn from task histories; their suggestions follow the meta-features."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from automl.knowledge.describe import describe
from automl.search import metrics
from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.histories import LOWER_IS_BETTER, Histories, best_of_first, normalise
from metaknowledge.snapshot import Knowledge
from metaknowledge.warmstart import (
    METHODS,
    Blend,
    ConfigEncoder,
    GreedyPortfolio,
    NearestDatasets,
    make_warm_starter,
    priors,
)
from searchspaces import Config, get_learner
from tests.knowledge_builders import FOREST, LINEAR, synthetic_knowledge, write_knowledge


def test_the_lower_is_better_list_agrees_with_the_metrics_module():
    for metric in metrics.METRICS.values():
        assert (metric.name in LOWER_IS_BETTER) == (not metric.greater_is_better), metric.name


def test_normalisation_maps_best_to_one_and_median_to_zero():
    scores = pd.Series([0.5, 0.6, 0.7, 0.8, 0.9])
    assert normalise(scores, "roc_auc").tolist() == pytest.approx([0, 0, 0, 0.5, 1])
    assert normalise(pd.Series([3.0, 2.0, 1.0]), "rmse").tolist() == pytest.approx([0, 0, 1])
    assert best_of_first(["a", "b"], pd.Series({"a": 0.2, "b": 0.9}), (1, 2)) == {1: 0.2, 2: 0.9}


def test_histories_are_per_kind_and_normalised_per_task():
    histories = Histories.from_knowledge(synthetic_knowledge(), "classification")
    assert histories.normalised.shape == (24, 7)
    assert np.allclose(histories.normalised.max(axis=1), 1.0)
    assert Histories.from_knowledge(synthetic_knowledge(), "regression").normalised.empty


def test_a_searchs_own_configurations_stay_among_its_best_and_the_matrix_grows_with_tasks_only():
    """Users' searches each run configurations of their own: a base of many of them must not grow as tasks x
    configurations, and the nearest task's own best must still be suggested."""
    base = synthetic_knowledge(n_tasks=8)
    tuned = Config("linear", {"C": 3.7, "class_weight": None})  # the best a user's search found on its data
    tasks, runs, configs = [], [], [tuned]
    for i in range(30):
        name = f"user{i}"
        tasks.append({**base.tasks.iloc[0].to_dict(), "name": name})
        for j in range(20):  # a search's own samples, each run on this task alone
            config = Config("linear", {"C": 0.5 + i + j / 100, "class_weight": None})
            configs.append(config)
            runs.append({**base.runs.iloc[0].to_dict(), "run_key": f"{name}-{j}", "task": name,
                         "config_id": config.key(), "score": 0.7 + j / 1000})
        if i == 0:
            runs.append({**base.runs.iloc[0].to_dict(), "run_key": "user0-tuned", "task": name,
                         "config_id": tuned.key(), "score": 0.99})
    extra = Knowledge(pd.DataFrame(tasks), base.meta_features.iloc[:0],
                      pd.DataFrame([{"config_id": c.key(), "learner": c.learner,
                                     "params": json.dumps(dict(c.params), sort_keys=True), "space_version": ""}
                                    for c in configs]),
                      pd.DataFrame(runs))
    knowledge = Knowledge.combine([base, extra])
    histories = Histories.from_knowledge(knowledge, "classification")
    assert histories.normalised.shape == (38, 7)  # the shared candidates only, whatever the users ran
    assert len(histories.own) == 30 * 3  # each search's three best of its own
    assert histories.normalised_row("user0")[tuned.key()] == 1.0
    meta = pd.DataFrame([{"task": "user0", "version": EXTRACTOR_VERSION, "source": "automl", "seconds": 0.1,
                          "features": json.dumps({"width": 50.0, "noise": 0.0})}])
    knowledge = Knowledge.combine([knowledge, Knowledge(knowledge.tasks.iloc[:0], meta, knowledge.configs.iloc[:0],
                                                        knowledge.runs.iloc[:0])])
    starter = make_warm_starter("nearest").fit(knowledge)
    assert starter.suggest({"width": 50.0, "noise": 0.0}, "binary", k=1)[0].config == tuned


@pytest.mark.parametrize("method", ["nearest", "ranker", "nearest+ranker"])
def test_learning_methods_follow_the_meta_features(method):
    starter = make_warm_starter(method).fit(synthetic_knowledge())
    wide = starter.suggest({"width": 5.0, "noise": 0.0}, "binary", k=3)
    narrow = starter.suggest({"width": -5.0, "noise": 0.0}, "binary", k=3)
    assert [s.config.learner for s in wide] == ["linear"] * 3
    assert [s.config.learner for s in narrow] == ["random_forest"] * 3
    assert wide[0].config == LINEAR[-1]  # the strongest C ranks first
    assert wide[0].method == starter.name


def test_the_portfolio_covers_both_kinds_of_task_first():
    starter = GreedyPortfolio().fit(synthetic_knowledge())
    first_two = {s.config.learner for s in starter.suggest({"width": 0.0}, "binary", k=2)}
    assert first_two == {"linear", "random_forest"}


def test_suggestions_respect_learners_and_candidates():
    starter = NearestDatasets().fit(synthetic_knowledge())
    only_forests = starter.suggest({"width": 5.0}, "binary", k=10, learners=["random_forest"])
    assert {s.config.learner for s in only_forests} == {"random_forest"} and len(only_forests) == 3
    pool = FOREST[:2]
    assert {s.config for s in starter.suggest({"width": 5.0}, "binary", k=10, candidates=pool)} == set(pool)
    assert starter.suggest({"width": 5.0}, "regression", k=3) == []


def test_the_ranker_scores_configurations_nobody_ran():
    starter = make_warm_starter("ranker").fit(synthetic_knowledge())
    unseen = [Config("linear", {"C": 3.0, "class_weight": None}), FOREST[0]]
    ranked = starter.suggest({"width": 5.0}, "binary", k=2, candidates=unseen)
    assert ranked[0].config.learner == "linear"


def test_config_encoding_is_fixed_length_and_marks_inactive_parameters():
    encoder = ConfigEncoder([get_learner("linear", "classification"), get_learner("random_forest", "classification")])
    rows = encoder.encode([LINEAR[0], FOREST[0]])
    assert rows.shape[0] == 2 and rows[0, 0] == 1.0 and rows[1, 1] == 1.0
    assert (rows[0, 2:] == -1).sum() == len(get_learner("random_forest", "classification").space)


def test_priors_narrow_each_suggested_learners_space():
    starter = make_warm_starter("nearest").fit(synthetic_knowledge())
    found = priors(starter.suggest({"width": 5.0}, "binary", k=3), "classification", margin=0.05)
    assert set(found) == {"linear"}
    c_range = found["linear"]["C"]
    assert 0.01 < c_range.low < 1.0 and 1.0 < c_range.high < 100.0


def test_blends_combine_fitted_parts_without_refitting():
    knowledge = synthetic_knowledge()
    parts = [NearestDatasets().fit(knowledge), GreedyPortfolio().fit(knowledge)]
    blend = Blend.of_fitted(parts)
    assert blend.name == "nearest+portfolio"
    assert len(blend.suggest({"width": 5.0}, "binary", k=4)) == 4
    assert set(METHODS) >= {"nearest", "portfolio", "ranker", "nearest+portfolio"}


def test_warm_start_changes_which_configurations_run_first(tmp_path, small_binary, monkeypatch):
    import automl
    from automl import engine
    from automl.knowledge import warm_start as warm_module
    from automl.options import FitOptions

    X, y = small_binary
    meta = describe(automl.data.dataset.load_dataset(X, y))
    knowledge = synthetic_knowledge()
    # Make the synthetic tasks look like this dataset (meta-features of the wide tasks = this data's).
    rows = []
    for row in knowledge.meta_features.itertuples():
        values = dict(meta)
        if int(row.task[1:]) % 2:  # narrow tasks: far away in every meta-feature
            values = {k: v * 5 + 10 for k, v in meta.items()}
        rows.append({"task": row.task, "version": EXTRACTOR_VERSION, "source": "automl", "seconds": 0.1,
                     "features": json.dumps(values)})
    knowledge.meta_features = pd.DataFrame(rows)
    kb = tmp_path / "kb.sqlite"
    write_knowledge(kb, knowledge)
    two = ["linear", "random_forest"]
    cold = automl.fit(X, y, n_trials=4, time_budget=None, warm_start=False, remember=False, verbose=0, kb=kb,
                      learners=two)
    warm = automl.fit(X, y, n_trials=5, time_budget=None, warm_start=3, remember=False, verbose=0, kb=kb, learners=two)
    cold_first = cold.leaderboard().sort_values("trial")
    warm_first = warm.leaderboard().sort_values("trial")
    # The warm start opens with the zero-shot pick, the best linear model of tasks like this one; the cold start with a
    # cheap corner.
    assert warm_first["origin"].iloc[0] == f"warm:{warm_module.ZERO_SHOT_METHOD}"
    assert warm_first["params"].iloc[0] == dict(LINEAR[-1].params)
    assert list(cold_first["origin"][:3]) == ["default"] * 3  # linear's cheap corner is its default
    # Then what the default method suggests, each suggested learner's best first; the learners' cheap corners follow,
    # where the cold start began with them and then tried the learners' defaults (a forest's) ...
    suggested = list(warm_first["origin"][1:3])
    assert suggested == [f"warm:{warm_module.DEFAULT_METHODS['classification']}"] * 2
    # a second learner before a second linear model
    assert warm_first["learner"].iloc[1] != warm_first["learner"].iloc[2]
    assert warm_first["origin"].iloc[3] == "default"  # the forest's cheap corner (linear's is a suggestion here)
    assert warm_first["params"].iloc[3] == cold_first["params"].iloc[1]
    assert cold_first["learner"].iloc[2] == "random_forest"
    # ... and searches next where this dataset's nearest neighbours did best, linear models among them.
    plan = warm_module.plan_warm_start(meta, "binary", engine._make_evaluator(
        automl.data.dataset.load_dataset(X, y), automl.search.metrics.get_metric(None, "binary"),
        FitOptions(space="default", time_budget=None, n_trials=1)).learners, 2, kb)
    assert "linear" in plan.priors and [s.method for s in plan.suggestions] == [
        warm_module.ZERO_SHOT_METHOD, warm_module.DEFAULT_METHODS["classification"]]


def test_zero_shot_fits_the_top_suggestion_once(tmp_path, small_binary):
    import automl
    from automl.knowledge import warm_start as warm_module

    X, y = small_binary
    kb = tmp_path / "kb.sqlite"
    write_knowledge(kb, synthetic_knowledge())
    model = automl.zero_shot(X, y, kb=kb)
    board = model.leaderboard()
    assert len(board) == 1 and board.loc[0, "origin"] == f"warm:{warm_module.ZERO_SHOT_METHOD}"
    assert model.predict_proba(X).shape == (len(y), 2)
    cold = automl.zero_shot(X, y)  # no knowledge at all: a learner's default
    assert cold.leaderboard().loc[0, "origin"] == "default"



def test_thin_knowledge_adds_to_the_defaults_instead_of_replacing_them(tmp_path):
    from automl.knowledge import warm_start as warm_module

    learners = {name: get_learner(name, "classification") for name in ("linear", "random_forest")}
    thin, rich = tmp_path / "thin.sqlite", tmp_path / "rich.sqlite"
    write_knowledge(thin, synthetic_knowledge(n_tasks=warm_module.MIN_TASKS_TO_TRUST - 2))
    write_knowledge(rich, synthetic_knowledge())
    meta = {"width": 5.0, "noise": 0.0}
    for kb, trusted in ((thin, False), (rich, True)):
        plan = warm_module.plan_warm_start(meta, "binary", learners, 2, kb)
        assert plan.trusted is trusted and bool(plan.priors) is trusted
        initial = warm_module.initial_configs(learners, None, plan)
        first_warm = next(i for i, (_, origin) in enumerate(initial) if origin.startswith("warm:"))
        before = [config for config, _ in initial[:first_warm]]
        assert all(learner.default_config() in before for learner in learners.values()) is not trusted


def test_data_much_larger_than_the_histories_alternates_suggestions_and_defaults(tmp_path):
    from automl.knowledge import warm_start as warm_module

    learners = {name: get_learner(name, "classification") for name in ("linear", "random_forest")}
    kb = tmp_path / "kb.sqlite"
    write_knowledge(kb, synthetic_knowledge())
    meta = {"width": 5.0, "noise": 0.0}
    for rows, extrapolating in ((warm_module.HISTORY_ROWS, False), (10 * warm_module.HISTORY_ROWS, True)):
        plan = warm_module.plan_warm_start(meta, "binary", learners, 3, kb, trial_shape=warm_module.TrialShape(rows, 5))
        assert plan.extrapolating is extrapolating
        initial = warm_module.initial_configs(learners, None, plan)
        first_warm = next(i for i, (_, origin) in enumerate(initial) if origin.startswith("warm:"))
        tried = [config for config, _ in initial]
        defaults = [learner.default_config() for learner in learners.values()]
        assert all(default in tried for default in defaults) is extrapolating
        if extrapolating:  # the forest's default (the linear one is its cheap corner) before the first suggestion
            assert initial[first_warm - 1] == (learners["random_forest"].default_config(), "default")
        else:  # the suggestions first, then the cheap corners they do not already hold: no learner's default
            assert first_warm == 0
            suggested = sum(origin.startswith("warm:") for _, origin in initial)
            assert all(origin.startswith("warm:") for _, origin in initial[:suggested])
            assert all(origin == "default" for _, origin in initial[suggested:])


def test_the_prepared_knowledge_is_fitted_once_and_refitted_when_the_knowledge_changes(tmp_path, monkeypatch):
    from automl.knowledge import prepared as warm_knowledge
    from automl.knowledge import warm_start as warm

    kb = tmp_path / "kb.sqlite"
    write_knowledge(kb, synthetic_knowledge())
    fits = []
    real_fit = warm_knowledge.PreparedKnowledge.fit
    monkeypatch.setattr(warm_knowledge.PreparedKnowledge, "fit",
                        classmethod(lambda cls, k: fits.append(1) or real_fit(k)))
    learners = {c.learner: get_learner(c.learner, "classification") for c in LINEAR + FOREST}
    wide = {"width": 5.0, "noise": 0.0}

    first = warm.plan_warm_start(wide, "binary", learners, 2, kb)
    warm_knowledge._in_process.clear()  # as in a new process: the cache directory holds the fitted state
    again = warm.plan_warm_start(wide, "binary", learners, 2, kb)
    assert len(fits) == 1 and [s.config for s in again.suggestions] == [s.config for s in first.suggestions]
    assert first.suggestions[0].config.learner == "linear"

    flipped = synthetic_knowledge(seed=1)  # the same tasks, with the learners' fortunes swapped
    flipped.runs["score"] = np.where(flipped.runs["config_id"].isin([c.key() for c in LINEAR]), 0.5, 0.95)
    kb.unlink()
    write_knowledge(kb, flipped)
    changed = warm.plan_warm_start(wide, "binary", learners, 2, kb)
    assert len(fits) == 2 and changed.suggestions[0].config.learner == "random_forest"

    for cached in (warm_knowledge.cache_dir() / "warm").glob("*.pkl"):
        cached.write_bytes(b"not a pickle")  # a damaged cache file costs a refit, not the warm start
    warm_knowledge._in_process.clear()
    assert warm.plan_warm_start(wide, "binary", learners, 2, kb).suggestions[0].config.learner == "random_forest"
    assert len(fits) == 3


def with_another_learner(knowledge: Knowledge) -> Knowledge:
    """``knowledge`` plus a nearest-neighbour configuration that beats every other on the wide tasks."""
    knn = Config("knn", {"n_neighbors": 5, "p": 2, "weights": "uniform"})
    extra = knowledge.runs[knowledge.runs["config_id"] == LINEAR[0].key()]
    wide = extra["task"].map(lambda name: int(name[1:]) % 2 == 0)
    extra = extra.assign(config_id=knn.key(), score=np.where(wide, 0.99, 0.3))
    extra["run_key"] = extra["task"] + "-" + knn.key()
    configs = pd.DataFrame([{"config_id": knn.key(), "learner": "knn", "params": json.dumps(dict(knn.params)),
                             "space_version": ""}])
    return Knowledge(knowledge.tasks, knowledge.meta_features,
                     pd.concat([knowledge.configs, configs], ignore_index=True),
                     pd.concat([knowledge.runs, extra], ignore_index=True))


@pytest.mark.parametrize("method", ["portfolio", "nearest"])
def test_a_search_learns_from_the_histories_of_its_own_learners_only(tmp_path, method):
    """A learner added to the base that the search does not run (a booster) changes none of its suggestions."""
    from automl.knowledge import warm_start as warm

    searched = {c.learner: get_learner(c.learner, "classification") for c in LINEAR + FOREST}
    narrow = {"width": -5.0, "noise": 0.0}
    plans = {}
    for label, knowledge in (("without", synthetic_knowledge()), ("with", with_another_learner(synthetic_knowledge()))):
        kb = tmp_path / f"{label}.sqlite"
        write_knowledge(kb, knowledge)
        plans[label] = [s.config
                        for s in warm.plan_warm_start(narrow, "binary", searched, 6, kb, method=method).suggestions]
    assert plans["with"] == plans["without"]

    # Fitted on every learner's histories, the same starter would have ranked the searched learners otherwise.
    everything = make_warm_starter(method).fit(with_another_learner(synthetic_knowledge()))
    assert ([s.config for s in everything.suggest(narrow, "binary", k=6, learners=list(searched))]
            != plans["without"][1:])


def test_a_base_of_searches_alone_still_suggests_the_nearest_tasks_own_best():
    """Every configuration of a user's base ran on one task only: no shared matrix, and yet the nearest task's best."""
    tuned = Config("linear", {"C": 3.7, "class_weight": None})
    base = synthetic_knowledge(n_tasks=2)
    task = {**base.tasks.iloc[0].to_dict(), "name": "user/a"}
    run = {**base.runs.iloc[0].to_dict(), "run_key": "user-a-tuned", "task": "user/a", "config_id": tuned.key(),
           "score": 0.9}
    meta = {**base.meta_features.iloc[0].to_dict(), "task": "user/a"}
    knowledge = Knowledge(pd.DataFrame([task]), pd.DataFrame([meta]),
                          pd.DataFrame([{"config_id": tuned.key(), "learner": "linear",
                                         "params": json.dumps(dict(tuned.params), sort_keys=True),
                                         "space_version": ""}]), pd.DataFrame([run]))
    starter = make_warm_starter("nearest").fit(knowledge)
    assert [s.config for s in starter.suggest(json.loads(meta["features"]), "binary", k=3)] == [tuned]
