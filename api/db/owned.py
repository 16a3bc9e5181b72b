"""A repository base for rows owned by an account, paged by (created_at, id)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.queries import keyset, meta_condition
from api.errors import BadRequest
from api.listing import ListQuery

RowT = TypeVar("RowT")


class OwnedRepository(Generic[RowT]):
    """Queries every account-owned resource shares: get, exists, add, delete, page."""

    model: type[RowT]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _m(self) -> Any:
        return self.model

    def _visible(self, account_id: str) -> list[Any]:
        """Conditions every read adds: the account, plus whatever a subclass hides."""
        return [self._m.account_id == account_id]

    async def get(self, account_id: str, row_id: str, *, lock: bool = False) -> RowT | None:
        """The account's row, or ``None`` (also for another account's id).

        ``lock`` takes a row lock (PostgreSQL) for a read-modify-write.
        """
        stmt = select(self._m).where(self._m.id == row_id, *self._visible(account_id))
        if lock:
            stmt = stmt.with_for_update()
        row: RowT | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return row

    async def exists(self, account_id: str, row_id: str) -> bool:
        """Whether the account owns a (visible) row with this id."""
        stmt = select(self._m.id).where(self._m.id == row_id, *self._visible(account_id))
        return (await self.session.execute(stmt)).first() is not None

    def add(self, row: RowT) -> None:
        """Stage a new row."""
        self.session.add(row)

    async def delete(self, row: RowT) -> None:
        """Delete one row."""
        await self.session.delete(row)

    async def page(self, account_id: str, query: ListQuery) -> Sequence[RowT]:
        """One keyset page of the account's rows.

        ``query.filters`` maps column names to a value (equality) or a tuple (any of).
        """
        stmt = select(self._m).where(*self._visible(account_id))
        for name, value in query.filters.items():
            if isinstance(value, tuple):
                stmt = stmt.where(getattr(self._m, name).in_(value))
            elif value is not None:
                stmt = stmt.where(getattr(self._m, name) == value)
        dialect = self.session.get_bind().dialect.name
        for filt in query.meta:
            stmt = stmt.where(meta_condition(self._m.meta, filt, dialect))
        after = await self._cursor_key(account_id, query.cursor)
        stmt = keyset(
            stmt,
            self._m.created_at,
            self._m.id,
            descending=query.descending,
            after=after,
            limit=query.limit,
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def _cursor_key(self, account_id: str, cursor: str | None) -> tuple[int, str] | None:
        if cursor is None:
            return None
        stmt = select(self._m.created_at).where(
            self._m.id == cursor, self._m.account_id == account_id
        )
        created_at = (await self.session.execute(stmt)).scalar_one_or_none()
        if created_at is None:
            raise BadRequest('"cursor" does not name an item of this list')
        return (int(created_at), cursor)
