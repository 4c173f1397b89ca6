"""User-facing errors: the CLI prints them as one line, without a traceback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


class DigitrecError(Exception):
    """A user-facing error: one clear line, no traceback."""


class DataError(DigitrecError):
    """A data file is missing, truncated, corrupt or malformed."""


class CheckpointError(DigitrecError):
    """A checkpoint is missing, corrupt, unsafe or does not match its model."""


class NoDigitError(DigitrecError):
    """An image holds no ink that could be a digit."""


def lookup(table: Mapping[str, T], name: str, what: str) -> T:
    """``table[name]``; an unknown name is a :class:`DigitrecError` listing the valid (sorted)."""
    try:
        return table[name]
    except KeyError:
        choices = ", ".join(sorted(table))
        raise DigitrecError(f"unknown {what} {name!r}; choose from {choices}") from None
