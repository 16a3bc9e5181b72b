"""A clock the tests can move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class TestClock:
    """Real time plus an offset the test controls (``advance``), or a frozen instant."""

    __test__ = False  # not a test class, despite the name

    def __init__(self) -> None:
        self.offset = timedelta()
        self.frozen: datetime | None = None

    def __call__(self) -> datetime:
        """The current (possibly shifted or frozen) time."""
        if self.frozen is not None:
            return self.frozen
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        """Move time forward by ``delta``."""
        if self.frozen is not None:
            self.frozen += delta
        else:
            self.offset += delta

    def reset(self) -> None:
        """Back to real time."""
        self.offset = timedelta()
        self.frozen = None
