"""An AutoML engine that learns to learn.

>>> import automl
>>> model = automl.fit("train.csv", target="label", time_budget=60)  # doctest: +SKIP
>>> model.leaderboard()                                              # doctest: +SKIP
>>> model.save("model.pkl"); automl.load("model.pkl")               # doctest: +SKIP
"""

import logging

from automl._version import __version__
from automl.engine import fit, zero_shot
from automl.errors import AutoMLError, ConfigError, DataError, ExportError, ModelFileError, SearchFailed
from automl.estimators import AutoMLClassifier, AutoMLRegressor
from automl.model import AutoModel, load
from automl.model_file import SavedModel

logging.getLogger("automl").addHandler(logging.NullHandler())


def meta_fit(series, **options):
    """Meta-train a network across a task series (needs torch): see :func:`automl.learn2learn.meta_fit.meta_fit`."""
    from automl.learn2learn.meta_fit import meta_fit as run  # here, so that importing automl needs no torch

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
    "SavedModel",
    "SearchFailed",
    "__version__",
    "fit",
    "load",
    "meta_fit",
    "zero_shot",
]
