"""Predicted trial costs keep a tight budget from being spent on a few slow suggestions."""

from __future__ import annotations

import numpy as np
import pytest

from metaknowledge.cost import CostModel
from searchspaces import Config
from tests.knowledge_builders import FOREST, LINEAR, synthetic_knowledge


def timed_knowledge():
    """The synthetic histories, with forests costing 0.02 s per tree per 100 rows and linear models 0.05 s flat."""
    knowledge = synthetic_knowledge()
    rows = {name: 100 * (1 + i % 4) for i, name in enumerate(knowledge.tasks["name"])}
    knowledge.tasks["n_rows"] = knowledge.tasks["name"].map(rows)
    configs = {c.key(): c for c in LINEAR + FOREST}
    noise = np.random.default_rng(0).lognormal(sigma=0.05, size=len(knowledge.runs))
    seconds = [
        (0.02 * configs[cid].params["n_estimators"] * rows[task] / 100 if configs[cid].learner == "random_forest"
         else 0.05) * n
        for cid, task, n in zip(knowledge.runs["config_id"], knowledge.runs["task"], noise)
    ]
    knowledge.runs["fit_seconds"] = seconds
    return knowledge


def test_costs_follow_each_configuration_and_the_data_size():
    model = CostModel().fit(timed_knowledge())
    big, small = FOREST[-1], FOREST[0]
    assert model.predict(big, 200, 5) == pytest.approx(0.02 * 256 * 2, rel=0.15)
    # forests grow with rows
    assert model.predict(big, 400, 5) == pytest.approx(2 * model.predict(big, 200, 5), rel=0.15)
    assert model.predict(LINEAR[0], 400, 5) == pytest.approx(0.05, rel=0.15)  # linear models here do not
    assert model.predict(small, 200, 5) < model.predict(big, 200, 5) / 10
    assert model.predict(Config("knn", {"n_neighbors": 3}), 200, 5) is None  # never timed: unknown


def test_beyond_the_recorded_sizes_costs_grow_at_least_with_the_rows():
    model = CostModel().fit(timed_knowledge())  # histories on 100 to 400 rows
    flat = LINEAR[0]
    assert model.predict(flat, 400, 5) == pytest.approx(0.05, rel=0.15)
    assert model.predict(flat, 4000, 5) == pytest.approx(10 * model.predict(flat, 400, 5), rel=0.01)


def test_a_tight_budget_passes_over_suggestions_too_slow_to_afford(tmp_path):
    from automl.knowledge.warm_start import TrialShape, plan_warm_start
    from searchspaces import get_learner
    from tests.knowledge_builders import write_knowledge

    kb = tmp_path / "kb.sqlite"
    write_knowledge(kb, timed_knowledge())
    learners = {name: get_learner(name, "classification") for name in ("linear", "random_forest")}
    narrow = {"width": -5.0, "noise": 0.0}  # a task where forests win, the largest first
    unbounded = [s.config for s in plan_warm_start(narrow, "binary", learners, 4, kb, method="nearest").suggestions]
    assert FOREST[-1] in unbounded[:3]
    # 20 s budget, 200 rows: the 256-tree forest takes about 10 s, past the trial limit of 20 / 3 s
    tight = plan_warm_start(narrow, "binary", learners, 3, kb, method="nearest", time_budget=20,
                            trial_time_limit=20 / 3, trial_shape=TrialShape(200, 5))
    configs = [s.config for s in tight.suggestions]
    assert configs == [c for c in unbounded if c != FOREST[-1]][:3]  # the next best take its place, in rank order
    # 5-fold cross-validation trains on twice the rows of the 3-fold the histories were timed with: the 64 trees go too
    five_fold = plan_warm_start(narrow, "binary", learners, 3, kb, method="nearest", time_budget=20,
                                trial_time_limit=20 / 3, trial_shape=TrialShape(200, 5, training_share=4.0))
    assert FOREST[-2] in configs and FOREST[-2] not in [s.config for s in five_fold.suggestions]
