"""The shipped portfolios: for each task kind and time budget, the configurations to run first, in order.

They were learned offline by replaying searches on the prediction repository
(:mod:`automl.knowledge.portfolio_build`, ``python -m automl.knowledge.portfolio_build``)
and ship as a small JSON table, so choosing one costs a dictionary lookup at fit
time: no meta-features, no fitted model. A fit of budget ``B`` takes the
portfolio learned for the largest tabulated budget not above ``B`` (the
smallest below it); a fit without a time budget takes the one learned without.

>>> portfolio = shipped_portfolio("classification", 10, rows=500)
>>> portfolio.budget, portfolio.covers(500), len(portfolio.configs) > 3
(10.0, True, True)
>>> portfolio.configs[0].learner in {"lightgbm", "hgb", "random_forest", "extra_trees", "linear", "svm", "knn"}
True
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from metaknowledge.shipped import shipped_directory
from searchspaces import Config

PORTFOLIO_FILE = Path(__file__).with_name("data") / "portfolios.json"
# A table to read instead of the shipped one: a benchmark's portfolios learned without its own datasets.
TABLE_ENV = "AUTOML_PORTFOLIOS"
TABLE_FORMAT = 1
MAX_MEMBERS = 16  # the longest portfolio: past it, the optimiser's proposals are worth more
# The row ranges a budget's portfolios are learned for apart: (fewest, most) rows, None for no limit.
ROW_REGIONS: tuple[tuple[int, int | None], ...] = ((0, 1_000), (1_001, None))


def in_region(rows: int, region: tuple[int, int | None]) -> bool:
    """Whether ``rows`` lies in ``region`` (fewest, most rows; None for no limit).

    >>> [in_region(rows, ROW_REGIONS[0]) for rows in (300, 48_000)]
    [True, False]
    """
    low, high = region
    return low <= rows and (high is None or rows <= high)


@dataclass(frozen=True)
class Portfolio:
    """An ordered list of configurations for one task kind at one budget (None: no time budget), for data of
    ``min_rows`` to ``max_rows`` rows (None: no upper limit)."""

    kind: str
    budget: float | None
    configs: tuple[Config, ...]
    min_rows: int = 0
    max_rows: int | None = None

    @property
    def method(self) -> str:
        """How the search's leaderboard names where these configurations came from."""
        return "portfolio" if self.budget is None else f"portfolio@{self.budget:g}s"

    def covers(self, rows: int) -> bool:
        """Whether data of ``rows`` rows falls in this portfolio's region."""
        return in_region(rows, (self.min_rows, self.max_rows))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "budget": self.budget, "min_rows": self.min_rows, "max_rows": self.max_rows,
                "configs": [c.to_dict() for c in self.configs]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Portfolio:
        budget = data["budget"]
        return cls(data["kind"], None if budget is None else float(budget),
                   tuple(Config.from_dict(c) for c in data["configs"]), int(data.get("min_rows", 0)),
                   data.get("max_rows"))


@dataclass(frozen=True)
class PortfolioTable:
    """Every portfolio of one build, and what it was built from."""

    portfolios: tuple[Portfolio, ...]
    built_from: str = ""  # the repository's tasks, as the build describes them

    def lookup(self, kind: str, time_budget: float | None, rows: int | None = None) -> Portfolio | None:
        """The portfolio for ``kind`` at ``time_budget`` and for data of ``rows`` rows (see the module docstring;
        without ``rows``, the one for the fewest rows); None when there is none."""
        first_region: dict[float | None, Portfolio] = {}  # per budget, the region of the fewest rows that fits
        for portfolio in sorted(self.portfolios, key=lambda p: p.min_rows):
            if portfolio.kind == kind and (rows is None or portfolio.covers(rows)):
                first_region.setdefault(portfolio.budget, portfolio)
        mine = list(first_region.values())
        if time_budget is None:
            return next((p for p in mine if p.budget is None), None)
        timed = sorted((p for p in mine if p.budget is not None), key=lambda p: p.budget)
        if not timed:
            return None
        below = [p for p in timed if p.budget <= time_budget]
        return below[-1] if below else timed[0]

    def to_json(self) -> str:
        return json.dumps({"format": TABLE_FORMAT, "built_from": self.built_from,
                           "portfolios": [p.to_dict() for p in self.portfolios]}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "the portfolio table") -> PortfolioTable:
        data = json.loads(text)
        if data.get("format") != TABLE_FORMAT:
            raise ValueError(f"{source} holds portfolio table format {data.get('format')}, this engine reads "
                             f"{TABLE_FORMAT}: rebuild it with python -m automl.knowledge.portfolio_build")
        return cls(tuple(Portfolio.from_dict(p) for p in data["portfolios"]), data.get("built_from", ""))

    def write(self, path: Path = PORTFOLIO_FILE) -> Path:
        path.write_text(self.to_json())
        return path

    @classmethod
    def read(cls, path: Path = PORTFOLIO_FILE) -> PortfolioTable:
        return cls.from_json(path.read_text(), str(path))


def shipped_table() -> PortfolioTable:
    """The table shipped with the engine, or the one ``AUTOML_PORTFOLIOS`` names.

    Empty where there is none, and where the shipped knowledge is switched off
    (``AUTOML_SHIPPED_KB=none``): the portfolios are shipped knowledge too.
    """
    explicit = os.environ.get(TABLE_ENV)
    if explicit:
        return _read_table(explicit)
    return _read_table(str(PORTFOLIO_FILE)) if shipped_directory() is not None else PortfolioTable(())


@cache
def _read_table(path: str) -> PortfolioTable:
    if not Path(path).exists():
        return PortfolioTable(())
    return PortfolioTable.read(Path(path))


def shipped_portfolio(kind: str, time_budget: float | None, rows: int | None = None) -> Portfolio | None:
    """The shipped portfolio of ``kind`` at ``time_budget`` for ``rows`` rows (None where the table has none)."""
    return shipped_table().lookup(kind, time_budget, rows)


def explicit_table() -> bool:
    """Whether ``AUTOML_PORTFOLIOS`` names the table to use as it is (no refit from the user's searches)."""
    return bool(os.environ.get(TABLE_ENV))
