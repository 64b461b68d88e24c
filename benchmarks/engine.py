"""Issue 2's benchmark: the engine (meta-knowledge off) against simple baselines.

    python -m benchmarks.engine            # writes benchmarks/results/engine/

20 corpus datasets (benchmarks.datasets.ENGINE), budgets 10 s and 30 s, seed 0,
single-threaded: ours_cold against hgb_default, rf_default, optuna_tpe and const.
Target: at 30 s ours_cold's mean normalised score is at least hgb_default's and
optuna_tpe's, and no run of ours_cold overruns its budget by more than 10 %.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks import peers

OUT = Path(__file__).resolve().parent / "results" / "engine"
SYSTEMS = ["ours_cold", "hgb_default", "rf_default", "optuna_tpe", "const"]


def main(argv: list[str] | None = None) -> None:
    args = ["--names", "engine", "--systems", *SYSTEMS, "--budgets", "10", "30", "--out", str(OUT),
            "--title", "Engine (meta-knowledge off) vs baselines", *(argv or [])]
    table = peers.main(args)
    at30 = table[table["budget"] == 30].set_index("system")
    ours = at30.loc["ours_cold"]
    print(f"\nat 30 s: ours_cold {ours.norm_all:.3f}, hgb_default {at30.loc['hgb_default', 'norm_all']:.3f}, "
          f"optuna_tpe {at30.loc['optuna_tpe', 'norm_all']:.3f}; ours_cold largest overrun "
          f"{table[table['system'] == 'ours_cold']['max_overrun_pct'].max():.1f} %")


if __name__ == "__main__":
    main(sys.argv[1:])
