"""``fit(meta_init=)``: a neural learner that starts from a meta-learned initialization.

A user with many small related datasets meta-trains a network once
(:func:`automl.meta_fit` on a series of them) and then fits each new one with
``automl.fit(X, y, learners=["mlp"], meta_init=meta)``. The learner
``"meta_mlp"`` built here takes the place of ``"mlp"``: its estimator starts
from the meta-learned weights and takes ``steps`` full-batch gradient steps on
the training rows at the meta-learned per-parameter rates (learned by
Meta-SGD, the constant inner rate otherwise) times ``rate_scale``; the search
tunes those two. Adaptation is :meth:`MetaModel.adapt`, the inner loop the
network was meta-trained with, not a second one.

The columns reach the network as they did in the series: raw numbers (no
scaling; missing values imputed), categorical columns as integer codes, in the
table's column order.

>>> meta = automl.meta_fit(automl.learn2learn.series.from_groups(frame, "y", "site"), time_budget=60)  # doctest: +SKIP
>>> model = automl.fit(X_new_site, y_new_site, learners=["mlp"], meta_init=meta)         # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from torch import nn

from automl.errors import ConfigError
from automl.learn2learn.algorithms import MetaLearner
from automl.learn2learn.maml_plus_plus import MAMLPlusPlus
from automl.learn2learn.meta_model import AdaptedNetwork, MetaModel
from automl.model_file import read_model
from automl.pipeline.preprocessing import make_preprocessor
from searchspaces import BuildContext, Float, Int, Learner, Preprocessing, SearchSpace

NAME = "meta_mlp"
REPLACES = "mlp"  # the learner it takes the place of, when that one is searched
PREPROCESSING = Preprocessing(categorical="ordinal", scale=False, impute=True)  # the columns as the series fed them
MAX_STEPS = 100


def load_meta_model(meta_init: MetaModel | str | Path) -> MetaModel:
    """``meta_init`` itself, or the meta-model saved at that path (by ``MetaModel.save``)."""
    if isinstance(meta_init, (str, Path)):
        loaded = read_model(meta_init)
        if not isinstance(loaded, MetaModel):
            raise ConfigError(f"meta_init: {str(meta_init)!r} holds a {loaded.kind}, not a meta-learned "
                              "network; save one with automl.meta_fit(...).save(path)")
        return loaded
    if not isinstance(meta_init, MetaModel):
        raise ConfigError(f"meta_init must be a MetaModel (from automl.meta_fit) or the path of a saved one, "
                          f"got {type(meta_init).__name__}")
    return meta_init


def check_meta_model(meta: MetaModel, task_kind: str, n_features: int, n_classes: int) -> None:
    """Refuse, with the fix, a meta-model that cannot start a fit on this data."""
    if not isinstance(meta.learner, MetaLearner) or isinstance(meta.learner, MAMLPlusPlus):
        raise ConfigError(f"meta_init: a {meta.algorithm} meta-model has no plain initialization for a network to "
                          "start from; meta-train with maml, fomaml, metasgd, anil or reptile, or predict with "
                          "meta.adapt(X, y) directly")
    if meta.task != task_kind:
        raise ConfigError(f"meta_init: the meta-model was meta-trained for {meta.task} but this dataset is a "
                          f"{task_kind} task; meta-train on a {task_kind} series")
    inputs = network_inputs(meta.learner.model)
    if inputs is not None and inputs != n_features:
        raise ConfigError(f"meta_init: the meta-model's network takes {inputs} features but this dataset has "
                          f"{n_features} feature columns; the meta-model must be trained on tables with the same "
                          "feature columns as this one, in the same order")
    if inputs is None:
        _check_runs_on(meta.learner.model, n_features)
    outputs = int(list(meta.learner.params.values())[-1].shape[0])
    if task_kind == "classification" and n_classes > outputs:
        raise ConfigError(f"meta_init: this dataset has {n_classes} classes but the meta-model was trained for "
                          f"{outputs}-way tasks; meta-train with ways={n_classes}")


def network_inputs(model: nn.Module) -> int | None:
    """How many features ``model`` takes, when its first layer with weights is linear (else None: unknown)."""
    first = next((m for m in model.modules() if next(m.parameters(recurse=False), None) is not None), None)
    return first.in_features if isinstance(first, nn.Linear) else None


def _check_runs_on(model: nn.Module, n_features: int) -> None:
    """Refuse a network that does not accept rows of ``n_features`` values (one whose input size is not plain)."""
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model(torch.zeros(2, n_features, device=device))
    except RuntimeError as error:
        raise ConfigError(f"meta_init: the meta-model's network does not take rows of {n_features} feature columns "
                          f"({error}); the meta-model must be trained on tables with the same "
                          "feature columns") from None


def network_order(X: pd.DataFrame, categorical: Sequence[str]) -> tuple[int, ...] | None:
    """Where each of the table's columns lands after :data:`PREPROCESSING` (which puts categorical ones first).

    None when the order is kept (no categorical column ahead of a numeric one).
    """
    transformer, _ = make_preprocessor(PREPROCESSING, X, tuple(categorical))
    output = [column for _, _, columns in transformer.transformers for column in columns]
    order = tuple(output.index(column) for column in X.columns)
    return None if order == tuple(range(len(order))) else order


def adaptation_copy(learner: MetaLearner, device: str | torch.device = "cpu", rate_scale: float = 1.0) -> MetaLearner:
    """A copy of ``learner`` that only adapts: on ``device``, its rates times ``rate_scale``, no optimizer.

    The original is untouched; the copy's tensors are detached, so it pickles
    (into worker processes, inside a saved model) and deep-copies.
    """
    clone = copy.copy(learner)
    clone.model, clone.optimizer = copy.deepcopy(learner.model), None
    clone.to(device)
    clone.params = {name: p.detach() for name, p in clone.params.items()}
    clone.rates = {name: (rate * rate_scale).detach() for name, rate in clone.rates.items()}
    return clone


class _MetaInitEstimator(BaseEstimator):
    """Fits by adapting ``meta``'s network on the training rows: ``steps`` steps at its rates times ``rate_scale``."""

    def __init__(self, meta: MetaModel | None = None, steps: int = 10, rate_scale: float = 1.0,
                 order: tuple[int, ...] | None = None, device: str = "cpu"):
        self.meta = meta
        self.steps = steps
        self.rate_scale = rate_scale
        self.order = order
        self.device = device

    def fit(self, X: Any, y: Any) -> _MetaInitEstimator:
        learner = adaptation_copy(self.meta.learner, self.device, self.rate_scale)
        self.network_: AdaptedNetwork = dataclasses.replace(self.meta, learner=learner).adapt(self._inputs(X), y,
                                                                                              self.steps)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.network_.predict(self._inputs(X))

    def _inputs(self, X: Any) -> np.ndarray:
        """The rows as the network saw them in the series: float32, in the table's column order."""
        X = np.asarray(X, dtype=np.float32)
        return X[:, list(self.order)] if self.order is not None else X


