"""Optuna set up the same way wherever the engine drives a study (the search, distillation, meta-hyperparameters):
its samplers, and its log kept quiet."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any

import optuna

from automl.errors import ConfigError


@contextmanager
def quiet_optuna():
    """Optuna's INFO log and its warnings about features we use on purpose, off while we drive it."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            yield
    finally:
        optuna.logging.set_verbosity(previous)


def make_sampler(sampler: Any, seed: int, n_jobs: int) -> optuna.samplers.BaseSampler:
    """``"tpe"`` (multivariate, conditional-aware; the default), ``"random"``, or an Optuna sampler."""
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    if sampler in (None, "tpe"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed, constant_liar=n_jobs > 1)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"sampler must be 'tpe', 'random' or an Optuna sampler, got {sampler!r}")
