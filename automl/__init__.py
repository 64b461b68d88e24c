"""An AutoML engine that learns to learn.

>>> import automl
>>> model = automl.fit("train.csv", target="label", time_budget=60)  # doctest: +SKIP
>>> model.leaderboard()                                              # doctest: +SKIP
>>> model.save("model.pkl"); automl.load("model.pkl")               # doctest: +SKIP
"""

import logging

from automl.engine import fit, zero_shot
from automl.errors import AutoMLError, ConfigError, DataError, ExportError, ModelFileError, SearchFailed
from automl.estimators import AutoMLClassifier, AutoMLRegressor
from automl.model import AutoModel, load

__version__ = "0.1.0"

logging.getLogger("automl").addHandler(logging.NullHandler())



def meta_fit(series, **options):
    """Meta-train a network across a task series (needs torch): see :func:`automl.meta_model.meta_fit`."""
    from automl.meta_model import meta_fit as run

    return run(series, **options)


__all__ = [
    "AutoMLClassifier",
    "AutoMLError",
    "AutoMLRegressor",
    "AutoModel",
    "ConfigError",
    "DataError",
    "ExportError",
    "ModelFileError",
    "SearchFailed",
    "fit",
    "load",
    "meta_fit",
    "zero_shot",
]
