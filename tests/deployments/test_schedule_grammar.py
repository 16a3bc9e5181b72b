"""The schedule grammar: cron fields, `HH:MM`, ISO 8601 and RFC 2822 dates, and what is refused."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from deployments.schedule_cron import canonical_cron, daily_at
from deployments.schedules import ScheduleError, ScheduleKind, parse_schedule

NOW = datetime(2026, 3, 10, 12, 34, 56, 789000, tzinfo=UTC)


def utc(text: str) -> datetime:
    """A UTC datetime from ISO text such as `2026-03-08T07:30Z`."""
    return datetime.fromisoformat(text).astimezone(UTC)


def next_runs(text: str, count: int, tz: str | None = None) -> list[datetime]:
    """The next `count` runs after NOW of a freshly set schedule."""
    return parse_schedule(text, tz, now=NOW).run_times(NOW, count)


# --- cron --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 9 * JAN MON-FRI", ["2027-01-01T09:00Z", "2027-01-04T09:00Z"]),
        ("0 9 * jan mon-fri", ["2027-01-01T09:00Z", "2027-01-04T09:00Z"]),
        ("0 9 1 Jan,Jul *", ["2026-07-01T09:00Z", "2027-01-01T09:00Z"]),
        ("0 9 * * SUN", ["2026-03-15T09:00Z", "2026-03-22T09:00Z"]),
        ("0 9 * * 7", ["2026-03-15T09:00Z", "2026-03-22T09:00Z"]),
        ("0 9 * * 0", ["2026-03-15T09:00Z", "2026-03-22T09:00Z"]),
        ("0 9 * * 5-7", ["2026-03-13T09:00Z", "2026-03-14T09:00Z", "2026-03-15T09:00Z"]),
        ("0 9 * * 0,7", ["2026-03-15T09:00Z", "2026-03-22T09:00Z"]),
        ("*/15 */6 * * *", ["2026-03-10T12:45Z", "2026-03-10T18:00Z", "2026-03-10T18:15Z"]),
        ("0 0 1 */3 *", ["2026-04-01T00:00Z", "2026-07-01T00:00Z", "2026-10-01T00:00Z"]),
        ("10-50/20 13 * * *", ["2026-03-10T13:10Z", "2026-03-10T13:30Z", "2026-03-10T13:50Z"]),
        ("0 0 * FEB-APR/2 1", ["2026-04-06T00:00Z", "2026-04-13T00:00Z"]),
        # Forms croniter gets wrong when handed as written: `1-1` (it runs daily), `a/step`
        # (it stops at Saturday, cron goes on to 7 = Sunday).
        ("0 9 * * 1-1", ["2026-03-16T09:00Z", "2026-03-23T09:00Z"]),
        ("0 9 * * 6/1", ["2026-03-14T09:00Z", "2026-03-15T09:00Z", "2026-03-21T09:00Z"]),
        ("0 9 * * 5/2", ["2026-03-13T09:00Z", "2026-03-15T09:00Z", "2026-03-20T09:00Z"]),
        # Day of month and day of week both restricted: either matches.
        ("0 12 15 * 5", ["2026-03-13T12:00Z", "2026-03-15T12:00Z", "2026-03-20T12:00Z"]),
        ("0 9 */10 * 2", ["2026-03-11T09:00Z", "2026-03-17T09:00Z", "2026-03-21T09:00Z"]),
        # Apr/Jun 31 never exists, the Mondays of those months do.
        ("0 0 31 4,6 1", ["2026-04-06T00:00Z", "2026-04-13T00:00Z"]),
        ("23:59", ["2026-03-10T23:59Z", "2026-03-11T23:59Z"]),
        ("00:00", ["2026-03-11T00:00Z", "2026-03-12T00:00Z"]),
    ],
)
def test_cron_runs(text: str, expected: list[str]) -> None:
    assert next_runs(text, len(expected)) == [utc(run) for run in expected]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("*/5 * * * *", "*/5 * * * *"),
        ("0 9 * * MON-FRI", "0 9 * * 1-5"),
        ("0 9 * * 7", "0 9 * * 0"),
        ("0 9 * * 5-7", "0 9 * * 0,5,6"),
        ("0,1,2,3 * * * *", "0-3 * * * *"),
        ("*/1 * * * *", "0-59 * * * *"),
        ("0 9 */2 * *", "0 9 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31 * *"),
        ("0 9 * JAN,mar *", "0 9 * 1,3 *"),
        ("0 0 31 4,6 1", "0 0 * 4,6 1"),
    ],
)
def test_canonical_cron(text: str, canonical: str) -> None:
    assert canonical_cron(text) == canonical


def test_daily_at() -> None:
    assert daily_at("09:05") == "5 9 * * *"
    assert daily_at("9:05") is None
    assert daily_at("24:00") is None


CRONS = [
    "0 9 * * *",
    "*/7 */5 * * *",
    "15,45 8-18/3 1,15 * mon-fri",
    "0 9 */2 * 1",
    "0 9 1 * */2",
    "0 9 1-31 * 1",
    "0 9 15 * 0-6",
    "0 9 * * 1-1",
    "0 9 * * 6/1",
    "0 9 * * 1/2",
    "0 9 * * 7",
    "0 0 * JAN-MAR/2 *",
    "0 0 29 2 *",
    "30 23 28-31 * *",
    "5 4 * * sun",
    "59 23 31 12 *",
]


@pytest.mark.parametrize("text", CRONS)
def test_cron_matches_a_reference_evaluation(text: str) -> None:
    expected = list(_reference_runs(text, NOW, 6))

    assert next_runs(text, 6) == expected


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("2026-12-25T10:00:00Z", None, "2026-12-25T10:00Z"),
        ("2026-12-25T10:00:00.000Z", None, "2026-12-25T10:00Z"),
        ("2026-12-25t10:00:00z", None, "2026-12-25T10:00Z"),
        ("2026-12-25 10:00:00Z", None, "2026-12-25T10:00Z"),
        ("2026-12-25T10:00Z", None, "2026-12-25T10:00Z"),
        ("2026-12-25T10:00", "Asia/Tokyo", "2026-12-25T01:00Z"),
        ("2026-12-25T10:00:00+0530", None, "2026-12-25T04:30Z"),
        ("2026-12-25T10:00:00+05", None, "2026-12-25T05:00Z"),
        ("2026-12-25T10:00:00-03:00", "Asia/Tokyo", "2026-12-25T13:00Z"),
        ("2026-12-25", "America/New_York", "2026-12-25T05:00Z"),
        ("Fri, 25 Dec 2026 10:00:00 GMT", "Asia/Tokyo", "2026-12-25T10:00Z"),
        ("25 Dec 2026 10:00:00 GMT", None, "2026-12-25T10:00Z"),
        ("Mon, 25 Dec 2026 10:00:00 +0200", None, "2026-12-25T08:00Z"),
        ("Fri, 25 Dec 2026 10:00 EST", None, "2026-12-25T15:00Z"),
        ("Fri, 25 Dec 2026 10:00:00 PDT", None, "2026-12-25T17:00Z"),
        ("fri, 25 dec 2026 10:00:00 ut", None, "2026-12-25T10:00Z"),
        ("Fri,25 Dec 2026 10:00:00 -0000", None, "2026-12-25T10:00Z"),
        ("Fri, 5 Jun 2026 10:00:00 Z", None, "2026-06-05T10:00Z"),
    ],
)
def test_dates(text: str, tz: str | None, expected: str) -> None:
    schedule = parse_schedule(text, tz, now=NOW)

    assert schedule.kind is ScheduleKind.ONCE
    assert schedule.run_times(NOW, 3) == [utc(expected)]


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-25T10:00:00.999Z",
        "2026-12-25T10:00:00.5Z",
        "2026-12-25T10:00:00,5Z",
        "2026-12-25T10:00:00.123456789Z",
        "2026-12-25T12:00:00.999999+02:00",
    ],
)
def test_date_fractions_are_floored_to_the_second(text: str) -> None:
    schedule = parse_schedule(text, None, now=NOW)

    assert schedule.next_run_after(NOW) == utc("2026-12-25T10:00:00Z")
    # The run starts at the beginning of the named second, so just inside it is too late.
    assert schedule.next_run_after(utc("2026-12-25T10:00:00.200Z")) is None


def test_far_dates() -> None:
    assert next_runs("9999-12-31T23:59:59Z", 1) == [utc("9999-12-31T23:59:59Z")]
    assert next_runs("0001-01-01T00:00:00Z", 1) == []
    # Beyond year 9999 once read in UTC: not an instant we can hold.
    with pytest.raises(ScheduleError):
        parse_schedule("9999-12-31T23:30:00-01:00", None, now=NOW)


# --- refused -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # keywords are case-sensitive
        "Daily",
        "NEVER",
        "Monthly",
        "every day",
        "daily at 9",
        # cron
        "@daily",
        "@reboot",
        "0 9 * *",
        "0 0 9 * * *",
        "0 0 9 * * * 2026",
        "R 9 * * *",
        "0 H * * *",
        "H/5 * * * *",
        "0 9 L * *",
        "0 9 15W * *",
        "0 9 * * 5L",
        "0 9 * * 5#2",
        "0 9 ? * *",
        "*/0 * * * *",
        "*/60 * * * *",
        "5-1 * * * *",
        "0 9 * * FRI-MON",
        "0 9 * * MONDAY",
        "0 9 * JANUARY *",
        "0 9 0 * *",
        "0 9 * 0 *",
        "0 9 * 13 *",
        "-1 9 * * *",
        "0 9 * * 1,",
        "0 9 * * ,1",
        "0 9 * * 1-",
        "0 9 * * 1--2",
        "0 9 * * 1/",
        "0 0 30 2 *",
        "0 0 30,31 2 *",
        "0 0 31 4,6,9,11 *",
        "\u0663 * * * *",
        # HH:MM
        "24:00",
        "9:00",
        "09:60",
        "09:00:00",
        "09h00",
        # dates
        "2026-13-45",
        "2026-02-29",
        "2026-12-25T24:00:00Z",
        "2026-12-25T10:60:00Z",
        "2026-12-25T10:00:60Z",
        "2026-12-25T10:00:00+24:00",
        "2026-12-25T10:00:00+02:60",
        "2026-12-25T10:00:00.Z",
        "2026-12-25T10Z",
        "2026-12-25Z",
        "2026-12-25 GMT",
        "2026-12-25T10:00:00 GMT",
        "20261225T100000Z",
        "2026-1-5",
        "12/25/2026",
        "25.12.2026",
        "Fri, 25 Dec 2026 10:00:00",
        "Fri, 32 Dec 2026 10:00:00 GMT",
        "Xyz, 25 Dec 2026 10:00:00 GMT",
        "Fri, 25 December 2026 10:00:00 GMT",
        "Fri, 25 Dec 26 10:00:00 GMT",
        "Fri, 25 Dec 2026 10:00:00 CET",
        "tomorrow",
        "now",
        "next friday",
        "in 5 minutes",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(ScheduleError) as raised:
        parse_schedule(text, None, now=NOW)

    assert (raised.value.field, raised.value.message) == ("schedule", "Invalid schedule")


# --- a reference cron evaluator, written independently of the module under test -------------


_NAMES = {
    **{name: number for number, name in enumerate(calendar.month_abbr) if name},
    **{name: (number + 1) % 7 for number, name in enumerate(calendar.day_abbr)},
}


def _reference_field(text: str, low: int, high: int) -> set[int] | None:
    """The values of one cron field by the textbook rules; None for an unrestricted `*`."""
    if text == "*":
        return None
    values: set[int] = set()
    for item in text.split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last = low, high
        else:
            first_text, _, last_text = span.partition("-")
            first = int(first_text) if first_text.isdigit() else _NAMES[first_text.title()]
            if last_text:
                last = int(last_text) if last_text.isdigit() else _NAMES[last_text.title()]
            else:
                last = high if step else first
        values.update(range(first, last + 1, int(step or 1)))
    return values


def _reference_runs(text: str, after: datetime, count: int) -> Iterator[datetime]:
    """Runs of a UTC cron strictly after `after`, found by walking the calendar day by day."""
    minute, hour, dom, month, dow = text.split()
    minutes = _reference_field(minute, 0, 59) or set(range(60))
    hours = _reference_field(hour, 0, 23) or set(range(24))
    days = _reference_field(dom, 1, 31)
    months = _reference_field(month, 1, 12) or set(range(1, 13))
    weekdays = _reference_field(dow, 0, 7)
    if weekdays is not None:
        weekdays = {value % 7 for value in weekdays}
    found = 0
    day = after.date()
    while found < count and day < date(2100, 1, 1):
        weekday = (day.weekday() + 1) % 7  # cron counts from Sunday
        day_matches = day.day in days if days is not None else True
        weekday_matches = weekday in weekdays if weekdays is not None else True
        # Both restricted: either one; otherwise both (an unrestricted field matches all).
        if days is not None and weekdays is not None:
            matches = day_matches or weekday_matches
        else:
            matches = day_matches and weekday_matches
        if day.month in months and matches:
            for h in sorted(hours):
                for m in sorted(minutes):
                    moment = datetime(day.year, day.month, day.day, h, m, tzinfo=UTC)
                    if moment > after and found < count:
                        found += 1
                        yield moment
        day += timedelta(days=1)
