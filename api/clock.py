"""Time as the service sees it: a replaceable clock, epoch milliseconds on the wire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real time, tz-aware UTC."""
    return datetime.now(UTC)


def to_ms(value: datetime) -> int:
    """Epoch milliseconds of a tz-aware datetime."""
    return int(value.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    """A tz-aware UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(value / 1000, UTC)
