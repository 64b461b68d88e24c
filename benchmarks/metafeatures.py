"""Meta-feature extraction time: this project's extractor against pymfe, on one core.

    python -m benchmarks.metafeatures        # writes benchmarks/results/metafeatures.md

Synthetic data of 1k x 10, 10k x 100 and 100k x 50 (numeric features, a fifth
of them categorical, a binary target). pymfe runs the comparable groups
(general, statistical, info-theory, landmarking) with its default summaries,
in a child process with a time limit. Target: at most 1 s at 10k x 100 for ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from metaknowledge.features import extract

SIZES = [(1_000, 10), (10_000, 100), (100_000, 50)]
REPEATS = 3
PYMFE_LIMIT = 600
OUT = Path(__file__).resolve().parent / "results" / "metafeatures.md"


def synthetic(rows: int, columns: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    data = {f"n{i}": rng.normal(size=rows) * (i + 1) for i in range(columns - columns // 5)}
    categorical = [f"c{i}" for i in range(columns // 5)]
    for name in categorical:
        data[name] = pd.Categorical(rng.choice(list("abcdefg"), rows))
    X = pd.DataFrame(data)
    y = (X["n0"] + X["n1"] * 0.2 + rng.normal(size=rows) > 0).astype(int).to_numpy()
    return X, y, categorical


def time_ours(rows: int, columns: int) -> tuple[float, int]:
    X, y, categorical = synthetic(rows, columns)
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        values = extract(X, y, "binary", categorical)
        times.append(time.perf_counter() - started)
    return float(np.median(times)), len(values)


def time_pymfe(rows: int, columns: int) -> tuple[float, int]:
    from pymfe.mfe import MFE

    X, y, categorical = synthetic(rows, columns)
    codes = X.copy()
    for name in categorical:
        codes[name] = codes[name].cat.codes
    cat_cols = [list(X.columns).index(c) for c in categorical]
    started = time.perf_counter()
    mfe = MFE(groups=["general", "statistical", "info-theory", "landmarking"], random_state=0)
    mfe.fit(codes.to_numpy(dtype=float), y, cat_cols=cat_cols, suppress_warnings=True)
    names, _ = mfe.extract(suppress_warnings=True)
    return time.perf_counter() - started, len(names)


def _child(which: str, rows: int, columns: int) -> dict:
    seconds, count = (time_ours if which == "ours" else time_pymfe)(rows, columns)
    return {"seconds": seconds, "features": count}


def run(which: str, rows: int, columns: int, limit: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.metafeatures", "--child", which, str(rows), str(columns)],
            capture_output=True, text=True, timeout=limit, env=env,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": float("inf"), "features": None, "note": f"stopped after {limit:.0f} s"}
    if done.returncode != 0:
        return {"seconds": float("nan"), "features": None, "note": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = []
    for n, p in SIZES:
        ours = run("ours", n, p, PYMFE_LIMIT)
        theirs = run("pymfe", n, p, PYMFE_LIMIT)
        rows.append({"data": f"{n:,} x {p}", "ours_s": ours["seconds"], "ours_features": ours["features"],
                     "pymfe_s": theirs["seconds"], "pymfe_features": theirs["features"],
                     "note": theirs.get("note", "")})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)

    def fmt(v):
        return ">limit" if v == float("inf") else f"{v:.3f}"

    lines = [
        "# Meta-feature extraction time (one core)", "",
        "Ours: every group (simple, statistical, information-theoretic, landmarkers, PCA), median of "
        f"{REPEATS} runs. pymfe {_pymfe_version()}: groups general, statistical, info-theory, landmarking with "
        "default summaries, one run. Data: synthetic, a fifth of the features categorical, binary target.", "",
        "| data | ours (s) | ours: features | pymfe (s) | pymfe: features | note |", "|---|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        count = ("" if row.pymfe_features is None or row.pymfe_features != row.pymfe_features
                 else int(row.pymfe_features))
        lines.append(f"| {row.data} | {fmt(row.ours_s)} | {row.ours_features} | {fmt(row.pymfe_s)} | {count} | "
                     f"{row.note} |")
    target = table.loc[1, "ours_s"]
    lines += ["", f"Target: at most 1 s at 10,000 x 100 — measured {target:.3f} s "
                  f"({'met' if target <= 1 else 'missed'})."]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _pymfe_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("pymfe")
    except metadata.PackageNotFoundError:
        return "(not installed)"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        main()
