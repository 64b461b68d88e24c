"""Model files: the base every model a user saves and loads shares, the header its file carries, and the map that
lets files saved before the engine's modules moved keep loading.

A fitted model (:class:`automl.model.AutoModel`), its distilled student
(:class:`automl.serving.distill.DistilledModel`) and a meta-model
(:class:`automl.learn2learn.meta_model.MetaModel`) are each a :class:`SavedModel`:
they predict, save to one file, and export where that applies. :func:`read_model`
reads any of them back and tells them apart by their class, never by a name.

The file is a pickle (joblib, compressed): load only files you trust. ONNX
(``export``) is the format to hand to others.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np
import sklearn
from joblib import numpy_pickle

from automl._version import __version__
from automl.errors import ExportError, ModelFileError

log = logging.getLogger(__name__)

FILE_FORMAT = "automl-model"
LEGACY_META_FORMAT = "automl-meta-model"  # meta-models saved before they shared the header of the others
FILE_VERSION = 3  # 3: the Ensemble is weighted; 2: equal weights; 1: a single pipeline

# Where the classes of files saved before version 0.2 live now: module -> the modules that may hold its names.
MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "automl.budget": ("automl.search.budget",),
    "automl.column_kinds": ("automl.data.column_kinds",),
    "automl.data": ("automl.data.dataset", "automl.data.schema"),
    "automl.distill": ("automl.serving.distill",),
    "automl.ensemble": ("automl.search.ensemble",),
    "automl.evaluation": ("automl.search.evaluation",),
    "automl.export": ("automl.serving.export",),
    "automl.final_model": ("automl.search.final_model",),
    "automl.footprint": ("automl.pipeline.footprint",),
    "automl.leaderboard": ("automl.search.leaderboard",),
    "automl.lean_pipeline": ("automl.pipeline.lean",),
    "automl.linear_student": ("automl.serving.linear_student",),
    "automl.meta_algorithms": ("automl.learn2learn.algorithms",),
    "automl.meta_init": ("automl.learn2learn.meta_init",),
    "automl.meta_model": ("automl.learn2learn.meta_model",),
    "automl.metrics": ("automl.search.metrics",),
    "automl.omniglot": ("automl.learn2learn.omniglot",),
    "automl.preprocessing": ("automl.pipeline.preprocessing",),
    "automl.probabilities": ("automl.pipeline.probabilities",),
    "automl.row_encoder": ("automl.pipeline.row_encoder",),
    "automl.series": ("automl.learn2learn.series",),
    "automl.sources": ("automl.data.sources",),
    "automl.task": ("automl.data.task",),
    "automl.text_features": ("automl.data.text_features",),
    "automl.warm": ("automl.knowledge.warm_start",),
    "automl.warm_knowledge": ("automl.knowledge.prepared",),
    "automl.worker": ("automl.search.worker",),
    "searchspaces.torch_nets": ("searchspaces.networks.layers", "searchspaces.networks.estimators"),
    "searchspaces.compression": ("searchspaces.networks.compression",),
}


class SavedModel(ABC):
    """What :func:`automl.load` returns: a model that predicts, saves to one file and, where it applies, exports.

    ``kind`` names it for people ("model", "student", "meta-model").
    """

    kind: ClassVar[str]

    @abstractmethod
    def predict(self, X: Any) -> np.ndarray:
        """Predictions for the rows of ``X``."""

    def save(self, path: str | Path) -> Path:
        """Write the model to ``path`` (a pickle: load only files you trust); ``automl.load(path)`` reads it back."""
        return write_model(self, path)

    def export(self, path: str | Path, format: str = "onnx", X: Any = None) -> Any:
        """Write the model in a portable format; a kind of model that has none says so."""
        raise ExportError(f"a {self.kind} cannot be exported: export the model that automl.fit returns, or its student")


class TaskModel(SavedModel):
    """A saved model of one tabular task (``task``, a :class:`~automl.data.task.TaskInfo`): its metric and classes."""

    task: Any

    @property
    def metric(self) -> str:
        """The task's metric, the one the search optimised."""
        return self.task.metric

    @property
    def classes_(self) -> np.ndarray:
        """The classes, in the order of ``predict_proba``'s columns."""
        if self.task.task == "regression":
            raise AttributeError("a regression model has no classes_")
        return np.asarray(self.task.classes)


def write_model(model: SavedModel, path: str | Path) -> Path:
    """Write ``model`` with the header :func:`read_model` checks."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FILE_FORMAT, "version": FILE_VERSION, "kind": model.kind, "engine": __version__,
               "sklearn": sklearn.__version__, "model": model}
    joblib.dump(payload, path, compress=3)
    return path


def read_model(path: str | Path) -> SavedModel:
    """The model in a file written by :func:`write_model` (or by an earlier version of the engine), checked."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelFileError(f"no such model file: {str(path)!r}")
    try:
        payload = _unpickle(path)
    except Exception as error:  # what the unpickler tripped over says nothing to the user: kept for a bug report
        log.debug("reading %s as a model failed: %s: %s", path, type(error).__name__, error)
        raise ModelFileError(f"{str(path)!r} is not a model saved by automl: it cannot be read as one "
                             "(save one with model.save(path))") from None
    header = payload.get("format") if isinstance(payload, dict) else None
    if header not in (FILE_FORMAT, LEGACY_META_FORMAT):
        raise ModelFileError(f"{str(path)!r} is not a model saved by automl (save one with model.save(path))")
    version, model = payload.get("version", 0), payload.get("model")
    if not isinstance(version, int) or not isinstance(model, SavedModel):
        raise ModelFileError(f"{str(path)!r} has the header of an automl model but not its content: "
                             "save the model again")
    if header == FILE_FORMAT and version > FILE_VERSION:
        raise ModelFileError(
            f"{str(path)!r} was saved by a newer automl (file format {version}); upgrade automl to read it"
        )
    if header == FILE_FORMAT and payload.get("sklearn") != sklearn.__version__:
        log.warning("model saved with scikit-learn %s, loaded with %s: predictions may differ",
                    payload.get("sklearn"), sklearn.__version__)
    return model


class _MovedClassUnpickler(numpy_pickle.NumpyUnpickler):
    """joblib's unpickler, finding each class of :data:`MOVED_MODULES` where it lives now."""

    def find_class(self, module: str, name: str) -> Any:
        for candidate in MOVED_MODULES.get(module, ()):
            try:
                return super().find_class(candidate, name)
            except AttributeError:
                continue
        return super().find_class(module, name)


_UNPICKLER_LOCK = threading.Lock()


def _unpickle(path: Path) -> Any:
    """``joblib.load(path)`` with :class:`_MovedClassUnpickler` in the place of joblib's own unpickler."""
    with _UNPICKLER_LOCK:
        original = numpy_pickle.NumpyUnpickler
        numpy_pickle.NumpyUnpickler = _MovedClassUnpickler
        try:
            return joblib.load(path)
        finally:
            numpy_pickle.NumpyUnpickler = original
