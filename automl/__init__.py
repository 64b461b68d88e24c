"""An AutoML engine that learns to learn.

>>> import automl
>>> model = automl.fit("train.csv", target="label", time_budget=60)  # doctest: +SKIP
>>> model.leaderboard()                                              # doctest: +SKIP
>>> model.save("model.pkl"); automl.load("model.pkl")               # doctest: +SKIP
"""

import logging

from automl.engine import fit, zero_shot
from automl.errors import AutoMLError, ConfigError, DataError, ModelFileError, SearchFailed
from automl.estimators import AutoMLClassifier, AutoMLRegressor
from automl.model import AutoModel, load

__version__ = "0.1.0"

logging.getLogger("automl").addHandler(logging.NullHandler())

__all__ = [
    "AutoMLClassifier",
    "AutoMLError",
    "AutoMLRegressor",
    "AutoModel",
    "ConfigError",
    "DataError",
    "ModelFileError",
    "SearchFailed",
    "fit",
    "load",
    "zero_shot",
]
