"""What can be tuned: parameters, spaces, learners and their registry.

Spaces are plain data (JSON-serialisable); learners pair an estimator factory
with a space. Built-in learners are registered on import (LightGBM when it is
installed, XGBoost and CatBoost when theirs are), and so are the named spaces
``"default"`` (LightGBM and the scikit-learn learners), ``"trees"``,
``"fast"``, ``"neural"`` (the torch MLP), ``"with_neural"`` (the default plus
the MLP) and ``"with_boosters"`` (the default plus XGBoost and CatBoost); a
named space skips learners that are not installed. A search that names no
space gets ``default_space(time_budget)``: the boosters join from 10 s. Neural learners (``mlp``,
``cnn``) are registered when torch is.
"""

from searchspaces import boosting_learners, lightgbm_learner, torch_learners
from searchspaces.learner import BuildContext, Learner, Preprocessing, Staging
from searchspaces.params import Categorical, Condition, Float, Int, Param, when
from searchspaces.registry import (
    default_space,
    get_learner,
    learner_names,
    register_learner,
    register_space,
    registered,
    resolve_learners,
    space_learners,
    space_names,
    unregister_learner,
)
from searchspaces.sklearn_learners import builtin_learners
from searchspaces.space import Config, SearchSpace, config_from_flat, flat_from_config, joint_space

for _learner in builtin_learners():
    register_learner(_learner)
if lightgbm_learner.available():
    register_learner(lightgbm_learner.LIGHTGBM)
if boosting_learners.available("xgboost"):
    register_learner(boosting_learners.XGBOOST)
if boosting_learners.available("catboost"):
    register_learner(boosting_learners.CATBOOST)
if torch_learners.available():
    register_learner(torch_learners.MLP)
    register_learner(torch_learners.CNN)
register_space("default", ["lightgbm", "hgb", "random_forest", "extra_trees", "linear", "svm", "knn"])
register_space("neural", ["mlp"])
register_space("with_neural", ["lightgbm", "hgb", "random_forest", "extra_trees", "linear", "svm", "knn", "mlp"])
register_space("with_boosters", ["lightgbm", "hgb", "random_forest", "extra_trees", "linear", "svm", "knn", "xgboost",
                                 "catboost"])
register_space("trees", ["lightgbm", "hgb", "random_forest", "extra_trees"])
register_space("fast", ["lightgbm", "hgb", "linear"])

__all__ = [
    "BuildContext",
    "Categorical",
    "Condition",
    "Config",
    "Float",
    "Int",
    "Learner",
    "Param",
    "Preprocessing",
    "SearchSpace",
    "Staging",
    "config_from_flat",
    "default_space",
    "flat_from_config",
    "get_learner",
    "joint_space",
    "learner_names",
    "register_learner",
    "register_space",
    "registered",
    "resolve_learners",
    "space_learners",
    "space_names",
    "unregister_learner",
    "when",
]
