"""AutoMLClassifier as a scikit-learn estimator: inside a Pipeline and cross_val_score.

Run: python examples/sklearn_estimator.py
"""

import os

from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from automl import AutoMLClassifier

BUDGET = float(os.environ.get("AUTOML_EXAMPLE_BUDGET", 10))

if __name__ == "__main__":
    X, y = load_wine(return_X_y=True)
    pipeline = make_pipeline(PCA(n_components=8), AutoMLClassifier(time_budget=BUDGET, metric="log_loss"))
    scores = cross_val_score(pipeline, X, y, cv=3)
    print(f"accuracy per fold: {scores.round(3)}, mean {scores.mean():.3f}")
