"""The loop closes: portfolios refitted from the shipped ones and the user's own searches.

The shipped portfolios were learned on the corpus. A user whose data is of
another kind (every search of theirs writes its trials back) should see the
configurations that won on their data move up. The refit works from what the
user's base holds, trial scores and seconds (no predictions): for each task
kind and region of rows with at least ``MIN_USER_TASKS`` of the user's tasks, and each budget,
candidates are the shipped portfolio's members and the configurations that
ran on the user's tasks; the new order is chosen greedily, as the shipped
ones were, by how much each candidate raises the best normalised score so far
over the user's tasks, where a shipped member not yet run on a task counts
what the corpus expects of it (``SHIPPED_PRIOR``) and ties keep the shipped
order. A candidate that timed out or took more than half the budget on the
user's data is left out at that budget.

The refitted table is written to the cache folder whenever the warm start's
knowledge is prepared afresh (``automl kb refresh``, or a fit of 30 s or more
once the user's base has grown: :func:`automl.knowledge.prepared.prepared_knowledge`),
and read by every fit in a millisecond (:func:`current_table`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from automl.knowledge.portfolio import MAX_MEMBERS, Portfolio, PortfolioTable, explicit_table, shipped_table
from metaknowledge.histories import KINDS, OWN_BEST, normalise_long, shared_configs
from metaknowledge.shipped import cache_dir
from metaknowledge.snapshot import Knowledge
from searchspaces import Config

log = logging.getLogger(__name__)

USER_SOURCE = "user"  # as automl.knowledge.writeback names the user's tasks
MIN_USER_TASKS = 3  # fewer tasks of a kind of one's own leave that kind's portfolios as shipped
SHIPPED_PRIOR = 0.5  # the normalised score a shipped member is expected to reach on a task it has not run on
AFFORDABLE_SHARE = 0.5  # a candidate that took more than this share of a budget on the user's data is left out there


@dataclass(frozen=True)
class RefittedTable:
    """A refitted table and when, from how many of the user's tasks, it was refitted."""

    table: PortfolioTable
    refitted_at: float  # seconds since the epoch
    user_tasks: dict[str, int]  # task kind -> the user's tasks it was refitted from

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.refitted_at))
        counts = ", ".join(f"{n} {kind}" for kind, n in self.user_tasks.items()) or "none"
        return f"refitted {when} from your tasks ({counts})"


def refit_table(knowledge: Knowledge, shipped: PortfolioTable | None = None) -> RefittedTable:
    """The ``shipped`` table (default: the engine's) refitted from the user's tasks in ``knowledge``."""
    shipped = shipped_table() if shipped is None else shipped
    scores, seconds, failed = _user_evidence(knowledge)
    configs = knowledge.configs_by_id(set().union(*(frame.columns for frame in scores.values())))
    rows_of = knowledge.tasks.set_index("name")["n_rows"]
    portfolios = []
    for portfolio in shipped.portfolios:
        kind_scores = scores.get(portfolio.kind)
        if kind_scores is not None:  # the tasks of the portfolio's region (all, where a task's size is unknown)
            rows = rows_of.reindex(kind_scores.index)
            kind_scores = kind_scores[[pd.isna(n) or portfolio.covers(int(n)) for n in rows]]
        if kind_scores is None or len(kind_scores) < MIN_USER_TASKS:
            portfolios.append(portfolio)
            continue
        portfolios.append(_refit(portfolio, kind_scores, seconds, failed, configs))
    table = PortfolioTable(tuple(portfolios), shipped.built_from)
    return RefittedTable(table, time.time(), {kind: len(frame) for kind, frame in scores.items()})


def _user_evidence(knowledge: Knowledge):
    """Per task kind, the user's normalised scores (tasks x config ids); the configurations' longest seconds and
    those that failed or timed out, over the user's tasks."""
    tasks = knowledge.tasks
    tasks = tasks[tasks["source"] == USER_SOURCE]
    runs = knowledge.runs[knowledge.runs["task"].isin(tasks["name"])]
    ok = runs[runs["status"] == "ok"].dropna(subset=["score"])
    failed = set(runs.loc[runs["status"].isin(("timeout", "failed", "crashed")), "config_id"])
    seconds = ok.groupby("config_id")["fit_seconds"].max()
    scores: dict[str, pd.DataFrame] = {}
    metric_of = tasks.set_index("name")["metric"]
    kind_of = tasks.set_index("name")["task_type"].map(KINDS)
    for kind in ("classification", "regression"):
        mine = ok[ok["task"].map(kind_of) == kind]
        if mine.empty:
            continue
        mean = mine.groupby(["task", "config_id"])["score"].mean()
        runs_of = mean.groupby(level="task").transform("size")
        mean = mean[runs_of.to_numpy() >= 2]  # one run says nothing of how configurations compare
        if len(mean):
            scores[kind] = _kept_columns(normalise_long(mean, metric_of)).unstack()
    return scores, seconds, failed


