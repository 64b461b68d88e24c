"""Learning across a series of tasks: does the engine get better as it sees more of them?

    python -m benchmarks.series [--budget 10]     # writes benchmarks/results/series/

Runs ``fit`` on a fixed sequence of 20 corpus datasets, one after the other,
starting from an empty knowledge base (the shipped knowledge switched off).
With write-back on, each search's trials and meta-features are added to the
base and warm-start the next task; with write-back off, every task starts
from the same empty base (a cold start). The base is found as on a fresh
machine: no ``AUTOML_KB``, the default file in a cache directory that does not
exist yet, here ``runs/<arm>/cache/automl/kb.sqlite``. Each (arm, dataset) is
scored on its test split by ../shared/BENCHMARK.md's protocol, normalised
between the constant predictor (0) and the better of the two arms (1). The plot
shows the per-task score against position in the sequence, and each arm's
running mean.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.datasets import SERIES
from benchmarks.peers import DEFAULT_DATA
from benchmarks.protocol import add_scores
from benchmarks.runner import Job, Knowledge, run_all

OUT = Path(__file__).resolve().parent / "results" / "series"
ARMS = {"write-back on": "ours_learning", "write-back off": "ours"}


def run(data: Path, budget: float, seed: int, out: Path) -> pd.DataFrame:
    """Both arms over the sequence, each in its own directory (which holds its growing knowledge base)."""
    frames = []
    for arm, system in ARMS.items():
        jobs = [Job(system, name, seed, budget, str(data)) for name in SERIES]
        work = out / "runs" / arm.replace(" ", "_")
        knowledge = Knowledge(shipped="none", default_path=True)  # write-back takes a new user's path
        raw = run_all(jobs, work / "raw.csv", parallel=1, knowledge=knowledge)  # strictly in order
        raw = raw[raw["dataset"].isin(SERIES) & (raw["budget"] == budget) & (raw["seed"] == seed)]
        frames.append(raw.assign(system=arm))
    scored = add_scores(pd.concat(frames, ignore_index=True))
    scored["position"] = scored["dataset"].map({name: i + 1 for i, name in enumerate(SERIES)})
    return scored.sort_values(["system", "position"])


def write(scored: pd.DataFrame, out: Path, budget: float) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    columns = ["position", "dataset", "task", "system", "status", "value", "normalized", "n_trials", "wall_seconds",
               "error"]
    scored[columns].to_csv(out / "results.csv", index=False)
    wide = scored.pivot_table(index=["position", "dataset"], columns="system", values="normalized").reset_index()
    halves = {
        "first 10 tasks": wide[wide["position"] <= 10],
        "last 10 tasks": wide[wide["position"] > 10],
        "all 20 tasks": wide,
    }
    lines = [
        "# Learning across a series of tasks", "",
        f"`fit` with a {budget:g} s budget on {len(wide)} corpus datasets in a fixed order, from an empty knowledge "
        "base. Write-back on: each search is remembered and warm-starts the next. Write-back off: every task starts "
        "cold. Normalised test score: 0 = constant predictor, 1 = the better arm.", "",
        "| tasks | " + " | ".join(ARMS) + " | difference |", "|---|---|---|---|",
    ]
    for label, part in halves.items():
        on, off = part[list(ARMS)[0]].mean(), part[list(ARMS)[1]].mean()
        lines.append(f"| {label} | {on:.3f} | {off:.3f} | {on - off:+.3f} |")
    lines += ["", "| # | dataset | " + " | ".join(ARMS) + " |", "|---|---|---|---|"]
    for _, row in wide.iterrows():
        lines.append(f"| {row['position']} | {row['dataset']} | " + " | ".join(f"{row[a]:.3f}" for a in ARMS) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    _plot(wide, out / "series.png", budget)
    print("\n".join(lines))
    return wide


def _plot(wide: pd.DataFrame, path: Path, budget: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    for (arm, color) in zip(ARMS, ("tab:blue", "tab:gray")):
        values = wide[arm].to_numpy()
        axis.plot(wide["position"], values, "o", color=color, alpha=0.6, label=f"{arm}: per task")
        running = np.cumsum(values) / np.arange(1, len(values) + 1)
        axis.plot(wide["position"], running, "-", color=color, label=f"{arm}: running mean")
    axis.set_xlabel("position in the sequence")
    axis.set_ylabel("normalised test score")
    axis.set_xticks(list(wide["position"]))
    axis.set_title(f"Learning across tasks ({budget:g} s per task, from an empty knowledge base)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    write(run(args.data, args.budget, args.seed, args.out), args.out, args.budget)


if __name__ == "__main__":
    main()
