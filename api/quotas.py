"""Per-account quotas: concurrent sessions and conversations per UTC day.

Checked twice: by ``trigger`` (a 429 with ``Retry-After`` before anything is queued) and
by the session itself when it starts (scheduled runs have no request to refuse).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.db.models import Account, Conversation, Task
from api.settings import Settings

# A client over the concurrency quota may try again this soon: sessions end all the time.
CONCURRENCY_RETRY_SECONDS = 30


@dataclass(frozen=True)
class QuotaDefaults:
    """The operator's limits for accounts that set none."""

    concurrent_sessions: int
    conversations_per_day: int


@dataclass(frozen=True)
class Usage:
    """An account's limits and its current use of them."""

    running: int
    max_running: int
    conversations_today: int
    max_conversations_per_day: int
    now: datetime

    def refusal(self, *, including_self: bool = False) -> tuple[str, int] | None:
        """Why a new session may not start and when to retry (seconds), or ``None``.

        ``including_self``: the caller's own session is already counted as running.
        """
        running = self.running - 1 if including_self else self.running
        if running >= self.max_running:
            return (
                f"Concurrent session limit reached ({self.max_running})",
                CONCURRENCY_RETRY_SECONDS,
            )
        if self.conversations_today >= self.max_conversations_per_day:
            tomorrow = datetime(self.now.year, self.now.month, self.now.day, tzinfo=UTC)
            wait = (tomorrow + timedelta(days=1) - self.now).total_seconds()
            return (
                f"Daily conversation limit reached ({self.max_conversations_per_day})",
                max(1, int(wait) + 1),
            )
        return None


def quota_defaults(settings: Settings) -> QuotaDefaults:
    """The operator's quota defaults from settings."""
    return QuotaDefaults(settings.quota_concurrent_sessions, settings.quota_conversations_per_day)


async def read_usage(
    session: AsyncSession, account_id: str, now: datetime, defaults: QuotaDefaults
) -> Usage:
    """Count the account's running sessions and today's conversations."""
    day_start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    account = await session.get(Account, account_id)
    running = await session.execute(
        select(func.count())
        .select_from(Task)
        .where(col(Task.account_id) == account_id, col(Task.status) == "running")
    )
    today = await session.execute(
        select(func.count())
        .select_from(Conversation)
        .where(
            col(Conversation.account_id) == account_id,
            col(Conversation.created_at) >= int(day_start.timestamp() * 1000),
        )
    )
    max_running = defaults.concurrent_sessions
    max_daily = defaults.conversations_per_day
    if account is not None:
        max_running = account.max_concurrent_sessions or max_running
        max_daily = account.max_conversations_per_day or max_daily
    return Usage(int(running.scalar_one()), max_running, int(today.scalar_one()), max_daily, now)
