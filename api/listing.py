"""List parameters shared by every ``…/list`` and ``…/export`` route (CONTRACT §3)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from api.errors import BadRequest
from api.wire import TAKE_MAX


class Format(enum.Enum):
    """What the client asked for in ``Accept``."""

    JSON = "application/json"
    JSONL = "application/jsonl"
    CSV = "text/csv"


def negotiate(accept: str | None, allowed: tuple[Format, ...]) -> Format:
    """Pick the response format from the first media type of ``Accept``.

    Missing, empty or ``*/*`` means JSON; anything not in ``allowed`` is a 400.
    """
    first = (accept or "").split(",", 1)[0].split(";", 1)[0].strip().lower()
    if first in {"", "*/*", "application/*"}:
        return Format.JSON
    for fmt in allowed:
        if fmt.value == first:
            return fmt
    raise BadRequest(f'Unsupported "Accept" media type: {first}')


@dataclass(frozen=True)
class MetaFilter:
    """``meta.KEY=VALUE`` / ``meta[KEY]=VALUE``: equality at a (possibly nested) key path."""

    path: tuple[str, ...]
    value: str

    @property
    def boolean(self) -> bool | None:
        """``true``/``false`` compare as booleans; anything else as text."""
        return {"true": True, "false": False}.get(self.value)


@dataclass(frozen=True)
class ListQuery:
    """Paging and filters of one list request.

    ``limit`` is the page size; ``total`` bounds a stream (``take`` given) or is ``None``
    (stream to the end).
    """

    descending: bool = True
    cursor: str | None = None
    limit: int = TAKE_MAX
    total: int | None = None
    meta: tuple[MetaFilter, ...] = ()
    filters: Mapping[str, Any] = field(default_factory=dict)


def parse_take(raw: str | None) -> int | None:
    """``take`` as an int (``None`` when absent); non-numbers are a 400."""
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest('"take" must be a number') from None


def parse_meta_filters(params: Mapping[str, str]) -> tuple[MetaFilter, ...]:
    """Collect ``meta.a.b=v`` and ``meta[a.b]=v`` query parameters."""
    found: list[MetaFilter] = []
    for key, value in params.items():
        if key.startswith("meta.") and len(key) > 5:
            dotted = key[5:]
        elif key.startswith("meta[") and key.endswith("]") and len(key) > 6:
            dotted = key[5:-1]
        else:
            continue
        path = tuple(dotted.split("."))
        if any(not part for part in path):
            raise BadRequest(f'"{key}" is not a valid meta filter')
        found.append(MetaFilter(path=path, value=value))
    return tuple(found)


def build_list_query(
    params: Mapping[str, str],
    *,
    stream: bool,
    filters: Mapping[str, Any] | None = None,
) -> ListQuery:
    """Read ``order``, ``cursor``, ``take`` and meta filters from query parameters.

    A page clamps ``take`` to 1…100; a stream reads 100-item pages and stops after
    ``take`` items when ``take`` is given.
    """
    take = parse_take(params.get("take"))
    descending = params.get("order") != "asc"
    cursor = params.get("cursor") or None
    if stream:
        total = None if take is None else max(1, take)
        limit = TAKE_MAX if total is None else min(TAKE_MAX, total)
    else:
        total = None
        limit = TAKE_MAX if take is None else min(TAKE_MAX, max(1, take))
    return ListQuery(
        descending=descending,
        cursor=cursor,
        limit=limit,
        total=total,
        meta=parse_meta_filters(params),
        filters=dict(filters or {}),
    )


def split_csv(raw: str | None) -> tuple[str, ...] | None:
    """``a,b`` → ``("a", "b")``: comma-separated filter values mean any of."""
    if not raw:
        return None
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    return values or None
