"""User-facing errors: the CLI prints them as one line, without a traceback."""


class DigitrecError(Exception):
    """A user-facing error: one clear line, no traceback."""


class DataError(DigitrecError):
    """A data file is missing, truncated, corrupt or malformed."""


class CheckpointError(DigitrecError):
    """A checkpoint is missing, corrupt, unsafe or does not match its model."""


class NoDigitError(DigitrecError):
    """An image holds no ink that could be a digit."""
