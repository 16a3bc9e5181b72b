"""Query building blocks shared by the repositories: keyset paging and meta filters.

Paging is keyset on (``created_at``, ``id``) — never OFFSET — so a page deep in a large
table costs what the first page costs: both walk the (account_id, created_at, id) index.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, cast, func, literal, or_, tuple_
from sqlalchemy.dialects.postgresql import JSONB

from api.listing import MetaFilter


def keyset(
    stmt: Select[Any],
    created_at: Any,
    id_: Any,
    *,
    descending: bool,
    after: tuple[int, str] | None,
    limit: int,
) -> Select[Any]:
    """Order by (created_at, id) and start strictly after the cursor row ``after``."""
    if after is not None:
        key = tuple_(created_at, id_)
        stmt = stmt.where(key < tuple_(*after) if descending else key > tuple_(*after))
    if descending:
        stmt = stmt.order_by(created_at.desc(), id_.desc())
    else:
        stmt = stmt.order_by(created_at.asc(), id_.asc())
    return stmt.limit(limit)


def _number(value: str) -> int | float | None:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def meta_condition(column: Any, filt: MetaFilter, dialect: str) -> ColumnElement[bool]:
    """SQL for one meta equality filter, exact about JSON types on both databases.

    ``true``/``false`` match JSON booleans; a numeric value matches the number or the
    string; anything else matches the string only.
    """
    number = _number(filt.value)
    if dialect == "postgresql":
        # Containment of a one-path document (`meta @> {"a": {"b": v}}`) is equality for
        # a scalar at that path, and the GIN index on meta can answer it.
        def contains(value: object) -> ColumnElement[bool]:
            document: object = value
            for part in reversed(filt.path):
                document = {part: document}
            return column.op("@>")(cast(literal(json.dumps(document)), JSONB))  # type: ignore[no-any-return]

        if filt.boolean is not None:
            return contains(filt.boolean)
        options = [contains(filt.value)]
        if number is not None:
            options.append(contains(number))
        return or_(*options)
    # SQLite: json_type tells booleans ("true"/"false") from numbers and text.
    path = "$" + "".join('."' + part.replace('"', '\\"') + '"' for part in filt.path)
    kind = func.json_type(column, path)
    value = func.json_extract(column, path)
    if filt.boolean is not None:
        return kind == ("true" if filt.boolean else "false")
    options = [and_(kind == "text", value == filt.value)]
    if number is not None:
        options.append(and_(kind.in_(("integer", "real")), value == number))
    return or_(*options)
