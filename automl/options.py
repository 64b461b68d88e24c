"""Every option of a search, as one typed object: what ``fit``, ``work``, the estimators and the CLI build.

:func:`automl.fit` takes these as keyword arguments and builds a
:class:`FitOptions`; the estimators build one from their parameters, the CLI
from its flags, and :func:`automl.engine.work` from its keywords. The engine
reads each option from here, so an option can be followed from the API to
where it is used, and checked once, when the object is built, with an error
that says the fix. (In the spirit of Ray Tune's ``TuneConfig``/``RunConfig``.)

>>> from automl.options import FitOptions
>>> FitOptions(time_budget=30, learners=("lightgbm",)).time_budget
30
>>> FitOptions(ensemble_size=0)  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
automl.errors.ConfigError: ensemble_size must be a whole number of at least 1 ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from automl.errors import ConfigError
from automl.pipeline.footprint import Limits
from automl.search.budget import check_budget
from automl.search.ensemble import ENSEMBLE_SIZE
from metaknowledge.location import LocationError, database_url
from searchspaces import Config

FINAL_FITS = ("auto", "refit", "bag")
BAG_MAX_ROWS = 5_000  # "auto" bags on data this small (see FitOptions.bagging)


@dataclass(frozen=True)
class FitOptions:
    """The options of one search, grouped by what they decide (see :func:`automl.fit` for each one's meaning)."""

    # What the data is
    target: str | None = None
    task: str | None = None
    categorical: Sequence[str | int] | None = None
    # What is searched, and how it is scored
    metric: str | None = None
    learners: Sequence[str] | None = None
    space: str | None = None
    initial_configs: Sequence[Config | Mapping[str, Any]] | None = None
    resampling: str = "auto"
    n_folds: int | None = None
    # How long
    time_budget: float | None = 60.0
    n_trials: int | None = None
    trial_time_limit: float | None = None
    memory_limit: float | None = None
    # Where trials run
    backend: Any = "optuna"
    n_jobs: int = 1
    address: str | None = None
    resources_per_trial: Mapping[str, float] | None = None
    max_concurrent: int | None = None
    storage: Any = None
    study_name: str | None = None
    sampler: Any = "tpe"
    pruner: Any = "auto"
    seed: int = 0
    # Meta-knowledge
    warm_start: bool | int = True
    remember: bool = True
    kb: str | None = None
    meta_init: Any = None
    # The final model, and what is written about it
    ensemble_size: int = ENSEMBLE_SIZE
    final_fit: str = "auto"  # "refit" on the training rows, "bag" the search's fold models, "auto": by the data
    max_predict_ms: float | None = None
    max_model_mb: float | None = None
    report: str | None = None
    verbose: int = 1

    def __post_init__(self) -> None:
        check_budget(self.time_budget, self.n_trials)
        if self.trial_time_limit is not None and not self.trial_time_limit > 0:
            raise ConfigError(f"trial_time_limit must be a positive number of seconds, got {self.trial_time_limit}")
        size = self.ensemble_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError("ensemble_size must be a whole number of at least 1 (1: the best model alone), "
                              f"got {size!r}")
        if self.final_fit not in FINAL_FITS:
            raise ConfigError(f"final_fit must be one of {list(FINAL_FITS)}, got {self.final_fit!r}")
        warm = self.warm_start
        if not (warm is None or isinstance(warm, bool) or (isinstance(warm, int) and warm >= 1)):
            raise ConfigError(f"warm_start must be True, False or a positive number of configurations, got {warm!r}")
        Limits(self.max_predict_ms, self.max_model_mb)  # raises ConfigError for a limit that is not a positive number
        if isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int) or self.n_jobs < 1:
            raise ConfigError(f"n_jobs must be a whole number of at least 1, got {self.n_jobs!r}")
        if self.kb is not None:
            try:
                database_url(self.kb)
            except LocationError as error:
                raise ConfigError(str(error)) from None

    @classmethod
    def build(cls, **options: Any) -> FitOptions:
        """``FitOptions(**options)``, with an unknown option named in a :class:`ConfigError` instead of a TypeError."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown options {unknown}; the options are {sorted(known)}")
        return cls(**options)

    def replace(self, **changes: Any) -> FitOptions:
        """A copy with ``changes`` (checked like the original)."""
        return dataclasses.replace(self, **changes)

    def bagging(self, n_rows: int) -> bool:
        """Whether the final model averages its members' fold models from the search rather than refitting them:
        ``final_fit="bag"``, or ``"auto"`` on data of at most ``BAG_MAX_ROWS`` rows without serving limits (a bag
        of fold models predicts several times slower), searched in this process's workers (Optuna)."""
        if self.final_fit == "auto":
            return n_rows <= BAG_MAX_ROWS and not self.limits.any and self.backend == "optuna"
        return self.final_fit == "bag"

    @property
    def limits(self) -> Limits:
        """The final model's bounds on single-row latency and size."""
        return Limits(self.max_predict_ms, self.max_model_mb)

    @property
    def trial_limit(self) -> float | None:
        """Seconds each trial may run: ``trial_time_limit``, else a share of the budget (None: no limit)."""
        if self.trial_time_limit is not None:
            return self.trial_time_limit
        return self.time_budget * TRIAL_SHARE if self.time_budget else None


TRIAL_SHARE = 1 / 3  # default per-trial time limit, as a share of the budget
