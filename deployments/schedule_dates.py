"""Strict readers for one-shot schedule dates: ISO 8601 and RFC 2822, nothing looser.

A generic parser (dateutil's) would accept `tomorrow`-like text and silently repair
impossible dates, so each form here is a full-match pattern and every field is range
checked by `datetime` itself.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

# ISO 8601 extended format (and RFC 3339): a date, optionally a time with seconds,
# a fraction and an offset. The separator may be `T`, `t` or a space (RFC 3339).
_ISO = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"(?:[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]+))?)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?",
    re.ASCII,
)

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# RFC 2822 section 3.3 (names are case-insensitive there); the weekday is optional and,
# as the contract says, not checked against the date.
_RFC_2822 = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)\s*,\s*)?"
    r"(?P<day>[0-9]{1,2})\s+(?P<month>" + "|".join(_MONTHS) + r")\s+(?P<year>[0-9]{4})\s+"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2}))?\s+"
    r"(?P<zone>[+-][0-9]{4}|ut|utc|gmt|z|[ecmp][sd]t)",
    re.ASCII | re.IGNORECASE,
)
# The obsolete US zone names RFC 2822 still defines (section 4.3).
_US_ZONES = {"e": -5, "c": -6, "m": -7, "p": -8}


def parse_instant(text: str, zone: tzinfo) -> datetime | None:
    """Read `text` as an ISO 8601 or RFC 2822 instant in UTC, or None if it is neither.

    A value without an explicit offset is wall-clock time in `zone`; fractions are kept.
    """
    try:
        return _parse_iso(text, zone) or _parse_rfc_2822(text)
    except (ValueError, OverflowError):
        # Out-of-range fields (month 13, Feb 30, hour 24) or an instant beyond year 1…9999.
        return None


def _parse_iso(text: str, zone: tzinfo) -> datetime | None:
    """Read the ISO 8601 extended forms; date only means midnight."""
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    fraction = match["fraction"] or ""
    local = datetime(
        int(match["year"]),
        int(match["month"]),
        int(match["day"]),
        int(match["hour"] or 0),
        int(match["minute"] or 0),
        int(match["second"] or 0),
        # Digits past microseconds are dropped: the run time is floored to the second anyway.
        int(fraction[:6].ljust(6, "0")),
    )
    offset = match["offset"]
    if offset is None:
        # zoneinfo reads a skipped wall time with the offset before the gap and a repeated
        # one as its first occurrence (fold=0), as RFC 5545 prescribes for local times.
        return local.replace(tzinfo=zone).astimezone(UTC)
    return local.replace(tzinfo=_fixed_offset(offset)).astimezone(UTC)


def _parse_rfc_2822(text: str) -> datetime | None:
    """Read RFC 2822 date-times such as `Wed, 25 Dec 2025 10:00:00 GMT`."""
    match = _RFC_2822.fullmatch(text)
    if match is None:
        return None
    local = datetime(
        int(match["year"]),
        _MONTHS.index(match["month"].lower()) + 1,
        int(match["day"]),
        int(match["hour"]),
        int(match["minute"]),
        int(match["second"] or 0),
    )
    return local.replace(tzinfo=_zone_offset(match["zone"])).astimezone(UTC)


def _fixed_offset(text: str) -> timezone:
    """Turn `Z`, `+02`, `+0200` or `+02:00` into a fixed offset; hours ≤ 23, minutes ≤ 59."""
    if text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset out of range: {text}")
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _zone_offset(text: str) -> timezone:
    """Turn an RFC 2822 zone (`+0200`, `GMT`, `EST` …) into a fixed offset."""
    lowered = text.lower()
    if lowered in ("ut", "utc", "gmt", "z"):
        return UTC
    if lowered[0] in _US_ZONES:
        daylight = 1 if lowered[1] == "d" else 0
        return timezone(timedelta(hours=_US_ZONES[lowered[0]] + daylight))
    return _fixed_offset(text)
