"""What the user's own history of a dataset says is obeyed: a configuration that timed out or failed on it does not
come back for it, and the seconds the others took there are known."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

import automl
import searchspaces
from automl.data.dataset import load_dataset
from automl.knowledge.own_history import own_history
from searchspaces import Config
from tests.knowledge_builders import same_everywhere, write_knowledge
from tests.misbehaving import misbehaving_learner

SLEEPS = Config("misbehaving", {"mode": "sleep"})  # the best everywhere the knowledge knows, but it hangs here


def test_a_configuration_that_timed_out_on_this_data_never_comes_back_and_the_trial_count_does_not_fall(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "c": rng.normal(size=200)})
    y = (X["a"] + rng.normal(scale=0.5, size=200) > 0).astype(int).to_numpy()
    kb = tmp_path / "kb.sqlite"
    linear = [Config("linear", {"C": c, "class_weight": None}) for c in (0.1, 1.0, 10.0)]
    write_knowledge(kb, same_everywhere([(SLEEPS, 0.99), *((config, 0.8) for config in linear)]))
    searchspaces.register_learner(misbehaving_learner(("ok", "sleep")), replace=True)
    boards = []
    try:
        for _ in range(5):
            model = automl.fit(X, y, learners=["misbehaving", "linear"], time_budget=5, trial_time_limit=1.0,
                               kb=str(kb), verbose=0)
            boards.append(model.leaderboard())
    finally:
        searchspaces.unregister_learner("misbehaving")
    ran = [[Config(learner, params) for learner, params in zip(board["learner"], board["params"])] for board in boards]
    assert SLEEPS in ran[0] and boards[0].loc[[c == SLEEPS for c in ran[0]], "status"].eq("timeout").all()
    assert all(SLEEPS not in configs for configs in ran[1:])  # the warm start's favourite, but it hangs on this data
    counts = [len(board) for board in boards]
    assert min(counts[1:]) >= counts[0], counts  # the second of the first fit's trial lost to it is not lost again
    history = own_history(load_dataset(X, y), kb)
    assert SLEEPS.key() in history.failed and not history.allows(SLEEPS)
    assert all(history.seconds.get(config.key(), 0.0) > 0 for config in linear if config in ran[0])


def test_no_knowledge_base_means_no_history(tmp_path, small_binary):
    X, y = small_binary
    history = own_history(load_dataset(X, y), tmp_path / "none.sqlite")
    assert not history.failed and not history.seconds and history.allows(SLEEPS)
    assert not os.path.exists(tmp_path / "none.sqlite")  # reading a history creates no base
