"""The ``automl`` command line: fit, predict, info, export, report, worker, kb, meta and bench.
"""

from automl.cli.commands import main

__all__ = ["main"]
