"""What every account-owned resource service shares: fetch, page and stream."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

import msgspec
from msgspec import UNSET
from sqlalchemy.ext.asyncio import AsyncSession

from api.clock import Clock, to_ms
from api.db.engine import Database
from api.db.owned import OwnedRepository
from api.errors import NotFound
from api.listing import ListQuery
from api.meta import apply_meta_update

RowT = TypeVar("RowT")
OutT = TypeVar("OutT")


@dataclass
class ResourceService(ABC, Generic[RowT, OutT]):
    """Reads of one resource kind, always scoped to an account."""

    db: Database
    clock: Clock
    to_out: Callable[[RowT], OutT]
    not_found: str = "Not found"

    @abstractmethod
    def repository(self, session: AsyncSession) -> OwnedRepository[RowT]:
        """The repository for this resource over ``session``."""

    async def get(self, account_id: str, row_id: str) -> RowT:
        """The row, or 404 (also for another account's id)."""
        async with self.db.session() as session:
            row = await self.repository(session).get(account_id, row_id)
        if row is None:
            raise NotFound(self.not_found)
        return row

    async def fetch(self, account_id: str, row_id: str) -> OutT:
        """The wire object, or 404."""
        return self.to_out(await self.get(account_id, row_id))

    async def update_fields(self, account_id: str, row_id: str, body: Any) -> str:
        """Apply a partial update Struct to a row (``meta: {"$update": …}`` merges)."""
        async with self.db.transaction() as session:
            row = await self.repository(session).get(account_id, row_id, lock=True)
            if row is None:
                raise NotFound(self.not_found)
            changes = sent_fields(body)
            if "meta" in changes:
                changes["meta"] = apply_meta_update(getattr(row, "meta", None), changes["meta"])
            for key, value in changes.items():
                setattr(row, key, value)
            setattr(row, "updated_at", to_ms(self.clock()))  # noqa: B010 (generic row type)
        return row_id

    async def page(self, account_id: str, query: ListQuery) -> list[RowT]:
        """One keyset page."""
        async with self.db.session() as session:
            return list(await self.repository(session).page(account_id, query))

    async def stream(self, account_id: str, query: ListQuery) -> AsyncIterator[RowT]:
        """Every matching row, one page (and one short session) at a time.

        Memory stays flat whatever the number of rows: each page is dropped before the
        next is read, and no transaction stays open while the client reads.
        """
        remaining = query.total
        cursor = query.cursor
        while remaining is None or remaining > 0:
            limit = query.limit if remaining is None else min(query.limit, remaining)
            rows = await self.page(account_id, replace(query, cursor=cursor, limit=limit))
            for row in rows:
                yield row
            if len(rows) < limit:
                return
            cursor = _id_of(rows[-1])
            if remaining is not None:
                remaining -= len(rows)


def _id_of(row: Any) -> str:
    return str(row.id)


def sent_fields(body: Any) -> dict[str, Any]:
    """The fields of a request Struct that the client actually sent (not ``UNSET``)."""
    return {
        name: value
        for name in body.__struct_fields__
        if (value := getattr(body, name)) is not UNSET
    }


WireT = TypeVar("WireT")


def to_wire(row: Any, shape: type[WireT], **overrides: Any) -> WireT:
    """A wire Struct from a row's attributes of the same names (the one row → Struct step).

    msgspec validates while converting, so a row that breaks the contract's shape (a
    status the wire does not know, say) fails loudly here instead of on a client.
    """
    if overrides:
        # Override before validating: the row's own value may not fit the wire shape.
        fields = {name: getattr(row, name) for name in shape.__struct_fields__}  # type: ignore[attr-defined]
        row = SimpleNamespace(**{**fields, **overrides})
    return msgspec.convert(row, shape, from_attributes=True)
