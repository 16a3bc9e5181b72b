"""Fresh, migrated databases for a test session: a SQLite file and a PostgreSQL database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from api.db.migrate import upgrade

# PostgreSQL runs on every machine of this project's kind at 127.0.0.1:5432 (trust auth).
ADMIN_URL = os.environ.get(
    "TASKBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    """A migrated SQLite file; yields its async URL."""
    url = f"sqlite+aiosqlite:///{directory / 'taskbot.db'}"
    upgrade(url)
    yield url


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards; yields its async URL."""
    import asyncio

    name = f"taskbot_test_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
