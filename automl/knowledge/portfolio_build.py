"""Learning portfolios by replay: per budget, the order of configurations whose final ensemble gains most per second.

A greedy portfolio (as in TabRepo and auto-sklearn 2.0) adds, step by step,
the candidate that most raises the mean over tasks of what the search would
end with. Unlike theirs, the gain here is the replayed final *ensemble*'s
(the candidate is mixed into the ensemble built so far, as ensemble selection
would mix it), per second the candidate costs on each task at the engine's
resampling and within what is left of the budget; a candidate that would run
past the search's end brings nothing and spends the rest. So at 3 s the head
holds what is cheap and good on most data, and at 300 s what is best.

The greedy steps use a fast, incremental stand-in for the engine's ensemble
selection (the new member mixed in at the best of a few weights, scored with
vectorised metrics); :func:`automl.knowledge.replay.replay` then judges the
portfolios exactly. ``python -m automl.knowledge.portfolio_build --repository DIR``
learns the shipped table (:mod:`automl.knowledge.portfolio`) from every task.

>>> order = greedy_portfolio(tasks, candidates, budget=10)   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from automl.knowledge.portfolio import (
    MAX_MEMBERS,
    PORTFOLIO_FILE,
    ROW_REGIONS,
    Portfolio,
    PortfolioTable,
    in_region,
)
from automl.knowledge.replay import ENGINE, EngineCosts, ReplayTask
from automl.knowledge.repository import PredictionRepository
from automl.search.budget import MAX_RESERVE_SHARE, MIN_RESERVE
from automl.search.metrics import PROBABILITY_FLOOR
from searchspaces import Config, default_space, resolve_learners

BUDGETS: tuple[float | None, ...] = (3.0, 10.0, 30.0, 60.0, 300.0, None)
MIX_WEIGHTS = np.array([0.1, 0.2, 0.3, 0.5])  # the shares a new member may take of the ensemble so far
MIN_GAIN = 1e-4  # a step whose mean normalised gain is below this ends the portfolio
MIN_REGION_TASKS = 10  # fewer tasks in a region of rows: one portfolio for data of any size


@dataclass
class _State:
    """One task's replay so far: its clock, its best single trial, and the ensemble's predictions and score."""

    clock: float
    best: int | None = None
    mixture: np.ndarray | None = None
    normalised: float = 0.0
    done: bool = False


class _TaskView:
    """What the greedy steps need of one task at one budget, precomputed."""

    def __init__(self, task: ReplayTask, candidates: Sequence[str], budget: float | None, costs: EngineCosts):
        self.task = task
        self.budget = budget
        self.costs = costs
        index = [task.index.get(cid) for cid in candidates]
        present = np.array([i is not None for i in index])
        rows = [i if i is not None else 0 for i in index]
        self.seconds = np.where(present, task.seconds(budget)[rows], np.nan)
        self.rows = rows
        self.single = np.array([task.normalise(task.single_scores[i]) if p else 0.0 for i, p in zip(rows, present)])
        self.refit = np.array([task.refit_seconds(i) if p and np.isfinite(s) else MIN_RESERVE
                               for i, p, s in zip(rows, present, self.seconds)])
        y = task.data.y
        predictions = task.data.predictions[rows].astype(float)
        if task.data.task_type == "regression":
            self.scoring, self.y = "rmse", y.astype(float)
            values = predictions[:, :, 0]
        elif task.data.metric == "roc_auc" and predictions.shape[2] == 2:
            self.scoring, self.y = "auc", y.astype(int) == 1
            values = predictions[:, :, 1]
        else:
            self.scoring, self.y = "log_loss", y
            values = predictions[:, np.arange(len(y)), y.astype(int)]  # each row's true-class probability
        self.values = np.nan_to_num(values)

    def limit(self, state: _State) -> float:
        """When the search must end, given the reserve its best trial so far needs for the final fit."""
        if self.budget is None:
            return float("inf")
        reserve = self.refit[state.best] if state.best is not None else MIN_RESERVE
        return self.budget - min(max(MIN_RESERVE, reserve), MAX_RESERVE_SHARE * self.budget)

    def _scores(self, mixtures: np.ndarray) -> np.ndarray:
        """The normalised score of each mixture (the last axis runs over the rows)."""
        if self.scoring == "rmse":
            raw = np.sqrt(np.mean((mixtures - self.y) ** 2, axis=-1))
        elif self.scoring == "log_loss":
            raw = -np.mean(np.log(np.clip(mixtures, PROBABILITY_FLOOR, 1.0)), axis=-1)
        else:
            n_positive = int(self.y.sum())
            n_negative = len(self.y) - n_positive
            if n_positive == 0 or n_negative == 0:
                return np.zeros(mixtures.shape[:-1])
            ranks = rankdata(mixtures, axis=-1)
            raw = (ranks[..., self.y].sum(axis=-1) - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)
        return np.vectorize(self.task.normalise, otypes=[float])(raw)

    def step(self, state: _State) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, float] | None]]:
        """For every candidate run next: its gain in normalised ensemble score, its seconds, the new ensemble."""
        n = len(self.rows)
        gains, spent = np.zeros(n), np.zeros(n)
        updates: list[tuple[np.ndarray, float] | None] = [None] * n
        if state.done:
            return gains, spent, updates
        left = max(0.0, self.limit(state) - state.clock)
        cost = self.costs.per_trial + np.nan_to_num(self.seconds, nan=0.0)
        spent[:] = np.minimum(cost, left)
        fits = np.flatnonzero(np.isfinite(self.seconds) & (cost <= left))
        if len(fits) == 0:
            return gains, spent, updates
        if state.mixture is None:
            scores = self._scores(self.values[fits])
            shares = np.ones(len(fits))
        else:
            mixed = ((1 - MIX_WEIGHTS)[None, :, None] * state.mixture[None, None, :]
                     + MIX_WEIGHTS[None, :, None] * self.values[fits][:, None, :])
            grid = self._scores(mixed)
            scores, shares = grid.max(axis=1), MIX_WEIGHTS[grid.argmax(axis=1)]
        for j, c in enumerate(fits):
            gains[c] = max(0.0, scores[j] - state.normalised)
            if gains[c] > 0 or state.mixture is None:
                base = self.values[c] if state.mixture is None else state.mixture
                updates[c] = ((1 - shares[j]) * base + shares[j] * self.values[c], float(scores[j]))
        return gains, spent, updates

    def advance(self, state: _State, c: int, update: tuple[np.ndarray, float] | None) -> None:
        """Run candidate ``c`` next on this task."""
        if state.done:
            return
        limit = self.limit(state)
        cost = self.costs.per_trial + (self.seconds[c] if np.isfinite(self.seconds[c]) else 0.0)
        if state.clock + cost > limit:
            state.clock, state.done = limit, True
            return
        state.clock += cost
        if not np.isfinite(self.seconds[c]):
            return
        if state.best is None or self.single[c] > self.single[state.best]:
            state.best = c
        if update is not None:
            state.mixture, state.normalised = update


def greedy_portfolio(tasks: Sequence[ReplayTask], candidates: Sequence[str], budget: float | None,
                     max_length: int = MAX_MEMBERS, costs: EngineCosts = ENGINE, head: str | None = None) -> list[str]:
    """The order of ``candidates`` (config ids) that the greedy per-second gain picks on ``tasks`` at ``budget``,
    starting from ``head`` where one is given.

    Without a budget the gain alone counts, not the seconds.
    """
    if not tasks:
        return []
    views = [_TaskView(task, candidates, budget, costs) for task in tasks]
    states = [_State(costs.startup) for _ in views]
    chosen: list[int] = []
    for _ in range(min(max_length, len(candidates))):
        steps = [view.step(state) for view, state in zip(views, states)]
        gains = np.mean([gain for gain, _, _ in steps], axis=0)
        seconds = np.mean([spent for _, spent, _ in steps], axis=0)
        gains[chosen] = -np.inf
        if not chosen and head is not None:
            pick = candidates.index(head)
        elif np.max(gains) < MIN_GAIN:
            break
        else:
            value = gains if budget is None else gains / np.maximum(seconds, costs.per_trial)
            pick = int(np.argmax(value))
        chosen.append(pick)
        for view, state, (_, _, updates) in zip(views, states, steps):
            view.advance(state, pick, updates[pick])
    return [candidates[i] for i in chosen]


def searched_candidates(configs: dict[str, Config], kind: str, budget: float | None) -> list[str]:
    """The candidates of learners that a search of ``budget`` searches by default (no boosters below 10 s)."""
    learners = {learner.name for learner in resolve_learners(kind, space=default_space(budget))}
    return [cid for cid, config in configs.items() if config.learner in learners]


def cold_order(kind: str, budget: float | None) -> list[str]:
    """The cold start's order (the engine without knowledge): low-cost points, then defaults, cheapest learner first."""
    learners = sorted(resolve_learners(kind, space=default_space(budget)), key=lambda learner: learner.cost)
    order = [learner.low_cost_config().key() for learner in learners]
    return order + [key for key in (learner.default_config().key() for learner in learners) if key not in order]


