"""Quickstart: fit on a bundled dataset, read the leaderboard, score held-out data, save and load.

Run: python examples/quickstart.py   (AUTOML_EXAMPLE_BUDGET=5 for a quick run)
"""

import os

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import automl

BUDGET = float(os.environ.get("AUTOML_EXAMPLE_BUDGET", 30))

if __name__ == "__main__":
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)

    model = automl.fit(X_train, y_train, time_budget=BUDGET)
    print(model)
    print(model.leaderboard()[["rank", "learner", "score", "fit_seconds", "status"]].head(10).to_string(index=False))
    print(f"held-out ROC AUC: {model.score(X_test, y_test):.4f}, "
          f"accuracy: {model.score(X_test, y_test, metric='accuracy'):.4f}")

    path = model.save("breast_cancer_model.pkl")
    again = automl.load(path)
    assert (again.predict(X_test) == model.predict(X_test)).all()
    os.remove(path)
