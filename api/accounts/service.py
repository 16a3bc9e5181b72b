"""Accounts and bearer tokens: the token is shown once, only its SHA-256 is kept."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from api.accounts.repository import AccountRepository
from api.clock import Clock, to_ms
from api.db.engine import Database
from api.db.models import Account, ApiToken
from api.errors import BadRequest, NotFound
from api.ids import new_id

TOKEN_PREFIX = "tbk_"


def hash_token(token: str) -> str:
    """The stored form of a token.

    Tokens carry 256 random bits, so a plain SHA-256 (no salt, no slow KDF) is enough
    and keeps the per-request lookup a single indexed equality.
    """
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class AccountService:
    """Create accounts and tokens; resolve a bearer token to its account."""

    db: Database
    clock: Clock

    async def create_account(self, name: str) -> str:
        """A new account; names are unique."""
        name = name.strip()
        if not name or len(name) > 191:
            raise BadRequest('"name" must be 1 to 191 characters long')
        async with self.db.transaction() as session:
            accounts = AccountRepository(session)
            if await accounts.by_name(name) is not None:
                raise BadRequest(f'Account "{name}" already exists')
            account = Account(id=new_id("acct"), name=name, created_at=to_ms(self.clock()))
            accounts.add(account)
        return account.id

    async def ensure_account(self, name: str) -> str:
        """The id of the account with this name, creating it when missing."""
        async with self.db.session() as session:
            found = await AccountRepository(session).by_name(name)
        return found.id if found is not None else await self.create_account(name)

    async def create_token(self, account_name: str) -> str:
        """A new bearer token for the named account, returned once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.db.transaction() as session:
            accounts = AccountRepository(session)
            account = await accounts.by_name(account_name)
            if account is None:
                raise NotFound(f'Account "{account_name}" not found')
            accounts.add(
                ApiToken(
                    id=new_id("tok"),
                    account_id=account.id,
                    token_hash=hash_token(token),
                    created_at=to_ms(self.clock()),
                )
            )
        return token

    async def authenticate(self, token: str) -> str | None:
        """The account id of a bearer token, or ``None``."""
        async with self.db.session() as session:
            return await AccountRepository(session).account_of_token(hash_token(token))