class MetaInitRegressor(RegressorMixin, _MetaInitEstimator):
    """A meta-learned regression network, adapted to the training rows."""


class MetaInitClassifier(ClassifierMixin, _MetaInitEstimator):
    """A meta-learned classification network, adapted to the training rows (labels as given)."""

    def fit(self, X: Any, y: Any) -> MetaInitClassifier:
        super().fit(X, y)
        self.classes_ = self.network_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        return self.network_.predict_proba(self._inputs(X))


class MetaInitFactory:
    """The learner's ``build``: a class, not a closure, so the learner pickles into worker processes."""

    def __init__(self, meta: MetaModel, order: tuple[int, ...] | None = None):
        self.meta, self.order = meta, order

    def __call__(self, params: Mapping[str, Any], context: BuildContext) -> _MetaInitEstimator:
        cls = MetaInitRegressor if context.task == "regression" else MetaInitClassifier
        return cls(self.meta, steps=params["steps"], rate_scale=params["rate_scale"], order=self.order,
                   device=context.device)


def meta_init_learner(meta: MetaModel, order: tuple[int, ...] | None = None) -> Learner:
    """The ``"meta_mlp"`` learner for ``meta``: its steps and rate scale searched, a CPU copy of it in its estimators.

    The cheap corner adapts as in meta-training (its inner steps, its rates);
    the default takes 10 steps.
    """
    cpu = dataclasses.replace(meta, learner=adaptation_copy(meta.learner, "cpu"))
    trained_steps = min(max(int(meta.learner.inner_steps), 1), MAX_STEPS)
    space = SearchSpace((
        Int("steps", 1, MAX_STEPS, log=True, default=10, low_cost=trained_steps),
        Float("rate_scale", 0.1, 10.0, log=True, default=1.0),
    ), name=NAME)
    return Learner(
        name=NAME,
        tasks=frozenset({meta.task}),
        space=space,
        build=MetaInitFactory(cpu, order),
        preprocessing=PREPROCESSING,
        cost=0.5,
        description=f"network meta-learned by {meta.algorithm}, adapted to the training rows (fit(meta_init=))",
    )


def with_meta_learner(learners: Mapping[str, Learner], meta_learner: Learner) -> dict[str, Learner]:
    """``learners`` with ``meta_learner`` in the place of ``"mlp"`` if that is searched, else added at the end."""
    if REPLACES not in learners:
        return {**learners, meta_learner.name: meta_learner}
    return {(meta_learner.name if name == REPLACES else name): (meta_learner if name == REPLACES else learner)
            for name, learner in learners.items()}


__all__ = ["MetaInitClassifier", "MetaInitFactory", "MetaInitRegressor", "adaptation_copy", "check_meta_model",
           "load_meta_model", "meta_init_learner", "network_inputs", "network_order", "with_meta_learner"]
