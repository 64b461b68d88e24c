"""Search spaces as data: parameters, conditions, serialisation, translation, registry."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import searchspaces
from searchspaces import Categorical, Config, Float, Int, SearchSpace, joint_space, when
from searchspaces.space import config_from_flat, flat_from_config
from searchspaces.to_optuna import suggest

LAYERED = SearchSpace(
    (
        Int("n_layers", 1, 3, default=1),
        Int("width_1", 8, 256, log=True, default=64),
        Int("width_2", 8, 256, log=True, default=64, condition=when("n_layers", 2, 3)),
        Int("width_3", 8, 256, log=True, default=64, condition=when("n_layers", 3)),
        Categorical("activation", ("relu", "tanh")),
        Float("dropout", 0.0, 0.5, default=0.1),
        Float("lr", 1e-5, 1e-1, log=True, default=1e-3),
    ),
    name="mlp",
)


def test_parameters_reject_bad_domains():
    with pytest.raises(ValueError, match="low"):
        Float("x", 1.0, 1.0)
    with pytest.raises(ValueError, match="log scale"):
        Float("x", 0.0, 1.0, log=True)
    with pytest.raises(ValueError, match="outside"):
        Int("n", 1, 5, default=9)
    with pytest.raises(ValueError, match="not one of"):
        Categorical("c", ("a", "b"), default="z")


def test_a_condition_must_refer_to_an_earlier_parameter():
    with pytest.raises(ValueError, match="defined before"):
        SearchSpace((Int("width", 1, 3, condition=when("depth", 2)), Int("depth", 1, 3)))


def test_inactive_parameters_are_left_out_of_samples():
    rng = np.random.default_rng(0)
    for _ in range(200):
        point = LAYERED.sample(rng)
        assert ("width_2" in point) == (point["n_layers"] >= 2)
        assert ("width_3" in point) == (point["n_layers"] == 3)
        assert LAYERED.problems(point) == []


def test_problems_name_what_is_wrong():
    point = LAYERED.default()
    assert LAYERED.problems(point) == []
    bad = dict(point, width_3=32, lr=5.0, extra=1)
    found = " ".join(LAYERED.problems(bad))
    assert "'width_3' is set but inactive" in found and "lr=5.0" in found and "'extra'" in found


def test_spaces_round_trip_through_json():
    text = LAYERED.to_json()
    json.loads(text)
    again = SearchSpace.from_json(text)
    assert again == LAYERED
    assert again.fingerprint() == LAYERED.fingerprint()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 0.999999), min_size=len(LAYERED), max_size=len(LAYERED)))
def test_unit_cube_points_always_map_inside_the_space(unit):
    assert LAYERED.problems(LAYERED.from_unit(unit)) == []


def test_joint_space_namespaces_learners_and_keeps_their_conditions():
    inner = SearchSpace((Int("k", 1, 3), Float("w", 0.1, 1.0, condition=when("k", 3))))
    joint = joint_space({"a": inner, "b": SearchSpace((Float("w", 0.0, 1.0),))})
    assert joint.names == ["learner", "a.k", "a.w", "b.w"]
    config = Config("a", {"k": 3, "w": 0.5})
    flat = flat_from_config(config)
    assert joint.problems(flat) == []
    assert config_from_flat(flat) == config
    assert joint.problems(flat_from_config(Config("b", {"w": 0.2}))) == []


def test_optuna_translation_suggests_only_active_parameters():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_depths = set()
    for _ in range(60):
        trial = study.ask()
        point = suggest(trial, LAYERED)
        assert set(trial.params) == set(point)
        assert LAYERED.problems(point) == []
        seen_depths.add(point["n_layers"])
        study.tell(trial, 0.0)
    assert seen_depths == {1, 2, 3}


def test_enqueued_points_come_back_unchanged():
    study = optuna.create_study()
    point = dict(LAYERED.default(), n_layers=2, width_2=100)
    study.enqueue_trial(point)
    assert suggest(study.ask(), LAYERED) == point


def test_config_keys_are_canonical():
    a = Config("hgb", {"x": 1, "y": np.float64(0.5)})
    b = Config("hgb", {"y": 0.5, "x": 1})
    assert a.key() == b.key() and a == b and len({a, b}) == 1
    assert Config("rf", {"x": 1}).key() != a.key()


def test_every_builtin_learner_has_a_valid_default_for_its_space():
    for learner in searchspaces.registered():
        assert learner.space.problems(learner.default_config().params) == [], learner.name
        assert learner.space.problems(learner.low_cost_config().params) == [], learner.name


def test_register_learner_by_decorator_and_reject_duplicates():
    from sklearn.linear_model import Lasso

    @searchspaces.register_learner("test_lasso", tasks="regression",
                                   params=[Float("alpha", 1e-3, 1.0, log=True, default=0.1)], scale=True)
    def build(params, context):
        return Lasso(**params)

    try:
        learner = searchspaces.get_learner("test_lasso", "regression")
        assert learner.preprocessing.scale and learner.default_config().params == {"alpha": 0.1}
        with pytest.raises(ValueError, match="already registered"):
            searchspaces.register_learner("test_lasso", tasks="regression")(build)
        with pytest.raises(KeyError, match="no classification learner"):
            searchspaces.get_learner("test_lasso", "classification")
    finally:
        searchspaces.unregister_learner("test_lasso")
    assert "test_lasso" not in searchspaces.learner_names()


def test_unknown_learner_names_suggest_the_closest():
    with pytest.raises(KeyError, match="Did you mean 'random_forest'"):
        searchspaces.get_learner("random_forrest", "classification")


def test_named_spaces_resolve_to_learners_for_the_task():
    names = [learner.name for learner in searchspaces.resolve_learners("regression", space="trees")]
    assert "hgb" in names and "linear" not in names
    with pytest.raises(KeyError, match="no search space named"):
        searchspaces.resolve_learners("regression", space="nope")


def test_explicitly_named_learner_must_support_the_task():
    from sklearn.dummy import DummyClassifier

    searchspaces.register_learner("test_dummy", tasks="classification")(lambda params, context: DummyClassifier())
    try:
        with pytest.raises(ValueError, match="does not support regression"):
            searchspaces.resolve_learners("regression", ["test_dummy"])
    finally:
        searchspaces.unregister_learner("test_dummy")
