"""The leaderboard: every trial of a search as one row, best first.

``predict_ms`` and ``model_mb`` are the single-row prediction latency and the
serialized size of the trial's first fold model with its preprocessing
(:mod:`automl.pipeline.footprint`): what that configuration costs to serve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from automl.search.evaluation import OK, TrialResult
from automl.search.metrics import Metric

COLUMNS = ["rank", "learner", "score", "std", "status", "fit_seconds", "predict_ms", "model_mb", "origin", "trial",
           "finished_at", "params", "error"]


def ranked_results(results: list[TrialResult], metric: Metric) -> list[TrialResult]:
    """The successful trials, best score first (the faster one on ties)."""
    return sorted((r for r in results if r.ok), key=lambda r: (metric.loss(r.value), r.fit_seconds))


def best_result(results: list[TrialResult], metric: Metric) -> TrialResult | None:
    """The successful trial with the best score (the faster one on ties)."""
    ranked = ranked_results(results, metric)
    return ranked[0] if ranked else None


def make_leaderboard(results: list[TrialResult], metric: Metric) -> pd.DataFrame:
    """One row per trial: successful ones ranked by score, then pruned and failed ones."""
    rows = []
    for r in results:
        rows.append(
            {
                "learner": r.config.learner,
                "score": r.value if r.status == OK else np.nan,
                "std": float(np.std(r.fold_values)) if r.status == OK and len(r.fold_values) > 1 else np.nan,
                "status": r.status,
                "fit_seconds": round(r.fit_seconds, 3),
                "predict_ms": round(getattr(r, "predict_ms", np.nan), 3),  # results stored before footprints: unknown
                "model_mb": round(getattr(r, "model_mb", np.nan), 3),
                "origin": r.origin,
                "trial": r.number,
                "finished_at": round(r.finished_at, 2),
                "params": dict(r.config.params),
                "error": r.error,
                "node": r.node,
                "gpus": r.gpus,
            }
        )
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "rank"] + ["node", "gpus"])
    frame = frame.drop(columns=[c for c in ("node", "gpus") if not any(getattr(r, c) for r in results)])
    ok = frame["status"] == OK
    order = frame.assign(_ok=~ok, _key=metric.loss(frame["score"]))
    frame = frame.loc[order.sort_values(["_ok", "_key", "fit_seconds"]).index].reset_index(drop=True)
    frame.insert(0, "rank", metric.loss(frame["score"]).where(frame["status"] == OK).rank(method="min"))
    frame["rank"] = frame["rank"].astype("Int64")
    return frame
