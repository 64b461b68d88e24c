"""Add your own learner with one decorator; fit() then searches it beside the built-ins.

The factory receives the sampled parameters and a context (task, data size,
seed) and returns an unfitted scikit-learn estimator. The space is plain data:
ranges, log scales, choices and defaults.

Run: python examples/custom_learner.py
"""

import os

from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet

import automl
from searchspaces import Float, register_learner

BUDGET = float(os.environ.get("AUTOML_EXAMPLE_BUDGET", 20))


@register_learner(
    "elastic_net",
    tasks="regression",
    params=[
        Float("alpha", 1e-4, 10.0, log=True, default=1.0),
        Float("l1_ratio", 0.0, 1.0, default=0.5),
    ],
    scale=True,  # standardise numeric features first; categorical ones are one-hot encoded
)
def build_elastic_net(params, context):
    """Elastic net regression."""
    return ElasticNet(random_state=context.seed, max_iter=5000, **params)


if __name__ == "__main__":
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = automl.fit(X, y, learners=["elastic_net", "linear", "lightgbm"], time_budget=BUDGET, verbose=0)
    board = model.leaderboard()
    print(board[["rank", "learner", "score", "params"]].head(8).to_string(index=False))
    searched = (board["learner"] == "elastic_net").sum()
    print(f"elastic_net was tried {searched} times; best: {model.best_config_}")
    assert searched >= 1
