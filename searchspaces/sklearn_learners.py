"""Built-in scikit-learn learners, each with its search space and defaults.

Defaults follow scikit-learn's own (so a learner's default configuration is
the estimator a user would get with no tuning); ``low_cost`` values mark the
cheap corner FLAML-style, for when time is short. Parameters that scale with
the data (SVM's ``gamma``) are expressed relative to it, so that what is
learned on one dataset transfers to another.
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

from searchspaces.learner import BuildContext, Learner, Preprocessing, Staging
from searchspaces.params import Categorical, Float, Int
from searchspaces.space import SearchSpace

CLASSIFICATION = frozenset({"classification"})
REGRESSION = frozenset({"regression"})
BOTH = CLASSIFICATION | REGRESSION


def _hgb(params: dict[str, Any], ctx: BuildContext) -> Any:
    cls = HistGradientBoostingRegressor if ctx.task == "regression" else HistGradientBoostingClassifier
    mask = list(ctx.categorical_mask) if any(ctx.categorical_mask) else None
    return cls(random_state=ctx.seed, categorical_features=mask, **params)


HGB = Learner(
    name="hgb",
    tasks=BOTH,
    space=SearchSpace(
        (
            Float("learning_rate", 0.01, 1.0, log=True, default=0.1),
            Int("max_iter", 10, 1000, log=True, default=100, low_cost=20),
            Int("max_leaf_nodes", 4, 256, log=True, default=31, low_cost=8),
            Int("min_samples_leaf", 1, 200, log=True, default=20),
            Float("l2_regularization", 1e-8, 10.0, log=True, default=1e-8),
            Float("max_features", 0.1, 1.0, default=1.0),
        ),
        name="hgb",
    ),
    build=_hgb,
    preprocessing=Preprocessing(categorical="native", impute=False),
    staging=Staging("max_iter"),
    cost=3.0,
    description="scikit-learn HistGradientBoosting (native categorical and missing-value support)",
)


def _forest(classifier: type, regressor: type) -> Any:
    def build(params: dict[str, Any], ctx: BuildContext) -> Any:
        cls = regressor if ctx.task == "regression" else classifier
        return cls(random_state=ctx.seed, n_jobs=1, **params)

    return build


def _forest_space(name: str, task: str, bootstrap: bool) -> SearchSpace:
    classification = task == "classification"
    return SearchSpace(
        (
            Int("n_estimators", 16, 512, log=True, default=100, low_cost=16),
            Categorical(
                "max_features",
                ("sqrt", "log2", 0.1, 0.2, 0.35, 0.5, 0.75, 1.0),
                default="sqrt" if classification else 1.0,
            ),
            Int("min_samples_leaf", 1, 32, log=True, default=1),
            Categorical("bootstrap", (True, False), default=bootstrap),
        )
        + ((Categorical("criterion", ("gini", "entropy"), default="gini"),) if classification else ()),
        name=name,
    )


def _forests() -> list[Learner]:
    made = []
    for name, classifier, regressor, bootstrap, label in (
        ("random_forest", RandomForestClassifier, RandomForestRegressor, True, "RandomForest"),
        ("extra_trees", ExtraTreesClassifier, ExtraTreesRegressor, False, "ExtraTrees"),
    ):
        for tasks in (CLASSIFICATION, REGRESSION):
            made.append(
                Learner(
                    name=name,
                    tasks=tasks,
                    space=_forest_space(name, next(iter(tasks)), bootstrap),
                    build=_forest(classifier, regressor),
                    preprocessing=Preprocessing(categorical="ordinal", impute=True),
                    staging=Staging("n_estimators"),
                    cost=2.0 if bootstrap else 1.5,
                    description=f"scikit-learn {label}",
                )
            )
    return made


def _logistic(params: dict[str, Any], ctx: BuildContext) -> Any:
    return LogisticRegression(max_iter=500, random_state=ctx.seed, **params)


def _ridge(params: dict[str, Any], ctx: BuildContext) -> Any:
    return Ridge(random_state=ctx.seed, **params)


LINEAR = [
    Learner(
        name="linear",
        tasks=CLASSIFICATION,
        space=SearchSpace(
            (
                Float("C", 1e-4, 1e4, log=True, default=1.0),
                Categorical("class_weight", (None, "balanced"), default=None),
            ),
            name="linear",
        ),
        build=_logistic,
        preprocessing=Preprocessing(categorical="onehot", scale=True),
        cost=0.3,
        description="L2-regularised logistic regression on scaled, one-hot inputs",
    ),
    Learner(
        name="linear",
        tasks=REGRESSION,
        space=SearchSpace((Float("alpha", 1e-4, 1e4, log=True, default=1.0),), name="linear"),
        build=_ridge,
        preprocessing=Preprocessing(categorical="onehot", scale=True),
        cost=0.1,
        description="ridge regression on scaled, one-hot inputs",
    ),
]


def _svm(params: dict[str, Any], ctx: BuildContext) -> Any:
    gamma = params["gamma_scale"] / max(1, ctx.n_features)
    if ctx.task == "regression":
        model = SVR(C=params["C"], gamma=gamma, epsilon=params["epsilon"])
        return TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
    return SVC(C=params["C"], gamma=gamma, probability=True, random_state=ctx.seed)


_SVM_COMMON = (
    Float("C", 1e-3, 1e3, log=True, default=1.0),
    # gamma as a multiple of scikit-learn's "scale" value (1 / n_features on scaled data)
    Float("gamma_scale", 1e-2, 1e2, log=True, default=1.0),
)

SVM = [
    Learner(
        name="svm",
        tasks=CLASSIFICATION,
        space=SearchSpace(_SVM_COMMON, name="svm"),
        build=_svm,
        preprocessing=Preprocessing(categorical="onehot", scale=True),
        max_rows=5_000,
        cost=2.0,
        fit_exponent=2.0,
        description="RBF support vector machine (Platt-scaled probabilities)",
    ),
    Learner(
        name="svm",
        tasks=REGRESSION,
        space=SearchSpace(_SVM_COMMON + (Float("epsilon", 1e-3, 1.0, log=True, default=0.1),), name="svm"),
        build=_svm,
        preprocessing=Preprocessing(categorical="onehot", scale=True),
        max_rows=5_000,
        cost=2.0,
        fit_exponent=2.0,
        description="RBF support vector regression on a standardised target",
    ),
]


def _knn(params: dict[str, Any], ctx: BuildContext) -> Any:
    cls = KNeighborsRegressor if ctx.task == "regression" else KNeighborsClassifier
    params = dict(params, n_neighbors=min(params["n_neighbors"], max(1, ctx.n_rows - 1)))
    return cls(n_jobs=1, **params)


KNN = Learner(
    name="knn",
    tasks=BOTH,
    space=SearchSpace(
        (
            Int("n_neighbors", 1, 100, log=True, default=5),
            Categorical("weights", ("uniform", "distance"), default="uniform"),
            Categorical("p", (1, 2), default=2),
        ),
        name="knn",
    ),
    build=_knn,
    preprocessing=Preprocessing(categorical="onehot", scale=True),
    max_rows=50_000,
    cost=0.5,
    # its trials' time is mostly prediction, whose cost grows with the training rows times the rows predicted
    fit_exponent=2.0,
    description="k-nearest neighbours on scaled, one-hot inputs",
)


def builtin_learners() -> list[Learner]:
    return [HGB, *_forests(), *LINEAR, *SVM, KNN]
