"""LightGBM, registered when the ``lightgbm`` package is installed.

Often 2-5x faster than HistGradientBoosting on one core, which matters most
under small time budgets. Ranges follow FLAML's published LightGBM space;
defaults are LightGBM's own.
"""

from __future__ import annotations

from typing import Any

from searchspaces.learner import BuildContext, Learner, Preprocessing
from searchspaces.params import Float, Int
from searchspaces.space import SearchSpace


def _lightgbm(params: dict[str, Any], ctx: BuildContext) -> Any:
    import lightgbm

    native = [str(i) for i, is_cat in enumerate(ctx.categorical_mask) if is_cat]
    cls = lightgbm.LGBMRegressor if ctx.task == "regression" else lightgbm.LGBMClassifier
    # A leaf's value is its gradient sum over its hessian sum. LightGBM's floor on that hessian sum (1e-3) lets
    # the leaves of a nearly pure rare class take huge values: on multiclass data with a class of a few rows the
    # model turns confidently wrong (the corpus's shuttle: test log loss 7.0 on 6,000 rows, accuracy 0.80 where
    # a constant scores 0.79). XGBoost's floor of 1 prevents that; for squared error (a hessian of 1 a row) it
    # changes nothing. On 18 validation datasets it helped 79 of 97 configurations and hurt 18.
    return cls(random_state=ctx.seed, n_jobs=1, verbose=-1, categorical_feature=",".join(native), min_child_weight=1.0,
               **params)


LIGHTGBM = Learner(
    name="lightgbm",
    tasks=frozenset({"classification", "regression"}),
    space=SearchSpace(
        (
            Int("n_estimators", 8, 2000, log=True, default=100, low_cost=8),
            Int("num_leaves", 4, 256, log=True, default=31, low_cost=4),
            Int("min_child_samples", 2, 128, log=True, default=20),
            Float("learning_rate", 0.01, 1.0, log=True, default=0.1),
            Float("colsample_bytree", 0.3, 1.0, default=1.0),
            Float("reg_alpha", 1e-8, 10.0, log=True, default=1e-8),
            Float("reg_lambda", 1e-8, 10.0, log=True, default=1e-8),
        ),
        name="lightgbm",
    ),
    build=_lightgbm,
    preprocessing=Preprocessing(categorical="native", impute=False),
    cost=1.0,
    description="LightGBM gradient boosting (native categorical and missing-value support)",
)


def available() -> bool:
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        return False
    return True
