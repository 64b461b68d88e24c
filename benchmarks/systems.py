"""The systems the benchmark compares, each as a user of that tool would run it.

Each system takes a :class:`~benchmarks.protocol.Split`, a budget in seconds
and a seed, fits on the training part only, and returns test predictions
(probabilities over ``split.classes``, or values) with how many trials it ran
and when its final incumbent was found. All run single-threaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.limits import SINGLE_THREAD, hard_limit
from benchmarks.protocol import Split, align_proba, constant_prediction


class NotAvailable(Exception):
    """The system cannot run here (a package or a model is missing); the message says why."""


@dataclass
class Output:
    prediction: np.ndarray
    n_trials: int = 1
    incumbent_seconds: float = float("nan")
    # Seconds the system itself measured for its fit and prediction; the runner records them instead of its own
    # clock when set (a system run in another process would otherwise pay for that process's start-up).
    wall_seconds: float | None = None


@dataclass(frozen=True)
class System:
    name: str
    run: Callable[[Split, float, int], Output]
    packages: tuple[str, ...] = ()
    uses_budget: bool = True
    peer: bool = True  # run by the peer benchmark unless --systems says otherwise
    extra_seconds: float = 0.0  # added to the runner's hard limit: start-up the system's own clock leaves out

    def missing_packages(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]

    @property
    def imports(self) -> list[str]:
        """Modules to import before the clock starts: the system's packages, and this engine for its own systems."""
        own = ["automl"] if self.name.startswith("ours") else []
        extra = ["flaml.automl", "flaml.default"] if self.name.startswith("flaml") else []
        return [*self.packages, *own, *extra, "sklearn.ensemble", "sklearn.model_selection"]


def _predict(model, split: Split, X: pd.DataFrame) -> np.ndarray:
    if split.task == "regression":
        return np.asarray(model.predict(X), dtype=float)
    return align_proba(np.asarray(model.predict_proba(X)), np.asarray(model.classes_), split.classes)


# -- this engine -------------------------------------------------------------


def _ours(split: Split, budget: float, seed: int, warm_start: bool, remember: bool = False,
          space: str | None = None, final_fit: str = "auto") -> Output:
    import automl

    model = automl.fit(
        split.X_train, split.y_train, task=split.kind, categorical=split.categorical, metric=split.metric,
        time_budget=budget, seed=seed, verbose=0, warm_start=warm_start, space=space, final_fit=final_fit,
        remember=remember,  # off in peer runs: they never teach the engine about the test datasets
    )
    board = model.leaderboard()
    found = board.loc[board["rank"] == 1, "finished_at"]
    return Output(_predict(model, split, split.X_test), len(board), float(found.iloc[0]) if len(found) else np.nan)


def ours(split: Split, budget: float, seed: int) -> Output:
    return _ours(split, budget, seed, warm_start=True)


def ours_cold(split: Split, budget: float, seed: int) -> Output:
    return _ours(split, budget, seed, warm_start=False)


def ours_refit(split: Split, budget: float, seed: int) -> Output:
    """``ours`` with its final model refitted on all training rows, never bagged (what bagging is measured against)."""
    return _ours(split, budget, seed, warm_start=True, final_fit="refit")


def ours_learning(split: Split, budget: float, seed: int) -> Output:
    """``ours`` that writes its trials back, for the learning-across-tasks series (benchmarks.series)."""
    return _ours(split, budget, seed, warm_start=True, remember=True)


def ours_neural(split: Split, budget: float, seed: int) -> Output:
    """``ours`` searching the neural MLP beside the default learners (issue 7's comparison)."""
    return _ours(split, budget, seed, warm_start=True, space="with_neural")


def ours_boosters(split: Split, budget: float, seed: int) -> Output:
    """``ours`` searching XGBoost and CatBoost beside the default learners (whether they belong in the default)."""
    return _ours(split, budget, seed, warm_start=True, space="with_boosters")


def ours_zeroshot(split: Split, budget: float, seed: int) -> Output:
    import automl
    from automl.knowledge.portfolio import shipped_portfolio
    from automl.knowledge.prepared import prepared_knowledge

    if shipped_portfolio(split.kind, None) is None and prepared_knowledge(None).empty:
        raise NotAvailable("no portfolio and no task histories to pick a configuration from "
                           "(the shipped knowledge is missing or disabled)")

    model = automl.zero_shot(split.X_train, split.y_train, task=split.kind, categorical=split.categorical,
                             metric=split.metric, seed=seed)
    return Output(_predict(model, split, split.X_test))


# -- FLAML -------------------------------------------------------------------


def flaml(split: Split, budget: float, seed: int) -> Output:
    from flaml import AutoML

    model = AutoML()
    X = _categorical_frame(split, split.X_train)
    model.fit(X, split.y_train, task=split.kind, metric=split.metric, time_budget=budget, n_jobs=1, seed=seed,
              verbose=0)
    trials = len(getattr(model, "config_history", {})) or 1
    prediction = _predict(model, split, _categorical_frame(split, split.X_test))
    return Output(prediction, trials, float(getattr(model, "time_to_find_best_model", np.nan)))


