"""A fit starts with the shipped portfolio of its budget, paying nothing for it: no meta-features before the search."""

from __future__ import annotations

import pytest

import automl
import automl.engine as engine
from automl.knowledge.own_history import OwnHistory
from automl.knowledge.portfolio import TABLE_ENV, Portfolio, PortfolioTable
from automl.knowledge.warm_start import initial_configs, needs_meta_features, plan_portfolio
from searchspaces import Config, resolve_learners

KNN = Config("knn", {"n_neighbors": 7, "weights": "distance", "p": 1})
LINEAR = Config("linear", {"C": 0.3, "class_weight": None})
FOREST = Config("random_forest", {"bootstrap": True, "criterion": "gini", "max_features": "sqrt", "min_samples_leaf": 2,
                                  "n_estimators": 40})


@pytest.fixture
def table(tmp_path, monkeypatch) -> PortfolioTable:
    """A portfolio table of our own in place of the shipped one."""
    for config in (KNN, LINEAR, FOREST):
        learner = next(learner for learner in resolve_learners("classification") if learner.name == config.learner)
        assert not learner.space.problems(dict(config.params)), config
    made = PortfolioTable((Portfolio("classification", 3.0, (KNN, LINEAR)),
                           Portfolio("classification", None, (FOREST, KNN)),
                           Portfolio("regression", 3.0, ())))
    path = made.write(tmp_path / "portfolios.json")
    monkeypatch.setenv(TABLE_ENV, str(path))
    return made


def test_a_short_fit_runs_its_budgets_portfolio_first_and_describes_the_data_only_after(table, small_binary,
                                                                                      monkeypatch):
    calls = []
    real_describe = engine.describe

    def describe(dataset, seed=0):
        calls.append("describe")
        return real_describe(dataset, seed)

    def search(*args, **kwargs):
        calls.append("search")
        return real_search(*args, **kwargs)

    real_search = engine._search
    monkeypatch.setattr(engine, "describe", describe)
    monkeypatch.setattr(engine, "_search", search)
    X, y = small_binary
    model = automl.fit(X, y, time_budget=4, verbose=0)
    assert model.summary.warm_start.method == "portfolio@3s"
    first = sorted(model.results, key=lambda r: r.number)[:2]
    assert [r.config for r in first] == [KNN, LINEAR]
    assert [r.origin for r in first] == ["warm:portfolio@3s"] * 2
    assert calls[0] == "search"  # the meta-features, if any, for the write-back after the final model


def test_a_longer_fit_plans_the_nearest_datasets_priors_only_once_its_first_trial_runs(table, small_binary,
                                                                                      monkeypatch):
    """From 30 s the nearest datasets narrow the priors the search draws from after the portfolio: described and
    planned while the first trials run, they never delay the first trial, and the fit still records them."""
    import automl.knowledge.fit_knowledge as fit_knowledge
    from automl.search.worker import WorkerPool

    calls = []
    real_describe, real_submit = fit_knowledge.describe, WorkerPool.submit

    def describe(dataset, seed=0):
        calls.append("describe")
        return real_describe(dataset, seed)

    def submit(self, *args, **kwargs):
        calls.append("trial")
        return real_submit(self, *args, **kwargs)

    monkeypatch.setattr(fit_knowledge, "describe", describe)
    monkeypatch.setattr(WorkerPool, "submit", submit)
    monkeypatch.delenv("AUTOML_SHIPPED_KB")  # the shipped knowledge, as a user has it
    X, y = small_binary
    model = automl.fit(X, y, time_budget=30, n_trials=4, verbose=0)
    assert calls.index("trial") < calls.index("describe")
    record = model.summary.warm_start
    assert record.method.startswith("portfolio") and record.method.endswith("priors")
    assert record.neighbours  # where the priors came from: the nearest known datasets
    assert sorted(model.results, key=lambda r: r.number)[0].origin.startswith("warm:portfolio")


def test_meta_features_are_paid_for_only_where_priors_use_them(table):
    assert not needs_meta_features("classification", 10)
    assert needs_meta_features("classification", 30)  # the nearest datasets' priors narrow a longer search
    assert needs_meta_features("classification", None)
    assert needs_meta_features("classification", 10, warm_start=5)  # five suggestions of the nearest datasets
    assert needs_meta_features("regression", 10) is False  # an empty portfolio is still a portfolio


def test_a_portfolio_runs_in_its_order_then_the_cold_start_and_skips_what_failed_here_before(table):
    learners = {learner.name: learner for learner in resolve_learners("classification")}
    own = OwnHistory(failed=frozenset({KNN.key()}))
    warm = plan_portfolio("binary", learners, 3, own)
    assert [s.config for s in warm.suggestions] == [LINEAR]
    order = initial_configs(learners, None, warm)
    assert order[0] == (LINEAR, "warm:portfolio@3s")
    cold = initial_configs(learners, None, None)
    assert [c for c, _ in order[1:]] == [c for c, _ in cold if c != KNN]


def test_zero_shot_fits_the_head_of_the_portfolio_learned_without_a_budget(table, small_binary):
    X, y = small_binary
    model = automl.zero_shot(X, y)
    assert model.best_config_ == FOREST
    assert model.leaderboard()["origin"].iloc[0] == "warm:portfolio"


def xor_rows(seed: int, n: int = 300):
    """Data no linear model can learn: the label is the sign of a product."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "noise": rng.normal(size=n)})
    return X, (X["a"] * X["b"] > 0).astype(int).to_numpy()


def test_the_portfolio_is_refitted_from_the_users_own_searches_and_kb_info_says_when(tmp_path, monkeypatch, capsys):
    from automl.cli import main as cli
    from automl.knowledge import portfolio
    from automl.knowledge.portfolio_refit import read_refitted
    from automl.knowledge.prepared import knowledge_family

    shipped = PortfolioTable((Portfolio("classification", 3.0, (LINEAR, FOREST), 0, 1_000),
                              Portfolio("classification", 3.0, (LINEAR, FOREST), 1_001, None)), "a test's corpus")
    monkeypatch.setattr(portfolio, "PORTFOLIO_FILE", shipped.write(tmp_path / "shipped.json"))
    (tmp_path / "no-shipped-runs").mkdir()
    monkeypatch.setenv("AUTOML_SHIPPED_KB", str(tmp_path / "no-shipped-runs"))  # our table, no shipped histories
    first = automl.fit(*xor_rows(0), time_budget=3, verbose=0)
    assert first.summary.warm_start.method == "portfolio@3s"
    assert sorted(first.results, key=lambda r: r.number)[0].config == LINEAR  # as shipped
    for seed in (1, 2):  # a new kind of data, where the linear model is no good
        automl.fit(*xor_rows(seed), time_budget=3, verbose=0)
    cli(["kb", "refresh"])
    printed = capsys.readouterr().out
    assert "refitted" in printed and "from your tasks (3 classification)" in printed
    table = read_refitted(knowledge_family(None)).table
    refitted = table.lookup("classification", 3, rows=300).configs
    assert table.lookup("classification", 3, rows=5_000).configs == (LINEAR, FOREST)  # larger data: as shipped
    assert refitted[0] != LINEAR and refitted[0].learner != "linear"  # what won on the user's data leads now
    assert FOREST in refitted and LINEAR in refitted  # the shipped members stay, behind it
    later = automl.fit(*xor_rows(3), time_budget=3, verbose=0)
    assert sorted(later.results, key=lambda r: r.number)[0].config == refitted[0]  # the next fit starts from it
    cli(["kb", "info"])
    assert "refitted" in capsys.readouterr().out
