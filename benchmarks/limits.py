"""The limits every benchmark job runs under: one thread per library, and the wall limit after which its child is
killed."""

from __future__ import annotations

SINGLE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                                  "VECLIB_MAXIMUM_THREADS")}


def hard_limit(budget: float, extra_seconds: float = 0.0) -> float:
    """Seconds after which a job's child is killed: ``budget * 1.5 + 60``, plus what a system needs beyond its clock.

    The margin covers imports and moderate overruns, so that an overrun is
    measured (and scored as BENCHMARK.md says) rather than killed unmeasured.
    """
    return budget * 1.5 + 60 + extra_seconds
