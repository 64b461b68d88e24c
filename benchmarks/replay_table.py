"""The replay table: every warm-start policy replayed side by side on the prediction repository, per budget.

Each corpus task outside the peer benchmark's is replayed with policies learned without it (tasks are
split into ``--folds`` groups per task kind; a group's portfolios are learned
on the other groups, a stricter hold-out than leaving one dataset out):

- ``cold``: the defaults alone, as the engine without knowledge runs them
  (every learner's low-cost point, then its default, cheapest learner first);
- ``warm_today``: today's warm start (the nearest-datasets and greedy-portfolio
  starters on meta-features, as ``automl.knowledge.warm_start`` plans it), its
  suggestions restricted to the repository's pool, then the low-cost points;
- ``static``: one portfolio learned without a budget, used at every budget;
- ``budget``: the portfolio learned for the budget, on tasks of every size;
- ``conditioned``: the budget's portfolio learned on the tasks of the same size
  region only (``automl.knowledge.portfolio.ROW_REGIONS``: rows up to 1,000, or
  more; one for all sizes where a region holds too few tasks), as the engine
  ships them;
- ``reranked``: the budget's portfolio, whose members after the first
  ``RERANK_AFTER`` that finished are re-ranked by their mean score on the
  ``NEIGHBOURS`` training tasks whose scores of those first members are
  closest to the new task's (similarity from the first trials' scores, as in
  TabRepo and Oboe, rather than from meta-features).

Every portfolio is followed by what the cold start would run that it does not
hold. The zero-shot pick (one configuration fitted alone, no search) is set
beside the learners' defaults on the same held-out tasks: ``zero_shot`` (the
head the engine ships, :func:`automl.knowledge.portfolio_build.zero_shot_head`,
per region of rows), ``zero_shot_mean`` (the best mean score per region, the
greedy portfolio's own head), ``rf_default`` and ``hgb_default``. Prints and
writes ``benchmarks/results/replay/`` (``table.md``, ``zero_shot.md``, ``per_task.csv``).

    python -m benchmarks.replay_table --repository ../predictions
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from automl.knowledge.portfolio import in_region
from automl.knowledge.portfolio_build import (
    BUDGETS,
    HEAD_RULES,
    by_region,
    cold_order,
    followed_by_cold,
    greedy_portfolio,
    regions_of,
    searched_candidates,
    zero_shot_head,
)
from automl.knowledge.portfolio_build import single_scores as score_matrix
from automl.knowledge.replay import ReplayTask, replay
from automl.knowledge.repository import PredictionRepository
from automl.knowledge.warm_start import DEFAULT_METHODS, ZERO_SHOT_METHOD, initial_count, learners_first
from benchmarks.datasets import PEERS
from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.shipped import shipped_knowledge
from metaknowledge.warmstart import led_by, make_warm_starter, prepared
from searchspaces import default_space, get_learner, resolve_learners

OUT = Path(__file__).resolve().parent / "results" / "replay"
RERANK_AFTER = 3
NEIGHBOURS = 15
ZERO_SHOT = "zero-shot"  # the budget column's value for the rows of single configurations fitted alone
DEFAULTS_BESIDE = ("random_forest", "hgb")  # the zero-shot pick must beat the better of these learners' defaults


def single_scores(task: ReplayTask) -> pd.Series:
    """The task's normalised score of each candidate on its own (config id -> score)."""
    return pd.Series([task.normalise(v) for v in task.single_scores], index=task.data.config_ids)


def reranked(task: ReplayTask, portfolio: list[str], budget: float | None, train: pd.DataFrame) -> list[str]:
    """``portfolio`` with its members after the first finished ones ordered by the most similar training tasks.

    ``train``: training tasks x candidates, normalised single scores.
    """
    finished = list(replay(task, portfolio, budget).finished[:RERANK_AFTER])
    if len(finished) < 2:
        return portfolio
    mine = single_scores(task)[finished]
    distance = (train[finished] - mine).abs().mean(axis=1).nsmallest(NEIGHBOURS)
    preference = train.loc[distance.index].mean(axis=0)
    head = portfolio[: portfolio.index(finished[-1]) + 1]
    rest = sorted(portfolio[len(head):], key=lambda cid: -preference.get(cid, 0.0))
    return head + rest


