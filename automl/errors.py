"""Errors the engine raises on purpose, each with a message that says the fix.

They derive from the built-in exception a user would expect (``ValueError``
for bad input), so ``except ValueError`` keeps working around our calls.
"""


class AutoMLError(Exception):
    """Base of every error raised on purpose by this package."""


class DataError(AutoMLError, ValueError):
    """The data given to ``fit``/``predict`` cannot be used as it is."""


class ConfigError(AutoMLError, ValueError):
    """An argument is invalid (a budget <= 0, an unknown metric, ...)."""


class SearchFailed(AutoMLError, RuntimeError):
    """No trial of the search produced a usable model."""


class ModelFileError(AutoMLError, ValueError):
    """A file given to ``load`` is not a model saved by this package."""


class ExportError(AutoMLError, RuntimeError):
    """A model (or one of its members) cannot be exported to the format asked for, or its export does not match it."""
