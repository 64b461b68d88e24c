"""The peer benchmark: this engine and the tools users would pick instead, side by side.

    python -m benchmarks.peers --data ../shared/datasets/pmlb --names peers \\
        --systems ours ours_cold flaml optuna_tpe hgb_default const --budgets 10 30 --out benchmarks/results/peers

(also ``automl bench ...``). ``--names`` takes dataset names or the name of a
list in :mod:`benchmarks.datasets`. Results are resumable: rerunning the same
command skips finished jobs. See ../shared/BENCHMARK.md for the protocol.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from benchmarks.datasets import LISTS
from benchmarks.report import versions, write_report
from benchmarks.runner import Job, Knowledge, run_all
from benchmarks.systems import SYSTEMS

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "pmlb"


def _names(data: Path, names: Sequence[str] | None) -> list[str]:
    if not names:
        return sorted(p.name[: -len(".tsv.gz")] for p in data.glob("*.tsv.gz"))
    chosen: list[str] = []
    for name in names:
        chosen.extend(LISTS.get(name, [name]))
    missing = [n for n in chosen if not (data / f"{n}.tsv.gz").exists()]
    if missing:
        raise SystemExit(f"datasets not found in {data}: {missing}")
    return chosen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="automl bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a directory in the PMLB layout")
    p.add_argument("--names", nargs="+", help=f"datasets, or a list name: {sorted(LISTS)} (default: all)")
    p.add_argument("--systems", nargs="+", default=[n for n, s in SYSTEMS.items() if s.peer], choices=list(SYSTEMS))
    p.add_argument("--budgets", nargs="+", type=float, default=[10.0, 30.0])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--out", type=Path, required=True, help="output directory (raw.csv there makes the run resumable)")
    p.add_argument("--jobs", type=int, default=1,
                   help="jobs run at once (every system is single-threaded; at most one per core)")
    p.add_argument("--kb",
                   help="an export directory (automl kb export) the engine reads instead of its shipped knowledge, "
                        "or none")
    p.add_argument("--hold-out", action="store_true",
                   help="remove the benchmark's datasets from that knowledge (a held-out evaluation)")
    p.add_argument("--title", default="Peer benchmark")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = parser().parse_args(argv)
    names = _names(args.data, args.names)
    missing = {s: SYSTEMS[s].missing_packages() for s in args.systems if SYSTEMS[s].missing_packages()}
    for system, packages in missing.items():
        print(f"skipping {system}: missing packages {packages} (pip install 'automl-engine[bench]')")
    systems = [s for s in args.systems if s not in missing]
    jobs = [
        Job(system, name, seed, budget, str(args.data))
        for budget in args.budgets for seed in args.seeds for name in names for system in systems
    ]
    print(f"{len(jobs)} jobs: {len(systems)} systems x {len(names)} datasets x {len(args.seeds)} seeds x "
          f"{len(args.budgets)} budgets")
    print(f"versions: {versions()}")
    knowledge = Knowledge(args.kb, tuple(names) if args.hold_out else ())
    if knowledge.hold_out:
        print(f"held out of the engine's knowledge: the {len(names)} benchmark datasets")
    raw = run_all(jobs, args.out / "raw.csv", progress=not args.quiet, parallel=args.jobs, knowledge=knowledge)
    wanted = raw[raw["system"].isin(systems) & raw["dataset"].isin(names) & raw["budget"].isin(args.budgets)
                 & raw["seed"].isin(args.seeds)]
    table = write_report(wanted, args.out, args.title)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))
    print(f"written: {args.out / 'summary.md'}, {args.out / 'results.csv'}, {args.out / 'score_vs_budget.png'}")
    return table


if __name__ == "__main__":
    main()
