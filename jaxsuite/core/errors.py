"""Errors a user can fix. The CLI prints them as one line and exits with status 2 (no traceback)."""


class UserError(Exception):
    """Bad input: an unknown config key, a value of the wrong type, a missing data file, ..."""


class ConfigError(UserError):
    """A config key, value or preset that does not exist or does not fit."""


class DataMissingError(UserError):
    """A data file that is not in $JAXSUITE_DATA; the message names the file and the fetch command."""


class DataCorruptError(UserError):
    """A data file whose sha256 is not the pinned one, or that cannot be read or decoded; the message names the
    file and the fix (``jaxsuite data fetch NAME``)."""


class NonFiniteError(RuntimeError):
    """Training produced NaN/Inf; the message names the metric and the step. Exit status 3."""
