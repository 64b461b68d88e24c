"""What every search backend receives and returns.

A backend gets a :class:`SearchPlan` (the space and the configurations to
try first), an evaluator, a :class:`~automl.search.budget.Budget` and a callback,
and returns trial results. It does not know where the initial configurations
came from: defaults, a warm start or a user's list look the same to it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from automl.search.budget import Budget
from automl.search.evaluation import Evaluator, TrialResult
from searchspaces import Config, SearchSpace

ResultCallback = Callable[[TrialResult], None]


@dataclass
class SearchPlan:
    """The joint space to search and the configurations to evaluate first.

    ``initial`` pairs each configuration with its origin (``"default"``,
    ``"warm:<method>"``, ...), which the leaderboard reports. ``priors`` maps a
    learner to a narrowed region of its space: once the initial configurations
    are used, a ``prior_share`` of new trials is drawn from those regions
    (origin ``"prior"``) and the rest from the sampler over the full space, so
    a wrong prior cannot trap the search. ``final_models`` is how many of the
    best configurations the final model may refit, which the budget's reserve
    for that fit allows for. ``avoid`` holds the keys of configurations known
    to time out or fail on this data: the search never runs them.
    ``on_started`` is work for this process once the first trials run (priming
    imports for the workers it starts later), so that it does not delay them.
    With ``keep_fold_models`` the leading trials send back their fold
    pipelines, for a final model that averages them instead of refitting
    (backends that cannot, such as Ray's, leave it to the refit).
    """

    space: SearchSpace
    initial: list[tuple[Config, str]] = field(default_factory=list)
    priors: dict[str, SearchSpace] = field(default_factory=dict)
    prior_share: float = 0.5
    final_models: int = 1
    avoid: frozenset[str] = frozenset()
    on_started: Callable[[], None] | None = None
    keep_fold_models: bool = False

    def started(self) -> None:
        """Run ``on_started`` (once): the backend calls this when its first trials are running."""
        if self.on_started is not None:
            work, self.on_started = self.on_started, None
            work()

    def draw_from_priors(self, rng) -> Config | None:
        """A configuration from the priors, or None when this trial should come from the full space."""
        if not self.priors or rng.random() >= self.prior_share:
            return None
        learner = list(self.priors)[int(rng.integers(len(self.priors)))]
        return Config(learner, self.priors[learner].sample(rng))


class Backend(ABC):
    """Runs a search; see the module docstring."""

    name = "backend"
    interrupted = False  # set when the user stopped the search (Ctrl-C)

    @abstractmethod
    def run(self, plan: SearchPlan, evaluator: Evaluator, budget: Budget,
            on_result: ResultCallback) -> list[TrialResult]:
        """Evaluate configurations until the budget is spent; every result also goes to ``on_result``."""
