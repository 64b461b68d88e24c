"""Distributed tuning: per-trial overhead, and the speed-up of a second worker.

    python -m benchmarks.ray_overhead      # writes benchmarks/results/ray/summary.md

Part 1, overhead: a trivial learner (a prior predictor with a dummy parameter,
so every configuration is new) on tiny data. Steady-state trials per second
for the in-process Optuna backend, this project's Ray backend (batched
workers) and its plain-Tune mode, each with 1 and 2 workers, and for unmodified
Ray Tune (a user's Tuner with OptunaSearch and default settings). Overhead per
trial = seconds per trial minus the learner's own evaluation time.
Target: below 100 ms per trial on the Ray backend.

Part 2, scaling: on 5 corpus datasets, the Ray backend with 1 and with 2
workers (one per node of a two-node cluster on this machine); the wall time
each needs to first reach the score both reach.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import automl
import searchspaces
from automl.data.dataset import load_dataset
from automl.search.evaluation import Evaluator, Resampling
from automl.search.metrics import get_metric
from searchspaces import Float, Learner, SearchSpace
from tests.ray_cluster import local_cluster  # sets Ray's auth token before ray is imported

OUT = Path(__file__).resolve().parent / "results" / "ray"
OVERHEAD_SECONDS = 40
SCALING_SECONDS = 60
SCALING_DATASETS = ["spectf", "tokyo1", "mfeat_fourier", "616_fri_c4_500_50", "4544_GeographicalOriginalofMusic"]
PMLB = Path(os.environ.get("AUTOML_PMLB", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "pmlb"))


def _trivial_factory(params, context):
    from sklearn.dummy import DummyClassifier

    return DummyClassifier(strategy="prior")


TRIVIAL = Learner("trivial", frozenset({"classification"}), SearchSpace((Float("dummy", 0.0, 1.0),)), _trivial_factory)


def tiny_data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    return X, (X["a"] > 0).astype(int).to_numpy()


def evaluation_seconds() -> float:
    """What one trivial trial costs by itself (no backend)."""

    X, y = tiny_data()
    evaluator = Evaluator(load_dataset(X, y), get_metric(None, "binary"), {"trivial": TRIVIAL}, Resampling("cv", 2))
    evaluator.evaluate(searchspaces.Config("trivial", {"dummy": 0.5}))
    started = time.perf_counter()
    for i in range(50):
        evaluator.evaluate(searchspaces.Config("trivial", {"dummy": i / 50}))
    return (time.perf_counter() - started) / 50


def steady_rate(board: pd.DataFrame) -> tuple[int, float]:
    """Trials, and trials per second between the first and last finish (start-up excluded)."""
    times = np.sort(board["finished_at"].to_numpy())
    if len(times) < 3:
        return len(times), float("nan")
    return len(times), (len(times) - 1) / max(times[-1] - times[0], 1e-9)


def engine_rate(backend: str, workers: int, address: str | None) -> tuple[int, float]:
    X, y = tiny_data()
    options = {"n_jobs": workers} if backend == "optuna" else {"max_concurrent": workers, "address": address}
    model = automl.fit(X, y, learners=["trivial"], n_folds=2, time_budget=OVERHEAD_SECONDS, pruner=None,
                       backend=backend, warm_start=False, remember=False, verbose=0, **options)
    return steady_rate(model.leaderboard())


def _tune_space(trial):
    """The trivial learner's space, define-by-run (module level: Tune pickles its searcher)."""
    trial.suggest_float("dummy", 0.0, 1.0)


def unmodified_tune_rate(workers: int, address: str) -> tuple[int, float]:
    """A user's plain Ray Tune search of the same trivial learner (default settings)."""
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    X, y = tiny_data()

    def trainable(config):
        from sklearn.dummy import DummyClassifier
        from sklearn.model_selection import cross_val_score

        tune.report({"score": cross_val_score(DummyClassifier(strategy="prior"), X, y, cv=2, scoring="roc_auc").mean()})

    ray.shutdown()
    ray.init(address=address, log_to_driver=False)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=OptunaSearch(space=_tune_space, metric="score", mode="max"),
                                    num_samples=10_000, max_concurrent_trials=workers,
                                    time_budget_s=OVERHEAD_SECONDS),
        run_config=tune.RunConfig(verbose=0, storage_path=tempfile.mkdtemp(prefix="tune-storage-")),
    )
    results = tuner.fit().get_dataframe()
    ray.shutdown()
    stamps = np.sort(results["timestamp"].to_numpy().astype(float))
    return len(stamps), (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1.0) if len(stamps) > 2 else float("nan")


