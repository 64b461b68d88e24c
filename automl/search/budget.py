"""Wall-clock accounting for one ``fit``: when to stop searching, when to stop a trial.

The budget covers the whole call, final fit included. While searching it keeps
a reserve for fitting the current best configuration on the training data, so
the search stops early enough for that fit to end within the budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from automl.errors import ConfigError

MIN_RESERVE = 0.3  # seconds always kept for the final fit
MAX_RESERVE_SHARE = 0.3  # the reserve never takes more than this share of the budget
REFIT_SAFETY = 1.3  # the final fit on more rows tends to take longer than the scaled estimate
ROWS_PER_SECOND_OF_BUDGET = 2_000  # search on a sample of at most this many rows per budget second
MIN_SEARCH_ROWS = 5_000
MEMBERS_RESERVE_SHARE = 0.1  # the final model's other members may take at most this share of the budget from the search


def check_budget(time_budget: float | None, n_trials: int | None) -> None:
    """Reject budgets that cannot work, with the fix in the message."""
    if time_budget is None and n_trials is None:
        raise ConfigError("give a time_budget (seconds) or n_trials, or both")
    if time_budget is not None:
        if isinstance(time_budget, bool) or not isinstance(time_budget, (int, float)):
            raise ConfigError(f"time_budget must be a number of seconds, got {time_budget!r}")
        if not time_budget > 0:
            raise ConfigError(f"time_budget must be a positive number of seconds, got {time_budget}")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise ConfigError(f"n_trials must be a positive whole number, got {n_trials!r}")


def search_rows(time_budget: float | None) -> int | None:
    """The most rows a search of ``time_budget`` seconds evaluates its trials on (None: all of them).

    >>> search_rows(3), search_rows(10), search_rows(None)
    (5000, 20000, None)
    """
    return None if time_budget is None else max(MIN_SEARCH_ROWS, int(time_budget * ROWS_PER_SECOND_OF_BUDGET))


@dataclass
class Budget:
    """Deadlines for the search and its trials (monotonic clock)."""

    time_budget: float | None
    started: float = field(default_factory=time.monotonic)
    max_trials: int | None = None
    trial_time_limit: float | None = None
    reserve: float = MIN_RESERVE

    @property
    def deadline(self) -> float:
        return float("inf") if self.time_budget is None else self.started + self.time_budget

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def search_deadline(self) -> float:
        """When the search must end so the final fit still fits in the budget."""
        return self.deadline - self.reserve

    def trial_deadline(self) -> float:
        """The deadline of a trial started now."""
        limit = float("inf") if self.trial_time_limit is None else self.trial_time_limit
        return min(time.monotonic() + limit, self.search_deadline())

    def can_start(self, n_started: int) -> bool:
        if self.max_trials is not None and n_started >= self.max_trials:
            return False
        return time.monotonic() < self.search_deadline()

    def plan_refit(self, refits: list[float]) -> None:
        """Keep enough time to fit the final model's members on all rows, within limits.

        ``refits``: each member's likely seconds (``RefitScale.refit_seconds``), the
        incumbent first. The members averaged with the incumbent get a smaller
        share: the search's last trials are worth more than a larger final average.
        """
        if self.time_budget is None or not refits:
            return
        estimate = refits[0] + min(sum(refits[1:]), MEMBERS_RESERVE_SHARE * self.time_budget)
        self.reserve = min(max(MIN_RESERVE, estimate), MAX_RESERVE_SHARE * self.time_budget)
