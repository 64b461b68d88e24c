"""Models that ship: a search under serving limits, a distilled student, and both exported to ONNX.

Run: python examples/ship_a_model.py   (AUTOML_EXAMPLE_BUDGET=5 for a quick run; needs pip install -e ".[export]")
"""

import json
import os

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import automl
from automl.errors import ExportError

BUDGET = float(os.environ.get("AUTOML_EXAMPLE_BUDGET", 30))

if __name__ == "__main__":
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)

    # every trial's single-row latency and size are measured; only those within the limits are chosen
    model = automl.fit(X_train, y_train, time_budget=BUDGET, max_predict_ms=5, max_model_mb=1)
    print(model)
    print(model.leaderboard()[["learner", "score", "predict_ms", "model_mb"]].head(5).to_string(index=False))
    print(f"one row in {model.summary.predict_ms:.2f} ms, {model.summary.model_mb:.3f} MB; "
          f"test ROC AUC {model.score(X_test, y_test):.4f}")

    # one compact LightGBM model trained on the model's probabilities over the training rows and perturbed copies
    student = model.distill(time_budget=BUDGET / 2)
    print(f"{student}; test ROC AUC {student.score(X_test, y_test):.4f}")

    # one ONNX graph each, checked in onnxruntime against the model's own predictions
    try:
        print(model.export("model.onnx").describe())
    except ExportError as error:  # a member without an ONNX converter is named, with the reason
        print(f"the model was not exported: {error}")
    print(student.export("student.onnx", X=X_train).describe())

    import onnxruntime  # serve the student without this package: encode a row as the JSON beside the file says

    encoding = json.loads(open("student.onnx.json").read())["input"]
    row = X_test.iloc[:1][encoding["columns"]].to_numpy(dtype=np.float64)
    session = onnxruntime.InferenceSession("student.onnx", providers=["CPUExecutionProvider"])
    probabilities, label = session.run(None, {"X": row})
    assert np.allclose(probabilities, student.predict_proba(X_test.iloc[:1]), atol=1e-4)
    print(f"onnxruntime: P(class 1) = {probabilities[0, 1]:.4f} for the first test row")