def overhead_table(address: str) -> pd.DataFrame:
    import ray

    searchspaces.register_learner(TRIVIAL, replace=True)
    own = evaluation_seconds()
    done = OUT / "overhead_rows.csv"  # rows are kept as they finish, so an interrupted run resumes
    rows = pd.read_csv(done).to_dict("records") if done.exists() else []
    runs = [(system, backend, workers) for system, backend in (
        ("optuna in-process", "optuna"), ("ray (batched workers)", "ray"),
        ("ray-tune (one trial per config)", "ray-tune"), ("unmodified Ray Tune", None)) for workers in (1, 2)]
    for system, backend, workers in runs:
        if any(r["system"] == system and r["workers"] == workers for r in rows):
            continue
        ray.shutdown()
        if backend is None:
            trials, rate = unmodified_tune_rate(workers, address)
        else:
            trials, rate = engine_rate(backend, workers, None if backend == "optuna" else address)
        rows.append({"system": system, "workers": workers, "trials": trials, "trials_per_s": float(rate)})
        pd.DataFrame(rows).to_csv(done, index=False)
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table["seconds_per_trial"] = 1 / table["trials_per_s"]
    # with w workers, w trials overlap: the cost each worker pays per trial is w / rate
    table["overhead_ms"] = 1000 * (table["workers"] / table["trials_per_s"] - own)
    table.attrs["evaluation_ms"] = 1000 * own
    return table


def time_to_reach(board: pd.DataFrame, target: float, greater: bool) -> float:
    ok = board[board["status"] == "ok"].sort_values("finished_at")
    reached = ok[ok["score"] >= target - 1e-12] if greater else ok[ok["score"] <= target + 1e-12]
    return float(reached["finished_at"].iloc[0]) if len(reached) else float("nan")


def scaling_table(address: str) -> pd.DataFrame:
    import ray


    rows = []
    for name in SCALING_DATASETS:
        boards = {}
        for workers in (1, 2):
            ray.shutdown()
            model = automl.fit(str(PMLB / f"{name}.tsv.gz"), time_budget=SCALING_SECONDS, backend="ray",
                               address=address, max_concurrent=workers, warm_start=False, remember=False, verbose=0)
            boards[workers] = (model.leaderboard(), model.task.task, model.metric)
        task, metric = boards[1][1], boards[1][2]
        greater = get_metric(metric, task).greater_is_better
        bests = [get_metric(metric, task).best(b[0]["score"]) for b in boards.values()]
        target = min(bests) if greater else max(bests)  # the score both runs reach
        times = {w: time_to_reach(boards[w][0], target, greater) for w in (1, 2)}
        rows.append({"dataset": name, "metric": metric, "common_best": target, "seconds_1_worker": times[1],
                     "seconds_2_workers": times[2], "speedup": times[1] / times[2] if times[2] > 0 else float("nan"),
                     "trials_1": len(boards[1][0]), "trials_2": len(boards[2][0])})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def _markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with local_cluster(worker_nodes=1, cpus_per_node=1) as cluster:
        overhead = overhead_table(cluster.address)
        scaling = scaling_table(cluster.address)
    ray_rows = overhead[overhead["system"] == "ray (batched workers)"]
    worst = ray_rows["overhead_ms"].max()
    lines = [
        "# Distributed tuning: overhead and scaling", "",
        "Machine: 2 cores; the Ray cluster is two nodes on this machine (127.0.0.2 head, 127.0.0.3 worker), "
        "one CPU each.", "",
        f"## Per-trial overhead (trivial learner, {OVERHEAD_SECONDS} s per run)", "",
        f"One trivial evaluation costs {overhead.attrs['evaluation_ms']:.1f} ms by itself. Rates are steady state "
        "(first to last finished trial); overhead = workers / rate - evaluation time.", "",
        _markdown(overhead.round(3)), "",
        f"Target: below 100 ms per trial on the Ray backend — worst measured {worst:.0f} ms "
        f"({'met' if worst < 100 else 'missed'}).", "",
        f"## One worker against two ({SCALING_SECONDS} s per run)", "",
        "Seconds until each run first reached the best score both runs reach (search time, from the leaderboard).", "",
        _markdown(scaling.round(4)), "",
        f"Median speed-up of a second worker: {scaling['speedup'].median():.2f}x.",
    ]
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