def flaml_zeroshot(split: Split, budget: float, seed: int) -> Output:
    from flaml.default import LGBMClassifier, LGBMRegressor

    cls = LGBMRegressor if split.task == "regression" else LGBMClassifier
    model = cls(n_jobs=1, random_state=seed)
    model.fit(_categorical_frame(split, split.X_train), split.y_train)
    return Output(_predict(model, split, _categorical_frame(split, split.X_test)))


def _categorical_frame(split: Split, X: pd.DataFrame) -> pd.DataFrame:
    """Declared categorical columns as pandas categories (how FLAML and LightGBM expect them)."""
    X = X.copy()
    for column in split.categorical:
        levels = sorted(pd.unique(pd.concat([split.X_train[column], split.X_test[column]])))
        X[column] = pd.Categorical(X[column], categories=levels)
    return X


# -- AutoGluon, from its own virtual environment ------------------------------

REPO = Path(__file__).resolve().parents[1]
AUTOGLUON_SETUP = (
    "set up AutoGluon's own virtual environment in the repository root "
    "(AutoGluon 1.6.3 pins pandas below 2.4, this project uses pandas 3): "
    "python3 -m venv .venv-autogluon && .venv-autogluon/bin/pip install torch==2.13.0 && "
    ".venv-autogluon/bin/pip install 'autogluon.tabular[all]==1.6.3' "
    "(or point AUTOML_AUTOGLUON_PYTHON at a Python that has autogluon.tabular 1.6.3)"
)
AUTOGLUON_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "root_mean_squared_error"}
AUTOGLUON_STARTUP = 60.0  # seconds beyond the usual hard limit: a second Python, AutoGluon's imports, its overruns
AUTOGLUON_NOT_AVAILABLE = 3  # the exit code of benchmarks/autogluon_child.py when AutoGluon cannot be imported
LABEL = "__target__"


def autogluon_python() -> Path:
    """The Python of AutoGluon's venv: ``AUTOML_AUTOGLUON_PYTHON``, else ``<repo>/.venv-autogluon/bin/python``.

    Not resolved: a venv's python is a symlink, and resolving it would leave the venv.
    """
    configured = os.environ.get("AUTOML_AUTOGLUON_PYTHON")
    if configured:
        return Path(configured)
    return REPO / ".venv-autogluon" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _autogluon_environment() -> dict[str, str]:
    """This process's environment (the runner's one-thread settings included) without PYTHONPATH.

    The runner puts this project on PYTHONPATH; AutoGluon's Python must not import this project's packages.
    """

    env = dict(os.environ, **SINGLE_THREAD)
    env.pop("PYTHONPATH", None)
    return env


def _write_autogluon_job(split: Split, budget: float, work: Path) -> None:
    """The split's parts as Parquet (readable by pandas 2.3), categorical columns as categories, and the spec."""
    train = _categorical_frame(split, split.X_train)
    if LABEL in train.columns:
        raise ValueError(f"a feature is named {LABEL!r}, the label column AutoGluon is given")
    train[LABEL] = split.y_train
    train.to_parquet(work / "train.parquet")
    _categorical_frame(split, split.X_test).to_parquet(work / "test.parquet")
    spec = {"label": LABEL, "problem_type": split.task, "eval_metric": AUTOGLUON_METRIC[split.task],
            "time_limit": budget}
    (work / "spec.json").write_text(json.dumps(spec))


def _die_with_parent() -> None:
    """Linux: the AutoGluon process is killed when the runner's child dies (as it is at the runner's hard limit)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _run_autogluon_child(python: Path, work: Path, timeout: float) -> None:
    """Run benchmarks/autogluon_child.py on ``work``; NotAvailable if AutoGluon is missing, RuntimeError on failure."""
    script = Path(__file__).with_name("autogluon_child.py")
    try:
        done = subprocess.run(
            [str(python), str(script), str(work)], capture_output=True, text=True, timeout=timeout,
            env=_autogluon_environment(), cwd=work, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"AutoGluon's process killed after {timeout:.0f} s") from None
    if done.returncode == AUTOGLUON_NOT_AVAILABLE:
        raise NotAvailable(f"AutoGluon cannot be imported by {python} ({done.stdout.strip()}): {AUTOGLUON_SETUP}")
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise RuntimeError(f"AutoGluon's process failed: {tail[0]}")


def _read_autogluon_output(split: Split, work: Path) -> Output:
    """The child's prediction, aligned to ``split.classes``, with its own clock, model count and incumbent time."""
    result = json.loads((work / "result.json").read_text())
    prediction = np.load(work / "prediction.npy", allow_pickle=False)
    if split.task != "regression":
        classes = np.load(work / "classes.npy", allow_pickle=False).astype(split.classes.dtype)
        prediction = align_proba(prediction, classes, split.classes)
    return Output(prediction, int(result["n_models"]), float(result["incumbent_seconds"]),
                  float(result["wall_seconds"]))


