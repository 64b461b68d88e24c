"""The report's figures, drawn with matplotlib and returned as PNG bytes.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg
canvas, never through ``pyplot``: nothing touches the user's matplotlib
state or needs a display. Each function takes plain data and returns the
PNG's bytes (:mod:`automl.reporting.report` embeds them in the HTML).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from automl.search.evaluation import TrialResult
from automl.search.metrics import Metric

# Where a trial's configuration came from, as the report groups it, and its colour.
ORIGIN_GROUPS = {"warm start": "#d62728", "default": "#7f7f7f", "prior": "#ff7f0e", "search": "#1f77b4",
                 "given": "#8c564b", "other": "#9467bd"}
STEP_COLOUR = "#2ca02c"
BUDGET_PARTS = {"prepare": "#9edae5", "search": "#1f77b4", "final fit": "#ff7f0e", "overhead": "#c7c7c7"}
# boxplot's word for horizontal boxes: orientation= from matplotlib 3.10, vert= before it (deprecated since)
_HORIZONTAL = ({"orientation": "horizontal"} if tuple(map(int, matplotlib.__version__.split(".")[:2])) >= (3, 10)
               else {"vert": False})
TRIM_QUANTILE = 0.1  # score axes show the best 90 % of trials (and every best-so-far value); weaker ones sit below


def origin_group(origin: str) -> str:
    """The report's name for a trial's origin: warm start, default, prior (drawn from the warm start's region), search,
    given (the user's initial configurations) or other."""
    origin = origin.removeprefix("retry:")
    if origin.startswith("warm") or origin == "lr-prior":
        return "warm start"
    if origin == "user":
        return "given"
    return origin if origin in ("default", "prior", "search") else "other"


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float, height: float) -> tuple[Figure, object]:
    figure = Figure(figsize=(width, height))
    axes = figure.add_subplot()
    axes.grid(True, alpha=0.3)
    axes.set_axisbelow(True)
    return figure, axes


def _trimmed_limits(values: np.ndarray, metric: Metric, keep: np.ndarray | None = None) -> tuple[float, float, int]:
    """Axis limits holding the best ``1 - TRIM_QUANTILE`` of ``values`` and all of ``keep``; how many fall outside."""
    losses = metric.loss(values)
    cut = float(np.quantile(losses, 1 - TRIM_QUANTILE)) if len(values) >= 10 else float(losses.max())
    if keep is not None and len(keep):
        cut = max(cut, float(metric.loss(keep).max()))
    inside = values[losses <= cut]
    low, high = float(inside.min()), float(inside.max())
    pad = (high - low) * 0.08 or abs(high) * 0.01 or 0.01
    return low - pad, high + pad, int(np.sum(losses > cut))


def anytime_curve(results: Sequence[TrialResult], metric: Metric) -> tuple[bytes, int]:
    """Every successful trial's score against when it finished, coloured by origin, and the best so far as a step line.

    Returns the PNG and how many weaker trials lie below the trimmed axis.
    """
    ok = sorted((r for r in results if r.ok), key=lambda r: r.finished_at)
    times = np.array([r.finished_at for r in ok])
    values = np.array([r.value for r in ok], dtype=float)
    best = np.array([metric.best(values[: i + 1]) for i in range(len(values))])
    figure, axes = _figure(7.6, 3.8)
    groups = np.array([origin_group(r.origin) for r in ok])
    for group, colour in ORIGIN_GROUPS.items():
        chosen = groups == group
        if chosen.any():
            axes.scatter(times[chosen], values[chosen], s=22, color=colour, alpha=0.8,
                         label=f"{group} ({chosen.sum()})", edgecolors="white", linewidths=0.4, zorder=3)
    axes.step(np.append(times, times[-1] * 1.02 + 0.01), np.append(best, best[-1]), where="post", color=STEP_COLOUR,
              linewidth=2, label="best so far", zorder=2)
    low, high, hidden = _trimmed_limits(values, metric, keep=best)
    axes.set_ylim(low, high)
    axes.set_xlim(left=0)
    axes.set_xlabel("seconds since the search started")
    axes.set_ylabel(f"cross-validation {metric.name}" + ("" if metric.greater_is_better else " (lower is better)"))
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _png(figure), hidden


def score_distribution(results: Sequence[TrialResult], metric: Metric) -> tuple[bytes, int]:
    """A box and the jittered scores of each learner's successful trials, the best learner on top."""
    by_learner: dict[str, list[float]] = {}
    for r in results:
        if r.ok:
            by_learner.setdefault(r.config.learner, []).append(float(r.value))
    names = sorted(by_learner, key=lambda n: metric.loss(metric.best(by_learner[n])), reverse=True)
    everything = np.concatenate([by_learner[n] for n in names])
    figure, axes = _figure(8.5, 0.9 + 0.45 * len(names))
    axes.boxplot([by_learner[n] for n in names], **_HORIZONTAL, widths=0.55, showfliers=False,
                 medianprops={"color": "black"}, boxprops={"color": "#555555"})
    rng = np.random.default_rng(0)
    for position, name in enumerate(names, start=1):
        values = np.asarray(by_learner[name])
        axes.scatter(values, position + rng.uniform(-0.18, 0.18, len(values)), s=14, alpha=0.6, color="#1f77b4",
                     zorder=3)
    axes.set_yticks(range(1, len(names) + 1), [f"{n} ({len(by_learner[n])})" for n in names])
    low, high, hidden = _trimmed_limits(everything, metric,
                                        keep=np.array([metric.best(v) for v in by_learner.values()]))
    axes.set_xlim(low, high)
    axes.set_xlabel(f"cross-validation {metric.name}" + ("" if metric.greater_is_better else " (lower is better)"))
    return _png(figure), hidden


def horizontal_bars(labels: Sequence[str], values: Sequence[float], xlabel: str, errors: Sequence[float] | None = None,
                    colour: str = "#1f77b4", width: float = 6.0) -> bytes:
    """A bar per label, the first on top (parameter importances, ensemble weights, feature importances)."""
    figure, axes = _figure(width, 0.7 + 0.32 * len(labels))
    positions = np.arange(len(labels))[::-1]
    axes.barh(positions, values, xerr=None if errors is None else np.nan_to_num(errors), color=colour, alpha=0.85,
              error_kw={"ecolor": "#444444", "capsize": 2, "linewidth": 0.8})
    axes.set_yticks(positions, [_short_label(label) for label in labels])
    axes.axvline(0, color="black", linewidth=0.6)
    axes.set_xlabel(xlabel)
    return _png(figure)


def feature_importance_bars(frame: pd.DataFrame, metric_name: str, top: int = 25) -> bytes:
    """The ``top`` features of an importance frame (feature, importance, std), most important on top."""
    shown = frame.head(top)
    return horizontal_bars(list(shown["feature"]), list(shown["importance"]), f"drop in {metric_name} when shuffled",
                           errors=list(shown["std"]), colour="#2ca02c", width=7.5)


def budget_bar(parts: dict[str, float], time_budget: float | None) -> bytes:
    """The call's seconds as one stacked horizontal bar (prepare, search, final fit, overhead), and the budget."""
    figure, axes = _figure(8.5, 1.2)
    axes.grid(False)
    left = 0.0
    for name, seconds in parts.items():
        if seconds <= 0:
            continue
        axes.barh(0, seconds, left=left, color=BUDGET_PARTS.get(name, "#999999"), edgecolor="white",
                  label=f"{name} {seconds:.1f} s")
        if seconds > 0.06 * max(sum(parts.values()), time_budget or 0):
            axes.text(left + seconds / 2, 0, f"{seconds:.1f} s", ha="center", va="center", fontsize=8)
        left += seconds
    if time_budget:
        axes.axvline(time_budget, color="#d62728", linestyle="--", linewidth=1.5, label=f"budget {time_budget:g} s")
    axes.set_yticks([])
    axes.set_xlabel("seconds")
    axes.set_xlim(0, max(left, time_budget or 0) * 1.04 or 1)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.7), ncol=5, fontsize=8, frameon=False)
    return _png(figure)


def training_curve(seconds: Sequence[float], values: Sequence[float], metric: str, lower_is_better: bool) -> bytes:
    """A meta-training run's validation metric at each checkpoint against its seconds of meta-training, and the best
    so far (the weights a run keeps)."""
    seconds, values = np.asarray(seconds, dtype=float), np.asarray(values, dtype=float)
    best = (np.minimum if lower_is_better else np.maximum).accumulate(values)
    figure, axes = _figure(7.6, 3.6)
    axes.plot(seconds, values, marker="o", markersize=3.5, color=ORIGIN_GROUPS["search"], linewidth=1.2,
              label="at the checkpoint")
    axes.step(seconds, best, where="post", color=STEP_COLOUR, linewidth=2, label="best so far (kept)")
    axes.set_xlabel("seconds of meta-training")
    axes.set_ylabel(f"validation {metric}" + (" (lower is better)" if lower_is_better else ""))
    axes.set_xlim(left=0)
    axes.legend(loc="best", fontsize=8, frameon=False)
    return _png(figure)


def _short_label(label: str, width: int = 32) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
