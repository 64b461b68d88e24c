"""Does replay tell the truth? Replayed and real searches of the same policies and budgets, side by side.

On ``--names`` corpus tasks (by default 20 of the validation list, none of the
peer benchmark's), portfolios are learned from the prediction repository
without them (``portfolios.json`` here); then each task is searched for real
(the peer harness: ``ours`` with those portfolios, and ``ours_cold``, at 3
and 10 s) and replayed with the same two policies and budgets. Both sides are
normalised as the protocol normalises (per task, 0 = the constant predictor,
1 = the best of its four runs). Reported: the rank correlation of replayed and
real scores over all runs; that of the portfolio's gain over the cold start,
per task and budget; how often the two agree on which policy won; the trials
run on each side (what calibrates ``EngineCosts``).

    python -m benchmarks.replay_check --repository ../predictions
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from automl.knowledge.portfolio import TABLE_ENV, PortfolioTable
from automl.knowledge.portfolio_build import cold_order, followed_by_cold, learn_table
from automl.knowledge.replay import ReplayTask, replay
from automl.knowledge.repository import PredictionRepository
from benchmarks import peers
from benchmarks.datasets import VALIDATION

OUT = Path(__file__).resolve().parent / "results" / "replay_check"
TRAIN_SHARE = 0.75  # the protocol's outer split: a real search sees three quarters of the rows
BUDGETS = (3.0, 10.0)
POLICIES = {"ours": "budget", "ours_cold": "cold"}


def replayed(repository: PredictionRepository, table_path: Path, names: Sequence[str]) -> pd.DataFrame:
    """The replay side: each task, policy and budget, with the protocol's normalisation among its four runs."""
    table = PortfolioTable.read(table_path)
    rows = []
    held = set(repository.names())
    for name in names:
        if name not in held:
            print(f"{name}: not in the prediction repository, compared on the real side only")
            continue
        data = repository.load(name)
        data = replace(data, n_rows=int(data.n_rows * TRAIN_SHARE))
        task = ReplayTask(data, repository.configs(data.kind))
        for budget in BUDGETS:
            portfolio = table.lookup(data.kind, budget)
            learned = [c.key() for c in portfolio.configs] if portfolio is not None else []
            orders = {"budget": followed_by_cold(learned, data.kind, budget), "cold": cold_order(data.kind, budget)}
            for system, policy in POLICIES.items():
                result = replay(task, orders[policy], budget)
                rows.append({"dataset": name, "budget": budget, "system": system, "score": result.score,
                             "constant": task.constant_score, "lower_better": task.metric.direction == "minimize",
                             "trials": len(result.finished)})
    frame = pd.DataFrame(rows)
    return frame.assign(normalised=_normalised(frame))


def _normalised(frame: pd.DataFrame) -> pd.Series:
    """Per dataset: 0 = the constant predictor, 1 = the best of its runs (lower-is-better metrics flipped)."""
    sign = np.where(frame["lower_better"], -1.0, 1.0)
    signed, constant = frame["score"] * sign, frame["constant"] * sign
    best = signed.groupby(frame["dataset"]).transform("max")
    return ((signed - constant) / (best - constant).replace(0, np.nan)).clip(lower=0).fillna(0)


def compare(real: pd.DataFrame, replay_side: pd.DataFrame) -> dict[str, float]:
    keys = ["dataset", "budget", "system"]
    both = real[keys + ["normalized", "n_trials"]].merge(replay_side[keys + ["normalised", "trials"]], on=keys)
    wide = both.pivot_table(index=["dataset", "budget"], columns="system", values=["normalized", "normalised"])
    real_gain = wide["normalized"]["ours"] - wide["normalized"]["ours_cold"]
    replay_gain = wide["normalised"]["ours"] - wide["normalised"]["ours_cold"]
    decided = (real_gain.abs() > 1e-9) & (replay_gain.abs() > 1e-9)
    return {
        "runs": len(both),
        "spearman_scores": float(spearmanr(both["normalized"], both["normalised"]).statistic),
        "spearman_gains": float(spearmanr(real_gain, replay_gain).statistic),
        "same_winner": float((np.sign(real_gain[decided]) == np.sign(replay_gain[decided])).mean()),
        "pairs_decided_both": int(decided.sum()),
        "real_gain_mean": float(real_gain.mean()),
        "replay_gain_mean": float(replay_gain.mean()),
        "real_trials_median": float(both["n_trials"].median()),
        "replay_trials_median": float(both["trials"].median()),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", required=True, type=Path)
    parser.add_argument("--names", nargs="+", default=VALIDATION[:20])
    parser.add_argument("--data", type=Path, default=peers.DEFAULT_DATA)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    repository = PredictionRepository(args.repository)
    args.out.mkdir(parents=True, exist_ok=True)
    table_path = args.out / "portfolios.json"
    learn_table(repository, exclude=args.names, budgets=(3.0, 10.0)).write(table_path)
    os.environ[TABLE_ENV] = str(table_path.resolve())  # the harness's children inherit it
    peers.main(["--data", str(args.data), "--names", *args.names, "--systems", *POLICIES, "--budgets",
                *map(str, BUDGETS), "--jobs", str(args.jobs), "--out", str(args.out / "real"), "--quiet",
                "--title", "Replay check: the real searches"])
    real = pd.read_csv(args.out / "real" / "results.csv")
    replay_side = replayed(repository, table_path, args.names)
    replay_side.to_csv(args.out / "replayed.csv", index=False)
    figures = compare(real, replay_side)
    lines = [f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |"
             for key, value in figures.items()]
    (args.out / "summary.md").write_text("| figure | value |\n|---|---|\n" + "\n".join(lines) + "\n")
    for key, value in figures.items():
        print(f"{key}: {value}")
    return figures


if __name__ == "__main__":
    main()
