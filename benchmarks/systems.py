"""The systems the benchmark compares, each as a user of that tool would run it.

Each system takes a :class:`~benchmarks.protocol.Split`, a budget in seconds
and a seed, fits on the training part only, and returns test predictions
(probabilities over ``split.classes``, or values) with how many trials it ran
and when its final incumbent was found. All run single-threaded.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmarks.protocol import Split, align_proba, constant_prediction


class NotAvailable(Exception):
    """The system cannot run here (a package or a model is missing); the message says why."""


@dataclass
class Output:
    prediction: np.ndarray
    n_trials: int = 1
    incumbent_seconds: float = float("nan")


@dataclass(frozen=True)
class System:
    name: str
    run: Callable[[Split, float, int], Output]
    packages: tuple[str, ...] = ()
    uses_budget: bool = True
    peer: bool = True  # run by the peer benchmark unless --systems says otherwise

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


def _ours(split: Split, budget: float, seed: int, warm_start: bool, remember: bool = False, space: str | None = None) -> Output:
    import automl

    model = automl.fit(
        split.X_train, split.y_train, task=split.kind, categorical=split.categorical, metric=split.metric,
        time_budget=budget, seed=seed, verbose=0, warm_start=warm_start, space=space,
        remember=remember,  # off in peer runs: they never teach the engine about the test datasets
    )
    board = model.leaderboard()
    found = board.loc[board["rank"] == 1, "finished_at"]
    return Output(_predict(model, split, split.X_test), len(board), float(found.iloc[0]) if len(found) else np.nan)


def ours(split: Split, budget: float, seed: int) -> Output:
    return _ours(split, budget, seed, warm_start=True)


def ours_cold(split: Split, budget: float, seed: int) -> Output:
    return _ours(split, budget, seed, warm_start=False)


def ours_learning(split: Split, budget: float, seed: int) -> Output:
    """``ours`` that writes its trials back, for the learning-across-tasks series (benchmarks.series)."""
    return _ours(split, budget, seed, warm_start=True, remember=True)


def ours_neural(split: Split, budget: float, seed: int) -> Output:
    """``ours`` searching the neural MLP beside the default learners (issue 7's comparison)."""
    return _ours(split, budget, seed, warm_start=True, space="with_neural")


def ours_zeroshot(split: Split, budget: float, seed: int) -> Output:
    import automl
    from automl.warm import knowledge_for

    if knowledge_for(None).runs.empty:
        raise NotAvailable("no task histories to learn a warm start from (the shipped knowledge is missing or disabled)")

    model = automl.zero_shot(split.X_train, split.y_train, task=split.kind, categorical=split.categorical, metric=split.metric, seed=seed)
    return Output(_predict(model, split, split.X_test))


# -- FLAML -------------------------------------------------------------------


def flaml(split: Split, budget: float, seed: int) -> Output:
    from flaml import AutoML

    model = AutoML()
    X = _categorical_frame(split, split.X_train)
    model.fit(X, split.y_train, task=split.kind, metric=split.metric, time_budget=budget, n_jobs=1, seed=seed, verbose=0)
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


# -- plain Optuna over HistGradientBoosting ----------------------------------


def _hgb(split: Split, seed: int, **params):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if split.task == "regression" else HistGradientBoostingClassifier
    return cls(random_state=seed, **params)


def _optuna(split: Split, budget: float, seed: int, sampler_name: str) -> Output:
    import optuna
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scoring = {"binary": "roc_auc", "multiclass": "neg_log_loss", "regression": "neg_root_mean_squared_error"}[split.task]
    if split.task == "regression":
        folds = KFold(3, shuffle=True, random_state=seed)
    else:
        enough = np.unique(split.y_train, return_counts=True)[1].min() >= 3
        folds = StratifiedKFold(3, shuffle=True, random_state=seed) if enough else KFold(3, shuffle=True, random_state=seed)

    def objective(trial):
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 1.0, log=True),
            "max_iter": trial.suggest_int("max_iter", 10, 1000, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 256, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 200, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-8, 10.0, log=True),
        }
        return cross_val_score(_hgb(split, seed, **params), split.X_train, split.y_train, cv=folds, scoring=scoring).mean()

    sampler = optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe" else optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, timeout=budget, catch=(Exception,))
    completed = [t for t in study.trials if t.value is not None]
    if not completed:
        raise RuntimeError("no Optuna trial finished within the budget")
    best = study.best_trial
    model = _hgb(split, seed, **best.params).fit(split.X_train, split.y_train)
    found = (best.datetime_complete.timestamp() - study.trials[0].datetime_start.timestamp()) if best.datetime_complete else np.nan
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
        System("ours_learning", ours_learning, ("optuna", "sklearn"), peer=False),
        System("ours_neural", ours_neural, ("optuna", "sklearn", "torch"), peer=False),
        System("ours_zeroshot", ours_zeroshot, ("sklearn",), uses_budget=False),
        System("flaml", flaml, ("flaml", "lightgbm", "xgboost")),
        System("flaml_zeroshot", flaml_zeroshot, ("flaml", "lightgbm"), uses_budget=False),
        System("optuna_tpe", optuna_tpe, ("optuna",)),
        System("random", random_search, ("optuna",)),
        System("hgb_default", hgb_default, uses_budget=False),
        System("rf_default", rf_default, uses_budget=False),
        System("const", const, uses_budget=False),
    )
}
