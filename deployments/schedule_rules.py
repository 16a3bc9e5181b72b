"""One small class per schedule kind, each turning itself into the Prefect schedule it means.

Which Prefect type each kind uses, and why:

- `FixedInterval` (quarterhourly … twicedaily, under a day) → `IntervalSchedule` in UTC.
  Absolute intervals do not depend on the task's timezone, and Prefect's interval schedule
  in a DST zone drops the repeated hour at fall-back (hourly in America/New_York skips
  06:30Z on 2026-11-01), while in UTC it is exactly anchor + k * interval.
- `CalendarInterval` (daily, twiceweekly, weekly, monthly) → `RRuleSchedule` with the
  anchor's local wall time as DTSTART. Prefect's `IntervalSchedule` does not keep the
  anchor's wall-clock time for these: a 3.5-day interval drifts by an hour after a DST
  change depending on where the scheduler starts counting, and a daily interval anchored
  at a wall time that a spring-forward day skips moves to the next hour for good. dateutil
  steps rrules in wall-clock time, so the anchor's local time is kept on every day that
  has it; months are clamped to their last day with BYMONTHDAY/BYSETPOS.
- `CronRule` (cron and `HH:MM`) → `CronSchedule` (day_or=True, the classic OR rule).
- `OnceRule` (a date) → `RRuleSchedule` with COUNT=1: Prefect has no one-shot type.
- `Never` → no Prefect schedule at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import ClassVar
from zoneinfo import ZoneInfo

from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

from deployments.schedule_cron import canonical_cron

PrefectSchedule = IntervalSchedule | CronSchedule | RRuleSchedule


class ScheduleKind(StrEnum):
    """What a task's schedule is, as far as how its runs are computed goes."""

    NONE = "none"  # no schedule set
    NEVER = "never"  # `never`: trigger only
    INTERVAL = "interval"  # fixed elapsed time under a day
    CALENDAR_INTERVAL = "calendar_interval"  # wall-clock days, weeks or months
    CRON = "cron"  # 5-field cron or `HH:MM`
    ONCE = "once"  # one date


class CalendarStep(Enum):
    """A calendar interval's step, as the RRULE body that walks it in wall-clock time."""

    DAY = "FREQ=DAILY"
    # 3.5 days: 84 wall-clock hours, alternating the anchor's time and twelve hours later.
    HALF_WEEK = "FREQ=HOURLY;INTERVAL=84"
    WEEK = "FREQ=WEEKLY"
    MONTH = "FREQ=MONTHLY"


def _check_anchor(anchor: datetime) -> None:
    """Enforce the anchor invariant: timezone-aware UTC, on a whole second."""
    if anchor.tzinfo is not UTC or anchor.microsecond:
        raise ValueError(f"anchor must be UTC on a whole second, got {anchor!r}")


def _dtstart(moment: datetime) -> str:
    """Format a naive wall time as a floating RFC 5545 DTSTART (Prefect applies the timezone)."""
    # Not strftime: it drops the zero padding of years below 1000 on some platforms.
    return (
        f"DTSTART:{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"T{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    )


@dataclass(frozen=True)
class Never:
    """`never`: the task runs only when triggered."""

    kind: ClassVar[ScheduleKind] = ScheduleKind.NEVER

    def to_prefect(self) -> None:
        """There is no Prefect schedule for a task that never runs on its own."""
        return None


@dataclass(frozen=True)
class FixedInterval:
    """Runs at `anchor` + k * `period` of elapsed time; for periods under a day only."""

    period: timedelta
    anchor: datetime
    kind: ClassVar[ScheduleKind] = ScheduleKind.INTERVAL

    def __post_init__(self) -> None:
        # A day or more must keep wall-clock time, which is CalendarInterval's job.
        if not timedelta(0) < self.period < timedelta(days=1):
            raise ValueError(f"a fixed interval is under a day, got {self.period}")
        _check_anchor(self.anchor)

    def to_prefect(self) -> IntervalSchedule:
        """An interval schedule on the stored anchor (Prefect's default anchor is "now").

        Always in UTC: see the module docstring for the fall-back hour Prefect drops otherwise.
        """
        return IntervalSchedule(interval=self.period, anchor_date=self.anchor, timezone="UTC")


@dataclass(frozen=True)
class CalendarInterval:
    """Runs at the anchor's local wall time every day, 3.5 days, week or month in `timezone`."""

    step: CalendarStep
    anchor: datetime
    timezone: str
    kind: ClassVar[ScheduleKind] = ScheduleKind.CALENDAR_INTERVAL

    def __post_init__(self) -> None:
        _check_anchor(self.anchor)

    def to_prefect(self) -> RRuleSchedule:
        """An rrule starting at the anchor's wall time, relabelled with `timezone` by Prefect."""
        local = self.anchor.astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None)
        rule = self.step.value
        if self.step is CalendarStep.MONTH and local.day > 28:
            # The last existing day among 28…anchor day: Jan 31 → Feb 28, Mar 31, Apr 30.
            days = ",".join(str(day) for day in range(28, local.day + 1))
            rule += f";BYMONTHDAY={days};BYSETPOS=-1"
        return RRuleSchedule(rrule=f"{_dtstart(local)}\nRRULE:{rule}", timezone=self.timezone)


@dataclass(frozen=True)
class CronRule:
    """Runs whenever the canonical 5-field cron `expression` matches wall time in `timezone`."""

    expression: str
    timezone: str
    kind: ClassVar[ScheduleKind] = ScheduleKind.CRON

    def __post_init__(self) -> None:
        if canonical_cron(self.expression) != self.expression:
            raise ValueError(f"not a canonical cron: {self.expression!r}")

    def to_prefect(self) -> CronSchedule:
        """A cron schedule; day_or=True makes restricted day of month OR day of week match."""
        return CronSchedule(cron=self.expression, timezone=self.timezone, day_or=True)


@dataclass(frozen=True)
class OnceRule:
    """Runs once, at the instant `at` (UTC, whole second)."""

    at: datetime
    kind: ClassVar[ScheduleKind] = ScheduleKind.ONCE

    def __post_init__(self) -> None:
        _check_anchor(self.at)

    def to_prefect(self) -> RRuleSchedule:
        """A single-occurrence rrule, written in UTC.

        UTC, not the task's timezone: a floating DTSTART cannot name the second of two
        repeated wall times (DST fall-back), while a UTC one names every instant exactly.
        """
        moment = self.at.replace(tzinfo=None)
        return RRuleSchedule(rrule=f"{_dtstart(moment)}\nRRULE:FREQ=DAILY;COUNT=1", timezone="UTC")


ScheduleRule = Never | FixedInterval | CalendarInterval | CronRule | OnceRule
