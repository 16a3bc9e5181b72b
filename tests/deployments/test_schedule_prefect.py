"""The invariant: our run times are the dates Prefect's scheduler generates for our schedule.

Each schedule goes the way a deployment schedule does (client action → JSON → server
action), then Prefect's public async `get_dates` is compared with `run_times`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prefect.client.schemas.actions import DeploymentScheduleCreate as ClientScheduleCreate
from prefect.server.schemas.actions import DeploymentScheduleCreate as ServerScheduleCreate

from deployments.schedules import TaskSchedule, load_schedule

NEW_YORK = "America/New_York"

# (schedule, timezone, anchor) covering every kind, DST zones, month ends and leap days.
SCHEDULES = [
    ("quarterhourly", NEW_YORK, "2026-10-31T22:07:13Z"),
    ("halfhourly", "Europe/Berlin", "2026-03-28T21:00:00Z"),
    ("hourly", NEW_YORK, "2026-11-01T04:30:00Z"),
    ("twicedaily", NEW_YORK, "2026-03-07T14:00:00Z"),
    ("daily", NEW_YORK, "2026-03-07T07:30:00Z"),
    ("daily", NEW_YORK, "2026-10-31T05:30:00Z"),
    ("daily", "Australia/Lord_Howe", "2026-09-30T15:15:00Z"),
    ("twiceweekly", NEW_YORK, "2026-03-06T14:00:00Z"),
    ("twiceweekly", "Europe/Berlin", "2026-10-22T23:45:00Z"),
    ("weekly", NEW_YORK, "2026-10-29T13:00:00Z"),
    ("monthly", None, "2026-01-31T10:00:00Z"),
    ("monthly", NEW_YORK, "2027-01-29T06:30:00Z"),
    ("monthly", "Asia/Tokyo", "2026-01-31T23:30:00Z"),
    ("*/5 * * * *", None, None),
    ("30 2 * * *", NEW_YORK, None),
    ("30 1 * * *", NEW_YORK, None),
    ("*/30 0-3 * * *", NEW_YORK, None),
    ("02:30", "Europe/Berlin", None),
    ("0 12 15 * 5", "Asia/Tokyo", None),
    ("0 9 * JAN,MAR,NOV MON-FRI", NEW_YORK, None),
    ("0 9 * * 7", None, None),
    ("0 0 29 2 *", None, None),
    ("0 0 31 4,6 1", NEW_YORK, None),
    ("2026-11-01T01:30:00-05:00", NEW_YORK, None),
    ("2026-03-08T02:30:00", NEW_YORK, None),
    ("2026-12-25", "Asia/Tokyo", None),
    ("Fri, 25 Dec 2026 10:00:00 GMT", None, None),
]

# Scheduler start times: before and inside DST changes, on a run time, and far later.
STARTS = [
    "2026-01-15T00:00:00Z",
    "2026-03-07T12:00:00Z",
    "2026-03-08T06:30:00Z",
    "2026-03-28T23:59:59.5Z",
    "2026-10-31T12:00:00Z",
    "2026-11-01T05:30:00Z",
    "2026-11-01T06:10:00Z",
    "2027-06-01T00:00:00Z",
]


def utc(text: str) -> datetime:
    """A UTC datetime from ISO text such as `2026-03-08T07:30Z`."""
    return datetime.fromisoformat(text).astimezone(UTC)


def build(text: str, tz: str | None, anchor: str | None) -> TaskSchedule:
    """A schedule as the store would hand it back (cron and dates need no anchor)."""
    return load_schedule(text, tz, utc(anchor) if anchor else utc("2026-01-01T00:00:00Z"))


async def prefect_dates(schedule: TaskSchedule, after: datetime, count: int) -> list[datetime]:
    """What Prefect's server generates for the schedule, strictly after `after`."""
    prefect = schedule.to_prefect()
    assert prefect is not None
    client = ClientScheduleCreate(schedule=prefect, active=True)
    server = ServerScheduleCreate.model_validate(client.model_dump(mode="json"))
    dates = await server.schedule.get_dates(n=count + 1, start=after)
    return [datetime.fromtimestamp(date.timestamp(), UTC) for date in dates if date > after][:count]


@pytest.mark.parametrize(("text", "tz", "anchor"), SCHEDULES)
async def test_run_times_equal_prefect_get_dates(text: str, tz: str | None, anchor: str) -> None:
    schedule = build(text, tz, anchor)

    for start in STARTS:
        after = utc(start)
        assert schedule.run_times(after, 6) == await prefect_dates(schedule, after, 6), start


@pytest.mark.parametrize(
    ("text", "tz", "anchor"),
    [
        ("hourly", NEW_YORK, "2026-10-31T20:00:00Z"),
        ("daily", NEW_YORK, "2026-03-01T07:30:00Z"),
        ("twiceweekly", NEW_YORK, "2026-02-27T14:00:00Z"),
        ("30 1 * * *", NEW_YORK, None),
        ("30 2 * * *", NEW_YORK, None),
        ("*/20 1-2 * * *", "Europe/Berlin", None),
    ],
)
async def test_next_run_equals_prefect_at_every_start_around_dst(
    text: str, tz: str, anchor: str | None
) -> None:
    schedule = build(text, tz, anchor)
    # Every 7 minutes through both 2026 changes, as a scheduler polling at odd moments would.
    for window in (
        "2026-03-07T22:00:00Z",
        "2026-03-28T22:00:00Z",
        "2026-10-24T22:00:00Z",
        "2026-10-31T22:00:00Z",
    ):
        start = utc(window)
        for step in range(0, 12 * 60, 7):
            after = start + timedelta(minutes=step)
            expected = await prefect_dates(schedule, after, 1)
            assert schedule.next_run_after(after) == (expected[0] if expected else None), after


@pytest.mark.parametrize(("text", "tz", "anchor"), SCHEDULES)
def test_the_deployment_action_keeps_the_schedule(text: str, tz: str | None, anchor: str) -> None:
    # Prefect rewrites rrules without DTSTART when a deployment schedule is created; ours
    # carry one, so the schedule the scheduler stores is exactly ours.
    prefect = build(text, tz, anchor).to_prefect()
    assert prefect is not None

    client = ClientScheduleCreate(schedule=prefect, active=True)
    server = ServerScheduleCreate.model_validate(client.model_dump(mode="json"))

    assert client.schedule == prefect
    assert server.schedule.model_dump(mode="json") == prefect.model_dump(mode="json")
