"""The schedule vocabulary: the contract's worked examples and the public interface."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

from deployments.schedules import (
    ScheduleError,
    ScheduleKind,
    TaskSchedule,
    load_schedule,
    parse_schedule,
)

# CI lays shared/ beside the repository clone, as it is here.
VECTORS_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "contract"
VECTORS: dict[str, Any] = json.loads((VECTORS_PATH / "schedule-vectors.json").read_text())
VECTOR_NOW = datetime.fromisoformat(VECTORS["now"])
NOW = datetime(2026, 3, 10, 12, 34, 56, 789000, tzinfo=UTC)


def utc(text: str) -> datetime:
    """A UTC datetime from ISO text such as `2026-03-08T07:30Z`."""
    return datetime.fromisoformat(text).astimezone(UTC)


def wire(moment: datetime | None) -> str | None:
    """The vectors' UTC text for an instant (millisecond precision, `Z`)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize(
    "case", VECTORS["cases"], ids=[f"{c['schedule']!r}@{c['timezone']}" for c in VECTORS["cases"]]
)
def test_vector_cases(case: dict[str, Any]) -> None:
    schedule = parse_schedule(case["schedule"], case["timezone"], now=VECTOR_NOW)

    assert wire(schedule.next_run_after(VECTOR_NOW)) == case["nextRunAt"]
    stored = case.get("storedSchedule", case["schedule"].strip())
    assert schedule.expression == stored


@pytest.mark.parametrize(
    "case", VECTORS["anchored"], ids=[f"{c['schedule']}@{c['anchor']}" for c in VECTORS["anchored"]]
)
def test_vector_anchored_runs(case: dict[str, Any]) -> None:
    anchor = datetime.fromisoformat(case["anchor"])
    loaded = load_schedule(case["schedule"], case["timezone"], anchor)
    parsed = parse_schedule(case["schedule"], case["timezone"], now=anchor)

    for schedule in (loaded, parsed):
        runs = schedule.run_times(anchor, len(case["runs"]))
        assert [wire(run) for run in runs] == case["runs"]


@pytest.mark.parametrize(
    "case",
    VECTORS["invalid"],
    ids=[f"{c['schedule']!r}@{c['timezone']}" for c in VECTORS["invalid"]],
)
def test_vector_invalid(case: dict[str, Any]) -> None:
    with pytest.raises(ScheduleError) as raised:
        parse_schedule(case["schedule"], case["timezone"], now=VECTOR_NOW)

    expected = case.get("error", "Invalid schedule")
    assert raised.value.message == expected
    assert str(raised.value) == expected
    assert raised.value.field == ("timezone" if expected == "Invalid timezone" else "schedule")


@pytest.mark.parametrize("blank", [None, "", " ", "\t\n  "])
def test_blank_schedule_is_none(blank: str | None) -> None:
    schedule = parse_schedule(blank, None, now=NOW)

    assert schedule.expression is None
    assert schedule.kind is ScheduleKind.NONE
    assert schedule.rule is None
    assert schedule.to_prefect() is None
    assert schedule.next_run_after(NOW) is None
    assert schedule.run_times(NOW, 3) == []


@pytest.mark.parametrize(
    ("text", "stored", "next_run"),
    [
        ("  daily  ", "daily", "2026-03-11T12:34:56Z"),
        ("\tnever\n", "never", None),
        ("\n0 9 * * *\t", "0 9 * * *", "2026-03-11T09:00Z"),
        ("0  9\t*  *  *", "0  9\t*  *  *", "2026-03-11T09:00Z"),
        (" 09:00 ", "09:00", "2026-03-11T09:00Z"),
        ("  2026-12-25  ", "2026-12-25", "2026-12-25T00:00Z"),
        (" Fri, 25 Dec 2026 10:00:00 GMT ", "Fri, 25 Dec 2026 10:00:00 GMT", "2026-12-25T10:00Z"),
    ],
)
def test_surrounding_whitespace_is_ignored(text: str, stored: str, next_run: str | None) -> None:
    schedule = parse_schedule(text, None, now=NOW)

    assert schedule.expression == stored
    assert schedule.next_run_after(NOW) == (utc(next_run) if next_run else None)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("never", ScheduleKind.NEVER),
        ("quarterhourly", ScheduleKind.INTERVAL),
        ("halfhourly", ScheduleKind.INTERVAL),
        ("hourly", ScheduleKind.INTERVAL),
        ("twicedaily", ScheduleKind.INTERVAL),
        ("daily", ScheduleKind.CALENDAR_INTERVAL),
        ("twiceweekly", ScheduleKind.CALENDAR_INTERVAL),
        ("weekly", ScheduleKind.CALENDAR_INTERVAL),
        ("monthly", ScheduleKind.CALENDAR_INTERVAL),
        ("*/5 * * * *", ScheduleKind.CRON),
        ("23:59", ScheduleKind.CRON),
        ("2026-12-25", ScheduleKind.ONCE),
        ("Wed, 25 Dec 2025 10:00:00 GMT", ScheduleKind.ONCE),
    ],
)
def test_kind(text: str, kind: ScheduleKind) -> None:
    assert parse_schedule(text, "Europe/Berlin", now=NOW).kind is kind