def _kept_columns(normalised: pd.Series) -> pd.Series:
    """Of normalised scores in long form, those of configurations several tasks ran and each task's ``OWN_BEST``:
    a search's other samples could never lead a portfolio, and as columns they would make the matrix tasks x
    every configuration ever tried (a team's base: thousands by hundreds of thousands)."""
    shared = shared_configs(normalised.index.get_level_values("config_id"),
                            normalised.index.get_level_values("task").nunique())
    best = normalised.groupby(level="task").rank(ascending=False, method="first").to_numpy() <= OWN_BEST
    return normalised[shared | best]


def _refit(portfolio: Portfolio, scores: pd.DataFrame, seconds: pd.Series, failed: set[str],
           configs: dict[str, Config]) -> Portfolio:
    """``portfolio`` reordered greedily by the user's ``scores``; ``configs``: the configurations of their columns."""
    members = [c.key() for c in portfolio.configs]
    learners = {c.learner for c in portfolio.configs}
    limit = float("inf") if portfolio.budget is None else AFFORDABLE_SHARE * portfolio.budget
    candidates = [cid for cid in dict.fromkeys(members + list(scores.columns))
                  if cid not in failed and seconds.get(cid, 0.0) <= limit
                  and (cid in members or (cid in configs and configs[cid].learner in learners))]
    prior = pd.Series({cid: SHIPPED_PRIOR if cid in members else 0.0 for cid in candidates})
    matrix = scores.reindex(columns=candidates).fillna(prior).to_numpy()
    shipped_rank = np.array([members.index(cid) if cid in members else len(members) for cid in candidates])
    chosen: list[int] = []
    best = np.zeros(len(matrix))
    for _ in range(min(len(candidates), max(len(members), 1), MAX_MEMBERS)):
        gains = np.maximum(matrix, best[:, None]).mean(axis=0) - best.mean()
        gains[chosen] = -np.inf
        if np.max(gains) <= 1e-9:
            break
        pick = int(np.lexsort((shipped_rank, -np.round(gains, 9)))[0])
        chosen.append(pick)
        best = np.maximum(best, matrix[:, pick])
    order = [candidates[i] for i in chosen]
    order += [cid for cid in members if cid in candidates and cid not in order]
    lookup = {c.key(): c for c in portfolio.configs} | configs
    return replace(portfolio, configs=tuple(lookup[cid] for cid in order[:MAX_MEMBERS]))


def refit_path(family: str) -> Path:
    """Where the refitted table of a knowledge family (:func:`automl.knowledge.prepared.knowledge_key`) is kept."""
    return cache_dir() / "warm" / f"portfolios-{family}.json"


def write_refitted(refitted: RefittedTable, family: str) -> None:
    """Write atomically (several processes may race); a cache that cannot be written costs only the refit."""
    path = refit_path(family)
    data = {"refitted_at": refitted.refitted_at, "user_tasks": refitted.user_tasks,
            "table": json.loads(refitted.table.to_json())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
            json.dump(data, handle)
        os.replace(handle.name, path)
    except OSError as error:
        log.debug("could not write the refitted portfolios %s: %s", path, error)


def read_refitted(family: str) -> RefittedTable | None:
    try:
        data = json.loads(refit_path(family).read_text())
        table = PortfolioTable.from_json(json.dumps(data["table"]))
        return RefittedTable(table, float(data["refitted_at"]), {k: int(v) for k, v in data["user_tasks"].items()})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def current_table(family: str) -> PortfolioTable:
    """The table a fit starts from: the latest refit for this knowledge family, else the shipped one (or the one
    ``AUTOML_PORTFOLIOS`` names, as it is)."""
    refitted = None if explicit_table() else read_refitted(family)
    return refitted.table if refitted is not None else shipped_table()
