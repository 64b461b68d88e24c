"""Fit AutoGluon on one split and predict its test part: the ``autogluon`` peer's side in AutoGluon's own venv.

    <autogluon venv>/bin/python benchmarks/autogluon_child.py WORK

AutoGluon 1.6.3 pins pandas below 2.4 while this project runs on pandas 3, so
the ``autogluon`` system (benchmarks/systems.py) runs this script with the
Python of a separate virtual environment. It imports only pandas, numpy and
AutoGluon, never this project. ``WORK`` holds ``train.parquet`` (features and
the label column), ``test.parquet`` (features) and ``spec.json`` (label,
problem type, metric, time limit). The script imports AutoGluon first and only
then starts its clock, so the budget pays for the fit and the test prediction,
not for Python's start-up or the import. It writes ``prediction.npy``
(probabilities, one column per entry of ``classes.npy``, or values) and
``result.json`` (its own wall seconds, the number of models trained, when the
best model was ready, AutoGluon's version). ``--version`` instead of ``WORK``
prints AutoGluon's version without importing it.

Exit code 3 with ``{"not_available": ...}`` on stdout: AutoGluon cannot be imported.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

NOT_AVAILABLE = 3


def _import_autogluon():
    """TabularPredictor and a callback class, or exit with NOT_AVAILABLE if AutoGluon is missing or broken."""
    try:
        from autogluon.core.callbacks import AbstractCallback
        from autogluon.tabular import TabularPredictor
    except Exception as error:  # ImportError, or a broken install failing at import
        print(json.dumps({"not_available": f"{type(error).__name__}: {error}"}), flush=True)
        sys.exit(NOT_AVAILABLE)
    return TabularPredictor, AbstractCallback


MODEL_LIBRARIES = ("lightgbm", "catboost", "xgboost", "torch", "fastai.tabular.all", "sklearn.ensemble")


def _import_model_libraries() -> None:
    """Import the libraries of the default preset's models before the clock, as the harness does for every system.

    AutoGluon imports them lazily inside ``fit``; torch alone takes seconds, which
    would otherwise come out of a small budget. One that fails to import is left
    for AutoGluon to report: it skips that model, as it would for a user.
    """
    import importlib

    for module in MODEL_LIBRARIES:
        try:
            importlib.import_module(module)
        except Exception:
            continue


def _finish_clock(callback_base, started: float):
    """A callback recording, per model name, the seconds since ``started`` at which the model was fitted.

    Its class is made a global of this module: AutoGluon pickles its callbacks with the trainer.
    """

    class FinishClock(callback_base):
        def __init__(self, started: float):
            super().__init__()
            self.started = started
            self.finished: dict[str, float] = {}

        def _after_model_fit(self, trainer, model_names, stack_name="core", level=1) -> bool:
            for name in model_names:
                self.finished[name] = time.monotonic() - self.started
            return False  # never stop AutoGluon early: it runs as a user would run it

    FinishClock.__qualname__ = FinishClock.__name__
    globals()[FinishClock.__name__] = FinishClock
    return FinishClock(started)


def _version() -> str:
    """AutoGluon's version, read from the installed metadata without importing it (exit NOT_AVAILABLE if absent)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autogluon.tabular")
    except PackageNotFoundError:
        print(json.dumps({"not_available": "autogluon.tabular is not installed"}), flush=True)
        sys.exit(NOT_AVAILABLE)


def main(work: Path) -> None:
    TabularPredictor, AbstractCallback = _import_autogluon()
    _import_model_libraries()
    import numpy as np
    import pandas as pd

    spec = json.loads((work / "spec.json").read_text())
    train = pd.read_parquet(work / "train.parquet")
    test = pd.read_parquet(work / "test.parquet")

    started = time.monotonic()  # the budget starts here, after every import and the data are in memory
    clock = _finish_clock(AbstractCallback, started)
    predictor = TabularPredictor(
        label=spec["label"], problem_type=spec["problem_type"], eval_metric=spec["eval_metric"],
        path=str(work / "models"), verbosity=0,
    )
    predictor.fit(train, time_limit=spec["time_limit"], num_cpus=1, num_gpus=0, callbacks=[clock])
    if spec["problem_type"] == "regression":
        prediction, classes = predictor.predict(test).to_numpy(dtype=float), np.array([])
    else:
        proba = predictor.predict_proba(test, as_multiclass=True)
        prediction, classes = proba.to_numpy(dtype=float), np.asarray(proba.columns)
    wall_seconds = time.monotonic() - started

    np.save(work / "prediction.npy", prediction)
    np.save(work / "classes.npy", classes)
    best = predictor.model_best
    result = {
        "wall_seconds": wall_seconds,
        "n_models": len(predictor.leaderboard(silent=True)),
        "incumbent_seconds": clock.finished.get(best, float("nan")),
        "best_model": best,
        "version": _version(),
    }
    if spec.get("deploy"):
        result["deploy"] = _deploy_figures(predictor, test, spec["problem_type"], work / "models")
    (work / "result.json").write_text(json.dumps(result))


def _deploy_figures(predictor, test, problem_type: str, path: Path) -> dict:
    """What serving the fitted predictor costs: single-row latency p50/p99, rows per second in batches, disk size.

    The same figures as benchmarks/deploy.py measures for the other systems: ``predict_proba`` (classification) or
    ``predict`` on one test row at a time, 100 calls after a warm-up; one batch of 10,000 rows (test rows repeated);
    the bytes of the predictor's folder, which is what a user ships unless they prune it.
    """
    import numpy as np
    import pandas as pd

    predict = predictor.predict if problem_type == "regression" else predictor.predict_proba
    rows = [test.iloc[[i % len(test)]] for i in range(101)]
    predict(rows[0])
    times = []
    for row in rows[1:]:
        started = time.perf_counter()
        predict(row)
        times.append(time.perf_counter() - started)
    batch = pd.concat([test] * (10_000 // len(test) + 1), ignore_index=True).iloc[:10_000]
    started = time.perf_counter()
    predict(batch)
    batch_seconds = time.perf_counter() - started
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return {"p50_ms": 1000 * float(np.percentile(times, 50)), "p99_ms": 1000 * float(np.percentile(times, 99)),
            "rows_per_second": 10_000 / batch_seconds, "size_mb": size / 2**20}


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--version":
        print(_version())
    else:
        main(Path(sys.argv[1]))
