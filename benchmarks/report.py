"""Turning raw benchmark rows into the CSV, Markdown summary and plot of BENCHMARK.md."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.protocol import add_scores, greater_is_better
from benchmarks.systems import SYSTEMS, autogluon_version

PACKAGES = ("automl-engine", "numpy", "pandas", "scikit-learn", "optuna", "lightgbm", "flaml", "xgboost", "ray",
            "torch")


def versions() -> dict[str, str]:
    """Python's and the packages' versions; AutoGluon's is read from its own venv (the ``autogluon`` system), if
    set up."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    autogluon = autogluon_version()
    if autogluon:
        found["autogluon"] = autogluon
    return found


def system_table(scored: pd.DataFrame, budget_free: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Per (budget, system): mean normalised score by task kind and overall, mean rank, failures, times.

    Systems in ``budget_free`` take no budget, so their overrun is left blank.
    """
    rows = []
    for (budget, system), group in scored.groupby(["budget", "system"], sort=True):
        kind = np.where(group["task"] == "regression", "regression", "classification")
        timed = group["status"].isin(["ok", "overrun"]) & (system not in budget_free)
        over = (group["wall_seconds"] / group["budget"] - 1).clip(lower=0).where(timed)
        rows.append(
            {
                "budget": budget,
                "system": system,
                "norm_classification": group.loc[kind == "classification", "normalized"].mean(),
                "norm_regression": group.loc[kind == "regression", "normalized"].mean(),
                "norm_all": group["normalized"].mean(),
                "mean_rank": group["rank"].mean(),
                "failures": int(group["failed"].sum()),
                "median_wall_s": group["wall_seconds"].median(),
                "max_overrun_pct": 100 * over.max() if over.notna().any() else np.nan,
                "median_trials": group["n_trials"].median(),
                "datasets": int(len(group)),
            }
        )
    return pd.DataFrame(rows)


def paired_table(scored: pd.DataFrame, first: str = "ours", second: str = "ours_cold") -> pd.DataFrame:
    """``first`` against ``second`` on the same (dataset, seed): at each budget, and at each budget against larger ones.

    Normalised scores share one scale across budgets (1 = the best result on
    the dataset and seed at any budget), so a smaller budget of ``first`` can
    be set against a larger one of ``second``: does a warm start at 10 s do
    what a cold one does at 30 s, does the engine at 10 s match AutoGluon at
    30 s? Wins and losses count pairs; datasets won and lost compare the mean
    over seeds of each dataset.
    """
    wide = scored.pivot_table(index=["dataset", "seed"], columns=["system", "budget"], values="normalized")
    budgets = sorted(scored["budget"].unique())
    rows = []
    for first_budget in budgets:
        for second_budget in (b for b in budgets if b >= first_budget):
            if (first, first_budget) not in wide or (second, second_budget) not in wide:
                continue
            pair = wide[[(first, first_budget), (second, second_budget)]].dropna()
            difference = pair[(first, first_budget)] - pair[(second, second_budget)]
            by_seed = difference.groupby(level="seed").mean()
            by_dataset = difference.groupby(level="dataset").mean()
            rows.append({
                first: f"{first_budget:g} s", second: f"{second_budget:g} s", "pairs": len(pair),
                f"mean {first}": pair[(first, first_budget)].mean(),
                f"mean {second}": pair[(second, second_budget)].mean(),
                "mean difference": difference.mean(), "wins": int((difference > 1e-9).sum()),
                "losses": int((difference < -1e-9).sum()), "ties": int((difference.abs() <= 1e-9).sum()),
                "datasets won / lost": f"{int((by_dataset > 1e-9).sum())} / {int((by_dataset < -1e-9).sum())} "
                                       f"of {len(by_dataset)}",
                "difference by seed": ", ".join(f"{seed}: {value:+.3f}" for seed, value in by_seed.items()),
            })
    return pd.DataFrame(rows)


def field_table(scored: pd.DataFrame, budget_free: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Every (system, budget) ranked in one field per (dataset, seed), so ranks compare across budgets.

    A system without a budget enters the field once. Failures and overruns
    take the worst rank, as in the per-budget tables.
    """
    entries = scored[~scored["system"].isin(budget_free) | (scored["budget"] == scored["budget"].min())].copy()
    entries["entry"] = [s if s in budget_free else f"{s} {b:g} s" for s, b in zip(entries["system"], entries["budget"])]
    ranks = []
    for _, group in entries.groupby(["dataset", "seed"]):
        value = group["normalized"].where(~group["failed"], -np.inf)
        ranks.append(value.rank(ascending=False, method="average"))
    entries["field_rank"] = pd.concat(ranks)
    table = entries.groupby("entry").agg(norm_all=("normalized", "mean"), field_rank=("field_rank", "mean"),
                                         failures=("failed", "sum"), pairs=("normalized", "size"))
    return table.sort_values("field_rank").reset_index()


def overrun_table(scored: pd.DataFrame) -> pd.DataFrame:
    """Per (budget, system) that ran late: how often, by how much, and what its late results would have scored.

    BENCHMARK.md scores a run more than 10 % over its budget as 0. To show what
    that rule costs each system, a late run is also scored as if it had ended
    in time, on the same scale as everyone else's (1 = the best in-time result;
    a late run can pass 1).
    """
    sign = np.where(scored["task"].map(greater_is_better), 1.0, -1.0)
    signed = sign * scored["value"].astype(float)
    signed_const = sign * scored["const_value"].astype(float)
    in_time = signed.where(~scored["failed"])
    best = in_time.groupby([scored["dataset"], scored["seed"]]).transform("max")
    kept = ((signed - signed_const) / (best - signed_const).where((best - signed_const).abs() > 1e-12)).fillna(0.0)
    kept = kept.where(scored["status"] == "overrun", scored["normalized"])
    frame = scored.assign(kept=kept, late=scored["status"] == "overrun")
    rows = []
    for (budget, system), group in frame.groupby(["budget", "system"], sort=True):
        if not group["late"].any():
            continue
        rows.append({"budget": budget, "system": system, "late runs": int(group["late"].sum()), "runs": len(group),
                     "median wall of late runs (s)": group.loc[group["late"], "wall_seconds"].median(),
                     "longest (s)": group["wall_seconds"].max(), "norm_all as scored": group["normalized"].mean(),
                     "norm_all with late results kept": group["kept"].mean()})
    return pd.DataFrame(rows)


def _per_dataset(scored: pd.DataFrame) -> pd.DataFrame:
    """One line per dataset; per system its mean normalised score at each budget, joined in one cell."""
    wide = scored.pivot_table(index=["dataset", "task"], columns=["system", "budget"], values="normalized")
    budgets = sorted(scored["budget"].unique())
    cells = {
        system: [" / ".join("" if np.isnan(row.get((system, b), np.nan)) else f"{row[(system, b)]:.3f}"
                            for b in budgets)
                 for _, row in wide.iterrows()]
        for system in sorted(scored["system"].unique())
    }
    return pd.concat([wide.index.to_frame(index=False), pd.DataFrame(cells)], axis=1)


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def write_report(raw: pd.DataFrame, out: Path, title: str) -> pd.DataFrame:
    """Write ``results.csv``, ``summary.md`` and ``score_vs_budget.png`` into ``out``; return the per-system table."""
    out.mkdir(parents=True, exist_ok=True)
    unavailable = raw[raw["status"] == "not_available"]
    budget_free = frozenset(name for name, system in SYSTEMS.items() if not system.uses_budget)
    scored = add_scores(raw[raw["status"] != "not_available"].copy(), budget_free)
    scored.to_csv(out / "results.csv", index=False)
    table = system_table(scored, budget_free)
    parts = [
        f"# {title}", "",
        f"Protocol: ../shared/BENCHMARK.md. Versions: {versions()}.", "",
        "Columns: mean normalised score (0 = constant predictor, 1 = best result of the run) by task kind and "
        "overall; mean rank (1 = best); failures (errors, hard-limit kills, or more than 10 % over budget; "
        f"systems without a budget — {', '.join(sorted(budget_free))} — cannot overrun); median wall seconds; "
        "largest overrun in % of the budget (blank for systems without a budget); median number of trials. "
        "As in BENCHMARK.md, normalised scores are not clipped: a test result worse than the constant "
        "predictor's scores below 0 on its dataset and pulls the system's mean down accordingly.", "",
    ]
    for budget, group in table.groupby("budget"):
        parts += [f"## Budget {budget:g} s", "",
                  _markdown(group.drop(columns=["budget"]).sort_values("norm_all", ascending=False)), ""]
    field = field_table(scored, budget_free)
    parts += ["## One field across budgets", "",
              f"Every (system, budget) ranked together on each dataset and seed ({len(field)} entries; systems "
              "without a budget enter once), so a rank at 10 s compares with one at 30 s.", "", _markdown(field), ""]
    for first, second in (("ours", "ours_cold"), ("ours", "autogluon")):
        paired = paired_table(scored, first, second)
        if len(paired):
            parts += [f"## {first} against {second}, pair by pair", "",
                      "Same dataset and seed; normalised on one scale across budgets; wins, losses and ties count "
                      "pairs; datasets won and lost compare each dataset's mean over seeds.", "", _markdown(paired), ""]
    late = overrun_table(scored)
    if len(late):
        parts += ["## Runs over budget", "",
                  "A run more than 10 % over its budget scores 0 above; here the late results are also scored as if "
                  "they had ended in time (1 = the best in-time result on the dataset and seed), to show what the rule "
                  "costs.", "",
                  _markdown(late), ""]
    parts += ["## Normalised score per dataset", "",
              f"Budgets {' / '.join(f'{b:g} s' for b in sorted(scored['budget'].unique()))} in each cell; "
              "the mean over seeds.", "",
              _markdown(_per_dataset(scored)), ""]
    failures = scored[scored["failed"]]
    if len(failures):
        parts += ["## Failures", "",
                  _markdown(failures[["system", "dataset", "budget", "status", "wall_seconds", "error"]]), ""]
    if len(unavailable):
        reasons = unavailable.drop_duplicates("system")[["system", "error"]]
        parts += ["## Not available", "", _markdown(reasons), ""]
    (out / "summary.md").write_text("\n".join(parts))
    _plot(table, late, out / "score_vs_budget.png", title)
    return table


def _plot(table: pd.DataFrame, late: pd.DataFrame, path: Path, title: str) -> None:
    """Mean normalised score against budget per system; dashed, what a late system would score if it ended in time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for system, group in table.groupby("system"):
        group = group.sort_values("budget")
        line, = axis.plot(group["budget"], group["norm_all"], marker="o", label=system)
        kept = late[late["system"] == system] if len(late) else late
        if len(kept):
            merged = group.set_index("budget")["norm_all"].copy()
            merged.update(kept.set_index("budget")["norm_all with late results kept"])
            axis.plot(merged.index, merged.values, linestyle="--", marker="x", color=line.get_color(),
                      label=f"{system}, late runs scored as if in time")
    axis.set_xscale("log")
    budgets = sorted(table["budget"].unique())
    axis.set_xticks(budgets, [f"{b:g}" for b in budgets])
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_xlabel("time budget per dataset (s)")
    axis.set_ylabel("mean normalised score")
    axis.set_title(title, fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
