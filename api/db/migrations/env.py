"""Alembic environment: runs migrations over the app's async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from api.db import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from api.db.engine import create_engine

# Several API replicas may start at once against PostgreSQL: one advisory lock makes
# their upgrades run one after another instead of racing on the same DDL.
_PG_LOCK_ID = 7_315_002


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_LOCK_ID})"))
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_main())
