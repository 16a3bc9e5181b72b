"""Every SQL query about accounts and their tokens."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.db.models import Account, ApiToken


class AccountRepository:
    """Accounts and bearer tokens (stored as hashes)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_name(self, name: str) -> Account | None:
        """The account with this name, if any."""
        stmt = select(Account).where(col(Account.name) == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    def add(self, row: Account | ApiToken) -> None:
        """Stage a new account or token."""
        self.session.add(row)

    async def account_of_token(self, token_hash: str) -> str | None:
        """The account id a token hash belongs to."""
        stmt = select(col(ApiToken.account_id)).where(col(ApiToken.token_hash) == token_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()