def followed_by_cold(portfolio: Sequence[str], kind: str, budget: float | None) -> list[str]:
    """A portfolio, then what the cold start would run that it does not hold: the engine's initial order."""
    return list(portfolio) + [cid for cid in cold_order(kind, budget) if cid not in portfolio]


def single_scores(tasks: Sequence[ReplayTask], candidates: Sequence[str]) -> np.ndarray:
    """Each candidate's normalised score alone on each task (tasks x candidates; 0 where it failed or is absent)."""
    scores = np.zeros((len(tasks), len(candidates)))
    for t, task in enumerate(tasks):
        for c, cid in enumerate(candidates):
            i = task.index.get(cid)
            if i is not None and np.isfinite(task.single_scores[i]):
                scores[t, c] = task.normalise(task.single_scores[i])
    return scores


def _by_mean_score(scores: np.ndarray) -> np.ndarray:
    return scores.mean(axis=0)


def _by_mean_rank(scores: np.ndarray) -> np.ndarray:
    return -rankdata(-scores, axis=1).mean(axis=0)


HEAD_RULES = {"mean score": _by_mean_score, "mean rank": _by_mean_rank}


def zero_shot_head(tasks: Sequence[ReplayTask], candidates: Sequence[str]) -> tuple[str, str]:
    """The configuration to fit alone when there is no search (the zero-shot pick), and the rule that chose it.

    A lone configuration is judged by its own score, not by what it adds to an
    ensemble. Two rules compete: the best mean normalised score (which a few
    tasks with large gaps can sway) and the best mean rank (which asks to be good
    almost everywhere). Each rule's pick is judged leave-one-task-out, on the task
    left out, and the rule whose picks score higher there chooses.
    """
    scores = single_scores(tasks, candidates)
    held_out = {}
    for name, rule in HEAD_RULES.items():
        picks = [int(np.argmax(rule(np.delete(scores, t, axis=0)))) for t in range(len(tasks))]
        held_out[name] = float(np.mean([scores[t, pick] for t, pick in enumerate(picks)]))
    name = max(held_out, key=held_out.get)
    return candidates[int(np.argmax(HEAD_RULES[name](scores)))], name


