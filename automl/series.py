"""The task series' old import path, kept for code written before the package moved: see
:mod:`automl.learn2learn.series`."""

from automl.learn2learn.series import (
    CLASSIFICATION,
    REGRESSION,
    Episode,
    FunctionSeries,
    Sinusoid,
    TableSeries,
    TaskSeries,
    from_datasets,
    from_function,
    from_groups,
    sinusoid,
)

__all__ = ["CLASSIFICATION", "REGRESSION", "Episode", "FunctionSeries", "Sinusoid", "TableSeries", "TaskSeries",
           "from_datasets", "from_function", "from_groups", "sinusoid"]