def folds_of(tasks: Sequence[ReplayTask], folds: int) -> list[int]:
    """A fold number per task, fixed by the tasks' names."""
    order = np.argsort([task.data.name for task in tasks])
    assignment = np.empty(len(tasks), dtype=int)
    assignment[order] = np.arange(len(tasks)) % folds
    return assignment.tolist()


class WarmToday:
    """Today's warm start, learned without a group of tasks, restricted to the repository's pool."""

    def __init__(self, kind: str, held_out: Sequence[str]):
        knowledge = shipped_knowledge().without_tasks(held_out)
        self.histories, self.meta = prepared(knowledge)
        self.kind = kind
        self.all_meta = shipped_knowledge().meta_feature_table(EXTRACTOR_VERSION)
        self.starters: dict[tuple[str, frozenset], object] = {}

    def _starter(self, method: str, learners: frozenset):
        key = (method, learners)
        if key not in self.starters:
            histories = {kind: history.of_learners(set(learners)) for kind, history in self.histories.items()}
            self.starters[key] = make_warm_starter(method).fit_histories(histories, self.meta)
        return self.starters[key]

    def order(self, task: ReplayTask, budget: float | None) -> list[str]:
        learners = frozenset(learner.name for learner in resolve_learners(self.kind, space=default_space(budget)))
        pool = [c for c in task.configs.values() if c.learner in learners]
        meta = self.all_meta.loc[task.data.name].to_dict() if task.data.name in self.all_meta.index else {}
        k = initial_count(budget, None)
        method = DEFAULT_METHODS[self.kind]
        ranked = self._starter(method, learners).suggest(meta, task.data.task_type, 3 * k, candidates=pool)
        lead = self._starter(ZERO_SHOT_METHOD, learners).suggest(meta, task.data.task_type, 1, candidates=pool)
        suggested = [s.config for s in led_by(lead, ranked)][:k]
        ordered = suggested[:1] + [c for c, _ in learners_first([(c, "") for c in suggested[1:]])]
        keys = [c.key() for c in ordered]
        cheap = cold_order(self.kind, budget)[: len(learners)]
        return keys + [cid for cid in cheap + cold_order(self.kind, budget) if cid not in keys]


