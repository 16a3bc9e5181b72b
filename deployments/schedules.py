"""The one vocabulary for task schedules: parse and validate, map to Prefect, compute runs.

Key contract: `next_run_after` is computed by Prefect's own server-side date generation
from the very schedule `to_prefect()` returns, so the API's `nextRunAt` is the run that
Prefect's scheduler will create. The grammar is CONTRACT.md section 4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from prefect.client.schemas.schedules import (
    CronSchedule,
    IntervalSchedule,
    RRuleSchedule,
    is_valid_timezone,
)
from prefect.server.schemas import schedules as server_schedules

from deployments.schedule_cron import canonical_cron, daily_at
from deployments.schedule_dates import parse_instant
from deployments.schedule_errors import ScheduleError
from deployments.schedule_rules import (
    CalendarInterval,
    CalendarStep,
    CronRule,
    FixedInterval,
    Never,
    OnceRule,
    PrefectSchedule,
    ScheduleKind,
    ScheduleRule,
)

__all__ = [
    "ScheduleError",
    "ScheduleKind",
    "TaskSchedule",
    "load_schedule",
    "parse_schedule",
]

_FIXED_INTERVALS = {
    "quarterhourly": timedelta(minutes=15),
    "halfhourly": timedelta(minutes=30),
    "hourly": timedelta(hours=1),
    "twicedaily": timedelta(hours=12),
}
_CALENDAR_INTERVALS = {
    "daily": CalendarStep.DAY,
    "twiceweekly": CalendarStep.HALF_WEEK,
    "weekly": CalendarStep.WEEK,
    "monthly": CalendarStep.MONTH,
}

ServerSchedule = (
    server_schedules.IntervalSchedule
    | server_schedules.CronSchedule
    | server_schedules.RRuleSchedule
)


@dataclass(frozen=True)
class TaskSchedule:
    """A task's validated schedule: its text, timezone and anchor, and the rule they mean.

    Construction normalizes (text stripped, blank → None, `""` timezone → None, anchor to
    UTC floored to the second) and raises ScheduleError for invalid text or timezone.
    """

    expression: str | None
    timezone: str | None
    anchor: datetime | None
    rule: ScheduleRule | None = field(init=False, repr=False, compare=False)
    _prefect: PrefectSchedule | None = field(init=False, repr=False, compare=False)
    _server: ServerSchedule | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        expression = (self.expression or "").strip() or None
        timezone = self.timezone or None
        anchor = _whole_second_utc(self.anchor) if self.anchor is not None else None
        # Checked first and whatever the schedule: a bad timezone is an error even for `never`.
        if timezone is not None and not _is_valid_timezone(timezone):
            raise ScheduleError("timezone")
        rule = _parse_rule(expression, timezone or "UTC", anchor) if expression else None
        prefect = rule.to_prefect() if rule is not None else None
        object.__setattr__(self, "expression", expression)
        object.__setattr__(self, "timezone", timezone)
        object.__setattr__(self, "anchor", anchor)
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "_prefect", prefect)
        object.__setattr__(self, "_server", _as_server_schedule(prefect) if prefect else None)

    @property
    def kind(self) -> ScheduleKind:
        """Which kind of schedule this is; `NONE` when no schedule is set."""
        return self.rule.kind if self.rule is not None else ScheduleKind.NONE

    def to_prefect(self) -> PrefectSchedule | None:
        """The Prefect schedule for the task's deployment (a fresh copy), or None."""
        return self._prefect.model_copy(deep=True) if self._prefect is not None else None

    def next_run_after(self, after: datetime) -> datetime | None:
        """The first run strictly after `after` (tz-aware), in UTC; None if there is none."""
        runs = self.run_times(after, 1)
        return runs[0] if runs else None

    def run_times(self, after: datetime, count: int) -> list[datetime]:
        """The next `count` runs strictly after `after` (tz-aware), in UTC, ascending.

        Prefect looks at most 1,000 candidates ahead, so very large counts may come back short.
        """
        if after.tzinfo is None:
            raise ValueError("after must be timezone-aware")
        if count < 0:
            raise ValueError("count must not be negative")
        if self._server is None or count == 0:
            return []
        start = after.astimezone(UTC)
        # The scheduler service iterates this same generator
        # (prefect.server.models.deployments._generate_scheduled_flow_runs); the public
        # `get_dates` only sorts it and is async, which sync callers inside the API's running
        # event loop cannot await. Dates come back on or after `start`; one extra covers a
        # run exactly at `start`, which "strictly after" excludes.
        dates = self._server._get_dates_generator(n=count + 1, start=start)
        runs = sorted(_plain_utc(date) for date in dates)
        return [run for run in runs if run > start][:count]


