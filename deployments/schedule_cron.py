"""Strict 5-field cron and `HH:MM`, rewritten into a canonical cron that croniter reads right.

Why canonical: Prefect evaluates cron with its vendored croniter, which misreads some
valid forms (`1-1` and `6/1` in the day of week mean "every day" to it, `a/step` stops
at Saturday). We expand every field ourselves and hand Prefect only `*` or plain
ascending lists and ranges (`0,15,30` / `1-5`), which it evaluates correctly.

Day matching follows POSIX: a field is unrestricted only when written exactly `*`; when
both day of month and day of week are restricted, a day matching either one matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# February counts 29 days: a cron for Feb 29 does fire, in leap years.
_LONGEST_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# re.ASCII: `\d`-like classes must not accept other scripts' digits.
_ITEM = re.compile(
    r"(?:(?P<star>\*)|(?P<first>[0-9]{1,2}|[A-Za-z]{3})(?:-(?P<last>[0-9]{1,2}|[A-Za-z]{3}))?)"
    r"(?:/(?P<step>[0-9]{1,2}))?",
    re.ASCII,
)
_TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])", re.ASCII)


@dataclass(frozen=True)
class _FieldSpec:
    """The allowed values of one cron field, and the names that stand for some of them."""

    low: int
    high: int
    names: Mapping[str, int]


_MINUTE = _FieldSpec(0, 59, {})
_HOUR = _FieldSpec(0, 23, {})
_DAY_OF_MONTH = _FieldSpec(1, 31, {})
_MONTH = _FieldSpec(1, 12, {name: number for number, name in enumerate(_MONTH_NAMES, start=1)})
# 0 and 7 are both Sunday; 7 is folded to 0 after expansion, so `5-7` works.
_DAY_OF_WEEK = _FieldSpec(0, 7, {name: number for number, name in enumerate(_DAY_NAMES)})
_FIELDS = (_MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK)

# One parsed field: None means unrestricted (`*`), else the set of allowed values.
_Values = frozenset[int] | None


def canonical_cron(text: str) -> str | None:
    """Return the canonical form of a 5-field cron `m h dom mon dow`, or None if `text` is not one.

    Rejects 6/7-field, `@…`, `L`/`W`/`#`/`?` and random/hashed (`R`/`H`) forms by grammar.
    """
    parts = text.split()
    if len(parts) != len(_FIELDS):
        return None
    fields: list[_Values] = []
    for part, spec in zip(parts, _FIELDS, strict=True):
        if part == "*":
            fields.append(None)
            continue
        values = _expand_field(part, spec)
        if values is None:
            return None
        fields.append(values)
    if fields[2] is not None and not _day_exists(fields[2], fields[3]):
        # croniter raises on a day of month no listed month has (`0 0 30 2 *`), even when
        # the day of week could match instead. With a restricted day of week the OR rule
        # makes that day of month irrelevant, so `*` there means the same; without one,
        # the cron never fires and is refused.
        if fields[4] is None:
            return None
        fields[2] = None
    return " ".join(
        "*" if values is None else _write_field(values, spec)
        for values, spec in zip(fields, _FIELDS, strict=True)
    )


def daily_at(text: str) -> str | None:
    """Return the cron for `HH:MM` (24 h) as `MM HH * * *`, or None if `text` is not that form."""
    match = _TIME_OF_DAY.fullmatch(text)
    if match is None:
        return None
    return f"{int(match[2])} {int(match[1])} * * *"


def _expand_field(part: str, spec: _FieldSpec) -> frozenset[int] | None:
    """Expand one comma-separated field into its values, or None if any item is invalid."""
    values: set[int] = set()
    for item in part.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            return None
        step = int(match["step"]) if match["step"] else 1
        if not 1 <= step <= spec.high:
            return None
        if match["star"]:
            first, last = spec.low, spec.high
        else:
            first_value = _field_value(match["first"], spec)
            # `a/step` means `a-high/step`, as in Vixie cron.
            last_value = (
                _field_value(match["last"], spec)
                if match["last"]
                else (spec.high if match["step"] else first_value)
            )
            if first_value is None or last_value is None or first_value > last_value:
                return None
            first, last = first_value, last_value
        values.update(range(first, last + 1, step))
    if spec is _DAY_OF_WEEK:
        values = {value % 7 for value in values}
    return frozenset(values)


def _field_value(token: str, spec: _FieldSpec) -> int | None:
    """Read a number or (case-insensitive) name of a field, or None if out of range."""
    value = int(token) if token.isdigit() else spec.names.get(token.upper())
    if value is None or not spec.low <= value <= spec.high:
        return None
    return value


def _day_exists(days: frozenset[int], months: _Values) -> bool:
    """Whether some listed day of month occurs in some listed month (Feb 29 included)."""
    return any(
        day <= _LONGEST_MONTH[month - 1]
        for month in (months if months is not None else range(1, 13))
        for day in days
    )


def _write_field(values: frozenset[int], spec: _FieldSpec) -> str:
    """Write a field's values back as cron text that croniter evaluates correctly."""
    # `*/n` is kept readable for minute, hour and month. Never for the day fields: a `*`
    # in their text changes how croniter combines day of month and day of week.
    if spec not in (_DAY_OF_MONTH, _DAY_OF_WEEK):
        for step in range(2, spec.high + 1):
            if values == frozenset(range(spec.low, spec.high + 1, step)):
                return f"*/{step}"
    return _compress(values)


def _compress(values: Iterable[int]) -> str:
    """Write sorted values as a list, with runs of three or more as `a-b` ranges."""
    ordered = sorted(values)
    pieces: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        if end - start >= 2:
            pieces.append(f"{ordered[start]}-{ordered[end]}")
        else:
            pieces.extend(str(value) for value in ordered[start : end + 1])
        start = end + 1
    return ",".join(pieces)
