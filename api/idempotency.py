"""``Idempotency-Key`` for every POST: the same key from the same account within 24 h
returns the first response again and writes nothing.

The SDKs retry 5xx and 429 even for create, so this is what makes a retried create safe.
A key is *claimed* with an insert before the request runs (the primary key serialises
concurrent duplicates); the response is stored when it is not a 5xx, and a 5xx drops the
claim so that a retry runs again.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from api.clock import to_ms
from api.db.engine import Database
from api.db.models import IdempotencyRecord
from api.errors import BadRequest, LimitsReached

log = logging.getLogger(__name__)

HEADER = "idempotency-key"
TTL_MS = 24 * 3600 * 1000
KEY_MAX = 255


class IdempotencyStore:
    """Claims, stored responses and expiry of idempotency keys."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(
        self, account_id: str, key: str, method: str, path: str, now_ms: int
    ) -> IdempotencyRecord | None:
        """Claim ``key``; returns ``None`` when claimed, else the existing record."""
        async with self.db.transaction() as session:
            stmt = select(IdempotencyRecord).where(
                col(IdempotencyRecord.account_id) == account_id, col(IdempotencyRecord.key) == key
            )
            existing = (await session.execute(stmt)).scalar_one_or_none()
            if existing is not None and existing.created_at > now_ms - TTL_MS:
                return existing
            if existing is not None:
                await session.delete(existing)
                await session.flush()
        record = IdempotencyRecord(
            account_id=account_id, key=key, method=method, path=path, created_at=now_ms
        )
        try:
            async with self.db.transaction() as session:
                session.add(record)
        except IntegrityError:
            # A concurrent duplicate claimed it between our read and insert.
            async with self.db.session() as session:
                found = (await session.execute(stmt)).scalar_one_or_none()
            return found if found is not None else record
        return None

    async def finish(
        self, account_id: str, key: str, status: int, content_type: str | None, body: bytes
    ) -> None:
        """Store the response (or drop the claim after a 5xx, so a retry runs again)."""
        async with self.db.transaction() as session:
            record = await session.get(IdempotencyRecord, (account_id, key))
            if record is None:
                return
            if status >= 500:
                await session.delete(record)
                return
            record.status_code = status
            record.content_type = content_type
            record.body = body

    async def purge(self, now_ms: int) -> None:
        """Forget keys older than 24 h."""
        async with self.db.transaction() as session:
            await session.execute(
                delete(IdempotencyRecord).where(
                    col(IdempotencyRecord.created_at) <= now_ms - TTL_MS
                )
            )


class IdempotencyMiddleware(ASGIMiddleware):
    """Replays the first response to a POST that repeats an ``Idempotency-Key``."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Claim the key, run the request, record what it answered."""
        key = _header(scope, HEADER)
        user = scope.get("user")
        if scope.get("method") != "POST" or key is None or user is None:
            await next_app(scope, receive, send)
            return
        if not key or len(key) > KEY_MAX:
            raise BadRequest(f'"Idempotency-Key" must be 1 to {KEY_MAX} characters long')
        app = scope["app"]
        store: IdempotencyStore = app.state.idempotency
        account_id: str = user.account_id
        now_ms = to_ms(app.state.clock())
        existing = await store.claim(account_id, key, "POST", scope["path"], now_ms)
        if existing is not None:
            await _replay(existing, scope, send)
            return
        captured: dict[str, Any] = {"status": 500, "content_type": None, "body": bytearray()}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                headers = MutableScopeHeaders.from_message(message)
                captured["content_type"] = headers.get("content-type")
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await next_app(scope, receive, capture)
        finally:
            await store.finish(
                account_id,
                key,
                captured["status"],
                captured["content_type"],
                bytes(captured["body"]),
            )


async def _replay(record: IdempotencyRecord, scope: Scope, send: Send) -> None:
    if record.path != scope["path"]:
        raise BadRequest('"Idempotency-Key" was already used for a different request')
    if record.status_code is None:
        raise LimitsReached(
            "A request with this Idempotency-Key is still in progress", retry_after=1
        )
    headers = [(b"content-type", (record.content_type or "application/json").encode())]
    headers.append((b"idempotent-replayed", b"true"))
    body = record.body or b""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": record.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope, name: str) -> str | None:
    raw = name.encode()
    for key, value in scope.get("headers", []):
        if key.lower() == raw:
            return str(value.decode("latin-1").strip())
    return None
