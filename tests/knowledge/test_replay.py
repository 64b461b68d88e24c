"""The prediction repository, the replay of a search on it, and the portfolios learned from replays."""

from __future__ import annotations

import time

import numpy as np
import pytest

from automl.cli import main as cli
from automl.knowledge.portfolio import Portfolio, PortfolioTable
from automl.knowledge.portfolio_build import (
    MIN_REGION_TASKS,
    by_region,
    cold_order,
    followed_by_cold,
    greedy_portfolio,
    single_scores,
    zero_shot_head,
)
from automl.knowledge.replay import ReplayTask, replay, trial_seconds
from automl.knowledge.repository import PredictionRepository, TaskPredictions, build_prediction_repository
from searchspaces import Config, get_learner
from tests.conftest import PMLB, pmlb_path

LINEAR = get_learner("linear", "classification").default_config()
KNN = get_learner("knn", "classification").default_config()
FOREST = get_learner("random_forest", "classification").default_config()
BOOSTED = get_learner("lightgbm", "classification").default_config()
CONFIGS = {c.key(): c for c in (LINEAR, KNN, FOREST, BOOSTED)}


def binary_task(name: str, seconds: dict[Config, float], quality: dict[Config, float], n_rows: int = 1_000,
                seed: int = 0) -> ReplayTask:
    """A repository task whose candidates predict the label with the given quality (0 = noise, 1 = perfect), each
    with errors of its own, so that averaging two of them beats either."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 600)
    ids = [c.key() for c in CONFIGS.values()]
    predictions = np.zeros((len(ids), len(y), 2), dtype=np.float32)
    for i, config in enumerate(CONFIGS.values()):
        score = quality[config] * (y - 0.5) + rng.normal(scale=0.5, size=len(y))
        p = 1 / (1 + np.exp(-3 * score))
        predictions[i] = np.stack([1 - p, p], axis=1)
    data = TaskPredictions(name, "binary", "roc_auc", n_rows, 10, 1_000, ids, predictions, y,
                           np.array([seconds[c] for c in CONFIGS.values()]), ["ok"] * len(ids))
    return ReplayTask(data, CONFIGS)


SECONDS = {LINEAR: 0.05, KNN: 0.05, FOREST: 1.5, BOOSTED: 4.0}
QUALITY = {LINEAR: 0.5, KNN: 0.4, FOREST: 0.9, BOOSTED: 1.2}


def test_a_replay_spends_the_budget_as_the_engine_would_and_ends_with_an_ensemble():
    task = binary_task("t", SECONDS, QUALITY)
    order = [LINEAR.key(), KNN.key(), FOREST.key(), BOOSTED.key()]
    short, long = replay(task, order, budget=3), replay(task, order, budget=None)
    assert short.finished == (LINEAR.key(), KNN.key())  # the forest's 5-fold trial on 1,000 rows does not fit in 3 s
    assert short.seconds <= 3
    assert long.finished == tuple(order)
    assert long.normalised > short.normalised
    assert long.score >= max(task.single_scores)  # ensemble selection never ends below the best single trial
    assert len(long.members) >= 2  # candidates with errors of their own are averaged


def test_trials_cost_their_stored_seconds_scaled_to_the_tasks_rows_and_folds():
    small = binary_task("small", SECONDS, QUALITY, n_rows=1_000).data
    large = binary_task("large", SECONDS, QUALITY, n_rows=10_000).data
    # 1,000 rows: 5-fold on 800 rows a fit, against the stored 3-fold on 667: 5/3 * 1.2 the seconds
    assert trial_seconds(small, LINEAR, 10) == pytest.approx(0.05 * 5 / 3 * 1.2, rel=1e-6)
    # 10,000 rows: 3-fold on 6,667 rows a fit, ten times the stored ones
    assert trial_seconds(large, LINEAR, 10) == pytest.approx(0.05 * 10, rel=1e-6)


def test_one_replay_takes_milliseconds():
    task = binary_task("t", SECONDS, QUALITY)
    order = list(CONFIGS)
    replay(task, order, None)
    started = time.perf_counter()
    for _ in range(20):
        replay(task, order, None)
    assert (time.perf_counter() - started) / 20 < 0.1


def test_the_greedy_portfolio_buys_cheap_gains_on_a_small_budget_and_the_best_without_one():
    tasks = [binary_task(f"t{seed}", SECONDS, QUALITY, seed=seed) for seed in range(4)]
    at_3s = greedy_portfolio(tasks, list(CONFIGS), budget=3)
    unbounded = greedy_portfolio(tasks, list(CONFIGS), budget=None)
    assert unbounded[0] == BOOSTED.key()  # the best on its own
    assert BOOSTED.key() not in at_3s  # never finishes in 3 s
    assert set(at_3s[:2]) == {LINEAR.key(), KNN.key()}
    for task in tasks:  # learned for the budget, the portfolio ends no worse than the cold start there
        assert replay(task, at_3s, 3).normalised >= replay(task, cold_order("classification", 3), 3).normalised - 1e-9


def test_the_zero_shot_pick_is_the_one_good_almost_everywhere_when_held_out_tasks_say_so():
    # the forest is a little better on most tasks; the booster far better on one, which lifts its mean score
    steady = {LINEAR: 0.3, KNN: 0.3, FOREST: 1.2, BOOSTED: 1.0}
    spiky = {LINEAR: 0.3, KNN: 0.3, FOREST: 0.1, BOOSTED: 2.0}
    tasks = [binary_task(f"t{seed}", SECONDS, steady, seed=seed) for seed in range(6)]
    tasks.append(binary_task("spike", SECONDS, spiky, seed=9))
    scores = single_scores(tasks, list(CONFIGS))
    booster, forest = list(CONFIGS).index(BOOSTED.key()), list(CONFIGS).index(FOREST.key())
    assert scores[:, booster].mean() > scores[:, forest].mean()  # the mean alone would pick the booster
    assert greedy_portfolio(tasks, list(CONFIGS), None)[0] == BOOSTED.key()
    # ... but left out in turn, each task is better served by the forest: it leads the portfolio without a budget
    assert zero_shot_head(tasks, list(CONFIGS)) == (FOREST.key(), "mean rank")
    assert by_region(tasks, list(CONFIGS), None)[(0, None)][0] == FOREST.key()


def test_a_portfolio_is_followed_by_what_the_cold_start_would_run():
    order = followed_by_cold([BOOSTED.key()], "classification", 3)
    assert order[0] == BOOSTED.key() and len(order) == len(set(order))
    assert set(cold_order("classification", 3)) <= set(order)


def test_the_table_takes_the_largest_budget_not_above_the_fits(tmp_path):
    table = PortfolioTable((Portfolio("classification", 3.0, (LINEAR,)), Portfolio("classification", 30.0, (FOREST,)),
                            Portfolio("classification", None, (BOOSTED,)), Portfolio("regression", 3.0, ())))
    assert table.lookup("classification", 1).budget == 3.0
    assert table.lookup("classification", 29.9).budget == 3.0
    assert table.lookup("classification", 600).budget == 30.0
    assert table.lookup("classification", None).configs == (BOOSTED,)
    table.write(tmp_path / "table.json")
    assert PortfolioTable.read(tmp_path / "table.json") == table


def test_portfolios_are_learned_apart_by_rows_only_where_each_region_has_tasks_enough():
    neighbours_win = {LINEAR: 0.3, KNN: 1.2, FOREST: 0.4, BOOSTED: 0.4}
    small = [binary_task(f"s{seed}", SECONDS, neighbours_win, n_rows=500, seed=seed) for seed in range(10)]
    large = [binary_task(f"l{seed}", SECONDS, QUALITY, n_rows=5_000, seed=seed) for seed in range(10)]
    apart = by_region(small + large, list(CONFIGS), budget=None)
    assert set(apart) == {(0, 1_000), (1_001, None)}
    assert apart[(0, 1_000)][0] == KNN.key() and apart[(1_001, None)][0] == BOOSTED.key()
    together = by_region(small + large[: MIN_REGION_TASKS - 1], list(CONFIGS), budget=None)
    assert list(together) == [(0, None)]  # too few large tasks to learn their portfolio apart


def test_a_fit_takes_the_portfolio_of_its_datas_size(tmp_path):
    table = PortfolioTable((Portfolio("classification", 3.0, (KNN,), 0, 1_000),
                            Portfolio("classification", 3.0, (BOOSTED,), 1_001, None),
                            Portfolio("classification", None, (FOREST,))))
    assert table.lookup("classification", 3, rows=300).configs == (KNN,)
    assert table.lookup("classification", 10, rows=48_000).configs == (BOOSTED,)
    assert table.lookup("classification", None, rows=48_000).configs == (FOREST,)  # one for every size
    assert table.lookup("classification", 3).configs == (KNN,)  # size unknown: the first region
    table.write(tmp_path / "table.json")
    assert PortfolioTable.read(tmp_path / "table.json") == table


@pytest.mark.skipif(not PMLB.exists(), reason="needs the corpus")
def test_the_repository_build_stores_out_of_fold_predictions_and_resumes(tmp_path):
    pmlb_path("analcatdata_boxing1")
    names = ["analcatdata_boxing1", "192_vineyard"]  # one binary task, one regression task
    report = build_prediction_repository(tmp_path / "repo", PMLB, names=names, pool_size=6, progress=False)
    assert report.tasks_added == 2 and report.size_bytes > 0
    repository = PredictionRepository(tmp_path / "repo")
    assert repository.names() == sorted(names)
    boxing = repository.load("analcatdata_boxing1")
    assert boxing.predictions.dtype == np.float32 and boxing.predictions.shape == (6, 120, 2)
    assert boxing.ok().all() and np.allclose(boxing.predictions.sum(axis=2), 1, atol=1e-4)
    assert set(boxing.y) == {0, 1} and (boxing.seconds > 0).all()
    vineyard = repository.load("192_vineyard")
    assert vineyard.kind == "regression" and vineyard.predictions.shape[2] == 1
    assert len(repository.pool("classification")) == 6  # each learner's low-cost point and default, in part
    again = build_prediction_repository(tmp_path / "repo", PMLB, names=names, pool_size=6, progress=False)
    assert again.tasks_added == 0 and again.tasks_skipped == 2


def test_the_cli_says_where_the_repository_goes(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli(["kb", "build", "--predictions", "--datasets", "."])
    assert "--out DIR" in str(stopped.value)
