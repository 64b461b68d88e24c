"""What each learner adds to the candidate set, read from the knowledge base's histories.

    python -m benchmarks.learner_value                      # the shipped knowledge
    python -m benchmarks.learner_value --kb EXPORT_DIR      # an export (automl kb export) or SQLite base

For every task kind and installed learner: the share of tasks on which one of the learner's
configurations is the best of all candidates, how much the best normalised score
drops on average when the learner is left out (normalised among all candidates:
1 = the task's best, 0 = its median), and the median seconds of its runs (3-fold
cross-validation on at most 3,000 rows, one core). A learner that never wins and
whose absence costs nothing is not worth its search time; one that costs a lot
when absent belongs in the default space, if it fits the budgets.

This reads only the histories (every candidate run on every task), so it is an
oracle view: what a search that tried every candidate would gain, not what a
search of a few seconds gains. ``benchmarks.peers`` with ``ours_boosters``
measures the latter.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from metaknowledge.histories import Histories
from metaknowledge.shipped import shipped_knowledge
from metaknowledge.snapshot import Knowledge
from metaknowledge.store import KnowledgeBase, read_export
from metaknowledge.warmstart import starter_learners


def read_knowledge(source: str | None) -> Knowledge:
    """The shipped knowledge, or an export directory's, or an SQLite base's."""
    if source is None:
        return shipped_knowledge()
    path = Path(source)
    return Knowledge(**read_export(path)) if path.is_dir() else KnowledgeBase(path, readonly=True).snapshot()


def learner_value(knowledge: Knowledge, kind: str) -> pd.DataFrame:
    """One row per learner: tasks won, mean loss of the best normalised score without it, median run seconds."""
    histories = Histories.from_knowledge(knowledge, kind, starter_learners())
    normalised = histories.normalised
    learner_of = pd.Series({cid: config.learner for cid, config in histories.configs.items()})
    best = normalised.max(axis=1)
    winner = learner_of.reindex(normalised.idxmax(axis=1).to_numpy()).to_numpy()
    runs = knowledge.successful_runs()
    runs = runs[runs["config_id"].isin(learner_of.index) & runs["task"].isin(normalised.index)]
    seconds = runs.groupby(runs["config_id"].map(learner_of))["fit_seconds"].median()
    rows = []
    for learner in sorted(set(learner_of)):
        others = normalised.loc[:, learner_of.reindex(normalised.columns).to_numpy() != learner]
        rows.append({
            "learner": learner,
            "configurations": int((learner_of == learner).sum()),
            "tasks_won": float((winner == learner).mean()),
            "loss_without": float((best - others.max(axis=1)).mean()),
            "median_seconds": float(seconds.get(learner, float("nan"))),
        })
    table = pd.DataFrame(rows).sort_values("loss_without", ascending=False)
    return table.assign(kind=kind, tasks=len(normalised))


def markdown(tables: Sequence[pd.DataFrame]) -> str:
    lines = []
    for table in tables:
        lines += [f"### {table['kind'].iloc[0]} ({table['tasks'].iloc[0]} tasks)", "",
                  "| learner | configurations | tasks won | mean loss without it | median seconds per run |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r.learner} | {r.configurations} | {r.tasks_won:.1%} | {r.loss_without:.3f} | "
                  f"{r.median_seconds:.2f} |"
                  for r in table.itertuples()]
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kb", help="an export directory or SQLite base (default: the shipped knowledge)")
    parser.add_argument("--out", type=Path, help="write the tables here as Markdown")
    args = parser.parse_args(argv)
    knowledge = read_knowledge(args.kb)
    text = markdown([learner_value(knowledge, kind) for kind in ("classification", "regression")])
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return text


if __name__ == "__main__":
    main()
