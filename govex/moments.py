"""Moments read back from the store: govex writes UTC, and SQLite and MariaDB hand datetimes
back without a zone, so every reader makes them aware again the same way."""

from __future__ import annotations

import datetime as dt
from typing import overload

__all__ = ["aware"]


@overload
def aware(value: dt.datetime) -> dt.datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: dt.datetime | None) -> dt.datetime | None:
    """`value` as an aware UTC moment when the store gave it without a zone; as it is otherwise
    (None stays None)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value