def test_prefect_types_per_kind() -> None:
    tz = "America/New_York"

    interval = parse_schedule("hourly", tz, now=NOW).to_prefect()
    assert isinstance(interval, IntervalSchedule)
    assert interval.interval == timedelta(hours=1)
    assert interval.anchor_date == datetime(2026, 3, 10, 12, 34, 56, tzinfo=UTC)
    # Absolute intervals are evaluated in UTC: see deployments/schedule_rules.py.
    assert interval.timezone == "UTC"

    calendar = parse_schedule("daily", tz, now=NOW).to_prefect()
    assert isinstance(calendar, RRuleSchedule)
    assert calendar.rrule == "DTSTART:20260310T083456\nRRULE:FREQ=DAILY"
    assert calendar.timezone == tz

    twiceweekly = parse_schedule("twiceweekly", tz, now=NOW).to_prefect()
    assert isinstance(twiceweekly, RRuleSchedule)
    assert twiceweekly.rrule == "DTSTART:20260310T083456\nRRULE:FREQ=HOURLY;INTERVAL=84"

    month_end = load_schedule("monthly", None, utc("2026-01-30T10:00Z")).to_prefect()
    assert isinstance(month_end, RRuleSchedule)
    assert month_end.rrule == (
        "DTSTART:20260130T100000\nRRULE:FREQ=MONTHLY;BYMONTHDAY=28,29,30;BYSETPOS=-1"
    )

    cron = parse_schedule("0 9 * * MON-FRI", tz, now=NOW).to_prefect()
    assert isinstance(cron, CronSchedule)
    assert (cron.cron, cron.timezone, cron.day_or) == ("0 9 * * 1-5", tz, True)

    time_of_day = parse_schedule("07:05", tz, now=NOW).to_prefect()
    assert isinstance(time_of_day, CronSchedule)
    assert time_of_day.cron == "5 7 * * *"

    once = parse_schedule("2026-12-25T10:00:00", tz, now=NOW).to_prefect()
    assert isinstance(once, RRuleSchedule)
    assert once.rrule == "DTSTART:20261225T150000\nRRULE:FREQ=DAILY;COUNT=1"
    assert once.timezone == "UTC"

    assert parse_schedule("never", tz, now=NOW).to_prefect() is None


def test_to_prefect_returns_a_copy() -> None:
    schedule = parse_schedule("hourly", None, now=NOW)
    first = schedule.to_prefect()
    assert isinstance(first, IntervalSchedule)

    first.interval = timedelta(days=3)

    again = schedule.to_prefect()
    assert isinstance(again, IntervalSchedule)
    assert again.interval == timedelta(hours=1)


def test_anchor_is_now_floored_to_the_second_in_utc() -> None:
    berlin_now = NOW.astimezone(timezone(timedelta(hours=1)))

    schedule = parse_schedule("hourly", None, now=berlin_now)

    assert schedule.anchor == datetime(2026, 3, 10, 12, 34, 56, tzinfo=UTC)
    assert schedule.anchor is not None and schedule.anchor.tzinfo is UTC
    assert schedule.next_run_after(NOW) == utc("2026-03-10T13:34:56Z")


@pytest.mark.parametrize("text", ["never", "0 9 * * *", "2026-12-25", None])
def test_anchor_is_set_for_every_kind(text: str | None) -> None:
    assert parse_schedule(text, None, now=NOW).anchor == NOW.replace(microsecond=0)


def test_parse_needs_an_aware_clock() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("daily", None, now=datetime(2026, 3, 10, 12, 0))


def test_load_round_trips_what_parse_stored() -> None:
    parsed = parse_schedule(" weekly ", "Asia/Tokyo", now=NOW)

    loaded = load_schedule(parsed.expression, parsed.timezone, parsed.anchor)

    assert loaded == parsed
    assert loaded.run_times(NOW, 5) == parsed.run_times(NOW, 5)


def test_load_reads_a_naive_anchor_as_utc() -> None:
    # SQLite hands datetimes back without their timezone.
    naive = load_schedule("hourly", None, datetime(2026, 3, 10, 12, 34, 56))

    assert naive.anchor == datetime(2026, 3, 10, 12, 34, 56, tzinfo=UTC)
    assert naive == load_schedule("hourly", None, datetime(2026, 3, 10, 12, 34, 56, tzinfo=UTC))