def evaluate(repository: PredictionRepository, folds: int, budgets: Sequence[float | None],
             jobs: int = 1, exclude: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (task, budget, policy): the replayed normalised score and trials; ``jobs`` groups at once;
    the tasks ``exclude`` names are left out altogether."""
    work = [(repository.directory, kind, fold, folds, tuple(budgets), tuple(exclude))
            for kind in ("classification", "regression") for fold in range(folds)]
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            parts = list(tqdm(pool.imap_unordered(_evaluate_group, work), total=len(work), desc="replay"))
    else:
        parts = [_evaluate_group(item) for item in tqdm(work, desc="replay")]
    return pd.concat(parts, ignore_index=True)


def _evaluate_group(item: tuple) -> pd.DataFrame:
    """The replays of one group of held-out tasks of one kind, with policies learned on the other groups."""
    directory, kind, fold, folds, budgets, exclude = item
    repository = PredictionRepository(directory)
    configs = repository.configs(kind)
    tasks = [ReplayTask(data, configs) for data in repository.tasks(kind) if data.name not in exclude]
    assignment = folds_of(tasks, folds)
    train = [t for t, f in zip(tasks, assignment) if f != fold]
    test = [t for t, f in zip(tasks, assignment) if f == fold]
    today = WarmToday(kind, [t.data.name for t in test])
    scores = pd.DataFrame({t.data.name: single_scores(t) for t in train}).T
    static = greedy_portfolio(train, searched_candidates(configs, kind, None), None)
    rows = []
    for budget in budgets:
        candidates = searched_candidates(configs, kind, budget)
        learned = greedy_portfolio(train, candidates, budget)
        conditioned = by_region(train, candidates, budget)
        static_here = [cid for cid in static if cid in candidates]
        for task in test:
            policies = {
                "cold": cold_order(kind, budget),
                "warm_today": today.order(task, budget),
                "static": followed_by_cold(static_here, kind, budget),
                "budget": followed_by_cold(learned, kind, budget),
                "conditioned": followed_by_cold(next(order for region, order in conditioned.items()
                                                     if in_region(task.data.n_rows, region)), kind, budget),
                "reranked": followed_by_cold(reranked(task, learned, budget, scores), kind, budget),
            }
            for policy, order in policies.items():
                result = replay(task, order, budget)
                rows.append({"task": task.data.name, "kind": kind, "rows": task.data.n_rows,
                             "budget": "none" if budget is None else f"{budget:g}", "policy": policy,
                             "normalised": result.normalised, "trials": len(result.finished)})
    return pd.DataFrame(rows + zero_shot_rows(train, test, configs, kind))


def zero_shot_rows(train: Sequence[ReplayTask], test: Sequence[ReplayTask], configs: dict,
                   kind: str) -> list[dict]:
    """The held-out tasks' scores of the zero-shot picks learned on ``train`` (per region of rows) and of the
    defaults beside them, each fitted alone."""
    candidates = searched_candidates(configs, kind, None)
    picks: dict[str, dict[tuple, str]] = {"zero_shot": {}, "zero_shot_mean": {}}
    for region, part in regions_of(train).items():
        picks["zero_shot"][region] = zero_shot_head(part, candidates)[0]
        picks["zero_shot_mean"][region] = candidates[int(np.argmax(HEAD_RULES["mean score"](
            score_matrix(part, candidates))))]
    defaults = {f"{name}_default": get_learner(name, kind).default_config().key() for name in DEFAULTS_BESIDE}
    rows = []
    for task in test:
        chosen = {policy: next(cid for region, cid in by.items() if in_region(task.data.n_rows, region))
                  for policy, by in picks.items()}
        for policy, cid in {**chosen, **defaults}.items():
            rows.append({"task": task.data.name, "kind": kind, "rows": task.data.n_rows, "budget": ZERO_SHOT,
                         "policy": policy, "normalised": float(score_matrix([task], [cid])[0, 0]), "trials": 1})
    return rows


def summarise_zero_shot(results: pd.DataFrame) -> pd.DataFrame:
    """Per zero-shot policy: mean normalised score, and the tasks it beats / loses to the better of the defaults
    beside it (on each task)."""
    wide = results[results["budget"] == ZERO_SHOT].pivot_table(index="task", columns="policy", values="normalised")
    better_default = wide[[f"{name}_default" for name in DEFAULTS_BESIDE]].max(axis=1)
    return pd.DataFrame([{"policy": policy, "mean": wide[policy].mean(),
                          "won vs better default": int((wide[policy] > better_default + 1e-9).sum()),
                          "lost": int((wide[policy] < better_default - 1e-9).sum()), "tasks": len(wide)}
                         for policy in wide.columns])


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Per budget and policy: mean normalised score, and the share of tasks it beats / loses to the cold start."""
    searched = results[results["budget"] != ZERO_SHOT]
    wide = searched.pivot_table(index=["task", "budget"], columns="policy", values="normalised")
    lines = []
    for budget, part in wide.groupby(level="budget", sort=False):
        for policy in part.columns:
            diff = part[policy] - part["cold"]
            lines.append({"budget": budget, "policy": policy, "mean": part[policy].mean(),
                          "vs cold": diff.mean(), "better": (diff > 1e-9).mean(), "worse": (diff < -1e-9).mean(),
                          "tasks": len(part)})
    return pd.DataFrame(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", required=True, type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1, help="groups of tasks replayed at once (one per core)")
    parser.add_argument("--exclude", nargs="*", default=PEERS,
                        help="tasks left out (default: the peer benchmark's, which the shipped portfolios never see)")
    parser.add_argument("--budgets", nargs="+", default=["3", "10", "30", "60", "300", "none"])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    budgets = [None if b == "none" else float(b) for b in args.budgets]
    assert set(budgets) <= set(BUDGETS), f"budgets must be among {BUDGETS}"
    started = time.monotonic()
    results = evaluate(PredictionRepository(args.repository), args.folds, budgets, args.jobs, args.exclude)
    table = summarise(results)
    args.out.mkdir(parents=True, exist_ok=True)
    results.to_csv(args.out / "per_task.csv", index=False)
    order = {b: i for i, b in enumerate(args.budgets)}
    table = table.sort_values(["budget", "policy"], key=lambda s: s.map(order) if s.name == "budget" else s)
    (args.out / "table.md").write_text(table.to_markdown(index=False, floatfmt=".3f") + "\n")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    zero_shot = summarise_zero_shot(results)
    (args.out / "zero_shot.md").write_text(zero_shot.to_markdown(index=False, floatfmt=".3f") + "\n")
    print(zero_shot.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{time.monotonic() - started:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()
