"""How long the final fit of a configuration will likely take on all rows, from what its trial's fits took."""

from __future__ import annotations

from dataclasses import dataclass, field

from automl.search.budget import REFIT_SAFETY
from automl.search.evaluation import Evaluator, TrialResult


@dataclass(frozen=True)
class RefitScale:
    """What the budget needs to estimate the final fit from a trial's fit time."""

    folds: int
    fold_rows: int
    total_rows: int
    fit_exponents: dict[str, float] = field(default_factory=dict)  # learner -> training time's growth with rows

    @classmethod
    def of(cls, evaluator: Evaluator) -> RefitScale:
        exponents = {name: learner.fit_exponent for name, learner in evaluator.learners.items()}
        return cls(len(evaluator.splits), evaluator.n_train_rows, len(evaluator.y), exponents)

    def refit_seconds(self, result: TrialResult) -> float:
        """The likely time to fit ``result``'s configuration on all rows (training time grows as
        rows ** fit_exponent)."""
        growth = max(1.0, self.total_rows / max(1, self.fold_rows)) ** self._exponent(result)
        return result.fit_seconds / self.folds * growth * REFIT_SAFETY

    def rows_within(self, result: TrialResult, seconds: float) -> int:
        """How many rows a fit of ``result``'s configuration can take in ``seconds`` (the inverse, without the
        safety)."""
        growth = max(0.0, seconds) / max(result.fit_seconds / self.folds, 1e-9)
        return int(self.fold_rows * growth ** (1 / self._exponent(result)))

    def _exponent(self, result: TrialResult) -> float:
        return self.fit_exponents.get(result.config.learner, 1.0)
