"""Models that ship: accuracy, size and serving cost of each system's final model (issue 19).

    python -m benchmarks.deploy [--names peers] [--budget 30] [--jobs 2] [--out benchmarks/results/deploy]

On each dataset (the peer benchmark's, split as it splits them, seed 0), at one
budget, these models are fitted on the training part and measured on the test part:

- ``ours``: this engine's final model (the default ensemble);
- ``ours_student``: that model distilled into one LightGBM student (``model.distill``, half the budget more);
- ``ours_mlp_pq``: where the final model holds the MLP, the same model with its MLP members refitted pruned (80 % of
  the weights, by magnitude, with a short fine-tune) and int8-quantized;
- ``ours_1ms``: a search under ``max_predict_ms=1`` (a ``ConfigError`` naming the fastest configuration found is
  recorded as such);
- ``flaml`` and ``autogluon`` (from its own virtual environment): their final models, as their users get them.

For each: the test metric and its normalized score (0: the constant predictor, 1: the best of these systems on
the dataset), the size on disk (a file saved with joblib's compression 3 for ours and FLAML; AutoGluon's predictor
folder), the latency of predicting one row (``predict_proba`` or ``predict`` on a one-row frame, 100 test rows one
after another: p50 and p99) and rows per second on one batch of 10,000 rows. Every model runs single-threaded in a
child process of its own; rows are appended to ``raw.csv`` as they finish, and a rerun skips those done.
``summary.md`` holds the table and the targets (the student keeps at least 98 % of the final model's normalized
score on average, is at least 10 times faster per row than AutoGluon's model, and smaller on disk).
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import automl
from automl.errors import ConfigError
from automl.model import encoded_truth
from benchmarks.limits import hard_limit
from benchmarks.peers import DEFAULT_DATA, _names
from benchmarks.protocol import Split, add_scores, align_proba, constant_prediction, load_split, score
from benchmarks.runner import _child_environment
from benchmarks.systems import (
    AUTOGLUON_STARTUP,
    _categorical_frame,
    _read_autogluon_output,
    _run_autogluon_child,
    _write_autogluon_job,
    autogluon_python,
)

CHILD_SYSTEMS = ("ours", "ours_1ms", "flaml", "autogluon")  # "ours" also writes the row of its distilled student
SYSTEMS = ("ours", "ours_student", "ours_mlp_pq", "ours_1ms", "flaml", "autogluon")
PRUNE_AMOUNT = 0.8  # the MLP's share of weights pruned for ours_mlp_pq (see benchmarks/results/compression)
SINGLE_ROWS = 100
BATCH_ROWS = 10_000
RAW_COLUMNS = ["system", "dataset", "task", "seed", "budget", "status", "value", "const_value", "wall_seconds",
               "p50_ms", "p99_ms", "rows_per_second", "size_mb", "note", "error"]


def serving_figures(predict, X_test: pd.DataFrame, save) -> dict:
    """Single-row latency (p50, p99 in ms) over ``SINGLE_ROWS`` test rows, rows per second on a batch, size on disk.

    ``save(path)`` writes the model to ``path`` (a file) and returns the path written.
    """
    rows = [X_test.iloc[[i % len(X_test)]] for i in range(SINGLE_ROWS + 1)]
    predict(rows[0])
    times = []
    for row in rows[1:]:
        started = time.perf_counter()
        predict(row)
        times.append(time.perf_counter() - started)
    batch = pd.concat([X_test] * (BATCH_ROWS // len(X_test) + 1), ignore_index=True).iloc[:BATCH_ROWS]
    started = time.perf_counter()
    predict(batch)
    rows_per_second = BATCH_ROWS / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as folder:
        size = Path(save(Path(folder) / "model.pkl")).stat().st_size
    return {"p50_ms": 1000 * float(np.percentile(times, 50)), "p99_ms": 1000 * float(np.percentile(times, 99)),
            "rows_per_second": rows_per_second, "size_mb": size / 2**20}


def _prediction_function(model, split: Split):
    return model.predict if split.task == "regression" else model.predict_proba


def _aligned(prediction: np.ndarray, classes: np.ndarray, split: Split) -> np.ndarray:
    return prediction if split.task == "regression" else align_proba(prediction, np.asarray(classes), split.classes)


def _row(split: Split, system: str, budget: float, prediction: np.ndarray | None, wall: float, figures: dict,
         note: str = "", error: str = "") -> dict:
    value = score(split, prediction)[0] if prediction is not None else np.nan
    const = score(split, constant_prediction(split))[0]
    return {"system": system, "dataset": split.name, "task": split.task, "seed": 0, "budget": budget,
            "status": "ok" if prediction is not None else "failed", "value": value, "const_value": const,
            "wall_seconds": wall,
            **{k: figures.get(k, np.nan) for k in ("p50_ms", "p99_ms", "rows_per_second", "size_mb")},
            "note": note, "error": error}


def _ours(split: Split, budget: float, limit: float | None) -> list[dict]:
    started = time.monotonic()
    options = dict(task=split.kind, categorical=split.categorical, metric=split.metric, time_budget=budget, seed=0,
                   verbose=0, remember=False)
    if limit is not None:
        try:
            model = automl.fit(split.X_train, split.y_train, max_predict_ms=limit, **options)
        except ConfigError as error:
            return [_row(split, "ours_1ms", budget, None, time.monotonic() - started, {}, error=str(error))]
    else:
        model = automl.fit(split.X_train, split.y_train, **options)
    wall = time.monotonic() - started
    name = "ours" if limit is None else "ours_1ms"
    members = ", ".join(f"{m.config.learner} {m.weight:.2f}" for m in model.members_)
    predict = _prediction_function(model, split)
    rows = [_row(split, name, budget,
                 _aligned(predict(split.X_test),
                          getattr(model, "classes_", []) if split.task != "regression" else [], split),
                 wall, serving_figures(predict, split.X_test, model.save), note=members)]
    if limit is None:
        compressed = _with_compressed_mlp(model)
        if compressed is not None:
            predict = _prediction_function(compressed, split)
            rows.append(_row(split, "ours_mlp_pq", budget,
                             _aligned(predict(split.X_test),
                                      getattr(model, "classes_", []) if split.task != "regression" else [], split),
                             wall, serving_figures(predict, split.X_test, compressed.save), note=members))
        started = time.monotonic()
        student = model.distill(time_budget=budget / 2)
        distill_wall = time.monotonic() - started
        predict = _prediction_function(student, split)
        classes = student.classes_ if split.task != "regression" else []
        rows.append(_row(split, "ours_student", budget, _aligned(predict(split.X_test), classes, split), distill_wall,
                         serving_figures(predict, split.X_test, student.save),
                         note=repr(student)))
    return rows


def _with_compressed_mlp(model):
    """A copy of ``model`` whose MLP members are refitted pruned and int8-quantized; None when it holds no MLP."""

    positions = [i for i, config in enumerate(model.ensemble.configs) if config.learner == "mlp"]
    if not positions:
        return None
    X, y = model.training_rows
    target = encoded_truth(model.task, y, len(X))
    compressed = copy.copy(model)
    compressed.ensemble = copy.deepcopy(model.ensemble)
    for position in positions:
        pipeline = compressed.ensemble.pipelines[position]
        step = pipeline.steps[-1][0]
        pipeline.set_params(**{f"{step}__prune_amount": PRUNE_AMOUNT, f"{step}__quantize": True}).fit(X, target)
    return compressed


def _flaml(split: Split, budget: float) -> list[dict]:
    import joblib
    from flaml import AutoML


    started = time.monotonic()
    model = AutoML()
    model.fit(_categorical_frame(split, split.X_train), split.y_train, task=split.kind, metric=split.metric,
              time_budget=budget, n_jobs=1, seed=0, verbose=0)
    wall = time.monotonic() - started
    X_test = _categorical_frame(split, split.X_test)
    predict = _prediction_function(model, split)
    classes = getattr(model, "classes_", []) if split.task != "regression" else []

    def save(path: Path) -> Path:
        joblib.dump(model, path, compress=3)
        return path

    return [_row(split, "flaml", budget, _aligned(predict(X_test), classes, split), wall,
                 serving_figures(predict, X_test, save), note=str(model.best_estimator))]


def _autogluon(split: Split, budget: float) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="automl-deploy-ag-") as folder:
        work = Path(folder)
        _write_autogluon_job(split, budget, work)
        spec = json.loads((work / "spec.json").read_text())
        (work / "spec.json").write_text(json.dumps({**spec, "deploy": True}))
        _run_autogluon_child(autogluon_python(), work, timeout=hard_limit(budget, AUTOGLUON_STARTUP) + 120)
        output = _read_autogluon_output(split, work)
        result = json.loads((work / "result.json").read_text())
    return [_row(split, "autogluon", budget, output.prediction, float(result["wall_seconds"]), result["deploy"],
                 note=str(result.get("best_model", "")))]


def child(dataset: str, system: str, budget: float, data_dir: str) -> list[dict]:
    """Fit and measure ``system`` on ``dataset`` (seed 0's split); a failure becomes a row with its error."""
    split = load_split(data_dir, dataset, 0)
    try:
        if system == "ours":
            return _ours(split, budget, None)
        if system == "ours_1ms":
            return _ours(split, budget, 1.0)
        if system == "flaml":
            return _flaml(split, budget)
        return _autogluon(split, budget)
    except Exception as error:  # a peer that fails on a dataset is recorded, as in the peer benchmark
        names = ("ours", "ours_student") if system == "ours" else (system,)
        return [_row(split, name, budget, None, np.nan, {}, error=f"{type(error).__name__}: {error}") for name in names]


def _run_child(dataset: str, system: str, budget: float, data_dir: str, work: Path) -> list[dict]:
    command = [sys.executable, "-m", "benchmarks.deploy", "--child", dataset, system, str(budget), data_dir]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=6 * budget + 300,
                              env=_child_environment(work))
    except subprocess.TimeoutExpired:
        return [{"system": system, "dataset": dataset, "status": "timeout", "budget": budget, "error": "killed"}]
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return [{"system": system, "dataset": dataset, "status": "failed", "budget": budget, "error": tail[0]}]
    return json.loads(lines[-1])


