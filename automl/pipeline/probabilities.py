"""A classifier's probabilities with one column per class of the task, whichever classes its training part held.

A fold's training rows may lack a rare class, and some models have no
``predict_proba``; every place that combines or scores probabilities reads them
through :func:`aligned_proba` so their columns always mean the same classes.

>>> import numpy as np
>>> from sklearn.dummy import DummyClassifier
>>> model = DummyClassifier(strategy="prior").fit(np.zeros((4, 1)), [0, 2, 2, 2])
>>> aligned_proba(model, np.zeros((1, 1)), 3).tolist()
[[0.25, 0.0, 0.75]]
"""

from __future__ import annotations

from typing import Any

import numpy as np


def aligned_proba(model: Any, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities with one column per class of the task, in order."""
    classes = np.asarray(getattr(model, "classes_", np.arange(n_classes))).astype(int)
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(X), dtype=float)
    else:
        proba = np.eye(len(classes))[np.searchsorted(classes, np.asarray(model.predict(X)).astype(int))]
    full = np.zeros((proba.shape[0], n_classes))
    full[:, classes] = proba
    return full