def regions_of(tasks: Sequence[ReplayTask]) -> dict[tuple[int, int | None], list[ReplayTask]]:
    """``tasks`` split by region of rows (``ROW_REGIONS``); all in one region of any size where a region would hold
    fewer than ``MIN_REGION_TASKS`` (too few to learn from apart)."""
    parts = {region: [t for t in tasks if in_region(t.data.n_rows, region)] for region in ROW_REGIONS}
    if min(len(part) for part in parts.values()) < MIN_REGION_TASKS:
        return {(0, None): list(tasks)}
    return parts


def by_region(tasks: Sequence[ReplayTask], candidates: Sequence[str],
              budget: float | None) -> dict[tuple[int, int | None], list[str]]:
    """A greedy portfolio for each region of rows (:func:`regions_of`), learned on the tasks in it.

    Without a budget the head is the zero-shot pick (:func:`zero_shot_head`), which a fit without search runs alone.
    """
    return {region: greedy_portfolio(part, candidates, budget,
                                     head=zero_shot_head(part, candidates)[0] if budget is None else None)
            for region, part in regions_of(tasks).items()}


def learn_table(repository: PredictionRepository, exclude: Sequence[str] = (),
                budgets: Sequence[float | None] = BUDGETS) -> PortfolioTable:
    """A portfolio per (task kind, budget, region of rows: :func:`by_region`), each learned on the repository's
    tasks in that region, ``exclude`` left out."""
    portfolios = []
    counts = []
    left_out = set(exclude)
    for kind in ("classification", "regression"):
        configs = repository.configs(kind)
        tasks = [ReplayTask(data, configs) for data in repository.tasks(kind) if data.name not in left_out]
        counts.append(f"{len(tasks)} {kind}")
        for budget in budgets:
            for region, order in by_region(tasks, searched_candidates(configs, kind, budget), budget).items():
                portfolios.append(Portfolio(kind, budget, tuple(configs[cid] for cid in order), *region))
    held = f", {len(left_out)} held out" if left_out else ""
    return PortfolioTable(tuple(portfolios), f"{' and '.join(counts)} tasks of the prediction repository{held}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="learn the shipped portfolio table from a prediction repository")
    parser.add_argument("--repository", required=True, help="the directory of automl kb build --predictions")
    parser.add_argument("--exclude", nargs="*", default=[], help="tasks to learn without (a benchmark's own)")
    parser.add_argument("--out", default=str(PORTFOLIO_FILE))
    args = parser.parse_args(argv)
    table = learn_table(PredictionRepository(args.repository), exclude=args.exclude)
    print(f"wrote {table.write(Path(args.out))}: {len(table.portfolios)} portfolios from {table.built_from}")


if __name__ == "__main__":
    main()
