"""Schedules across DST changes, month ends and leap days.

America/New_York in 2026: clocks spring forward on Mar 8 (02:00 EST → 03:00 EDT) and fall
back on Nov 1 (02:00 EDT → 01:00 EST). Expected values are what CONTRACT.md section 4 says;
that they are also what Prefect generates is checked in test_schedule_prefect.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deployments.schedules import ScheduleError, load_schedule, parse_schedule

NEW_YORK = "America/New_York"


def utc(text: str) -> datetime:
    """A UTC datetime from ISO text such as `2026-03-08T07:30Z`."""
    return datetime.fromisoformat(text).astimezone(UTC)


def runs(text: str, tz: str | None, anchor: str, after: str, count: int) -> list[str]:
    """The next `count` runs after `after` of a schedule anchored at `anchor`, as UTC text."""
    schedule = load_schedule(text, tz, utc(anchor))
    return [run.strftime("%Y-%m-%dT%H:%MZ") for run in schedule.run_times(utc(after), count)]


# --- cron and HH:MM at wall times that do not exist or occur twice -------------------------


@pytest.mark.parametrize("text", ["30 2 * * *", "02:30"])
def test_cron_at_a_skipped_wall_time_runs_after_the_gap(text: str) -> None:
    # 02:30 does not exist on Mar 8; Prefect reads it with the offset before the gap, so
    # it runs at 03:30 EDT, then at 02:30 EDT on the following days.
    assert runs(text, NEW_YORK, "2026-01-01T00:00Z", "2026-03-07T12:00Z", 3) == [
        "2026-03-08T07:30Z",
        "2026-03-09T06:30Z",
        "2026-03-10T06:30Z",
    ]


@pytest.mark.parametrize("text", ["30 1 * * *", "01:30"])
def test_cron_at_a_repeated_wall_time_runs_once_at_the_first(text: str) -> None:
    expected = ["2026-11-01T05:30Z", "2026-11-02T06:30Z", "2026-11-03T06:30Z"]

    assert runs(text, NEW_YORK, "2026-01-01T00:00Z", "2026-10-31T12:00Z", 3) == expected
    # Asked again inside the repeated hour, the second 01:30 (06:30Z) is not a run.
    assert runs(text, NEW_YORK, "2026-01-01T00:00Z", "2026-11-01T05:30Z", 1) == expected[1:2]
    assert runs(text, NEW_YORK, "2026-01-01T00:00Z", "2026-11-01T06:15Z", 1) == expected[1:2]


def test_cron_every_half_hour_follows_the_wall_clock_at_fall_back() -> None:
    # Cron fires on wall times, each once: 01:00 and 01:30 EST do not repeat.
    assert runs("*/30 * * * *", NEW_YORK, "2026-01-01T00:00Z", "2026-11-01T04:45Z", 4) == [
        "2026-11-01T05:00Z",
        "2026-11-01T05:30Z",
        "2026-11-01T07:00Z",
        "2026-11-01T07:30Z",
    ]


def test_cron_across_dst_in_europe() -> None:
    berlin = "Europe/Berlin"
    # Mar 29: 02:30 does not exist (→ 03:30 CEST); Oct 25: 02:30 occurs twice (→ the first).
    assert runs("30 2 * * *", berlin, "2026-01-01T00:00Z", "2026-03-28T12:00Z", 2) == [
        "2026-03-29T01:30Z",
        "2026-03-30T00:30Z",
    ]
    assert runs("30 2 * * *", berlin, "2026-01-01T00:00Z", "2026-10-24T12:00Z", 2) == [
        "2026-10-25T00:30Z",
        "2026-10-26T01:30Z",
    ]


def test_cron_across_a_half_hour_dst_change() -> None:
    # Lord Howe Island moves from +10:30 to +11:00 at 02:00 on Oct 4, 2026.
    assert runs(
        "0 2 * * *", "Australia/Lord_Howe", "2026-01-01T00:00Z", "2026-10-03T00:00Z", 2
    ) == [
        "2026-10-03T15:30Z",
        "2026-10-04T15:00Z",
    ]


# --- calendar intervals (a day or more) keep the anchor's wall-clock time -------------------


def test_daily_keeps_wall_time_across_spring_forward() -> None:
    # Anchored 09:00 EST on Mar 7: 09:00 EDT from Mar 8 on.
    assert runs("daily", NEW_YORK, "2026-03-07T14:00Z", "2026-03-07T14:00Z", 3) == [
        "2026-03-08T13:00Z",
        "2026-03-09T13:00Z",
        "2026-03-10T13:00Z",
    ]


def test_daily_keeps_wall_time_across_fall_back() -> None:
    # Anchored 09:00 EDT on Oct 31: 09:00 EST from Nov 1 on.
    assert runs("daily", NEW_YORK, "2026-10-31T13:00Z", "2026-10-31T13:00Z", 2) == [
        "2026-11-01T14:00Z",
        "2026-11-02T14:00Z",
    ]


def test_daily_at_a_wall_time_the_spring_forward_day_skips() -> None:
    # Anchored 02:30 EST on Mar 7. On Mar 8 02:30 does not exist: Prefect's rrule dates
    # (dateutil) read it with the offset after the gap, 06:30Z (01:30 EST). From Mar 9 on it
    # is 02:30 EDT again: the anchor's wall time is kept, not shifted to 03:30 for good.
    assert runs("daily", NEW_YORK, "2026-03-07T07:30Z", "2026-03-07T07:30Z", 3) == [
        "2026-03-08T06:30Z",
        "2026-03-09T06:30Z",
        "2026-03-10T06:30Z",
    ]


def test_daily_at_a_wall_time_the_fall_back_day_repeats() -> None:
    # Anchored 01:30 EDT on Oct 31: on Nov 1 the first 01:30 (EDT), then 01:30 EST.
    assert runs("daily", NEW_YORK, "2026-10-31T05:30Z", "2026-10-31T05:30Z", 3) == [
        "2026-11-01T05:30Z",
        "2026-11-02T06:30Z",
        "2026-11-03T06:30Z",
    ]


def test_weekly_keeps_wall_time_across_dst() -> None:
    assert runs("weekly", NEW_YORK, "2026-03-05T14:00Z", "2026-03-05T14:00Z", 2) == [
        "2026-03-12T13:00Z",
        "2026-03-19T13:00Z",
    ]
    assert runs("weekly", NEW_YORK, "2026-10-29T13:00Z", "2026-10-29T13:00Z", 2) == [
        "2026-11-05T14:00Z",
        "2026-11-12T14:00Z",
    ]


def test_twiceweekly_keeps_wall_time_across_dst() -> None:
    # 3.5 days of wall-clock time: Fri 09:00, Mon 21:00, Fri 09:00 … local, whatever the offset.
    assert runs("twiceweekly", NEW_YORK, "2026-03-06T14:00Z", "2026-03-06T14:00Z", 3) == [
        "2026-03-10T01:00Z",
        "2026-03-13T13:00Z",
        "2026-03-17T01:00Z",
    ]
    assert runs("twiceweekly", NEW_YORK, "2026-10-30T13:00Z", "2026-10-30T13:00Z", 2) == [
        "2026-11-03T02:00Z",
        "2026-11-06T14:00Z",
    ]


def test_twiceweekly_does_not_drift_months_after_the_anchor() -> None:
    # Prefect's IntervalSchedule(3.5 days) answers 22:00/10:00 EDT here, depending on where
    # it starts counting; the rrule keeps the anchor's 21:00/09:00.
    assert runs("twiceweekly", NEW_YORK, "2026-03-06T14:00Z", "2026-06-09T00:00Z", 2) == [
        "2026-06-09T01:00Z",
        "2026-06-12T13:00Z",
    ]


def test_monthly_keeps_wall_time_across_dst() -> None:
    assert runs("monthly", NEW_YORK, "2026-02-15T14:00Z", "2026-02-15T14:00Z", 2) == [
        "2026-03-15T13:00Z",
        "2026-04-15T13:00Z",
    ]


# --- intervals under a day are absolute ------------------------------------------------------


def test_twicedaily_is_absolute_across_dst() -> None:
    assert runs("twicedaily", NEW_YORK, "2026-03-07T14:00Z", "2026-03-07T14:00Z", 3) == [
        "2026-03-08T02:00Z",
        "2026-03-08T14:00Z",
        "2026-03-09T02:00Z",
    ]
    assert runs("twicedaily", NEW_YORK, "2026-10-31T13:00Z", "2026-10-31T13:00Z", 3) == [
        "2026-11-01T01:00Z",
        "2026-11-01T13:00Z",
        "2026-11-02T01:00Z",
    ]


def test_hourly_keeps_the_repeated_hour_at_fall_back() -> None:
    # Prefect's interval schedule in America/New_York drops 06:30Z here; ours counts in UTC.
    assert runs("hourly", NEW_YORK, "2026-11-01T04:30Z", "2026-11-01T04:30Z", 4) == [
        "2026-11-01T05:30Z",
        "2026-11-01T06:30Z",
        "2026-11-01T07:30Z",
        "2026-11-01T08:30Z",
    ]
    assert runs("hourly", NEW_YORK, "2026-11-01T04:30Z", "2026-11-01T05:59Z", 1) == [
        "2026-11-01T06:30Z"
    ]


def test_quarterhourly_is_absolute_at_both_changes() -> None:
    assert runs("quarterhourly", NEW_YORK, "2026-11-01T05:30Z", "2026-11-01T05:30Z", 4) == [
        "2026-11-01T05:45Z",
        "2026-11-01T06:00Z",
        "2026-11-01T06:15Z",
        "2026-11-01T06:30Z",
    ]
    assert runs("halfhourly", NEW_YORK, "2026-03-08T06:00Z", "2026-03-08T06:00Z", 3) == [
        "2026-03-08T06:30Z",
        "2026-03-08T07:00Z",
        "2026-03-08T07:30Z",
    ]


# --- month ends and leap days ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [
        ("2028-01-31T10:00Z", ["2028-02-29", "2028-03-31", "2028-04-30", "2028-05-31"]),
        ("2028-01-30T10:00Z", ["2028-02-29", "2028-03-30", "2028-04-30", "2028-05-30"]),
        ("2028-01-29T10:00Z", ["2028-02-29", "2028-03-29", "2028-04-29", "2028-05-29"]),
        ("2026-01-31T10:00Z", ["2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31"]),
        ("2026-01-30T10:00Z", ["2026-02-28", "2026-03-30", "2026-04-30", "2026-05-30"]),
        ("2026-01-29T10:00Z", ["2026-02-28", "2026-03-29", "2026-04-29", "2026-05-29"]),
        ("2026-01-28T10:00Z", ["2026-02-28", "2026-03-28", "2026-04-28", "2026-05-28"]),
        ("2026-08-31T10:00Z", ["2026-09-30", "2026-10-31", "2026-11-30", "2026-12-31"]),
        ("2028-02-29T10:00Z", ["2028-03-29", "2028-04-29", "2028-05-29", "2028-06-29"]),
    ],
)
def test_monthly_clamps_to_the_last_day(anchor: str, expected: list[str]) -> None:
    got = runs("monthly", None, anchor, anchor, 4)

    assert [run[:10] for run in got] == expected
    assert all(run.endswith("T10:00Z") for run in got)


def test_monthly_returns_to_the_anchor_day_after_a_short_february() -> None:
    # Anchored Jan 29, 2027: Feb 28 in 2027, but Feb 29 in the leap year 2028.
    assert runs("monthly", None, "2027-01-29T10:00Z", "2028-01-30T00:00Z", 2) == [
        "2028-02-29T10:00Z",
        "2028-03-29T10:00Z",
    ]
    assert runs("monthly", None, "2027-01-31T10:00Z", "2027-02-01T00:00Z", 2) == [
        "2027-02-28T10:00Z",
        "2027-03-31T10:00Z",
    ]


def test_monthly_counts_the_day_of_month_in_the_timezone() -> None:
    # 2026-01-31T23:30Z is Feb 1, 08:30 in Tokyo: the 1st of every month there.
    assert runs("monthly", "Asia/Tokyo", "2026-01-31T23:30Z", "2026-01-31T23:30Z", 3) == [
        "2026-02-28T23:30Z",
        "2026-03-31T23:30Z",
        "2026-04-30T23:30Z",
    ]


def test_cron_on_feb_29_runs_in_leap_years_only() -> None:
    assert runs("0 0 29 2 *", None, "2026-01-01T00:00Z", "2026-03-10T00:00Z", 2) == [
        "2028-02-29T00:00Z",
        "2032-02-29T00:00Z",
    ]


def test_cron_on_the_31st_skips_short_months() -> None:
    assert runs("0 0 31 * *", None, "2026-01-01T00:00Z", "2026-03-10T00:00Z", 3) == [
        "2026-03-31T00:00Z",
        "2026-05-31T00:00Z",
        "2026-07-31T00:00Z",
    ]


def test_date_on_feb_29() -> None:
    leap = parse_schedule("2028-02-29T12:00:00Z", None, now=utc("2026-03-10T00:00Z"))

    assert leap.next_run_after(utc("2026-03-10T00:00Z")) == utc("2028-02-29T12:00Z")
    for text in ("2027-02-29", "2027-02-29T12:00:00Z", "2028-02-30"):
        with pytest.raises(ScheduleError):
            parse_schedule(text, None, now=utc("2026-03-10T00:00Z"))


# --- dates read in the timezone --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Skipped wall time: read with the offset before the gap (03:30 EDT), as cron does.
        ("2026-03-08T02:30:00", "2026-03-08T07:30Z"),
        # Repeated wall time: the first occurrence (EDT), as cron does.
        ("2026-11-01T01:30:00", "2026-11-01T05:30Z"),
        # An explicit offset names the second occurrence exactly.
        ("2026-11-01T01:30:00-05:00", "2026-11-01T06:30Z"),
        ("2026-11-01T01:30:00-04:00", "2026-11-01T05:30Z"),
        ("2026-11-01", "2026-11-01T04:00Z"),
    ],
)
def test_dates_at_dst_changes(text: str, expected: str) -> None:
    schedule = parse_schedule(text, NEW_YORK, now=utc("2026-01-01T00:00Z"))

    assert schedule.next_run_after(utc("2026-01-01T00:00Z")) == utc(expected)