def test_load_without_anchor() -> None:
    assert load_schedule("0 9 * * *", None, None).next_run_after(NOW) == utc("2026-03-11T09:00Z")
    assert load_schedule("2026-12-25", None, None).next_run_after(NOW) == utc("2026-12-25T00:00Z")
    # An interval cannot be counted without its anchor: a storage bug, not a bad request.
    with pytest.raises(ValueError, match="needs an anchor") as raised:
        load_schedule("daily", None, None)
    assert not isinstance(raised.value, ScheduleError)


def test_task_schedule_enforces_its_invariants() -> None:
    built = TaskSchedule("  hourly ", "", datetime(2026, 3, 10, 12, 34, 56, 999999, tzinfo=UTC))

    assert (built.expression, built.timezone) == ("hourly", None)
    assert built.anchor == datetime(2026, 3, 10, 12, 34, 56, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        TaskSchedule("hourly", None, datetime(2026, 3, 10))
    with pytest.raises(ScheduleError):
        TaskSchedule("hourly!", None, NOW)


def test_next_run_is_strictly_after() -> None:
    anchor = utc("2026-03-10T12:00Z")
    hourly = load_schedule("hourly", None, anchor)
    once = load_schedule("2026-12-25T10:00:00Z", None, None)
    cron = load_schedule("0 9 * * *", None, None)

    assert hourly.next_run_after(anchor) == utc("2026-03-10T13:00Z")
    assert hourly.next_run_after(utc("2026-03-10T13:00Z")) == utc("2026-03-10T14:00Z")
    assert hourly.next_run_after(anchor - timedelta(seconds=1)) == anchor
    assert cron.next_run_after(utc("2026-03-11T09:00Z")) == utc("2026-03-12T09:00Z")
    assert once.next_run_after(utc("2026-12-25T09:59:59Z")) == utc("2026-12-25T10:00Z")
    # After a one-shot run, nextRunAt becomes null.
    assert once.next_run_after(utc("2026-12-25T10:00Z")) is None


def test_next_run_after_accepts_any_aware_instant_and_answers_in_utc() -> None:
    schedule = load_schedule("0 9 * * *", "Europe/Berlin", None)
    tokyo = utc("2026-03-10T12:00Z").astimezone(timezone(timedelta(hours=9)))

    run = schedule.next_run_after(tokyo)

    assert run == utc("2026-03-11T08:00Z")
    assert run is not None and run.tzinfo is UTC and type(run) is datetime


def test_run_times_arguments() -> None:
    schedule = load_schedule("quarterhourly", None, utc("2026-03-10T12:00Z"))

    assert schedule.run_times(NOW, 0) == []
    assert schedule.run_times(NOW, 3) == [
        utc("2026-03-10T12:45Z"),
        utc("2026-03-10T13:00Z"),
        utc("2026-03-10T13:15Z"),
    ]
    with pytest.raises(ValueError, match="negative"):
        schedule.run_times(NOW, -1)
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_run_after(datetime(2026, 3, 10))


def test_a_past_date_is_accepted_and_never_runs() -> None:
    schedule = parse_schedule("2020-01-01T00:00:00Z", None, now=NOW)

    assert schedule.kind is ScheduleKind.ONCE
    assert schedule.next_run_after(NOW) is None
    assert schedule.run_times(NOW, 5) == []


@pytest.mark.parametrize("text", ["0 9 * * *", "never", "", None, "daily", "2026-12-25"])
def test_invalid_timezone_is_checked_for_every_schedule(text: str | None) -> None:
    with pytest.raises(ScheduleError) as raised:
        parse_schedule(text, "Mars/Olympus", now=NOW)

    assert (raised.value.field, raised.value.message) == ("timezone", "Invalid timezone")


def test_invalid_timezone_wins_over_invalid_schedule() -> None:
    with pytest.raises(ScheduleError) as raised:
        parse_schedule("tomorrow", "Mars/Olympus", now=NOW)

    assert raised.value.field == "timezone"


@pytest.mark.parametrize(
    "name", ["america/new_york", " UTC", "UTC ", "localtime", "Factory", "EST5EDT/x", "+02:00"]
)
def test_timezone_names_are_exact_iana_names(name: str) -> None:
    with pytest.raises(ScheduleError, match="Invalid timezone"):
        parse_schedule("daily", name, now=NOW)


@pytest.mark.parametrize(
    "name", ["UTC", "Etc/UTC", "GMT", "Etc/GMT+5", "US/Eastern", "Asia/Kolkata"]
)
def test_valid_timezones(name: str) -> None:
    assert parse_schedule("daily", name, now=NOW).timezone == name


def test_empty_timezone_means_utc() -> None:
    schedule = parse_schedule("0 9 * * *", "", now=NOW)

    assert schedule.timezone is None
    assert schedule.next_run_after(NOW) == utc("2026-03-11T09:00Z")


def test_schedule_error_is_a_value_error() -> None:
    error = ScheduleError("schedule")

    assert isinstance(error, ValueError)
    assert error.field == "schedule"
    assert error.message == str(error) == "Invalid schedule"