def run(names: list[str], budget: float, data_dir: str, out: Path, jobs: int,
        systems: tuple[str, ...] = CHILD_SYSTEMS) -> pd.DataFrame:
    """Every (dataset, system) of ``systems`` not yet in ``out/raw.csv``, appended as each finishes."""
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "raw.csv"
    done = pd.read_csv(raw) if raw.exists() else pd.DataFrame(columns=RAW_COLUMNS)
    finished = set(zip(done["dataset"], done["system"]))
    todo = [(d, s) for d in names for s in systems if (d, s) not in finished]
    work = Path(tempfile.mkdtemp(prefix="automl-deploy-"))
    with ThreadPoolExecutor(jobs) as pool, tqdm(total=len(todo), desc="deploy") as bar:
        for rows in pool.map(lambda job: _run_child(job[0], job[1], budget, data_dir, work), todo):
            frame = pd.DataFrame(rows).reindex(columns=RAW_COLUMNS)
            frame.to_csv(raw, mode="a", header=not raw.exists(), index=False)
            bar.update()
    return pd.read_csv(raw)


def summarize(raw: pd.DataFrame) -> str:
    """The summary table and the targets, as markdown."""

    task = raw.groupby("dataset")["task"].transform("first")  # rows of killed runs do not record it
    frame = add_scores(raw.assign(seed=0, task=task), budget_free=frozenset({"ours_student"}))
    lines = ["| system | datasets | mean normalized score | p50 ms (median) | p99 ms (median) | rows/s (median) | "
             "size MB (median) |", "|---|---|---|---|---|---|---|"]
    for system in SYSTEMS:
        part = frame[frame["system"] == system]
        ok = part[part["status"] == "ok"]
        if part.empty:
            continue
        lines.append(f"| {system} | {len(ok)}/{len(part)} ok | {part['normalized'].mean():.3f} | "
                     f"{ok['p50_ms'].median():.3g} | {ok['p99_ms'].median():.3g} | "
                     f"{ok['rows_per_second'].median():,.0f} | "
                     f"{ok['size_mb'].median():.3g} |")
    wide = frame.pivot_table(index="dataset", columns="system", values=["normalized", "p50_ms", "size_mb"])
    findings = []
    if {"ours", "ours_student"} <= set(frame["system"]):
        kept = wide["normalized"]["ours_student"].mean() / wide["normalized"]["ours"].mean()
        findings.append(f"- The student keeps {100 * kept:.1f} % of the final model's mean normalized score "
                        f"(target: at least 98 %).")
    if {"ours_student", "autogluon"} <= set(frame["system"]):
        both = wide["p50_ms"][["ours_student", "autogluon"]].dropna()
        speedup = np.exp(np.mean(np.log(both["autogluon"] / both["ours_student"])))
        sizes = wide["size_mb"][["ours_student", "autogluon"]].dropna()
        smaller = int((sizes["ours_student"] < sizes["autogluon"]).sum())
        findings.append(f"- Per row (p50), the student is {speedup:.1f} times faster than AutoGluon's model (geometric "
                        f"mean over {len(both)} datasets; slowest ratio "
                        f"{np.min(both['autogluon'] / both['ours_student']):.1f}x; "
                        f"target: at least 10x) and smaller on disk on {smaller} of {len(sizes)} datasets.")
    ours = frame[frame["system"] == "ours"]
    with_mlp = int(ours["note"].fillna("").str.contains(r"\bmlp\b").sum())
    findings.append(f"- The MLP was a member of the final model on {with_mlp} of {len(ours)} datasets "
                    "(ours_mlp_pq rows: those models with it pruned and quantized); benchmarks/results/compression "
                    "measures the MLP alone.")
    failed = frame[(frame["system"] == "ours_1ms") & (frame["status"] != "ok")]
    if len(failed):
        findings.append("- Under max_predict_ms=1 the search found no model within the limit on "
                        f"{len(failed)} datasets "
                        "(its error names the fastest configuration found: see raw.csv).")
    per_dataset = frame.pivot_table(index="dataset", columns="system", values="normalized").round(3)
    latency = frame.pivot_table(index="dataset", columns="system", values="p50_ms").round(3)
    return "\n".join([*lines, "", *findings, "", "Normalized score per dataset:", "", per_dataset.to_markdown(), "",
                      "Single-row latency p50 (ms) per dataset:", "", latency.to_markdown(), ""])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs=4, metavar=("DATASET", "SYSTEM", "BUDGET", "DATA_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--names", nargs="+", default=["peers"], help="datasets, or a list name (default peers)")
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="a directory in the PMLB layout")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--systems", nargs="+", default=list(CHILD_SYSTEMS), choices=CHILD_SYSTEMS,
                        help="which to fit (ours also distills its student); the summary covers all in raw.csv")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "deploy"))
    args = parser.parse_args(argv)
    if args.child:
        dataset, system, budget, data_dir = args.child
        print(json.dumps(child(dataset, system, float(budget), data_dir), default=float))
        return

    names = _names(Path(args.data), args.names)
    raw = run(names, args.budget, args.data, Path(args.out), args.jobs, tuple(args.systems))
    summary = summarize(raw)
    (Path(args.out) / "summary.md").write_text(f"# Models that ship, at {args.budget:g} s\n\n{summary}")
    print(summary)


if __name__ == "__main__":
    main()
