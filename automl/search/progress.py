"""The progress bar shown during a search, and the log switch for ``verbose``.

``verbose=0``: silent. ``1``: a progress bar (time or trials, trials done,
best score, seconds left). ``2``: also the engine's log at INFO level, one line per trial.
Logging is otherwise quiet: the package only adds a ``NullHandler``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

from automl.search.budget import Budget
from automl.search.evaluation import TrialResult
from automl.search.metrics import Metric

log = logging.getLogger("automl")


@contextmanager
def log_level(verbose: int) -> Iterator[None]:
    """Show the engine's INFO log on stderr while ``verbose >= 2``."""
    if verbose < 2:
        yield
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    previous = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)


class SearchProgress:
    """A tqdm bar over the time budget (or the trial budget)."""

    def __init__(self, budget: Budget, metric: Metric, verbose: int):
        self.budget = budget
        self.metric = metric
        self.by_time = budget.time_budget is not None
        self.bar = None
        if verbose >= 1:
            total = budget.time_budget if self.by_time else budget.max_trials
            unit = "s" if self.by_time else "trial"
            # tqdm puts ", " before the postfix
            fmt = "{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} " + unit + "{postfix}"
            self.bar = tqdm(total=total, desc="search", bar_format=fmt, leave=True)
        self.trials = 0
        self.best: float | None = None

    def update(self, result: TrialResult) -> None:
        self.trials += 1
        if result.ok and (self.best is None or self.metric.is_better(result.value, self.best)):  # type: ignore[arg-type]
            self.best = result.value
        if result.ok:
            log.info("trial %d %s: %s=%.5f in %.2f s", result.number, result.config, self.metric.name, result.value,
                     result.fit_seconds)
        else:
            log.info("trial %d %s: %s %s", result.number, result.config, result.status, result.error)
        if self.bar is not None:
            position = min(self.budget.elapsed(), self.bar.total) if self.by_time else self.trials
            self.bar.n = position
            best = "-" if self.best is None else f"{self.best:.4f}"
            left = f", {max(0.0, self.budget.remaining()):.0f} s left" if self.by_time else ""
            self.bar.set_postfix_str(f"trials={self.trials} best {self.metric.name}={best}{left}")

    def close(self) -> None:
        if self.bar is not None:
            if self.by_time:
                self.bar.n = min(self.budget.elapsed(), self.bar.total)
            self.bar.refresh()
            self.bar.close()