def autogluon(split: Split, budget: float, seed: int) -> Output:
    """AutoGluon's ``TabularPredictor`` with its default preset, the task's metric and one CPU.

    It runs in AutoGluon's own venv (see AUTOGLUON_SETUP), in a fresh temporary
    folder deleted afterwards. Its wall seconds are its own fit plus test
    prediction, after its imports. AutoGluon takes no seed: ``seed`` only picks the split.
    """

    python = autogluon_python()
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise NotAvailable(f"no Python for AutoGluon at {python}: {AUTOGLUON_SETUP}")
    with tempfile.TemporaryDirectory(prefix="automl-autogluon-") as folder:
        work = Path(folder)
        _write_autogluon_job(split, budget, work)
        _run_autogluon_child(python, work, timeout=hard_limit(budget, AUTOGLUON_STARTUP) - 15)
        return _read_autogluon_output(split, work)


def autogluon_version() -> str | None:
    """The version of AutoGluon in its venv, asked once per Python without importing it; None where it is not set up."""
    return _autogluon_version_of(str(autogluon_python()))


@cache
def _autogluon_version_of(python: str) -> str | None:
    if not (Path(python).is_file() and os.access(python, os.X_OK)):
        return None
    script = Path(__file__).with_name("autogluon_child.py")
    try:
        done = subprocess.run([python, str(script), "--version"], capture_output=True, text=True, timeout=60,
                              env=_autogluon_environment())
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# -- plain Optuna over HistGradientBoosting ----------------------------------


def _hgb(split: Split, seed: int, **params):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if split.task == "regression" else HistGradientBoostingClassifier
    return cls(random_state=seed, **params)


def _optuna(split: Split, budget: float, seed: int, sampler_name: str) -> Output:
    import optuna
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scoring = {"binary": "roc_auc", "multiclass": "neg_log_loss",
               "regression": "neg_root_mean_squared_error"}[split.task]
    if split.task == "regression":
        folds = KFold(3, shuffle=True, random_state=seed)
    else:
        enough = np.unique(split.y_train, return_counts=True)[1].min() >= 3
        folds = (StratifiedKFold(3, shuffle=True, random_state=seed) if enough
                 else KFold(3, shuffle=True, random_state=seed))

    def objective(trial):
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 1.0, log=True),
            "max_iter": trial.suggest_int("max_iter", 10, 1000, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 256, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 200, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-8, 10.0, log=True),
        }
        return cross_val_score(_hgb(split, seed, **params), split.X_train, split.y_train, cv=folds,
                               scoring=scoring).mean()

    sampler = (optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, timeout=budget, catch=(Exception,))
    completed = [t for t in study.trials if t.value is not None]
    if not completed:
        raise RuntimeError("no Optuna trial finished within the budget")
    best = study.best_trial
    model = _hgb(split, seed, **best.params).fit(split.X_train, split.y_train)
    found = ((best.datetime_complete.timestamp() - study.trials[0].datetime_start.timestamp())
             if best.datetime_complete else np.nan)
    return Output(_predict(model, split, split.X_test), len(study.trials), found)


def optuna_tpe(split: Split, budget: float, seed: int) -> Output:
    return _optuna(split, budget, seed, "tpe")


def random_search(split: Split, budget: float, seed: int) -> Output:
    return _optuna(split, budget, seed, "random")


# -- fixed models ------------------------------------------------------------


def hgb_default(split: Split, budget: float, seed: int) -> Output:
    return Output(_predict(_hgb(split, seed).fit(split.X_train, split.y_train), split, split.X_test))


def rf_default(split: Split, budget: float, seed: int) -> Output:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if split.task == "regression" else RandomForestClassifier
    model = cls(random_state=seed, n_jobs=1).fit(split.X_train, split.y_train)
    return Output(_predict(model, split, split.X_test))


def const(split: Split, budget: float, seed: int) -> Output:
    return Output(constant_prediction(split))


SYSTEMS = {
    s.name: s
    for s in (
        System("ours", ours, ("optuna", "sklearn")),
        System("ours_cold", ours_cold, ("optuna", "sklearn")),
        System("ours_refit", ours_refit, ("optuna", "sklearn"), peer=False),
        System("ours_learning", ours_learning, ("optuna", "sklearn"), peer=False),
        System("ours_neural", ours_neural, ("optuna", "sklearn", "torch"), peer=False),
        System("ours_boosters", ours_boosters, ("optuna", "sklearn", "xgboost", "catboost"), peer=False),
        System("ours_zeroshot", ours_zeroshot, ("sklearn",), uses_budget=False),
        System("flaml", flaml, ("flaml", "lightgbm", "xgboost")),
        System("flaml_zeroshot", flaml_zeroshot, ("flaml", "lightgbm"), uses_budget=False),
        System("autogluon", autogluon, extra_seconds=AUTOGLUON_STARTUP),  # NotAvailable, with the setup, if missing
        System("optuna_tpe", optuna_tpe, ("optuna",)),
        System("random", random_search, ("optuna",)),
        System("hgb_default", hgb_default, uses_budget=False),
        System("rf_default", rf_default, uses_budget=False),
        System("const", const, uses_budget=False),
    )
}