def parse_schedule(schedule: str | None, timezone: str | None, *, now: datetime) -> TaskSchedule:
    """Validate a schedule being set at `now`, which becomes its anchor (floored to the second).

    Raises ScheduleError for an invalid schedule or timezone.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return TaskSchedule(schedule, timezone, now)


def load_schedule(
    schedule: str | None, timezone: str | None, anchor: datetime | None
) -> TaskSchedule:
    """Rebuild a schedule from its stored text, timezone and anchor, without a clock.

    A naive anchor is read as UTC: some stores (SQLite) drop the timezone of what they keep.
    """
    if anchor is not None and anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=UTC)
    return TaskSchedule(schedule, timezone, anchor)


def _parse_rule(text: str, timezone: str, anchor: datetime | None) -> ScheduleRule:
    """Read stripped, non-empty schedule text as the rule it names, or raise ScheduleError."""
    if text == "never":
        return Never()
    if text in _FIXED_INTERVALS:
        return FixedInterval(_FIXED_INTERVALS[text], _require_anchor(text, anchor))
    if text in _CALENDAR_INTERVALS:
        return CalendarInterval(_CALENDAR_INTERVALS[text], _require_anchor(text, anchor), timezone)
    cron = daily_at(text) or canonical_cron(text)
    if cron is not None:
        return CronRule(cron, timezone)
    instant = parse_instant(text, ZoneInfo(timezone))
    if instant is not None:
        # Prefect schedules whole seconds only; a fraction is floored, like the interval
        # anchor, so the run starts within the second the date names, never after it.
        return OnceRule(instant.replace(microsecond=0))
    raise ScheduleError("schedule")


def _require_anchor(text: str, anchor: datetime | None) -> datetime:
    """Intervals count from their anchor; a stored interval without one is a bug, not input."""
    if anchor is None:
        raise ValueError(f"the interval schedule {text!r} needs an anchor")
    return anchor


@cache
def _prefect_timezones() -> frozenset[str]:
    """The IANA names all of Prefect's schedule types accept (its lists differ slightly)."""
    return frozenset(
        name
        for name in available_timezones()
        if "localtime" not in name and is_valid_timezone(name)
    )


def _is_valid_timezone(name: str) -> bool:
    """Whether `name` is an IANA timezone that both zoneinfo and Prefect accept."""
    return name in _prefect_timezones()


def _whole_second_utc(moment: datetime) -> datetime:
    """Convert a tz-aware datetime to UTC, floored to the whole second."""
    if moment.tzinfo is None:
        raise ValueError("anchor must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0)


def _plain_utc(moment: datetime) -> datetime:
    """A plain stdlib UTC datetime for a date from Prefect (a pendulum/whenever subclass)."""
    utc = moment.astimezone(UTC)
    return datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=UTC
    )


def _as_server_schedule(schedule: PrefectSchedule) -> ServerSchedule:
    """The server model Prefect's scheduler reads back from its database for `schedule`.

    Round-trips through JSON, as the deployment API does, so both sides see the same values.
    """
    payload = schedule.model_dump(mode="json")
    if isinstance(schedule, IntervalSchedule):
        return server_schedules.IntervalSchedule.model_validate(payload)
    if isinstance(schedule, CronSchedule):
        return server_schedules.CronSchedule.model_validate(payload)
    if isinstance(schedule, RRuleSchedule):
        return server_schedules.RRuleSchedule.model_validate(payload)
    raise TypeError(f"unknown Prefect schedule type: {type(schedule).__name__}")
