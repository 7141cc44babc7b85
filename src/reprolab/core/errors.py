"""User-facing errors: each carries one clear message and maps to a non-zero exit."""


class ReprolabError(Exception):
    """An error caused by input (params, data, registry state), not by a bug."""


class ParamsError(ReprolabError):
    """params.yaml failed validation; the message names every bad key path."""


class DataError(ReprolabError):
    """Input data is missing, corrupt or malformed; the message names file, row, column."""


class RegistryError(ReprolabError):
    """The model registry lacks what was asked for (alias, version, task)."""


class LineageError(ReprolabError):
    """A past run cannot be traced back to its exact model and data."""
